"""Judge throughput over HTTP: one request at a time (as the original code did) vs ours.

    python benchmarks/judge_throughput.py                      # fake server, 100 ms latency
    python benchmarks/judge_throughput.py --items 256 --concurrency 64 --latency 0.1

Both runs use the same OpenAIBackend against the same local OpenAI-compatible test server
(alignxplore.testing.fake_openai) in one process, so only the request scheduling differs.
Prints items/s for each and the ratio; the target is >= 30x at concurrency 64.
"""
from __future__ import annotations

import argparse
import time

from alignxplore.backends.openai import OpenAIBackend
from alignxplore.prompts import judge_messages
from alignxplore.testing.fake_openai import FakeOpenAIServer

TARGET_RATIO = 30.0


def timed_run(base_url: str, items: list, concurrency: int) -> tuple[float, int]:
    backend = OpenAIBackend("judge", base_url=base_url, concurrency=concurrency, progress=False)
    t0 = time.perf_counter()
    scores = backend.judge(items)
    return time.perf_counter() - t0, sum(s.ok for s in scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    args = ap.parse_args()
    items = [judge_messages(f"query {i}", f"summary {i}", f"item a {i}", f"item b {i}") for i in range(args.items)]
    with FakeOpenAIServer(latency=args.latency) as server:
        seq_s, seq_ok = timed_run(server.base_url, items, 1)
        con_s, con_ok = timed_run(server.base_url, items, args.concurrency)
    ratio = seq_s / con_s
    print(f"items={args.items} server_latency={args.latency * 1000:.0f}ms")
    print(f"sequential  (concurrency 1):  {seq_s:7.2f} s  {args.items / seq_s:8.1f} items/s  scored {seq_ok}")
    print(f"concurrent  (concurrency {args.concurrency}): {con_s:7.2f} s  {args.items / con_s:8.1f} items/s  scored {con_ok}")
    print(f"speed-up ratio: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")


if __name__ == "__main__":
    main()
