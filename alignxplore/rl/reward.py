"""The streaming-GRPO reward: the judge's probability that the summary picks the user's item.

Selected in the YAML as ``reward.custom_reward_function.{path: pkg://alignxplore.rl.reward,
name: compute_score}``; verl's reward loop awaits it once per response, for both stages,
while the rollout is still running. Keyword options come from
``reward.custom_reward_function.reward_kwargs`` (see :class:`JudgeOptions`).

Per response (docs/formats.md §4):

1. format gate ``prompts.is_well_formed`` (one ``<think>``, one ``</think>``, regex
   ``^<think>.+</think>.+$`` DOTALL); a failure scores 0.0 without a judge call;
2. summary ``prompts.extract_summary`` (text after the last ``</think>``, stripped);
3. target by stage (``extra_info.stage``): stage 1 -> ``target1 = history[mid]``, stage 2 ->
   ``target2 = history[-1]``; the judge's item and prompt as evaluation builds them
   (:class:`alignxplore.judge.JudgeItem`), the chosen item as Item A or B by a draw seeded
   from (``ab_seed``, stage, row index, response) (:func:`alignxplore.judge.keyed_placement`);
4. score = P(correct letter) read from the judge (``JudgeScore``: P(' A'), P(' B') at the
   letter position; :meth:`JudgeItem.p_correct`, evaluation's per-item ``confidence``).
   The authors sampled one letter and scored P(letter) if right, else
   1 - P(letter): its expectation is exactly P(correct letter). We use that expectation,
   which removes the sampling noise from the reward without changing its mean.

Several judge replicas: ``base_url`` may list several URLs (comma-separated, or a YAML list);
each reward worker then sends each request to the URL with the fewest of its requests in
flight (ties in turn), so replicas share the load; ``concurrency`` applies per URL. The first
answer from each URL is printed once per worker with its host and Ray node id, so a cluster's
log shows which nodes reach which judge.

Every call returns the same keys: ``score``, ``format_ok``, ``confidence`` (P(correct), 0.0
when not judged), ``judge_ok`` (False only when a judge call failed), ``stage``.

Judge outage (``on_judge_error``): ``fail`` (default) raises once ``max_consecutive_failures``
judge calls in a row failed in this worker process (each call already retried with back-off
by the client), which stops the step and the run; isolated failures below that score 0 with
``judge_ok=False``. ``zero`` never raises: every failure scores 0 with ``judge_ok=False``,
is counted and logged, and the trainer logs the per-step count (``streaming/stage*/judge_failures``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from dataclasses import dataclass, fields

from ..backends import JudgeScore
from ..judge import JudgeItem, keyed_placement
from ..prompts import extract_summary, is_well_formed

log = logging.getLogger("alignxplore.rl.reward")
OUTAGE_POLICIES = ("fail", "zero")


class JudgeOutage(RuntimeError):
    """The judge failed ``max_consecutive_failures`` times in a row (policy ``fail``)."""


@dataclass(frozen=True)
class JudgeOptions:
    backend: str = "openai"  # openai (a vLLM server, production) | hf (in-process, CPU tests) | embedding (CPU demo)
    model: str = "Qwen/Qwen3-8B"  # served model name (openai) or checkpoint path (hf)
    base_url: str = "http://127.0.0.1:8000/v1"  # one URL, or several comma-separated (judge replicas)
    concurrency: int = 64  # requests in flight per reward worker process and judge URL
    timeout: float = 120.0
    max_retries: int = 4
    tokenizer: str | None = None  # openai: the judge model's tokenizer, only where the server has no /tokenize
    device: str = "cpu"  # hf only
    on_judge_error: str = "fail"
    max_consecutive_failures: int = 16
    ab_seed: int = 1

    @classmethod
    def from_kwargs(cls, kwargs: dict) -> "JudgeOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown judge option(s) {unknown} in reward_kwargs; known: {sorted(known)}")
        values = dict(kwargs)
        if "base_url" in values and not isinstance(values["base_url"], str):  # a YAML list of replicas
            values["base_url"] = ",".join(str(u) for u in values["base_url"])
        opts = cls(**values)
        if not opts.base_urls():
            raise ValueError("base_url names no judge URL")
        if opts.on_judge_error not in OUTAGE_POLICIES:
            raise ValueError(f"on_judge_error={opts.on_judge_error!r}; expected one of {OUTAGE_POLICIES}")
        return opts

    def base_urls(self) -> tuple[str, ...]:
        """The judge URLs, in the order given (``base_url`` split on commas)."""
        return tuple(u.strip() for u in self.base_url.split(",") if u.strip())


class _Judge:
    """One judge client per worker process, created on first use and kept for the process."""

    def __init__(self, opts: JudgeOptions):
        from ..backends import load_backend

        self.opts = opts
        self.consecutive_failures = 0
        self.failures = 0
        if opts.backend == "openai":
            self.replicas = [
                load_backend("openai", opts.model, base_url=url, concurrency=opts.concurrency, timeout=opts.timeout,
                             max_retries=opts.max_retries, tokenizer=opts.tokenizer, progress=False)
                for url in opts.base_urls()
            ]
            self.in_flight = [0] * len(self.replicas)
            self.sent = [0] * len(self.replicas)
            self.answered = [False] * len(self.replicas)
            self._turn = 0
        elif opts.backend == "hf":
            self.backend = load_backend("hf", opts.model, device=opts.device, progress=False)
            self._lock = threading.Lock()  # one forward at a time on the shared in-process model
        elif opts.backend == "embedding":  # the CPU demo's stand-in downstream model
            self.backend = load_backend("embedding", opts.model, device=opts.device)
            self._lock = threading.Lock()
        else:
            raise ValueError(f"judge backend {opts.backend!r}; the reward supports 'openai', 'hf' and 'embedding'")

    async def score(self, messages: list[dict]) -> JudgeScore:
        if self.opts.backend == "openai":
            i = self._pick()
            self.in_flight[i] += 1
            self.sent[i] += 1
            try:
                result = await self.replicas[i].ajudge(messages)
            finally:
                self.in_flight[i] -= 1
            if result.ok and not self.answered[i]:
                self.answered[i] = True
                print(f"alignxplore reward: judge {self.opts.base_urls()[i]} answered ({worker_location()})", flush=True)
            return result

        def run() -> JudgeScore:
            with self._lock:
                return self.backend.judge([messages])[0]

        return await asyncio.to_thread(run)

    def _pick(self) -> int:
        """The replica with the fewest requests in flight from this process; ties go in turn.

        Least-loaded rather than plain round-robin: a slow replica (longer prompts, a busier
        GPU) then gets fewer requests instead of an equal share of a growing queue.
        """
        n = len(self.replicas)
        least = min(self.in_flight)
        for k in range(n):
            i = (self._turn + k) % n
            if self.in_flight[i] == least:
                self._turn = (i + 1) % n
                return i
        raise AssertionError("unreachable")

    def record(self, ok: bool, error: str | None) -> None:
        if ok:
            self.consecutive_failures = 0
            return
        self.failures += 1
        self.consecutive_failures += 1
        log.warning("judge call failed (%d in a row, %d in this process): %s", self.consecutive_failures, self.failures, error)
        if self.opts.on_judge_error == "fail" and self.consecutive_failures >= self.opts.max_consecutive_failures:
            raise JudgeOutage(
                f"judge at {self.opts.base_url if self.opts.backend == 'openai' else self.opts.model} failed "
                f"{self.consecutive_failures} times in a row (last: {error}); stopping the step "
                f"(reward_kwargs.on_judge_error=zero scores failures 0 instead)"
            )


def worker_location() -> str:
    """Host, Ray node and process of this reward worker: on a cluster, the first answer of each
    judge URL is logged with it, so the log shows which nodes reach which judge."""
    node = "-"
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except Exception:  # outside Ray (tests, benchmarks): no node id
        pass
    return f"host {socket.gethostname()}, ray node {node}, pid {os.getpid()}"


_JUDGES: dict[JudgeOptions, _Judge] = {}


def get_judge(opts: JudgeOptions) -> _Judge:
    if opts not in _JUDGES:
        _JUDGES[opts] = _Judge(opts)
    return _JUDGES[opts]


def judge_item(target: dict, stage: int, index, response: str, ab_seed: int) -> JudgeItem:
    """The judge's item for one response: the stage's target, the response's summary, and the
    chosen item's side drawn from (seed, stage, row index, response text)."""
    return JudgeItem(target["query"], extract_summary(response), target["chosen"], target["rejected"],
                     keyed_placement(ab_seed, stage, index, response))


def target_for_stage(ground_truth: dict, stage: int) -> dict:
    if stage not in (1, 2):
        raise ValueError(f"extra_info.stage must be 1 or 2, got {stage!r}")
    return ground_truth[f"target{stage}"]


async def compute_score(data_source=None, solution_str: str = "", ground_truth=None, extra_info=None, **kwargs) -> dict:
    """verl's custom reward hook (async); see the module docstring."""
    extra_info = extra_info or {}
    stage = int(extra_info.get("stage", 1))
    target = target_for_stage(ground_truth, stage)  # a bad stage is an error even for a response the gate rejects
    out = {"score": 0.0, "format_ok": False, "confidence": 0.0, "judge_ok": True, "stage": stage}
    if not is_well_formed(solution_str):
        return out
    out["format_ok"] = True
    opts = JudgeOptions.from_kwargs(kwargs)
    judge = get_judge(opts)
    item = judge_item(target, stage, extra_info.get("index", 0), solution_str, opts.ab_seed)
    result = await judge.score(item.messages())
    judge.record(result.ok, result.error)
    if not result.ok:
        out["judge_ok"] = False
        return out
    out["score"] = out["confidence"] = item.p_correct(result)
    return out
