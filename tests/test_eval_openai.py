"""The evaluation entry points over HTTP (openai backend against the local fault-injecting
server): failed items are reported and left for the next run, nothing computed is lost."""
import json

from alignxplore.eval import evaluate, generate
from alignxplore.formats import load_jsonl
from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer, mixed_faults


def bench_with_poisoned_user(tmp_path, bench_dir):
    """AlignX fixture where user 1's items carry the marker the fake server always fails on."""
    rows = load_jsonl(bench_dir / "alignx_upi.jsonl")
    rows[1]["history"][0]["chosen"] += f" {ALWAYS_FAIL_MARKER}"
    rows[1]["target"]["chosen"] += f" {ALWAYS_FAIL_MARKER}"
    data = tmp_path / "data"
    data.mkdir()
    (data / "alignx_upi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data, rows


def http_args(server, prefix=""):
    return [f"--{prefix}base-url", server.base_url, f"--{prefix}concurrency", "4", f"--{prefix}timeout", "2", f"--{prefix}max-retries", "2"]


def test_generation_failures_are_retried_by_the_next_run(tmp_path, bench_dir):
    data, rows = bench_with_poisoned_user(tmp_path, bench_dir)
    out = tmp_path / "out"
    argv = ["--mode", "streaming", "--backend", "openai", "--model", "policy", "--data-dir", str(data), "--out-dir", str(out), "--benchmarks", "alignx"]
    with FakeOpenAIServer(fault_plan=mixed_faults, hang_seconds=5) as server:
        assert generate.main(argv + http_args(server)) == 3  # one user failed
    done = load_jsonl(out / "streaming" / "alignx.jsonl")
    assert [r["userid"] for r in done] == ["alignx-u0", "alignx-u2"]
    # the server recovers; the rerun generates only the missing user and keeps the rest
    fixed = [dict(r) for r in rows]
    (data / "alignx_upi.jsonl").write_text("".join(json.dumps(r).replace(f" {ALWAYS_FAIL_MARKER}", "") + "\n" for r in fixed))
    with FakeOpenAIServer() as server:
        assert generate.main(argv + http_args(server)) == 0
        assert server.requests == 2  # two passes for the one missing user
    again = load_jsonl(out / "streaming" / "alignx.jsonl")
    assert sorted(r["userid"] for r in again) == ["alignx-u0", "alignx-u1", "alignx-u2"]
    assert again[:2] == done


def test_judge_failures_are_counted_and_retried(tmp_path, bench_dir):
    data, _ = bench_with_poisoned_user(tmp_path, bench_dir)
    res = tmp_path / "res"
    argv = ["--judge-backend", "openai", "--judge-model", "judge", "--data-dir", str(data), "--results-dir", str(res),
            "--modes", "direct", "--benchmarks", "alignx", "--run-name", "r"]
    with FakeOpenAIServer(fault_plan=mixed_faults, hang_seconds=5) as server:
        assert evaluate.main(argv + http_args(server, "judge-")) == 0
    first = json.loads((res / "r" / "direct" / "alignx.json").read_text())
    assert first["metrics"]["n_scored"] == 2 and first["metrics"]["n_failed"] == 1
    failed = [i for i in first["items"] if "error" in i]
    assert failed[0]["userid"] == "alignx-u1" and "HTTP 500" in failed[0]["error"]
    with FakeOpenAIServer() as server:
        # the marker is still in the data, so the retry fails again; but only that item is sent
        assert evaluate.main(argv + http_args(server, "judge-")) == 0
        assert server.requests == 3  # 1 item x (1 + 2 retries)
    second = json.loads((res / "r" / "direct" / "alignx.json").read_text())
    scored = {i["userid"]: i["p_a"] for i in second["items"] if "error" not in i}
    assert scored == {i["userid"]: i["p_a"] for i in first["items"] if "error" not in i}
