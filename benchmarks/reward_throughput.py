"""RL reward throughput: our reward path vs one judge request at a time (as the authors' reward).

    python benchmarks/reward_throughput.py                       # 256 responses, 100 ms judge, concurrency 64
    python benchmarks/reward_throughput.py --responses 512 --latency 0.05 --concurrency 32

Both sides run ``alignxplore.rl.reward.compute_score`` (format gate, summary, seeded A/B,
judge prompt, P(correct)) in this process against the same local OpenAI-compatible judge
(``alignxplore.testing.fake_openai``, fixed latency per request, in its own process):

* sequential: each response's reward is awaited before the next starts, so one request is
  in flight at a time — the authors' ``confidence_upi_streaming.py`` loop;
* ours: all responses' rewards are awaited together, as verl's reward loop does, and the
  judge client keeps up to ``--concurrency`` requests in flight (the YAML's per-worker setting;
  production runs ``reward.num_workers`` such processes, so this single-process figure is a floor).

Prints both times, checks the scores agree, and ends with the speed-up ``N.Nx`` (target >= 30x).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from contextlib import contextmanager

from alignxplore.rl import reward
from alignxplore.testing.fake_openai import FakeOpenAIServer

TARGET_RATIO = 30.0
GT = {"target1": {"query": "Recommend a movie.", "chosen": "Arrival", "rejected": "Titanic"},
      "target2": {"query": "Pick a film.", "chosen": "Solaris", "rejected": "Notting Hill"}}


def _serve(latency: float, port_q, stop) -> None:
    with FakeOpenAIServer(latency=latency) as server:
        port_q.put(server.port)
        stop.wait()
        port_q.put(server.max_in_flight)


@contextmanager
def judge_server(latency: float):
    """The fake judge in its own process, as a real judge server is: the client's and the
    server's CPU work do not share one interpreter lock. Yields (base_url, peak-in-flight getter)."""
    ctx = mp.get_context("spawn")
    port_q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(latency, port_q, stop), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=60)
        peak: list[int] = []
        yield f"http://127.0.0.1:{port}/v1", peak
    finally:
        stop.set()
        try:
            peak.append(port_q.get(timeout=10))
        finally:
            proc.join(10)


def responses(n: int) -> list[str]:
    return [f"<think>\nreasoning about user {i}\n</think>\n\nPrefers slow, cerebral science fiction ({i})." for i in range(n)]


async def run(texts: list[str], judge: dict, *, concurrent: bool) -> tuple[float, list[dict]]:
    reward._JUDGES.clear()  # a fresh client per side, as a fresh worker process would have

    def one(i: int, text: str):
        return reward.compute_score(data_source="alignxplore_rl", solution_str=text, ground_truth=GT,
                                    extra_info={"stage": 1 + i % 2, "index": i}, **judge)

    t0 = time.perf_counter()
    if concurrent:
        out = await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)))
    else:
        out = [await one(i, t) for i, t in enumerate(texts)]
    elapsed = time.perf_counter() - t0
    for j in reward._JUDGES.values():
        await j.backend.aclose()
    return elapsed, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--responses", type=int, default=256)
    ap.add_argument("--latency", type=float, default=0.1, help="judge seconds per request")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    texts = responses(args.responses)
    with judge_server(args.latency) as (base_url, peak_box):
        judge = {"base_url": base_url, "concurrency": args.concurrency}
        seq_s, seq_out = asyncio.run(run(texts, {**judge, "concurrency": 1}, concurrent=False))
        con_s, con_out = asyncio.run(run(texts, judge, concurrent=True))
    peak = peak_box[0] if peak_box else "?"
    assert [o["score"] for o in seq_out] == [o["score"] for o in con_out], "the two paths must score identically"
    assert all(o["judge_ok"] for o in con_out)
    ratio = seq_s / con_s
    print(f"responses={args.responses} judge latency={args.latency * 1000:.0f}ms concurrency={args.concurrency} (peak in flight {peak})")
    print(f"one request at a time (authors): {seq_s:7.2f} s  {args.responses / seq_s:8.1f} rewards/s")
    print(f"our reward path:                 {con_s:7.2f} s  {args.responses / con_s:8.1f} rewards/s")
    print(f"target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
    print(f"{ratio:.1f}x")


if __name__ == "__main__":
    main()
