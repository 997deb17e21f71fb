"""A local OpenAI-compatible chat server for tests and benchmarks, with injectable faults.

It speaks just enough of ``POST /v1/chat/completions`` for :class:`~alignxplore.backends.openai.OpenAIBackend`:
judge requests (one token, ``top_logprobs``) get ``' A'`` / ``' B'`` log-probabilities that
are a deterministic function of the prompt (:func:`fake_p_a`), so a test can check every
number that comes back; generation requests get a ``<think>...</think>`` answer.

Faults are planned per request *content* and attempt number (``fault_plan(key, attempt)``
returns ``None``, ``"500"``, ``"400"``, ``"timeout"``, ``"malformed"`` or ``"disconnect"``), which makes
retry behaviour deterministic: no random flakiness in tests. Runs on a free loopback port in
a background thread::

    with FakeOpenAIServer(latency=0.1) as server:
        backend = OpenAIBackend("judge", base_url=server.base_url)
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import threading
from collections import Counter
from typing import Callable

from aiohttp import web

from ..backends.sampling import sampler_distribution
from ..prompts import JUDGE_LETTER_TOKENS

FaultPlan = Callable[[str, int], "str | None"]
ALWAYS_FAIL_MARKER = "FAIL-ALWAYS"
UNPARSEABLE_MARKER = "JUDGE-UNPARSEABLE"
UNPARSEABLE_ANSWER = "I would pick Item A."  # no JSON object: unparseable by the authors' rule


def request_key(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def fake_p_a(messages: list[dict]) -> float:
    """The fake judge's probability of Item A for a conversation (prefix turn excluded)."""
    convo = [m for m in messages if m.get("role") != "assistant"]
    h = int(request_key(convo)[:8], 16)
    return 0.05 + 0.9 * (h % 10_000) / 9_999


def mixed_faults(key: str, attempt: int) -> str | None:
    """Each request fails its first attempt in one of four ways (or not at all), by content."""
    if attempt > 0:
        return None
    return (None, "500", "timeout", "malformed", "disconnect")[int(key[:8], 16) % 5]


class FakeOpenAIServer:
    def __init__(self, *, host: str = "127.0.0.1", latency: float = 0.0, fault_plan: FaultPlan | None = None, hang_seconds: float = 30.0, unparseable_fraction: float = 0.0,
                 tokenizer: str | None = None, serve_tokenize: bool = True, max_model_len: int | None = None, harmony: bool = False):
        # /tokenize answers with the real tokenizer of the model the server stands for (the
        # Qwen3 judge / teacher: the one every Qwen3 size shares); serve_tokenize=False plays a
        # server without it (SGLang, a hosted API).
        self.host = host  # an address of this machine (a non-loopback one for multi-node tests)
        self.tokenizer_path = tokenizer
        self.serve_tokenize = serve_tokenize
        # max_model_len: served at GET /v1/models and enforced as vLLM does (HTTP 400 when
        # prompt tokens + max_tokens exceed it); None: no /v1/models, no limit.
        self.max_model_len = max_model_len
        self.max_tokens_sent: list[int] = []  # max_tokens of every generation / sampled-judge request
        # harmony: answer like GPT-OSS as vLLM returns its text (special tokens skipped): an
        # analysis channel, then "assistantfinal" and the answer
        self.harmony = harmony
        self.tokenize_requests = 0
        self.latency = latency
        self.unparseable_fraction = unparseable_fraction
        self.fault_plan = fault_plan
        self.hang_seconds = hang_seconds
        self.attempts: Counter[str] = Counter()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- request handling ----------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            messages = body["messages"]
            key = request_key(messages)
            attempt = self.attempts[key]
            self.attempts[key] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            fault = self.fault_plan(key, attempt) if self.fault_plan else None
            if any(ALWAYS_FAIL_MARKER in m.get("content", "") for m in messages):
                fault = "500"
            if fault == "500":
                return web.json_response({"error": {"message": "injected failure"}}, status=500)
            if fault == "400":
                return web.json_response({"error": {"message": "injected bad request"}}, status=400)
            if fault == "timeout":
                await asyncio.sleep(self.hang_seconds)
            if fault == "malformed":
                return web.Response(text='{"choices": [{"mess', content_type="application/json")
            if fault == "disconnect":
                request.transport.close()
                return web.Response(status=500)
            if not body.get("continue_final_message"):
                self.max_tokens_sent.append(int(body.get("max_tokens") or 0))
            if self.max_model_len is not None:
                n = len(self._chat_tokens(body))
                if n + int(body.get("max_tokens") or 0) > self.max_model_len:
                    return web.json_response({"error": {"message": f"This model's maximum context length is {self.max_model_len} tokens. "
                                                        f"However, you requested {n + int(body.get('max_tokens') or 0)} tokens"}}, status=400)
            if body.get("logprobs") and body.get("continue_final_message"):
                return web.json_response(self._judge_answer(body))
            if body.get("logprobs"):
                return web.json_response(self._sampled_judge_answer(body))
            return web.json_response(self._generation_answer(body))
        finally:
            self.in_flight -= 1

    async def _tokenize(self, request: web.Request) -> web.StreamResponse:
        """vLLM's ``POST /tokenize`` (vllm/entrypoints/serve/tokenize/protocol.py, 0.24): a
        ``prompt`` (``add_special_tokens`` default true) or chat ``messages`` (template with
        ``add_generation_prompt`` / ``continue_final_message`` / ``chat_template_kwargs``) ->
        ``{"count", "max_model_len", "tokens"}``."""
        self.tokenize_requests += 1
        body = await request.json()
        if "messages" in body:
            tokens = self._chat_tokens(body)
        else:
            tokens = self._tok.encode(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))
        return web.json_response({"count": len(tokens), "max_model_len": self.max_model_len or 40960, "tokens": tokens, "token_strs": None})

    def _chat_tokens(self, body: dict) -> list[int]:
        """The prompt token ids of a chat request, rendered as vLLM's chat endpoint does."""
        text = self._tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=body.get("add_generation_prompt", True),
                                             continue_final_message=body.get("continue_final_message", False), **(body.get("chat_template_kwargs") or {}))
        return self._tok.encode(text, add_special_tokens=body.get("add_special_tokens", False))

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """vLLM's ``GET /v1/models``: the served model with its ``max_model_len``."""
        return web.json_response({"object": "list", "data": [{"id": "judge", "object": "model", "max_model_len": self.max_model_len}]})

    def _judge_answer(self, body: dict) -> dict:
        p_a = fake_p_a(body["messages"])
        top = [
            {"token": JUDGE_LETTER_TOKENS["A"], "logprob": math.log(p_a * 0.98)},
            {"token": JUDGE_LETTER_TOKENS["B"], "logprob": math.log((1 - p_a) * 0.98)},
            {"token": " C", "logprob": math.log(0.02)},
        ][: body.get("top_logprobs", 3)]
        top.sort(key=lambda e: -e["logprob"])
        return {
            "id": "fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": top[0]["token"]},
                    "logprobs": {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]},
                    "finish_reason": "length",
                }
            ],
        }

    def is_unparseable(self, messages: list[dict]) -> bool:
        """Whether this conversation gets an answer the authors' parser rejects."""
        if any(UNPARSEABLE_MARKER in m.get("content", "") for m in messages):
            return True
        return int(request_key(messages)[8:16], 16) % 10_000 < self.unparseable_fraction * 10_000

    def sampled_letter_probs(self, body: dict) -> dict[str, float]:
        """The letter distribution the fake sampler draws from for this request."""
        p_a = fake_p_a(body["messages"])
        return sampler_distribution({"A": p_a, "B": 1 - p_a}, body.get("temperature", 1.0), body.get("top_k", -1), body.get("top_p", 1.0))

    def _sampled_judge_answer(self, body: dict) -> dict:
        messages = body["messages"]
        rng = random.Random(f"{request_key(messages)}:{body.get('seed')}")
        q = self.sampled_letter_probs(body)
        letter = "A" if rng.random() < q["A"] else "B"
        if self.is_unparseable(messages):
            text = UNPARSEABLE_ANSWER
        else:
            text = json.dumps({"selection": f"Item {letter}"})
        if self.harmony:  # a draft JSON in the analysis must not be what is parsed
            other = "B" if letter == "A" else "A"
            text = f'analysisMaybe {{"selection": "Item {other}"}}? Let me check the preference.assistantfinal{text}'
        p = fake_p_a(messages) if letter == "A" else 1 - fake_p_a(messages)
        token = JUDGE_LETTER_TOKENS[letter]
        return {
            "id": "fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": {"content": [{"token": token, "logprob": math.log(p), "top_logprobs": [{"token": token, "logprob": math.log(p)}]}]},
                    "finish_reason": "stop",
                }
            ],
        }

    def _generation_answer(self, body: dict) -> dict:
        digest = request_key(body["messages"])[:8]
        text = f"<think>\nreasoning {digest}\n</think>\n\nThe user prefers items like {digest}."
        if self.harmony:
            text = f"analysisreasoning {digest}, no think tags here.assistantfinalThe user prefers items like {digest}."
        return {
            "id": "fake",
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "FakeOpenAIServer":
        ready = threading.Event()
        if self.serve_tokenize or self.max_model_len is not None:  # loaded before serving (once per process), so /tokenize answers at once
            from ..backends.openai import _load_tokenizer
            from ..demo.tiny import qwen3_tokenizer_dir

            self._tok = _load_tokenizer(self.tokenizer_path or qwen3_tokenizer_dir())

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._handle)
            if self.serve_tokenize:
                app.router.add_post("/tokenize", self._tokenize)
            if self.max_model_len is not None:
                app.router.add_get("/v1/models", self._models)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self.host, 0, backlog=1024)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start within 10 s")
        return self

    async def _shutdown(self) -> None:
        # Cancel handlers still sleeping (injected hangs) so nothing is left pending.
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop and self._thread and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
