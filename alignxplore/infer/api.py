"""Preference summaries for your own users: one pass, streaming updates, batches of users.

    from alignxplore.backends import load_backend
    from alignxplore.infer import PreferenceInferer

    backend = load_backend("openai", "AlignXplore-Plus", base_url="http://127.0.0.1:8000/v1")
    inferer = PreferenceInferer(backend)                # evaluation/SFT wording by default
    first = inferer.infer(behaviours)                   # triples, or chat messages
    later = inferer.update(first.summary, new_behaviours)
    many = inferer.infer_many([User(b1), User(b2, past="...")], chunk=4)   # streaming, K=4

Everything runs through :meth:`PreferenceInferer.arun`, one async engine shared by the sync
API, the CLI and the HTTP service; inside an event loop (a notebook, the service) call
``await inferer.arun(...)`` directly.

Rules (the evaluation's, docs/formats.md §3, where they apply):

* Token budget: measured on the prompt *without* a past summary, with the model's chat
  template, and cut by :func:`alignxplore.history.truncate_to_budget` (most recent half kept,
  repeatedly). A prompt that will carry a past summary (``update``, every streaming replay)
  gets ``budget / 1.2`` — the evaluation's streaming budget, which leaves room for the
  summary; a first pass without one gets the full budget. A streaming replay truncates the
  whole history once, before it is cut into chunks, as evaluation does before its split.
* A user left with no behaviour (every one over budget) is not sent to the model: the
  result carries ``error`` and the past summary unchanged.
* A chunk whose generation fails stops that user's replay (its later chunks would need the
  missing summary); the error is reported, the other users go on.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from ..backends.base import Backend, Generated, SamplingConfig
from ..formats import DataError, Record, validate_behaviours, validate_user_row
from ..history import MAX_PROMPT_TOKENS, STREAMING_BUDGET_DIVISOR, truncate_to_budget
from ..prompts import extract_summary, personalize_messages, rl_messages, streaming_messages

# Prompt wordings: "eval" is what evaluation and SFT used (the released model's default);
# "rl" is the RL stages' wording ("Tripe" blocks), for policies trained only with it.
WORDINGS: dict[str, Callable[..., list[dict]]] = {"eval": streaming_messages, "rl": rl_messages}

# Slack of the byte bound in PreferenceInferer.surely_fits (tokens); generous on purpose.
BOUND_MARGIN = 64
GenerateFn = Callable[[list[list[dict]]], Awaitable[list[Generated]]]


def as_triples(behaviours: Any, where: str = "<input>", field: str = "behaviours") -> list[Record]:
    """A user's behaviours as validated triples: a list of triples or a chat history
    (:func:`alignxplore.formats.validate_behaviours`, at least one behaviour)."""
    return validate_behaviours(behaviours, where, field, allow_chat=True, min_behaviours=1)


def parse_user(obj: Any, where: str, *, require_id: bool = False) -> dict:
    """A user object (service request): the user row of :func:`alignxplore.formats.validate_user_row`
    (``userid``, one of ``history`` / ``messages``, optional ``past``), as
    ``{"userid", "behaviours", "past"}``."""
    row = validate_user_row(obj, where, require_id=require_id, allow_chat=True, min_behaviours=1)
    return {"userid": row["uid"], "behaviours": row["behaviors"], "past": row.get("past")}


@dataclass
class User:
    """One user's input: validated triples (see :func:`as_triples`) and an optional past summary."""

    behaviours: list[Record]
    past: str | None = None
    userid: str | None = None


@dataclass
class InferResult:
    """A new summary, or why there is none.

    ``summary`` is the text after the last ``</think>`` of ``response``; on error it is the
    last summary reached (the past one, or a streaming replay's last good step; ``None``
    without any). ``steps`` holds every chunk's result of a
    streaming replay, in order (the last one's summary is ``summary``).
    """

    summary: str | None
    response: str | None
    n_behaviours: int
    n_dropped: int
    past: str | None = None
    error: str | None = None
    steps: list["InferResult"] = field(default_factory=list)
    userid: str | None = None
    prompt: list[dict] | None = field(default=None, repr=False)  # the last prompt sent (not serialised)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"summary": self.summary, "response": self.response, "n_behaviours": self.n_behaviours,
                               "n_dropped": self.n_dropped}
        if self.userid is not None:
            out = {"userid": self.userid} | out
        if self.error is not None:
            out["error"] = self.error
        if self.steps:
            out["steps"] = [s.to_dict() for s in self.steps]
        return out


def backend_generate_fn(backend: Backend, sampling: SamplingConfig, *, enable_thinking: bool = True,
                        executor: Executor | None = None) -> GenerateFn:
    """An async batch-generate for any backend.

    HTTP backends (with ``agenerate``) run every conversation concurrently on the caller's
    loop. In-process engines (hf, vllm) get one batched ``generate`` call, in ``executor`` if
    given (the service: the loop stays responsive). Cancelling a call whose batch is already
    running waits for the engine to finish before the cancellation completes, so whoever holds
    a concurrency slot keeps it exactly as long as the engine is busy.
    """
    if hasattr(backend, "agenerate"):
        async def generate(convs: list[list[dict]]) -> list[Generated]:
            return list(await asyncio.gather(*(backend.agenerate(c, sampling, enable_thinking=enable_thinking) for c in convs)))
        return generate

    call = functools.partial(backend.generate, sampling=sampling, enable_thinking=enable_thinking)

    async def generate_in_process(convs: list[list[dict]]) -> list[Generated]:
        if executor is None:
            return call(convs)
        job = executor.submit(call, convs)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if not job.cancel():  # already running: the engine cannot be interrupted
                await asyncio.wait([asyncio.wrap_future(job)])
            raise
    return generate_in_process


class PreferenceInferer:
    """Builds budgeted prompts and runs users through a backend (see the module docstring)."""

    def __init__(self, backend: Backend, sampling: SamplingConfig | None = None, *, wording: str = "eval",
                 prompt_budget: int = MAX_PROMPT_TOKENS, enable_thinking: bool = True):
        if wording not in WORDINGS:
            raise ValueError(f"unknown prompt wording {wording!r}; expected one of {sorted(WORDINGS)}")
        self.backend = backend
        self.sampling = sampling or SamplingConfig()
        self.wording = wording
        self.render = WORDINGS[wording]
        self.budget = prompt_budget
        self.streaming_budget = int(prompt_budget / STREAMING_BUDGET_DIVISOR)
        self.enable_thinking = enable_thinking
        self._skeleton: tuple[int, int] | None = None  # (tokens, content bytes) of the prompt with no behaviour

    # -- prompt building ---------------------------------------------------------------
    def _content_bytes(self, triples: list[Record]) -> int:
        return sum(len(m["content"].encode()) for m in self.render(triples, None))

    def surely_fits(self, triples: list[Record], budget: int) -> bool:
        """A cheap sufficient test that the no-past prompt is below ``budget``, so that short
        histories (nearly every service request) skip exact tokenisation.

        Upper bound: the tokens of the prompt with no behaviour, plus one token per byte the
        behaviours add (a byte-level BPE token such as Qwen3's spells at least one byte), plus
        ``BOUND_MARGIN`` for re-split pieces where the behaviours are inserted. Only decides
        "fits"; anything near the budget is counted exactly.
        """
        if self._skeleton is None:
            self._skeleton = (self.backend.count_prompt_tokens(self.render([], None), enable_thinking=self.enable_thinking),
                              self._content_bytes([]))
        tokens, nbytes = self._skeleton
        return tokens + (self._content_bytes(triples) - nbytes) + BOUND_MARGIN < budget

    def warm_up(self) -> None:
        """Load what the first request would otherwise wait for (the tokenizer of an HTTP backend)."""
        self.surely_fits([], self.budget)

    def truncate(self, triples: list[Record], budget: int, where: str = "<input>") -> tuple[list[Record], int]:
        """The most recent behaviours whose no-past prompt fits ``budget`` (evaluation rule)."""
        def n_tokens(t: list[Record]) -> int:
            return self.backend.count_prompt_tokens(self.render(t, None), enable_thinking=self.enable_thinking)

        if self.surely_fits(triples, budget):
            return list(triples), 0
        try:
            return truncate_to_budget(triples, n_tokens, budget, where)
        except DataError:
            # An older truncate_to_budget raised when one behaviour alone is over budget; the
            # spec's rule is an empty history, which is what callers here handle.
            return [], len(triples)

    def plan(self, user: User, chunk: int | None, where: str = "<input>") -> tuple[list[list[Record]], int]:
        """The chunks of behaviours one user's prompts will show, and how many were dropped."""
        if chunk is not None and chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        streaming = chunk is not None or user.past is not None
        kept, dropped = self.truncate(list(user.behaviours), self.streaming_budget if streaming else self.budget, where)
        if not kept:
            return [], dropped
        step = chunk or len(kept)
        return [kept[i : i + step] for i in range(0, len(kept), step)], dropped

    # -- the engine ----------------------------------------------------------------------
    async def arun(self, users: Sequence[User], chunk: int | None = None, generate: GenerateFn | None = None) -> list[InferResult]:
        """Summaries for many users; with ``chunk=K`` each history is replayed K behaviours at
        a time, each chunk's summary becoming the next one's past (every step is kept).
        Users advance together: pass ``p`` sends chunk ``p`` of every user still going as one
        batch, so an engine batches across users."""
        generate = generate or backend_generate_fn(self.backend, self.sampling, enable_thinking=self.enable_thinking)
        plans = [self.plan(u, chunk, u.userid or f"users[{i}]") for i, u in enumerate(users)]
        past = [u.past for u in users]
        steps: list[list[InferResult]] = [[] for _ in users]
        errors: list[str | None] = [None] * len(users)
        for i, (chunks, _) in enumerate(plans):
            if not chunks:
                budget = self.streaming_budget if (chunk or past[i] is not None) else self.budget
                errors[i] = f"no behaviour fits the prompt budget of {budget} tokens"
        for p in range(max((len(c) for c, _ in plans), default=0)):
            live = [i for i, (chunks, _) in enumerate(plans) if errors[i] is None and p < len(chunks)]
            if not live:
                break
            prompts = [self.render(plans[i][0][p], past[i]) for i in live]
            gens = await generate(prompts)
            for i, prompt, g in zip(live, prompts, gens):
                shown = len(plans[i][0][p])
                if not g.ok:
                    errors[i] = f"generation failed: {g.error}"
                    steps[i].append(InferResult(past[i], None, shown, 0, past[i], errors[i], prompt=prompt))
                    continue
                steps[i].append(InferResult(extract_summary(g.text), g.text, shown, 0, past[i], prompt=prompt))
                past[i] = steps[i][-1].summary
        results = []
        for i, u in enumerate(users):
            shown = sum(s.n_behaviours for s in steps[i] if s.ok)
            last = steps[i][-1] if steps[i] else None
            results.append(InferResult(
                summary=past[i], response=last.response if last and last.ok else None, n_behaviours=shown,
                n_dropped=plans[i][1], past=u.past, error=errors[i], steps=steps[i] if chunk else [], userid=u.userid,
                prompt=last.prompt if last else None,
            ))
        return results

    # -- sync API ----------------------------------------------------------------------
    def _run(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        async def main():
            try:
                return await coro_fn()
            finally:
                if hasattr(self.backend, "aclose"):  # HTTP sessions are bound to this loop
                    await self.backend.aclose()
        return asyncio.run(main())

    def infer_many(self, users: Sequence[User], chunk: int | None = None) -> list[InferResult]:
        """Batch: one result per user, in order. ``chunk=K``: streaming replay (see :meth:`arun`)."""
        return self._run(lambda: self.arun(users, chunk))

    def infer(self, behaviours: Any, past: str | None = None) -> InferResult:
        """One user's summary from triples or chat messages, optionally after a past summary."""
        return self.infer_many([User(as_triples(behaviours), past)])[0]

    def update(self, summary: str, new_behaviours: Any) -> InferResult:
        """The streaming step: revise ``summary`` with behaviours seen since it was written."""
        return self.infer(new_behaviours, past=summary)

    def stream(self, behaviours: Any, chunk: int, past: str | None = None) -> InferResult:
        """Replay one history ``chunk`` behaviours at a time; ``result.steps`` holds every summary."""
        return self.infer_many([User(as_triples(behaviours), past)], chunk=chunk)[0]


def personalize(backend: Backend, pairs: Sequence[tuple[str, str]], sampling: SamplingConfig | None = None, *,
                enable_thinking: bool = False) -> list[Generated]:
    """Personalized responses: each ``(summary, query)`` becomes a chat with the summary in the
    system prompt (:func:`alignxplore.prompts.personalize_messages`), answered by ``backend``
    (any chat model). Thinking is off by default: the answer is for the user to read."""
    convs = [personalize_messages(summary, query) for summary, query in pairs]
    return backend.generate(convs, sampling or SamplingConfig(), enable_thinking=enable_thinking)
