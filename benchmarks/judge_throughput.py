"""Judge throughput over HTTP: one request at a time (as the original code did) vs ours.

    python benchmarks/judge_throughput.py                      # fake server, 100 ms latency, sampled protocol
    python benchmarks/judge_throughput.py --protocol teacher-forced
    python benchmarks/judge_throughput.py --items 256 --concurrency 64 --latency 0.1
    # against a real `vllm serve` (in .venv-vllm on CPU; any model dir, "tiny" builds the tiny Qwen3)
    .venv-vllm/bin/python benchmarks/judge_throughput.py --vllm-model tiny --items 128

Both runs use the same OpenAIBackend against the same server in one process, so only the
request scheduling differs. The default protocol is the published one (``judge_sampled``: per
item the sampled answer and the teacher-forced read-out, two requests);
``--protocol teacher-forced`` times ``judge`` (one request per item, as the RL reward uses it). Prints items/s for each and the ratio; the target against the
fake server (100 ms latency) is >= 30x at concurrency 64. Against a real server the ratio
is bounded by what the engine gains from batching on that hardware.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from alignxplore.backends.base import JudgeSampling
from alignxplore.backends.openai import OpenAIBackend
from alignxplore.prompts import judge_messages
from alignxplore.testing.fake_openai import FakeOpenAIServer

TARGET_RATIO = 30.0


def timed_run(base_url: str, items: list, concurrency: int, protocol: str = "sampled") -> tuple[float, int]:
    backend = OpenAIBackend("judge", base_url=base_url, concurrency=concurrency, progress=False)
    backend.letter_ids()  # load the tokenizer outside the timed region (both runs alike)
    t0 = time.perf_counter()
    if protocol == "sampled":
        scores = backend.judge_sampled(items, JudgeSampling())
    else:
        scores = backend.judge(items)
    return time.perf_counter() - t0, sum(s.ok for s in scores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1, help="fake server: seconds per request")
    ap.add_argument("--protocol", choices=("sampled", "teacher-forced"), default="sampled")
    ap.add_argument("--vllm-model", default=None, help="benchmark a real `vllm serve` of this model dir ('tiny': the tiny Qwen3, head_dim 64)")
    args = ap.parse_args()
    items = [judge_messages(f"query {i}", f"summary {i}", f"item a {i}", f"item b {i}") for i in range(args.items)]
    if args.vllm_model:
        import tempfile

        from alignxplore.testing.vllm_server import VLLMServer
        from alignxplore.demo.tiny import save_tiny_model

        model = args.vllm_model
        if model == "tiny":
            model = save_tiny_model(Path(tempfile.mkdtemp()) / "tiny-qwen3-hd64", head_dim=64)
        with VLLMServer(model) as server:
            timed_run(server.base_url, items[:8], 8, args.protocol)  # warm-up: first requests compile/allocate
            seq_s, seq_ok = timed_run(server.base_url, items, 1, args.protocol)
            con_s, con_ok = timed_run(server.base_url, items, args.concurrency, args.protocol)
        where = f"vllm serve {args.vllm_model}"
    else:
        with FakeOpenAIServer(latency=args.latency) as server:
            seq_s, seq_ok = timed_run(server.base_url, items, 1, args.protocol)
            con_s, con_ok = timed_run(server.base_url, items, args.concurrency, args.protocol)
        where = f"fake server, latency {args.latency * 1000:.0f}ms"
    ratio = seq_s / con_s
    print(f"items={args.items} protocol={args.protocol} server: {where}")
    print(f"sequential  (concurrency 1):  {seq_s:7.2f} s  {args.items / seq_s:8.1f} items/s  scored {seq_ok}")
    print(f"concurrent  (concurrency {args.concurrency}): {con_s:7.2f} s  {args.items / con_s:8.1f} items/s  scored {con_ok}")
    target = "" if args.vllm_model else f" (target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
    print(f"speed-up ratio: {ratio:.1f}x{target}")


if __name__ == "__main__":
    main()
