"""verl/merge.sh's helper: a missing checkpoint is one readable line, not a traceback.
(The merge itself runs in the CPU end-to-end test, on a real checkpoint.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alignxplore.formats import DataError
from alignxplore.rl.merge import actor_dir

REPO = Path(__file__).resolve().parents[1]


def test_latest_step_is_resolved_through_verls_tracker(tmp_path):
    (tmp_path / "global_step_2" / "actor").mkdir(parents=True)
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("2\n")
    assert actor_dir(tmp_path, "latest") == tmp_path / "global_step_2" / "actor"
    with pytest.raises(DataError, match="no such actor checkpoint"):
        actor_dir(tmp_path, "3")


def test_no_checkpoint_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "alignxplore.rl.merge", "--ckpt-dir", str(tmp_path), "--out", str(tmp_path / "hf")],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no latest_checkpointed_iteration.txt: no checkpoint saved yet (trainer.save_freq)"]
