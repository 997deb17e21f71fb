"""SFT-synthesis throughput over HTTP: users/s through both stages, one call at a time vs ours.

    python benchmarks/synth_throughput.py                          # scripted server, 100 ms latency
    python benchmarks/synth_throughput.py --users 256 --sequential-users 4 --concurrency 64 --latency 0.1

Both sides run the same code (``alignxplore.data.synth.run.run_stage`` for stage 1 then stage 2,
the four calls per user and stage: 5 teacher samples, 5 judge read-outs, 1 merge, 5
re-judges) against the same scripted OpenAI-protocol server, where every user passes every
filter (the most calls per user). "One call at a time" is the backend at concurrency 1, i.e.
the authors' request pattern against a server; ours sends each step's calls for the whole chunk
of users concurrently. The sequential side runs fewer users (its time per user is constant).
Prints users/s for each and the ratio (last line, ``N.Nx``); the target is >= 30x.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from alignxplore.backends.openai import OpenAIBackend
from alignxplore.data.synth import run as synth
from alignxplore.data.synth.stage import SynthConfig
from alignxplore.testing.scripted_openai import ScriptedOpenAIServer

TARGET_RATIO = 30.0


def write_users(path: Path, n: int) -> None:
    """n users of 15 confident behaviours: thirds of 5, all 5 targets per stage."""
    lp = math.log(0.95)
    with path.open("w") as fh:
        for u in range(n):
            beh = [{"query": f"u{u} query {i}", "chosen": f"u{u} item {i} (+)", "rejected": f"u{u} item {i} (-)", "logprob1": lp}
                   for i in range(15)]
            fh.write(json.dumps({"uid": f"u{u}", "behaviors": beh}) + "\n")


def timed(server: ScriptedOpenAIServer, n_users: int, concurrency: int, chunk_size: int) -> tuple[float, int, int]:
    """Seconds for stage 1 + stage 2 over n_users; (seconds, users kept by stage 2, requests)."""
    work = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    write_users(work / "users.jsonl", n_users)
    backend = OpenAIBackend("teacher", base_url=server.base_url, concurrency=concurrency, progress=False)
    backend.letter_ids()  # load the tokenizer for the judge's letter ids outside the timing
    requests0 = server.requests
    t0 = time.perf_counter()
    for stage in (1, 2):
        rows, source = synth.load_stage_input(stage, str(work / "users.jsonl"), work)
        summary = synth.run_stage(stage, rows, backend, SynthConfig(), work, chunk_size=chunk_size, source=source)
    return time.perf_counter() - t0, summary["kept"], server.requests - requests0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=256, help="users for the concurrent run")
    ap.add_argument("--sequential-users", type=int, default=4, help="users for the one-call-at-a-time run")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight (the CLI's default)")
    ap.add_argument("--chunk-size", type=int, default=256, help="users per chunk (all users in one chunk)")
    ap.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    args = ap.parse_args()
    with ScriptedOpenAIServer(latency=args.latency) as server:
        seq_s, seq_kept, seq_req = timed(server, args.sequential_users, 1, args.chunk_size)
        con_s, con_kept, con_req = timed(server, args.users, args.concurrency, args.chunk_size)
    seq_rate, con_rate = args.sequential_users / seq_s, args.users / con_s
    print(f"scripted server, latency {args.latency * 1000:.0f} ms; stage 1 + stage 2, every user kept")
    print(f"one call at a time (concurrency 1): {args.sequential_users:4d} users {seq_s:7.2f} s {seq_rate:7.2f} users/s "
          f"({seq_req} requests, kept {seq_kept})")
    print(f"batched across users (concurrency {args.concurrency}): {args.users:4d} users {con_s:7.2f} s {con_rate:7.2f} users/s "
          f"({con_req} requests, kept {con_kept})")
    ratio = con_rate / seq_rate
    print(f"target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(f"speed-up (users/s): {ratio:.1f}x")


if __name__ == "__main__":
    main()
