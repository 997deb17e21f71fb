"""Any OpenAI-compatible chat server (``vllm serve Qwen/Qwen3-8B``, SGLang, a hosted API).

The RL reward's judge path and the way to evaluate against a shared judge server. The
original code sent one request at a time; here requests run concurrently (bounded by a
semaphore), each with a timeout, and transient failures (connection errors, time-outs,
HTTP 429/5xx, malformed bodies) are retried with exponential back-off and jitter. An item
that still fails comes back marked failed (``error`` set) instead of raising, so a batch
never loses the items that did succeed.

Judge requests teacher-force the answer prefix through vLLM's chat extensions
``continue_final_message`` / ``add_generation_prompt=False``, turn thinking off with
``chat_template_kwargs={"enable_thinking": False}`` and restrict the one generated token to
the two letters with ``allowed_token_ids``; its ``top_logprobs`` give P(' A') and P(' B').
With a server started with ``--logprobs-mode processed_logprobs`` those are renormalised over
the two letters (exact for any judge); with the default raw mode they are the raw top-20
(exact whenever both letters are in it, as for any judge that follows the JSON format).

The sampled judge protocol (:meth:`OpenAIBackend.ajudge_sampled`) sends, per item, that
read-out and then the authors' request: the bare judge prompt, thinking off,
``temperature=0.6, top_k=20, top_p=0.95, max_tokens=16, logprobs=True``, and a per-item
``seed`` (vLLM honours it per request, so answers do not depend on batching). A vLLM server
caches the prompt of the first (automatic prefix caching, on by default), so the second finds
it there: one prefill per item. Items still run concurrently with each other.

Token ids and counts come from the served model itself, so any judge works (Qwen3,
Qwen2.5-7B-Instruct, GPT-OSS-20B): the ids of ' A' / ' B' are asked once, when the client is
made, from vLLM's ``POST /tokenize`` on the server root (``base_url`` without ``/v1``); a
server without it (SGLang, a hosted API) needs ``tokenizer=`` (the judge model's own
tokenizer, a path or hub name) as the fallback. If neither answers, the
constructor raises :class:`TokenizerUnavailable`, one line naming the URL, before any request
is sent: a judge client that cannot restrict its answer to the two letters never starts
(in the RL reward, a worker would otherwise die at its first reward). Prompt-token counts (the
history budget) use ``tokenizer=`` when given (local, no request per count), else ``/tokenize``
with the chat messages. ``judge=False`` (a generation-only client: a teacher, ``alignxplore infer``'s
policy server) defers the letter ids to the first judge call.

Context cap: a vLLM server rejects (HTTP 400) a request whose prompt plus ``max_tokens``
exceeds its ``max_model_len``, where the offline engine simply stops at the context end. So
generation and sampled-judge requests send ``max_tokens = min(requested, max_model_len -
prompt tokens)``: ``max_model_len`` is ``max_model_len=`` when given, else the served
model's ``max_model_len`` from ``GET /v1/models`` (vLLM lists it; read once); the prompt
tokens are counted as for the history budget (:meth:`OpenAIBackend.count_prompt_tokens`),
only for a prompt long enough to need it (its JSON over ``max_model_len - requested -
CONTEXT_SLACK_BYTES`` bytes: a byte-level BPE token is at least one byte, and
the slack covers the chat template's own text). A prompt that leaves no room fails its item
(one line); a server that lists no ``max_model_len`` (SGLang, a hosted API) gets the request
uncapped, as before.
"""
from __future__ import annotations

import asyncio
import functools
import json
import random
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import aiohttp
from tqdm.auto import tqdm

from ..prompts import JUDGE_LETTER_TOKENS, THINK_CLOSE, THINK_OPEN, Message, with_answer_prefix
from .base import BackendSetupError, Generated, JudgeSampling, JudgeScore, SampledJudgment, SamplingConfig, count_tokens, item_seeds, letter_token_ids

T = TypeVar("T")
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
JUDGE_TOP_LOGPROBS = 20
# Bytes of chat-template text (role tags, a default system message) a prompt may add to its
# messages' JSON; below this margin a prompt cannot reach the context and is not counted.
CONTEXT_SLACK_BYTES = 4096


class RequestFailed(Exception):
    """A request that will not succeed by retrying, or that ran out of retries."""


class TokenizerUnavailable(BackendSetupError):
    """Neither the server's ``/tokenize`` nor a ``tokenizer=`` gives the judge's token ids (one line)."""


def server_root(base_url: str) -> str:
    """vLLM serves ``/tokenize`` beside ``/v1``, on the root: ``http://h:8000/v1`` -> ``http://h:8000``."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 64,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 16.0,
        tokenizer: str | None = None,
        judge: bool = True,
        progress: bool = True,
        max_model_len: int | None = None,
    ):
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.progress = progress
        self._tokenizer_path = tokenizer
        self._tokenizer = None
        self._letter_ids: list[int] | None = None
        self._clients: dict[int, tuple[aiohttp.ClientSession, asyncio.Semaphore]] = {}
        self.tokenize_url = server_root(base_url) + "/tokenize"
        self.models_url = base_url.rstrip("/") + "/models"
        self._max_model_len = max_model_len
        self._context_known = max_model_len is not None
        if judge:
            self.letter_ids()  # at start-up: a judge that cannot name its letters must not start

    # -- transport -------------------------------------------------------------------
    def _client(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """One session and semaphore per event loop (aiohttp sessions are bound to their loop).

        aiohttp rather than httpx: at 64 requests in flight httpx's pool cost ~9 ms of CPU per
        request here, five times aiohttp's, which capped the speed-up far below the target.
        """
        loop = asyncio.get_running_loop()
        key = id(loop)
        if key not in self._clients:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self.headers,
            )
            self._clients[key] = (session, asyncio.Semaphore(self.concurrency))
        return self._clients[key]

    async def _post(self, payload: dict, parse: Callable[[dict], T]) -> T:
        client, sem = self._client()
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            try:
                async with sem, client.post(self.url, json=payload) as resp:
                    status, text = resp.status, await resp.text()
            except asyncio.TimeoutError:
                last = f"timed out after {self.timeout:g} s"
                continue
            except aiohttp.ClientError as err:
                last = f"{type(err).__name__}: {err}"
                continue
            if status != 200:
                last = f"HTTP {status}: {text[:200]}"
                if status in RETRY_STATUS:
                    continue
                raise RequestFailed(last)
            try:
                return parse(json.loads(text))
            except (ValueError, KeyError, IndexError, TypeError) as err:
                last = f"malformed response body ({type(err).__name__}: {err})"
        raise RequestFailed(f"{last} (after {self.max_retries + 1} attempts)")

    # -- async API (used directly by the RL reward) ------------------------------------
    def letter_ids(self) -> list[int]:
        """Token ids of ' A', ' B': the server's ``/tokenize`` first, else ``tokenizer=``."""
        if self._letter_ids is None:
            try:
                ids = {letter: self._server_tokens({"prompt": text, "add_special_tokens": False})
                       for letter, text in JUDGE_LETTER_TOKENS.items()}
                for letter, toks in ids.items():
                    if len(toks) != 1:
                        raise TokenizerUnavailable(f"the judge at {self.tokenize_url} splits {JUDGE_LETTER_TOKENS[letter]!r} into {len(toks)} tokens; "
                                                   "the A/B read-out needs one")
                self._letter_ids = [ids["A"][0], ids["B"][0]]
            except _NoServerTokenizer as why:
                if not self._tokenizer_path:
                    raise TokenizerUnavailable(f"cannot get the judge's token ids of ' A'/' B': {why}, and no tokenizer= "
                                               f"(the judge model's tokenizer path or name) was given") from None
                ids = letter_token_ids(self.tokenizer())
                self._letter_ids = [ids["A"], ids["B"]]
        return self._letter_ids

    def _server_tokens(self, payload: dict) -> list[int]:
        """``POST /tokenize`` (vLLM: ``{"prompt"}`` or ``{"messages", ...}`` -> ``{"count", "tokens"}``);
        raises _NoServerTokenizer when the server cannot answer it. Blocking on purpose: it runs
        once at start-up (letters) or where the caller is synchronous (the history budget)."""
        req = urllib.request.Request(self.tokenize_url, data=json.dumps({"model": self.model, **payload}).encode(),
                                     headers={"Content-Type": "application/json", **self.headers}, method="POST")
        try:
            # no proxies, like the aiohttp session (trust_env off): a cluster's http_proxy must not
            # reroute the call to the judge host; not the request time-out: a start-up call
            with _DIRECT.open(req, timeout=30.0) as resp:
                return [int(t) for t in json.loads(resp.read())["tokens"]]
        except urllib.error.HTTPError as err:
            raise _NoServerTokenizer(f"{self.tokenize_url} answered HTTP {err.code}") from None
        except (urllib.error.URLError, OSError) as err:
            raise _NoServerTokenizer(f"{self.tokenize_url} unreachable ({getattr(err, 'reason', err)})") from None
        except (ValueError, KeyError, TypeError) as err:
            raise _NoServerTokenizer(f"{self.tokenize_url} gave a malformed answer ({type(err).__name__}: {err})") from None

    def max_model_len(self) -> int | None:
        """The server's context length: ``max_model_len=``, else ``GET /v1/models`` (once); None if unknown."""
        if not self._context_known:
            self._context_known = True
            req = urllib.request.Request(self.models_url, headers=self.headers, method="GET")
            try:
                with _DIRECT.open(req, timeout=30.0) as resp:
                    entries = json.loads(resp.read())["data"]
                mine = [e for e in entries if e.get("id") == self.model] or entries[:1]
                value = mine[0].get("max_model_len") if mine else None
                self._max_model_len = int(value) if value is not None else None
            except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, IndexError):
                self._max_model_len = None
        return self._max_model_len

    def capped_max_tokens(self, messages: Sequence[Message], requested: int, *, enable_thinking: bool) -> int:
        """``min(requested, max_model_len - prompt tokens)``; raises RequestFailed when no room is left."""
        context = self.max_model_len()
        if context is None:
            return requested
        size = len(json.dumps([dict(m) for m in messages], ensure_ascii=False).encode("utf-8"))
        if size + CONTEXT_SLACK_BYTES < context - requested:
            return requested  # fewer tokens than bytes: it fits without counting
        try:
            n = self.count_prompt_tokens(messages, enable_thinking=enable_thinking)
        except TokenizerUnavailable as err:
            raise RequestFailed(str(err)) from None
        if n >= context:
            raise RequestFailed(f"prompt of {n} tokens does not fit max_model_len {context}")
        return min(requested, context - n)

    async def _max_tokens(self, messages: Sequence[Message], requested: int, *, enable_thinking: bool) -> int:
        return await asyncio.to_thread(self.capped_max_tokens, messages, requested, enable_thinking=enable_thinking)

    async def ajudge(self, messages: Sequence[Message]) -> JudgeScore:
        try:
            letters = self.letter_ids()  # resolved at start-up unless judge=False
        except TokenizerUnavailable as err:
            return JudgeScore.failed(str(err))
        payload = {
            "model": self.model,
            "messages": with_answer_prefix(messages),
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": JUDGE_TOP_LOGPROBS,
            "continue_final_message": True,
            "add_generation_prompt": False,
            "chat_template_kwargs": {"enable_thinking": False},
            "allowed_token_ids": letters,
        }
        try:
            return await self._post(payload, _parse_judge)
        except RequestFailed as err:
            return JudgeScore.failed(str(err))

    async def ajudge_sampled(self, messages: Sequence[Message], sampling: JudgeSampling, seed: int | None = None) -> SampledJudgment:
        """The authors' sampled judge answer plus the teacher-forced P(A), P(B) of the same prompt."""
        payload = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "max_tokens": sampling.max_new_tokens,
            "seed": sampling.seed if seed is None else seed,
            "logprobs": True,
            "chat_template_kwargs": {"enable_thinking": False},
        }

        async def sampled() -> tuple[str | None, str | None]:
            try:
                payload["max_tokens"] = await self._max_tokens(messages, sampling.max_new_tokens, enable_thinking=False)
                return await self._post(payload, _parse_generation), None
            except RequestFailed as err:
                return None, str(err)

        # The read-out first, then the sample: the server's prefix cache then holds the judge
        # prompt (two simultaneous requests would both be prefilled). A failed read-out fails
        # the item without asking for the sample.
        score = await self.ajudge(messages)
        if not score.ok:
            return SampledJudgment(None, score, score.error)
        text, error = await sampled()
        return SampledJudgment(text if error is None else None, score, error)

    async def agenerate(self, messages: Sequence[Message], sampling: SamplingConfig, *, enable_thinking: bool = True) -> Generated:
        payload = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "max_tokens": sampling.max_new_tokens,
            "seed": sampling.seed,
            "chat_template_kwargs": {"enable_thinking": enable_thinking},
        }
        try:
            payload["max_tokens"] = await self._max_tokens(messages, sampling.max_new_tokens, enable_thinking=enable_thinking)
            return Generated(await self._post(payload, _parse_generation))
        except RequestFailed as err:
            return Generated(None, str(err))

    async def aclose(self) -> None:
        loop_id = id(asyncio.get_running_loop())
        if loop_id in self._clients:
            client, _ = self._clients.pop(loop_id)
            await client.close()

    # -- Backend (sync) ----------------------------------------------------------------
    def _run_all(self, coros: list[Awaitable[T]], desc: str) -> list[T]:
        async def main() -> list[T]:
            bar = tqdm(total=len(coros), desc=desc, disable=not self.progress, leave=False)

            async def tracked(c: Awaitable[T]) -> T:
                try:
                    return await c
                finally:
                    bar.update(1)

            try:
                return await asyncio.gather(*(tracked(c) for c in coros))
            finally:
                bar.close()
                await self.aclose()

        return asyncio.run(main())

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        return self._run_all([self.ajudge(m) for m in conversations], "judge")

    def judge_sampled(
        self, conversations: Sequence[Sequence[Message]], sampling: JudgeSampling, seeds: Sequence[int] | None = None
    ) -> list[SampledJudgment]:
        seeds = item_seeds(sampling, len(conversations), seeds)
        return self._run_all([self.ajudge_sampled(m, sampling, s) for m, s in zip(conversations, seeds)], "judge (sampled)")

    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        return self._run_all([self.agenerate(m, sampling, enable_thinking=enable_thinking) for m in conversations], "generate")

    def tokenizer(self):
        """The local tokenizer given as ``tokenizer=`` (the served model's own)."""
        if self._tokenizer is None:
            if not self._tokenizer_path:
                raise TokenizerUnavailable(f"no tokenizer= given for the model served at {self.url} (its /tokenize is used instead)")
            self._tokenizer = _load_tokenizer(self._tokenizer_path)
        return self._tokenizer

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        """Tokens of the rendered generation prompt: ``tokenizer=`` when given, else the server's
        ``/tokenize`` with the same chat template arguments as a generation request."""
        if self._tokenizer_path:
            return count_tokens(self.tokenizer(), messages, enable_thinking=enable_thinking)
        try:
            return len(self._server_tokens({"messages": [dict(m) for m in messages], "add_generation_prompt": True,
                                            "chat_template_kwargs": {"enable_thinking": enable_thinking}}))
        except _NoServerTokenizer as why:
            raise TokenizerUnavailable(f"cannot count prompt tokens: {why}, and no tokenizer= was given") from None

    def close(self) -> None:
        self._clients.clear()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoServerTokenizer(Exception):
    """The server's /tokenize did not answer (reason in the message)."""


@functools.lru_cache(maxsize=4)
def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _parse_judge(body: dict[str, Any]) -> JudgeScore:
    content = body["choices"][0]["logprobs"]["content"]
    if not content:
        raise ValueError("empty logprobs.content")
    top = content[0]["top_logprobs"]
    found = {entry["token"]: float(entry["logprob"]) for entry in top}
    score = JudgeScore.from_logprobs(found.get(JUDGE_LETTER_TOKENS["A"]), found.get(JUDGE_LETTER_TOKENS["B"]))
    score.extra["token"] = content[0].get("token")
    return score


def _parse_generation(body: dict[str, Any]) -> str:
    message = body["choices"][0]["message"]
    text = message.get("content")
    # A server started with a reasoning parser splits the thinking off; put it back so the
    # stored response has the same <think>...</think> shape as the other backends'.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if not isinstance(text, str):
        if text is None and reasoning:
            text = ""
        else:
            raise TypeError(f"message.content is {type(text).__name__}")
    if reasoning and THINK_CLOSE not in text:
        text = f"{THINK_OPEN}\n{reasoning.strip()}\n{THINK_CLOSE}\n\n{text.lstrip()}"
    return text


__all__ = ["OpenAIBackend", "RequestFailed", "TokenizerUnavailable", "server_root"]
