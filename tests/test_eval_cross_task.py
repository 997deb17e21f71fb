"""Cross-task transfer: the userid join (users on one side counted, not dropped silently),
the registry, the published rows, and the mode end to end on the tiny Qwen3 (summaries from
one task's history, judged on the other task's target) over the synthetic paired set."""
import json
from pathlib import Path

import pytest

from alignxplore.demo import pairs as synthetic_pairs
from alignxplore.eval import cross_task, evaluate, generate
from alignxplore.eval.paper_results import CROSS_TASK_COLUMNS
from alignxplore.eval.registry import load_benchmark_rows, load_registry
from alignxplore.formats import DataError

ROOT = Path(__file__).resolve().parents[1]


def rows(tag, ids):
    return [{"userid": u, "history": [{"query": "q", "chosen": f"{tag}-{u}-h", "rejected": "r"}],
             "target": {"query": "t", "chosen": f"{tag}-{u}-t", "rejected": "x"}} for u in ids]


def test_join_takes_history_from_one_side_target_from_the_other_and_counts_the_rest():
    joined, report = cross_task.join_users(rows("rs", ["a", "b", "c"]), rows("rec", ["d", "c", "a"]))
    assert [r["userid"] for r in joined] == ["c", "a"]  # target file order
    assert joined[0]["history"][0]["chosen"] == "rs-c-h" and joined[0]["target"]["chosen"] == "rec-c-t"
    assert (report["joined"], report["only_in_history_file"], report["only_in_target_file"]) == (2, 1, 1)
    assert report["only_in_history_file_ids"] == ["b"] and report["only_in_target_file_ids"] == ["d"]


def test_join_files_reports_and_refuses_no_overlap(tmp_path, caplog):
    for name, tag, ids in (("h.jsonl", "rs", ["a", "b"]), ("t.jsonl", "rec", ["b", "z"]), ("none.jsonl", "rec", ["y"])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows(tag, ids)))
    report = cross_task.join_files(tmp_path / "h.jsonl", tmp_path / "t.jsonl", tmp_path / "j_upi.jsonl")
    assert json.loads((tmp_path / "j_upi.join.json").read_text()) == report and report["joined"] == 1
    assert "1 only in the history file, 1 only in the target file" in caplog.text  # not silent
    assert [r["userid"] for r in load_benchmark_rows(tmp_path / "j_upi.jsonl")] == ["b"]
    with pytest.raises(DataError, match="no user in common"):
        cross_task.join_files(tmp_path / "h.jsonl", tmp_path / "none.jsonl", tmp_path / "k.jsonl")


def test_registry_and_published_rows():
    reg = load_registry(ROOT / "eval" / "benchmarks_cross_task.yaml")
    assert [(b.name, b.column, b.task, b.split) for b in reg] == [
        ("rs_to_rec", "R.S. → Rec.", "recommendation", "half"), ("rec_to_rs", "Rec. → R.S.", "response_selection", "half")]
    md = cross_task.render_table({"mine": {"R.S. → Rec.": 60.0}})
    assert "| AlignXplore+ | paper | 74.90 | 51.10 | 63.00 |" in md and "| TALLRec | paper | 49.90 | 49.80 | 49.85 |" in md
    assert "| mine | ours | 60.00 | – | 60.00 (1/2) |" in md


def test_cross_task_end_to_end_on_the_tiny_model(tmp_path, tiny_model_dir):
    world = tmp_path / "world"
    reports = synthetic_pairs.write_paired_world(world, 3)
    assert {k: (r["joined"], r["only_in_history_file"], r["only_in_target_file"]) for k, r in reports.items()} == {
        "rs_to_rec": (3, 1, 1), "rec_to_rs": (3, 1, 1)}
    assert [(b.name, b.column) for b in load_registry(world / "benchmarks.yaml")] == [
        (b.name, b.column) for b in load_registry(ROOT / "eval" / "benchmarks_cross_task.yaml")]
    common = ["--data-dir", str(world), "--registry", str(world / "benchmarks.yaml")]
    out = tmp_path / "summaries" / "tiny"
    assert generate.main(["--mode", "full", "--model", tiny_model_dir, "--out-dir", str(out), "--max-new-tokens", "4",
                          "--batch-size", "4", *common]) == 0
    summary = [json.loads(line) for line in (out / "full" / "rs_to_rec.jsonl").read_text().splitlines()]
    prompt = summary[0]["raw_prompt"][1]["content"]
    assert prompt.count("=====Triple ") == 6 and "Here is a" in prompt  # the whole selection history summarised
    assert summary[0]["target"]["query"] == "Please recommend something to me."  # ... for a recommendation target
    res = tmp_path / "results"
    assert evaluate.main(["--judge-model", tiny_model_dir, "--summaries-dir", str(out), "--results-dir", str(res), "--modes", "full",
                          "--judge-batch-size", "4", "--judge-max-new-tokens", "4", *common]) == 0
    for name, column in (("rs_to_rec", "R.S. → Rec."), ("rec_to_rs", "Rec. → R.S.")):
        r = json.loads((res / "tiny" / "full" / f"{name}.json").read_text())
        assert r["column"] == column and r["accounting"]["n_benchmark_users"] == r["accounting"]["n_judged"] == 3
    ours = cross_task.our_cross_task_rows(res)
    assert set(ours) == {"tiny"} and set(ours["tiny"]) == set(CROSS_TASK_COLUMNS)
    assert cross_task.main(["table", "--results-dir", str(res), "--out", str(tmp_path / "ct.md")]) == 0
    assert "| tiny | ours |" in (tmp_path / "ct.md").read_text()
