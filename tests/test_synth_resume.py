"""Kill-and-resume: a synthesis run killed (SIGKILL) mid-stage and restarted with the same
command writes exactly the files of an uninterrupted run: no duplicates, no loss.

The kill is triggered by the scripted server itself, at a known point: the first teacher
request of the third chunk of users (chunks of 2), i.e. after two chunks were appended and
fsynced and while the third is in flight. A torn last line (death mid-write) is added too.
The judge is the sampled one here: the teacher-forced read-out needs the Qwen3 tokenizer for
its letter ids, whose load would dominate the two short-lived CLI processes."""
import os
import signal
import subprocess
import sys

from alignxplore.backends.openai import OpenAIBackend
from alignxplore.data.synth import run as synth
from alignxplore.data.synth.stage import SynthConfig
from alignxplore.formats import read_jsonl
from alignxplore.testing.scripted_openai import ScriptedOpenAIServer


def cli(server, users, work):
    cmd = [sys.executable, "-m", "alignxplore.data.synth", "stage1", "--users", str(users), "--work-dir", str(work),
           "--chunk-size", "2", "--judge-mode", "sampled", "--backend", "openai", "--model", "teacher", "--base-url", server.base_url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))


def finish(server, work):
    """Stage 2 and postprocess in-process (same code path as the CLI)."""
    rows, source = synth.load_stage_input(2, None, work)
    backend = OpenAIBackend("teacher", base_url=server.base_url, progress=False)
    synth.run_stage(2, rows, backend, SynthConfig(judge_mode="sampled"), work, chunk_size=2, source=source)
    synth.main(["postprocess", "--work-dir", str(work)])


def test_killed_run_resumes_to_identical_output(tmp_path, fixtures_dir):
    users = fixtures_dir / "synth_users.jsonl"
    ref, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    victim: dict = {}

    def kill_at_third_chunk(kind, messages):
        # input order: alice bob | carol dave | erin frank | ...: frank is in the third chunk
        if kind == "teacher" and "frank item" in messages[-1]["content"] and "proc" in victim and not victim.get("done"):
            victim["done"] = True
            os.kill(victim["proc"].pid, signal.SIGKILL)

    with ScriptedOpenAIServer(on_request=kill_at_third_chunk) as server:
        rows, source = synth.load_stage_input(1, str(users), ref)
        backend = OpenAIBackend("teacher", base_url=server.base_url, progress=False)
        synth.run_stage(1, rows, backend, SynthConfig(judge_mode="sampled"), ref, chunk_size=2, source=source)
        finish(server, ref)

        victim["proc"] = cli(server, users, killed)
        _, err = victim["proc"].communicate(timeout=300)
        assert victim["proc"].returncode == -signal.SIGKILL, err[-2000:]
        done = [r["uid"] for r in read_jsonl(killed / "stage1.jsonl")]
        assert done == ["alice", "bob", "carol", "dave"]  # two chunks on disk, the third lost in flight
        with (killed / "stage1.jsonl").open("a") as fh:
            fh.write('{"uid": "erin", "index": 4, "sta')  # a record torn by the kill

        resumed = cli(server, users, killed)
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err[-2000:]
        assert "4 of 11 users already done, resuming" in err
        finish(server, killed)

    for name in ("stage1.jsonl", "stage2.jsonl", "sft.jsonl"):
        assert (killed / name).read_bytes() == (ref / name).read_bytes(), name
    uids = [r["uid"] for r in read_jsonl(killed / "stage1.jsonl")]
    assert len(uids) == len(set(uids)) == 11
    assert len(read_jsonl(killed / "sft.jsonl")) == 8  # alice, grace (answers without </think> kept), ivan, judy: two rows each
