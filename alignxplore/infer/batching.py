"""Concurrent service requests -> one engine call (in-process engines: hf, vllm).

An in-process engine runs one ``generate`` at a time; called once per request, concurrent
requests queue behind each other and the engine sees batches of one. :class:`RequestBatcher`
collects the conversations of concurrent requests (and all that arrive while the engine is
busy) into one ``generate`` call, bounded by ``max_batch`` conversations and ``max_tokens``
(an upper bound of prompt tokens: the UTF-8 bytes of the messages, since a byte-level BPE
token spells at least one byte). A request's conversations are never split across calls; one
request over the bounds runs alone. Results go back to each request in order.

Collection: once the engine is free and a request waits, the batcher waits until no new
request has arrived for ``window`` seconds (5 ms by default), the pending conversations fill
``max_batch``, or ``max_wait`` seconds (50 ms) have passed since it started collecting —
whichever comes first. A fixed window cut bursts apart: when a batch's answers go out, its
clients' next requests come back spread over more than 5 ms on a busy machine, and a fixed
window sent the first few alone and the rest as a second, small call (measured with
benchmarks/service_load.py at 16 in flight: about one engine call in six was a partial
batch; each costs nearly a full batch's time). Waiting for the gap keeps a burst together;
``max_wait`` bounds the delay a steady stream of arrivals could add. A lone request waits
one ``window`` (at most ``max_wait``), as before. A request
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

DEFAULT_WINDOW_S = 0.005  # the gap in arrivals that closes a batch
DEFAULT_MAX_WAIT_S = 0.05  # the longest a batch is held open for more arrivals
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
                 max_batch: int = DEFAULT_MAX_BATCH, max_tokens: int = DEFAULT_MAX_TOKENS, max_wait: float = DEFAULT_MAX_WAIT_S):
        self.call, self.executor = call, executor
        self.window, self.max_batch, self.max_tokens, self.max_wait = window, max_batch, max_tokens, max_wait
        self.pending: list[_Request] = []
        self.arrivals = 0  # requests ever queued: a change means someone arrived during a wait
        self.worker: asyncio.Task | None = None
        self.calls = 0  # engine calls made (for tests and /health)

    async def __call__(self, convs: list) -> list[Generated]:
        req = _Request(list(convs), asyncio.get_running_loop().create_future())
        self.pending.append(req)
        self.arrivals += 1
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

    async def _collect(self) -> None:
        """Hold the next batch open while requests keep arriving (see the module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        seen = -1
        while self.arrivals != seen and loop.time() < deadline:
            if sum(len(r.convs) for r in self.pending if not r.fut.done()) >= self.max_batch:
                return  # full: waiting longer cannot add to this batch
            seen = self.arrivals
            await asyncio.sleep(min(self.window, deadline - loop.time()))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            await self._collect()
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
