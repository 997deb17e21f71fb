"""Load test of the preference-summary service: requests/s and p50/p99 latency at several
concurrency levels, against the service started by its documented command and backed by the
OpenAI-compatible test server with 100 ms latency per generation.

    python benchmarks/service_load.py
    python benchmarks/service_load.py --levels 1,16,64 --seconds 4 --latency 0.1 --behaviours 4

Three processes, as in a deployment: the test server (the "model"), the service
(``python -m alignxplore.infer.service --backend openai ...``) and this load generator
(aiohttp, a fixed number of requests kept in flight). Every request is one user with
``--behaviours`` triples, distinct per request. Prints one row per level and, on the last
line, the throughput ratio of the highest level to concurrency 1 (target >= 30x at 64: the
service's own work per request must stay far below the model's 100 ms). Also prints the
CPU time each process spent per request, which does not depend on how busy the machine is.
``SERVICE_RUNNER`` replaces ``-m alignxplore.infer.service`` (e.g. a profiling wrapper).

Then a real-model case: the service with ``--backend hf`` on the tiny Qwen3 (real tokenizer,
random weights, saved to a temporary folder), ``--max-new-tokens 16``, ``--batch-size 16``,
throughput at 16 concurrent requests vs 1 (target 4 times on 2 cores: concurrent requests
share engine calls, ``alignxplore.infer.batching``). The two levels alternate in
``--real-slices`` slices (default 4 of 5 s each) so that a change in the machine's load
during the run affects both. Its ratio is printed LAST.
``--skip-real-model`` leaves it out.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 30.0
REAL_TARGET_RATIO = 4.0
REAL_NEW_TOKENS = 16
FAKE_SERVER = """
import sys
from alignxplore.testing.fake_openai import FakeOpenAIServer
with FakeOpenAIServer(latency=float(sys.argv[1])) as server:
    print(server.port, flush=True)
    sys.stdin.read()  # serve until the benchmark closes our stdin
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    return os.environ | {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1"}


def start_processes(latency: float, concurrency: int, log_file) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    env = _env()
    fake = subprocess.Popen([sys.executable, "-c", FAKE_SERVER, str(latency)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    fake_port = int(fake.stdout.readline())
    cmd = ["--backend", "openai", "--model", "policy", "--base-url", f"http://127.0.0.1:{fake_port}/v1", "--concurrency", str(concurrency),
           "--max-concurrent-requests", str(concurrency), "--max-queue", str(4 * concurrency)]
    service, url = start_service(cmd, log_file)
    return fake, service, url


def start_service(options: list[str], log_file) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, *os.environ.get("SERVICE_RUNNER", "-m alignxplore.infer.service").split(), "--port", str(port), *options]
    # its JSON logs (one line per request) go to a file, as a deployment's would
    service = subprocess.Popen(cmd, stderr=log_file, env=_env())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # ready once /health answers (model/tokenizer loaded)
        if service.poll() is not None:
            raise RuntimeError(f"service exited with {service.returncode}; see {log_file.name}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return service, url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("service did not come up within 300 s")


def body(i: int, n: int) -> dict:
    return {"userid": f"u{i}", "history": [
        {"query": f"request {i} question {j}", "chosen": f"answer the user of request {i} liked ({j})",
         "rejected": f"answer the user of request {i} skipped ({j})"} for j in range(n)]}


def merge_levels(parts: list[dict]) -> dict:
    """One row from several :func:`run_level` slices of the same concurrency."""
    lat = sorted(x for p in parts for x in p["latencies"])
    statuses: dict[int, int] = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    wall = sum(p["wall"] for p in parts)
    return {"concurrency": parts[0]["concurrency"], "requests": len(lat), "rps": len(lat) / wall, "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "statuses": statuses, "latencies": lat, "wall": wall}


async def run_level(url: str, concurrency: int, seconds: float, behaviours: int, start: int) -> dict:
    """Keep ``concurrency`` requests in flight for ``seconds``; latencies of those finished."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(start, start + 10**9))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        t_end = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < t_end:
                t0 = time.perf_counter()
                async with session.post(f"{url}/v1/summaries", json=body(next(counter), behaviours)) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"concurrency": concurrency, "requests": len(lat), "rps": len(lat) / wall, "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "statuses": statuses, "latencies": lat, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,16,64", help="comma-separated concurrency levels; the first is the baseline")
    ap.add_argument("--seconds", type=float, default=4.0, help="measured time per level")
    ap.add_argument("--latency", type=float, default=0.1, help="test server: seconds per generation")
    ap.add_argument("--behaviours", type=int, default=4, help="triples per request")
    ap.add_argument("--real-seconds", type=float, default=20.0, help="real-model case: measured time per level")
    ap.add_argument("--real-slices", type=int, default=4,
                    help="real-model case: the levels alternate (1, 16, 1, 16, ...) in this many slices each, so load changes on a shared machine hit both alike")
    ap.add_argument("--skip-real-model", action="store_true", help="leave out the tiny hf model case")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    log_file = tempfile.NamedTemporaryFile("w", prefix="service-load-", suffix=".log", delete=False)
    fake, service, url = start_processes(args.latency, max(levels), log_file)
    try:
        asyncio.run(run_level(url, 8, 1.0, args.behaviours, start=10**8))  # warm-up: connections, first-call paths
        rows = []
        procs = {"service": psutil.Process(service.pid), "model": psutil.Process(fake.pid), "client": psutil.Process()}
        for i, c in enumerate(levels):
            cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in procs.items()}
            rows.append(asyncio.run(run_level(url, c, args.seconds, args.behaviours, start=i * 10**6)))
            n = max(1, rows[-1]["requests"])
            rows[-1]["cpu_ms"] = {k: 1000 * (sum(p.cpu_times()[:2]) - cpu0[k]) / n for k, p in procs.items()}
    finally:
        service.terminate()
        fake.stdin.close()
        service.wait(20)
        fake.wait(20)
    n_logged = sum(1 for line in open(log_file.name) if '"msg": "request"' in line)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"service backed by the test server ({args.latency * 1000:.0f} ms per generation), {args.behaviours} behaviours per request, {n_logged} request log lines")
    print(f"{'concurrency':>11} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   CPU ms/req: service / test server / client  statuses")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['requests']:>9} {r['rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}   {r['cpu_ms']['service']:>5.2f} / {r['cpu_ms']['model']:.2f} / {r['cpu_ms']['client']:.2f}  {r['statuses']}")
    bad = sum(n for r in rows for s, n in r["statuses"].items() if s != 200)
    if bad:
        print(f"WARNING: {bad} request(s) did not answer 200")
    ratio = rows[-1]["rps"] / rows[0]["rps"]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"throughput ratio concurrency {levels[-1]} vs {levels[0]}: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {verdict})")
    if not args.skip_real_model:
        real_model_case(args)


def real_model_case(args) -> None:
    """The tiny hf model in-process: requests/s at 16 in flight vs 1 (both measured here)."""
    from alignxplore.demo.tiny import save_tiny_model

    with tempfile.TemporaryDirectory(prefix="service-load-tiny-") as tmp:
        model = save_tiny_model(Path(tmp) / "tiny-qwen3")
        log_file = tempfile.NamedTemporaryFile("w", prefix="service-load-hf-", suffix=".log", delete=False)
        service, url = start_service(["--backend", "hf", "--model", str(model), "--max-new-tokens", str(REAL_NEW_TOKENS),
                                      "--batch-size", "16", "--max-concurrent-requests", "16", "--max-queue", "64"], log_file)
        try:
            asyncio.run(run_level(url, 4, 2.0, args.behaviours, start=10**8))  # warm-up
            parts: dict[int, list[dict]] = {1: [], 16: []}
            slices = max(1, args.real_slices)
            for k in range(slices):  # interleaved: 1, 16, 1, 16, ... (see --real-slices)
                for i, c in enumerate((1, 16)):
                    parts[c].append(asyncio.run(run_level(url, c, args.real_seconds / slices, args.behaviours, start=(10 + 2 * k + i) * 10**6)))
            rows = [merge_levels(parts[c]) for c in (1, 16)]
        finally:
            service.terminate()
            service.wait(20)
    print(f"real model: tiny Qwen3 in-process (--backend hf, CPU), {REAL_NEW_TOKENS} new tokens, {args.behaviours} behaviours per request, "
          f"{args.real_seconds:g} s per level in {max(1, args.real_slices)} alternating slices, load average {os.getloadavg()[0]:.1f} at the end")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['requests']:>9} {r['rps']:>8.2f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}   {r['statuses']}")
    ratio = rows[1]["rps"] / rows[0]["rps"]
    verdict = "met" if ratio >= REAL_TARGET_RATIO else "NOT met"
    print(f"real-model throughput ratio concurrency 16 vs 1: {ratio:.1f}x (target >= {REAL_TARGET_RATIO:.0f} times: {verdict})")


if __name__ == "__main__":
    main()
