"""`make demo` at a smaller size: every stage through its real entry point (SFT, verl streaming
GRPO on CPU, summaries in both modes, the embedding judge, the table), then the sanity rows.

The sanity rows check the judge and the A/B bookkeeping, not the policy: the teacher's true
preference must win (>= 90%), an empty summary must be chance, another user's preference
must lose (< 50%). The held-out users come in mirrored pairs, so the empty row is at 50% for
any number of users; the world and the judge are seeded, so the rows are the same every run.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the whole pipeline, RL included: ~5 min on an idle 2-core box
def test_demo_pipeline_runs_every_stage_and_the_sanity_rows_hold(tmp_path):
    out = tmp_path / "demo"
    # 2 RL users in batches of 2: each RL step needs another pass over the data (verl stops when its
    # data ends, so the demo must ask for enough epochs, or no checkpoint is saved for the merge)
    cmd = [sys.executable, "-m", "alignxplore.demo", "--out", str(out), "--sft-users", "32", "--rl-users", "2",
           "--test-users", "32", "--history-len", "9", "--sft-steps", "5", "--rl-steps", "2", "--rl-batch", "2", "--rl-n", "2",
           "--max-new-tokens", "24", "--cross-task-users", "8"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    # every stage ran, once
    stages = {p.stem for p in (out / ".stages").glob("*.json")}
    for name in ("world", "sft-train", "rl-train", "rl-merge", "generate-rl-streaming", "evaluate-rl", "table"):
        assert name in stages
    # real verl GRPO steps of both stages, with their rewards and the coupling
    assert "streaming/stage1/score_mean" in log and "streaming/stage2/score_mean" in log
    assert "streaming/coupling/bonus_term_mean" in log
    # every row of the table was measured, in both modes for the policies
    table = (out / "results" / "table.md").read_text()
    for row in ("teacher", "other_user", "empty", "direct", "policy-untrained", "policy-sft", "policy-rl"):
        assert row in table
    for policy in ("untrained", "sft", "rl"):
        for mode in ("full", "streaming"):
            for bench in ("synth_rec", "synth_sel"):
                metrics = json.loads((out / "results" / f"policy-{policy}" / mode / f"{bench}.json").read_text())["metrics"]
                assert metrics["n_items"] == 32
    assert (out / "results.png").stat().st_size > 0
    # the policy has the world-sized vocabulary, in every stage's model folder
    from transformers import AutoConfig

    for model in (out / "base", out / "sft" / "run" / "final", out / "rl" / "final"):
        assert AutoConfig.from_pretrained(model).vocab_size < 2000
    # the learning curves: SFT losses and one point per RL step for both stages' reward and format pass
    curves = json.loads((out / "learning.json").read_text())
    assert len(curves["sft_loss"]) >= 1
    for key in ("stage1/reward", "stage2/reward", "stage1/format_pass", "stage2/format_pass"):
        assert [step for step, _ in curves[key]] == [1, 2], key
        assert all(0.0 <= v <= 1.0 for _, v in curves[key])
    assert (out / "learning.png").stat().st_size > 0
    # cross-task transfer: both directions judged for every paired user (one user on each side only is
    # counted out by the join), the table printed, and the paper's figures drawn from the demo's results
    for row in ("teacher", "empty", "policy-rl"):
        for bench in ("rs_to_rec", "rec_to_rs"):
            metrics = json.loads((out / "cross_task" / "results" / row / "full" / f"{bench}.json").read_text())["metrics"]
            assert metrics["n_items"] == 8, (row, bench)
    assert "cross-task transfer" in log and "policy-rl" in (out / "cross_task" / "table.md").read_text()
    for fig in ("main_results", "model_transfer", "task_transfer", "pipeline"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0, fig
    assert "sanity rows" in log and "OUT OF RANGE" not in log

    # a rerun reuses every finished stage
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "=== " not in again.stdout
