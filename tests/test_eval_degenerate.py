"""Users the authors kept, end to end: a one-behaviour user, a two-behaviour recommendation
user and a user whose history alone is over the budget (tests/fixtures/benchmarks_degenerate,
run with a 1,500-token budget). Generation and evaluation finish in both modes and every
user is accounted for: summarised and judged, or skipped with a reason."""
import json

import pytest

from alignxplore.eval import evaluate, generate
from alignxplore.formats import read_jsonl
from alignxplore.judge import ab_placement

pytestmark = pytest.mark.slow
BUDGET = "1500"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, fixtures_dir):
    data = fixtures_dir / "benchmarks_degenerate"
    out = tmp_path_factory.mktemp("degenerate") / "tiny"
    for mode in ("full", "streaming"):
        argv = ["--mode", mode, "--model", tiny_model_dir, "--data-dir", str(data), "--out-dir", str(out), "--benchmarks", "mind,alignx",
                "--max-new-tokens", "4", "--batch-size", "4", "--prompt-budget", BUDGET]
        assert generate.main(argv) == 0
    res = out.parent / "results"
    argv = ["--judge-model", tiny_model_dir, "--data-dir", str(data), "--summaries-dir", str(out), "--results-dir", str(res),
            "--benchmarks", "mind,alignx", "--judge-batch-size", "4", "--judge-max-new-tokens", "4", "--judge-prompt-budget", BUDGET,
            "--direct-selection-max-new-tokens", "4"]
    assert evaluate.main(argv) == 0
    return out, res / "tiny"


def summaries(out, mode, name):
    return {r["userid"]: r for r in read_jsonl(out / mode / f"{name}.jsonl")}


def test_full_mode_keeps_every_user_even_with_zero_triples(run):
    out, _ = run
    mind = summaries(out, "full", "mind")
    assert list(mind) == ["mind-one", "mind-two", "mind-normal", "mind-long"]
    assert {u: r["n_triples"] for u, r in mind.items()} == {"mind-one": 0, "mind-two": 0, "mind-normal": 4, "mind-long": 0}
    assert mind["mind-long"]["history"] == [] and mind["mind-long"]["history_dropped"] == 2
    assert "=====Interaction History=====\n\n\n=====END=====" in mind["mind-one"]["raw_prompt"][1]["content"]  # zero triples rendered
    alignx = summaries(out, "full", "alignx")
    assert {u: r["n_triples"] for u, r in alignx.items()} == {"alignx-one": 1, "alignx-normal": 4, "alignx-long": 0}
    stats = json.loads((out / "full" / "mind.stats.json").read_text())
    assert stats == {"n_users": 4, "n_summarised": 4, "n_skipped": 0, "skipped_by_reason": {}, "n_missing": 0, "n_truncated": 1, "n_zero_triple_pass": 3}


def test_streaming_skips_only_empty_histories(run):
    out, _ = run
    mind = summaries(out, "streaming", "mind")
    assert list(mind) == ["mind-one", "mind-two", "mind-normal"]
    assert mind["mind-two"]["n_triples"] == [0, 0] and mind["mind-normal"]["n_triples"] == [2, 2]
    skipped = read_jsonl(out / "streaming" / "mind.skipped.jsonl")
    assert [(s["userid"], s["reason"]) for s in skipped] == [("mind-long", "empty history after truncation")]
    stats = json.loads((out / "streaming" / "mind.stats.json").read_text())
    assert stats["n_users"] == 4 and stats["n_summarised"] == 3 and stats["n_skipped"] == 1 and stats["n_missing"] == 0
    # selection sets are not truncated in streaming: the over-budget user is summarised
    alignx = summaries(out, "streaming", "alignx")
    assert {u: r["n_triples"] for u, r in alignx.items()} == {"alignx-one": [0, 1], "alignx-normal": [2, 2], "alignx-long": [1, 1]}


def result(res, mode, name):
    return json.loads((res / mode / f"{name}.json").read_text())


@pytest.mark.parametrize("mode", ["direct", "full", "streaming"])
@pytest.mark.parametrize("name", ["mind", "alignx"])
def test_every_user_is_accounted_for(run, mode, name):
    _, res = run
    r = result(res, mode, name)
    acc = r["accounting"]
    assert acc["n_judged"] + acc["n_failed"] + acc["n_skipped"] == acc["n_benchmark_users"] == (4 if name == "mind" else 3)
    assert acc["n_failed"] == 0 and r["metrics"]["n_scored"] == acc["n_judged"]


def test_recommendation_sets_skip_empty_histories_without_drawing(run):
    _, res = run
    full = result(res, "full", "mind")
    assert full["accounting"]["skipped"] == {"mind-long": "empty history (recommendation set: not judged, no A/B draw)"}
    assert [i["userid"] for i in full["items"]] == ["mind-one", "mind-two", "mind-normal"]
    assert [i["chosen_is_a"] for i in full["items"]] == ab_placement(3)
    streaming = result(res, "streaming", "mind")
    assert streaming["accounting"]["skipped"] == {"mind-long": "empty history after truncation"}
    assert [i["chosen_is_a"] for i in streaming["items"]] == ab_placement(3)
    # direct: the judge prompt with the long behaviour as the A/B pair is over budget even alone
    direct = result(res, "direct", "mind")
    assert list(direct["accounting"]["skipped"]) == ["mind-long"]
    # a selection set judges everyone, the zero-triple user included
    assert result(res, "full", "alignx")["accounting"]["n_judged"] == 3
