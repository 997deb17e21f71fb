"""The three synthesis launchers (sft/synth_*.sh) run the pipeline end to end with their knobs
and pass extra flags through, against the scripted OpenAI-protocol server."""
import json
import os
import subprocess
import sys
from pathlib import Path

from alignxplore.formats import read_jsonl
from alignxplore.testing.scripted_openai import ScriptedOpenAIServer

ROOT = Path(__file__).resolve().parents[1]


def test_launchers_make_sft_rows(tmp_path, fixtures_dir):
    env = dict(os.environ, PYTHON=sys.executable, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               USERS=str(fixtures_dir / "synth_users.jsonl"), WORK_DIR=str(tmp_path), OUT=str(tmp_path / "sft" / "sft.jsonl"),
               BACKEND="openai", MODEL="teacher", CHUNK_SIZE="3")

    def launch(script, *extra, rc=0):
        proc = subprocess.run(["bash", str(ROOT / "sft" / script), *extra], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == rc, proc.stderr[-3000:]
        return proc

    with ScriptedOpenAIServer(fail_markers={"ivan"}) as server:
        env["BASE_URL"] = server.base_url
        # the sampled judge needs no tokenizer in these short-lived processes
        proc = launch("synth_stage1.sh", "--judge-mode", "sampled", "--max-retries", "0", rc=3)
        assert "1 user(s) failed over HTTP; rerun the same command to retry them" in proc.stderr
        server.fail_markers.clear()
        launch("synth_stage1.sh", "--judge-mode", "sampled")
        launch("synth_stage2.sh", "--judge-mode", "sampled", "--min-kept", "4")
    launch("synth_postprocess.sh")
    s1 = json.loads((tmp_path / "stage1.summary.json").read_text())
    s2 = json.loads((tmp_path / "stage2.summary.json").read_text())
    assert s1["config"]["judge_mode"] == "sampled" and s1["kept"] == 5
    # grace's two stage-2 answers without </think> are kept (the authors' rule): 4 confirmed
    assert s2["config"]["min_kept"] == 4 and s2["kept"] == 4 and s2["config"]["unclosed_think"] == "keep"
    assert len(read_jsonl(tmp_path / "sft" / "sft.jsonl")) == 8
