"""Concurrent service requests -> one engine call (in-process engines: hf, vllm).

An in-process engine runs one ``generate`` at a time; called once per request, concurrent
requests queue behind each other and the engine sees batches of one. :class:`RequestBatcher`
collects the conversations of the requests that arrive within ``window`` seconds (and all
that arrive while the engine is busy) into one ``generate`` call, bounded by ``max_batch``
conversations and ``max_tokens`` (an upper bound of prompt tokens: the UTF-8 bytes of the
messages, since a byte-level BPE token spells at least one byte). A request's conversations
are never split across calls; one request over the bounds runs alone. Results go back to
each request in order.

Decisions: the window is short (5 ms by default) because it only adds latency when the engine
is idle; while a call runs, newcomers wait for it anyway and form the next batch. A request
cancelled (time-out) before its batch starts is dropped from the queue; once its batch runs,
the engine cannot be interrupted and its results are discarded. Sampling is seeded per engine
call, so a request's text can differ with what it was batched with (as with any batching
server); evaluation, which needs fixed seeds, does not go through the service.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..backends.base import Generated

DEFAULT_WINDOW_S = 0.005
DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_TOKENS = 131072


def prompt_bytes(conv: Sequence[dict]) -> int:
    return sum(len(str(m.get("content", "")).encode()) for m in conv)


@dataclass
class _Request:
    convs: list
    fut: asyncio.Future
    running: bool = False  # its batch is in the engine
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class RequestBatcher:
    """``await batcher(convs)`` -> that request's results, from a shared engine call."""

    def __init__(self, call: Callable[[list], list[Generated]], executor: Executor, *, window: float = DEFAULT_WINDOW_S,
                 max_batch: int = DEFAULT_MAX_BATCH, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.call, self.executor = call, executor
        self.window, self.max_batch, self.max_tokens = window, max_batch, max_tokens
        self.pending: list[_Request] = []
        self.worker: asyncio.Task | None = None
        self.calls = 0  # engine calls made (for tests and /health)

    async def __call__(self, convs: list) -> list[Generated]:
        req = _Request(list(convs), asyncio.get_running_loop().create_future())
        self.pending.append(req)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.ensure_future(self._work())
        try:
            return await req.fut
        except asyncio.CancelledError:
            if req.running:  # the engine cannot be interrupted: hold the caller's slot until it ends
                await req.finished.wait()
            raise

    def _take(self) -> list[_Request]:
        """The next batch: whole requests in arrival order, within the bounds (at least one)."""
        self.pending = [r for r in self.pending if not r.fut.done()]  # drop cancelled ones
        batch: list[_Request] = []
        n = tokens = 0
        while self.pending:
            req = self.pending[0]
            size = sum(prompt_bytes(c) for c in req.convs)
            if batch and (n + len(req.convs) > self.max_batch or tokens + size > self.max_tokens):
                break
            batch.append(self.pending.pop(0))
            n, tokens = n + len(req.convs), tokens + size
        return batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            await asyncio.sleep(self.window)  # let concurrent requests arrive
            batch = self._take()
            if not batch:
                continue
            flat = [c for r in batch for c in r.convs]
            self.calls += 1
            for r in batch:
                r.running = True
            try:
                results = await loop.run_in_executor(self.executor, self.call, flat)
            except Exception as err:  # noqa: BLE001 - the engine failed: every request of the batch learns why
                for r in batch:
                    if not r.fut.done():
                        r.fut.set_exception(err)
                    r.finished.set()
                continue
            start = 0
            for r in batch:
                if not r.fut.done():
                    r.fut.set_result(results[start : start + len(r.convs)])
                r.finished.set()
                start += len(r.convs)
