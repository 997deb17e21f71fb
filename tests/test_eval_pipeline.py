"""Summary generation -> judge evaluation -> table, end to end on the tiny model and the
3-user fixture benchmarks (one per task kind: recommendation, selection, generation)."""
import json
import shutil

import pytest

from alignxplore.eval import evaluate, generate, table
from alignxplore.eval.paper_results import PAPER_COLUMNS
from alignxplore.formats import read_jsonl, validate_summary_row
from alignxplore.prompts import NO_PAST_SUMMARY_QUOTED

KINDS = "mind,alignx,hicupid"


def run_generate(tiny_model_dir, bench_dir, out, mode, *extra):
    argv = ["--mode", mode, "--model", tiny_model_dir, "--data-dir", str(bench_dir), "--out-dir", str(out),
            "--benchmarks", KINDS, "--max-new-tokens", "12", "--batch-size", "4", *extra]
    return generate.main(argv)


@pytest.fixture(scope="module")
def summaries(tmp_path_factory, tiny_model_dir, bench_dir):
    out = tmp_path_factory.mktemp("summaries") / "tiny-run"
    for mode in ("full", "streaming"):
        assert run_generate(tiny_model_dir, bench_dir, out, mode) == 0
    return out


def test_full_history_summaries(summaries, bench_dir):
    rows = read_jsonl(summaries / "full" / "mind.jsonl", validate_summary_row)
    bench = read_jsonl(bench_dir / "mind_upi.jsonl")
    assert [r["userid"] for r in rows] == [b["userid"] for b in bench]
    for r, b in zip(rows, bench):
        user = r["raw_prompt"][1]["content"]
        assert f"\n\n{NO_PAST_SUMMARY_QUOTED}\n\n" in user  # full mode: the quoted past slot
        assert user.count("=====Triple ") == 4  # 2*floor(7/3) behaviours for a recommendation set
        assert r["history"] == b["history"] and r["target"] == b["target"]
        assert isinstance(r["first_response"], str) and r["profile"] == r["first_response"].split("</think>")[-1].strip()


def test_streaming_summaries_feed_pass_one_into_pass_two(summaries):
    for name, n1, n2 in (("mind", 2, 2), ("alignx", 2, 2), ("hicupid", 2, 2)):
        for r in read_jsonl(summaries / "streaming" / f"{name}.jsonl", validate_summary_row):
            assert r["raw_prompt"][1]["content"].count("=====Triple ") == n1
            nxt = r["raw_prompt_next"][1]["content"]
            assert nxt.count("=====Triple ") == n2
            past = r["last_profile"]  # an empty pass-1 summary stays empty
            assert f"=====Past Preference Summary=====\n\n{past}\n\n=====Interaction History" in nxt
            assert r["profile"] == r["second_response"].split("</think>")[-1].strip()


def test_generation_resumes_without_duplicates(tmp_path, tiny_model_dir, bench_dir, summaries):
    out = tmp_path / "run"
    (out / "full").mkdir(parents=True)
    done = (summaries / "full" / "alignx.jsonl").read_text().splitlines()
    # as if killed while writing the second record
    (out / "full" / "alignx.jsonl").write_text(done[0] + "\n" + done[1][:50])
    assert run_generate(tiny_model_dir, bench_dir, out, "full", "--benchmarks", "alignx", "--chunk-size", "1") == 0
    rows = read_jsonl(out / "full" / "alignx.jsonl", validate_summary_row)
    assert [r["userid"] for r in rows] == ["alignx-u0", "alignx-u1", "alignx-u2"]
    assert json.loads(done[0]) == rows[0]  # the finished record was kept, not regenerated


def test_history_over_budget_is_cut_to_recent_half(tmp_path, tiny_model_dir, bench_dir, hf_backend):
    out = tmp_path / "run"
    # AlignX prompts render to 526 tokens with 4 behaviours, 384 with the last 2: 400 forces one halving
    assert run_generate(tiny_model_dir, bench_dir, out, "full", "--benchmarks", "alignx", "--prompt-budget", "400") == 0
    for r in read_jsonl(out / "full" / "alignx.jsonl"):
        assert r["history_dropped"] == 2
        assert "variant 2." in r["raw_prompt"][1]["content"] and "variant 0." not in r["raw_prompt"][1]["content"]
        assert hf_backend.count_prompt_tokens(r["raw_prompt"]) < 400


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_model_dir, bench_dir, summaries):
    res = tmp_path_factory.mktemp("results")
    argv = ["--judge-model", tiny_model_dir, "--data-dir", str(bench_dir), "--summaries-dir", str(summaries),
            "--results-dir", str(res), "--benchmarks", KINDS, "--judge-batch-size", "4",
            "--direct-selection-max-new-tokens", "24"]  # the authors' 4,096 would make the random tiny judge write 4,096 tokens
    assert evaluate.main(argv) == 0
    return res


def test_results_json_has_metrics_items_and_provenance(results):
    r = json.loads((results / "tiny-run" / "streaming" / "mind.json").read_text())
    m = r["metrics"]
    assert m["n_items"] == m["n_scored"] == 3 and m["n_failed"] == 0
    items = r["items"]
    assert m["accuracy"] == pytest.approx(100 * sum(i["correct"] for i in items) / 3)
    assert m["mean_confidence"] == pytest.approx(100 * sum(i["confidence"] for i in items) / 3)
    assert "roc_auc" in m  # recommendation set
    for i in items:
        assert i["p_a"] + i["p_b"] == pytest.approx(1.0)
        assert i["confidence"] == (i["p_a"] if i["chosen_is_a"] else i["p_b"])
    assert r["protocol"]["name"] == "sampled" and r["protocol"]["settings"] == {"temperature": 0.6, "top_k": 20, "top_p": 0.95, "max_new_tokens": 16, "seed": 42}
    # the random tiny judge never writes the JSON answer: all judged, all unparseable, all wrong
    assert m["n_unparseable"] == 3 and m["accuracy"] == 0.0
    assert m["argmax_accuracy"] == pytest.approx(100 * sum(i["argmax_correct"] for i in items) / 3)
    assert m["expected_accuracy"] == pytest.approx(100 * sum(i["expected_correct"] for i in items) / 3)
    assert {"authors_confidence", "authors_roc_auc", "expected_accuracy_se", "sampled_accuracy_sd"} <= set(m)
    assert r["accounting"] == {"n_benchmark_users": 3, "n_judged": 3, "n_failed": 0, "n_skipped": 0, "skipped_by_reason": {}, "skipped": {}}
    cfg = r["config"]
    assert cfg["placement_seed"] == 42 and cfg["judge_backend"] == "hf"
    assert cfg["versions"]["transformers"] and cfg["versions"]["torch"] and "git_commit" in cfg
    alignx = json.loads((results / "tiny-run" / "full" / "alignx.json").read_text())
    assert "roc_auc" not in alignx["metrics"]


def test_direct_baseline_and_same_placement_across_modes(results):
    direct = json.loads((results / "tiny-run" / "direct" / "hicupid.json").read_text())
    full = json.loads((results / "tiny-run" / "full" / "hicupid.json").read_text())
    assert direct["label"].endswith("(direct)") and direct["metrics"]["n_scored"] == 3
    assert [i["chosen_is_a"] for i in direct["items"]] == [i["chosen_is_a"] for i in full["items"]]


def test_direct_selection_baseline_gets_its_own_answer_budget(results):
    """The authors' evaluate_direct_select.py samples 4,096 new tokens; their direct
    recommendation baseline and every summary judge 16. Recorded per result and per item."""
    assert evaluate.build_parser().parse_args(["--data-dir", "d", "--results-dir", "r", "--judge-model", "j"]).direct_selection_max_new_tokens == 4096
    budget = {(m, b): json.loads((results / "tiny-run" / m / f"{b}.json").read_text())["protocol"]["settings"]["max_new_tokens"]
              for m in ("direct", "full") for b in ("mind", "alignx", "hicupid")}
    assert budget == {("direct", "mind"): 16, ("direct", "alignx"): 24, ("direct", "hicupid"): 24,
                      ("full", "mind"): 16, ("full", "alignx"): 16, ("full", "hicupid"): 16}
    items = json.loads((results / "tiny-run" / "direct" / "alignx.json").read_text())["items"]
    assert {i["max_new_tokens"] for i in items} == {24}
    # the random tiny judge never stops early: its answers really are longer than 16 tokens would allow
    assert max(len(i["answer"]) for i in items) > max(len(i["answer"]) for i in json.loads((results / "tiny-run" / "full" / "alignx.json").read_text())["items"])


def test_evaluation_resume_judges_only_missing_items(results, tiny_model_dir, bench_dir, summaries, tmp_path):
    res = tmp_path / "res"
    shutil.copytree(results, res)
    items_file = res / "tiny-run" / "full" / "mind.items.jsonl"
    lines = items_file.read_text().splitlines()
    items_file.write_text(lines[0] + "\n")  # two items "lost"
    before = json.loads((results / "tiny-run" / "full" / "mind.json").read_text())
    argv = ["--judge-model", tiny_model_dir, "--data-dir", str(bench_dir), "--summaries-dir", str(summaries),
            "--results-dir", str(res), "--benchmarks", "mind", "--modes", "full"]
    assert evaluate.main(argv) == 0
    after = json.loads((res / "tiny-run" / "full" / "mind.json").read_text())
    assert len(items_file.read_text().splitlines()) == 3
    assert [i["userid"] for i in after["items"]] == [i["userid"] for i in before["items"]]
    for a, b in zip(after["items"], before["items"]):
        assert a["p_a"] == pytest.approx(b["p_a"], abs=1e-6)


def test_table_renders_ours_beside_paper(results, tmp_path):
    assert table.main(["--results-dir", str(results), "--out", str(tmp_path / "t"), "--figure", str(tmp_path / "f.png")]) == 0
    md = (tmp_path / "t.md").read_text()
    assert "| tiny-run | ours |" in md and "| AlignXplore+ | paper | 71.36 |" in md
    assert "(3/9)" in md  # our runs cover 3 of 9 benchmarks here
    assert "sampled answer as published" in md
    assert md.count("†") == 3  # two flagged rows + the footnote
    assert "66.07† (mean 67.86)" in md and "72.93† (mean 71.38)" in md
    assert "<table>" in (tmp_path / "t.html").read_text()
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_paper_rows_recomputed_averages():
    rows = table.paper_rows()
    flagged = sorted((r.section, r.label) for r in rows if r.avg_mismatch)
    assert flagged == [("full", "AlignXplore"), ("streaming", "DeepSeek-R1-671B")]
    assert all(len(r.values) == len(PAPER_COLUMNS) for r in rows)


def test_table_metric_flag_picks_another_figure(results, tmp_path):
    assert table.main(["--results-dir", str(results), "--out", str(tmp_path / "t"), "--metric", "expected_accuracy", "--no-paper"]) == 0
    md = (tmp_path / "t.md").read_text()
    assert md.startswith("# Main results: expected_accuracy (%)")
    r = json.loads((results / "tiny-run" / "full" / "mind.json").read_text())
    assert f"{r['metrics']['expected_accuracy']:.2f}" in md
