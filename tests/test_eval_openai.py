"""The evaluation entry points over HTTP (openai backend against the local fault-injecting
server): failed items are reported and left for the next run, nothing computed is lost."""
import json
import subprocess
import sys

import pytest

from alignxplore.eval import evaluate, generate
from alignxplore.formats import read_jsonl
from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer, mixed_faults


def bench_with_poisoned_user(tmp_path, bench_dir):
    """AlignX fixture where user 1's items carry the marker the fake server always fails on."""
    rows = read_jsonl(bench_dir / "alignx_upi.jsonl")
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
    done = read_jsonl(out / "streaming" / "alignx.jsonl")
    assert [r["userid"] for r in done] == ["alignx-u0", "alignx-u2"]
    # the server recovers; the rerun generates only the missing user and keeps the rest
    fixed = [dict(r) for r in rows]
    (data / "alignx_upi.jsonl").write_text("".join(json.dumps(r).replace(f" {ALWAYS_FAIL_MARKER}", "") + "\n" for r in fixed))
    with FakeOpenAIServer() as server:
        assert generate.main(argv + http_args(server)) == 0
        assert server.requests == 2  # two passes for the one missing user
    again = read_jsonl(out / "streaming" / "alignx.jsonl")
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
        assert server.requests == 3  # 1 item x (1 + 2 retries) of the read-out; a failed read-out sends no sample
    second = json.loads((res / "r" / "direct" / "alignx.json").read_text())
    scored = {i["userid"]: i["p_a"] for i in second["items"] if "error" not in i}
    assert scored == {i["userid"]: i["p_a"] for i in first["items"] if "error" not in i}


def test_sampled_protocol_end_to_end_hand_checked(tmp_path, bench_dir):
    """Through evaluate.main over HTTP: the unparseable answer is judged and wrong, the
    expected accuracy equals a hand computation on the server's known letter probabilities,
    and the same seed gives the same answers."""
    import math

    import pytest

    from alignxplore.judge import JudgeItem
    from alignxplore.prompts import direct_baseline_summary, with_answer_prefix
    from alignxplore.testing.fake_openai import UNPARSEABLE_MARKER, fake_p_a

    rows = read_jsonl(bench_dir / "alignx_upi.jsonl")
    rows[2]["target"]["query"] += f" {UNPARSEABLE_MARKER}"
    data = tmp_path / "data"
    data.mkdir()
    (data / "alignx_upi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = []
    for name in ("a", "b"):
        argv = ["--judge-backend", "openai", "--judge-model", "judge", "--data-dir", str(data), "--results-dir", str(tmp_path / name),
                "--modes", "direct", "--benchmarks", "alignx", "--run-name", "r"]
        with FakeOpenAIServer(fault_plan=mixed_faults, hang_seconds=5) as server:
            assert evaluate.main(argv + http_args(server, "judge-")) == 0
        runs.append(json.loads((tmp_path / name / "r" / "direct" / "alignx.json").read_text()))
    first, second = runs
    assert [i["answer"] for i in first["items"]] == [i["answer"] for i in second["items"]]
    m, items = first["metrics"], first["items"]
    assert m["n_scored"] == 3 and m["n_unparseable"] == 1 and items[2]["selection"] is None and items[2]["correct"] is False
    assert m["accuracy"] == pytest.approx(100 * sum(i["correct"] for i in items) / 3)  # the unparseable one stays in the denominator

    def by_hand(p_a, chosen_is_a):  # temperature 0.6, then top-p 0.95 over the two letters
        wa, wb = p_a ** (1 / 0.6), (1 - p_a) ** (1 / 0.6)
        qa = wa / (wa + wb)
        qa = 1.0 if 1 - qa <= 0.05 else 0.0 if qa <= 0.05 else qa
        return qa if chosen_is_a else 1 - qa

    q = []
    for row, it in zip(rows, items):
        t = row["target"]
        conv = JudgeItem(t["query"], direct_baseline_summary(row["history"], "selection"), t["chosen"], t["rejected"], it["chosen_is_a"]).messages()
        p_a = fake_p_a(with_answer_prefix(conv))
        assert it["p_a"] == pytest.approx(p_a, abs=1e-9)
        q.append(by_hand(p_a, it["chosen_is_a"]))
    assert m["expected_accuracy"] == pytest.approx(100 * sum(q) / 3, abs=1e-9)
    assert m["sampled_accuracy_sd"] == pytest.approx(100 * math.sqrt(sum(x * (1 - x) for x in q)) / 3, abs=1e-9)
    assert first["protocol"]["name"] == "sampled" and first["protocol"]["settings"]["temperature"] == 0.6


@pytest.mark.slow
def test_evaluation_sh_loads_the_judge_once(tmp_path, bench_dir):
    """The launcher judges every benchmark in every mode with one judge load (the authors
    reloaded it per file), then renders the table."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    summaries = tmp_path / "summaries" / "run"
    with FakeOpenAIServer() as server:
        for mode in ("full", "streaming"):
            argv = ["--mode", mode, "--backend", "openai", "--model", "policy", "--data-dir", str(bench_dir), "--out-dir", str(summaries),
                    "--benchmarks", "mind,alignx,hicupid"]
            assert generate.main(argv + http_args(server)) == 0
        env = dict(os.environ, PYTHON=sys.executable, JUDGE_BACKEND="openai", JUDGE_MODEL="judge", JUDGE_BASE_URL=server.base_url,
                   DATA_DIR=str(bench_dir), SUMMARIES_DIR=str(summaries), RESULTS_DIR=str(tmp_path / "results"),
                   BENCHMARKS="mind,alignx,hicupid", FIGURES_DIR=str(tmp_path / "figures"))
        proc = subprocess.run(["bash", str(repo / "eval" / "evaluation.sh")], capture_output=True, text=True, env=env, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("loading openai backend for judge") == 1
    results = sorted(p.relative_to(tmp_path / "results") for p in (tmp_path / "results").rglob("*.json"))
    assert [str(p) for p in results] == [f"run/{m}/{b}.json" for m in ("direct", "full", "streaming") for b in ("alignx", "hicupid", "mind")]
    assert "| run | ours |" in (tmp_path / "results" / "table.md").read_text()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["main_results.png", "model_transfer.png", "pipeline.png", "task_transfer.png"]


def test_generation_without_tokenize_needs_the_tokenizer_flag(tmp_path, bench_dir):
    """Summaries only generate, but the history budget counts tokens: against a server without
    ``/tokenize`` (SGLang, a hosted API) ``--tokenizer`` is needed, and its absence is one line
    naming the endpoint and the flag, not a traceback; with it, the summaries are written."""
    from alignxplore.demo.tiny import qwen3_tokenizer_dir

    out = tmp_path / "out"
    argv = ["--mode", "full", "--backend", "openai", "--model", "policy", "--data-dir", str(bench_dir), "--out-dir", str(out),
            "--benchmarks", "alignx"]
    with FakeOpenAIServer(serve_tokenize=False) as server:
        proc = subprocess.run([sys.executable, "-m", "alignxplore.eval.generate", *argv, *http_args(server)],
                              capture_output=True, text=True, timeout=300)
        errors = [line.split("error: ", 1)[1] for line in proc.stderr.splitlines() if "error: " in line]  # after tqdm's \r
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert len(errors) == 1 and "/tokenize answered HTTP 404" in errors[0] and "tokenizer" in errors[0], proc.stderr[-2000:]
        assert generate.main(argv + http_args(server) + ["--tokenizer", qwen3_tokenizer_dir()]) == 0
        assert server.tokenize_requests == 0
    assert len(read_jsonl(out / "full" / "alignx.jsonl")) == 3
