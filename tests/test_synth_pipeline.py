"""The whole SFT-synthesis pipeline for a handful of users against the scripted OpenAI-protocol
server (real HTTP, real retries): who passes each filter, what the stage-2 prompt carries,
HTTP failures retried by the next run, and the output preparing and training with the SFT
stage on the tiny Qwen3. What each fixture user (tests/fixtures/synth_users.jsonl) is built
to hit is written beside it in EXPECTED; the markers it uses are explained in
alignxplore/testing/scripted_openai.py."""
import json
import math
import os
import subprocess
import sys

import pytest

from alignxplore.backends.base import SamplingConfig
from alignxplore.backends.openai import OpenAIBackend
from alignxplore.data.synth import run as synth
from alignxplore.data.synth.stage import SynthConfig
from alignxplore.formats import DataError, read_jsonl, validate_sft_row
from alignxplore.prompts import sft_completion, streaming_messages
from alignxplore.testing.scripted_openai import ScriptedOpenAIServer

# user -> (stage-1 status/reason, stage-2 status/reason or None when not in stage 2)
EXPECTED = {
    "alice": ("kept", ("kept", None)),
    "bob": ("too_short", None),  # 8 behaviours: thirds of 2
    "carol": ("too_few_candidates", None),  # 3 targets with exp(logprob1) > 0.9
    "dave": ("too_few_confirmed", None),  # teacher misleads on 3 of 5 targets
    "erin": ("merge_malformed", None),  # stage-1 merge answer without |PreferenceSEP|
    "frank": ("rejudge_failed", None),  # merged summary right on 1 of 5
    "grace": ("kept", ("skipped", "too_few_confirmed")),  # stage 2: 2 teacher answers malformed, 1 misleads
    "heidi": ("no_scores", None),  # no logprob1 at all
    "ivan": ("kept", ("kept", None)),  # HTTP 500 on every attempt in the first run
    "judy": ("kept", ("kept", None)),  # 7 candidates, 5 sampled
    "ken": ("kept", ("skipped", "merge_malformed")),  # stage-2 merge malformed
}


def transient_500(key: str, attempt: int):
    """A third of all requests fail their first attempt (retried inside the run)."""
    return "500" if attempt == 0 and int(key[:8], 16) % 3 == 0 else None


def backend_args(server, *extra):
    return ["--backend", "openai", "--model", "teacher", "--base-url", server.base_url, "--max-retries", "2",
            "--timeout", "30", "--chunk-size", "4", *extra]


def run_stage(server, stage, work, users=None, **config):
    """One stage as `python -m alignxplore.data.synth stageN` runs it, with a fast retry back-off
    (the CLI's back-off starts at 0.5 s; the retry logic is the same)."""
    rows, source = synth.load_stage_input(stage, users, work)
    backend = OpenAIBackend("teacher", base_url=server.base_url, max_retries=2, backoff=0.01, progress=False)
    # The fixture users were built for our options (teacher-forced filtering judge, answers
    # without </think> dropped); the authors' defaults are tested in tests/test_synth_authors_rules.py.
    config = {"judge_mode": "forced", "unclosed_think": "drop"} | config
    return synth.run_stage(stage, rows, backend, SynthConfig(**config), work, chunk_size=4, source=source)


def records(path):
    return {r["uid"]: r for r in read_jsonl(path)}


@pytest.fixture(scope="module")
def run(tmp_path_factory, fixtures_dir):
    work = tmp_path_factory.mktemp("synth")
    users = str(fixtures_dir / "synth_users.jsonl")
    with ScriptedOpenAIServer(fault_plan=transient_500, fail_markers={"ivan"}) as server:
        first_summary = run_stage(server, 1, work, users)
        first_records = records(work / "stage1.jsonl")
        server.fail_markers.clear()
        n_calls = len(server.calls)
        second_summary = run_stage(server, 1, work, users)
        retried = [msgs for _, msgs in server.calls[n_calls:]]
        n_calls = len(server.calls)
        run_stage(server, 2, work)
        stage2_calls = server.calls[n_calls:]
        assert synth.main(["postprocess", "--work-dir", str(work)]) == 0
    return dict(work=work, first_summary=first_summary, first_records=first_records, second_summary=second_summary,
                retried=retried, stage2_calls=stage2_calls)


def test_http_failures_are_left_out_and_retried_by_the_next_run(run):
    assert run["first_summary"]["pending_retry"] == 1
    assert run["first_summary"]["this_run"]["failed_users"][0][0] == "ivan"
    assert "ivan" not in run["first_records"] and len(run["first_records"]) == 10
    assert run["second_summary"]["pending_retry"] == 0 and run["second_summary"]["this_run"]["done_before"] == 10
    # the second run only worked on the failed user
    assert run["retried"] and all("ivan" in m[-1]["content"] for m in run["retried"])


def test_each_filter_passes_the_right_users(run):
    s1, s2 = records(run["work"] / "stage1.jsonl"), records(run["work"] / "stage2.jsonl")
    for uid, (first, second) in EXPECTED.items():
        rec = s1[uid]
        assert (rec["status"] if rec["status"] == "kept" else rec["reason"]) == first, uid
        if second is None:
            assert uid not in s2, uid
        else:
            assert (s2[uid]["status"], s2[uid]["reason"]) == second, uid
    summary = json.loads((run["work"] / "stage1.summary.json").read_text())
    assert summary["users_in"] == 11 and summary["kept"] == 5 and summary["pending_retry"] == 0
    assert summary["skipped"] == {"too_short": 1, "no_scores": 1, "too_few_candidates": 1, "too_few_confirmed": 1,
                                  "merge_malformed": 1, "rejudge_failed": 1}
    summary2 = json.loads((run["work"] / "stage2.summary.json").read_text())
    assert (summary2["users_in"], summary2["kept"]) == (5, 3)
    assert summary2["candidates"]["teacher_malformed"] == 2  # grace's two answers without a think block


def test_targets_judging_and_merge_details(run):
    s1 = records(run["work"] / "stage1.jsonl")
    judy = s1["judy"]["candidates_1"]
    assert len(judy) == 5 and all(7 <= c["position"] + 7 < 14 for c in judy)  # 5 of the 7 second-third behaviours
    assert all(math.exp(b["logprob1"]) > 0.9 for b in s1["judy"]["thirds"][1])
    dave = s1["dave"]["candidates_1"]
    assert [c["judge"]["correct"] for c in dave] == [False, False, False, True, True]
    # the kept reasoning is the think block, the kept summary the text after it
    c = s1["alice"]["candidates_1"][0]
    assert c["reasoning"] == f"The user chose {c['target']['chosen']} over {c['target']['rejected']}."
    assert c["preference"] == f"The user likes {c['target']['chosen']}."
    assert s1["alice"]["preference_1"].startswith("The user likes alice item 5 (+); alice item 6 (+)")
    assert s1["frank"]["rejudge_1"] == [1, 5]
    # A/B order in the teacher prompt is a coin flip per target, seeded: both orders occur
    flips = [c["teacher_a_is_chosen"] for r in s1.values() for c in r.get("candidates_1", [])]
    assert 0 < sum(flips) < len(flips)


def test_stage2_prompt_carries_the_stage1_merged_summary(run):
    s1 = records(run["work"] / "stage1.jsonl")
    teacher = [m for kind, m in run["stage2_calls"] if kind == "teacher"]
    assert teacher
    for msgs in teacher:
        uid = msgs[1]["content"].split("*QUERY:*\n ")[1].split(" query")[0]
        past = s1[uid]["preference_1"]
        assert f'\n====Past Preference Summary=====\n"{past}"\n\n=====Interaction History=====\n' in msgs[1]["content"]
        # history = the second third, targets from the last third
        first, second, last = s1[uid]["thirds"]
        history = msgs[1]["content"].split("=====Target Triple=====")[0]
        assert all(b["chosen"] in history for b in second) and not any(b["chosen"] in history for b in first + last)


def test_sft_rows_are_the_sft_input_format(run):
    s2 = records(run["work"] / "stage2.jsonl")
    rows = read_jsonl(run["work"] / "sft.jsonl")
    assert len(rows) == 6  # alice, ivan, judy: two rows each, in input order
    for i, uid in enumerate(["alice", "ivan", "judy"]):
        rec, first, second = s2[uid], rows[2 * i], rows[2 * i + 1]
        for row in (first, second):
            validate_sft_row(row, "sft.jsonl")
            assert set(row) == {"prompt", "completion"}
        assert first["prompt"] == streaming_messages(rec["thirds"][0])
        assert second["prompt"] == streaming_messages(rec["thirds"][1], rec["preference_1"])
        assert first["completion"] == [{"role": "assistant", "content": sft_completion(rec["thinking_1"], rec["preference_1"])}]
        assert second["completion"][0]["content"] == f"<think>\n{rec['thinking_2']}\n</think>\n\n{rec['preference_2']}"
    assert json.loads((run["work"] / "postprocess.summary.json").read_text())["rows_out"] == 6


def test_unscored_users_take_every_behaviour_with_the_flag(tmp_path, fixtures_dir):
    """Through the CLI entry point (`python -m alignxplore.data.synth stage1 ...`)."""
    src = tmp_path / "users.jsonl"
    src.write_text("".join(line + "\n" for line in (fixtures_dir / "synth_users.jsonl").read_text().splitlines()
                           if '"heidi"' in line or '"alice"' in line))
    with ScriptedOpenAIServer() as server:
        assert synth.main(["stage1", "--users", str(src), "--work-dir", str(tmp_path / "w"), "--unscored-as-candidates",
                           *backend_args(server)]) == 0
    s1 = records(tmp_path / "w" / "stage1.jsonl")
    assert s1["heidi"]["status"] == "kept" and [c["position"] for c in s1["heidi"]["candidates_1"]] == [0, 1, 2, 3, 4]
    assert s1["alice"]["status"] == "kept"


def test_sampled_judge_mode_reproduces_the_authors_way(tmp_path, fixtures_dir):
    with ScriptedOpenAIServer() as server:
        run_stage(server, 1, tmp_path, str(fixtures_dir / "synth_users.jsonl"), judge_mode="sampled")
        sampled_judge_calls = sum(kind == "judge" for kind, _ in server.calls)
        readouts = server.judge_readouts
    s1 = records(tmp_path / "stage1.jsonl")
    assert sampled_judge_calls > 0 and readouts == 0  # the judge generated its answers
    assert {u for u, r in s1.items() if r["status"] == "kept"} == {"alice", "grace", "ivan", "judy", "ken"}
    verdict = s1["alice"]["candidates_1"][0]["judge"]
    assert verdict["answer"].startswith('{"selection": "Item ') and verdict["letter"] in "AB" and verdict["correct"]
    # frank's merged summary names one item: the 4 other re-judge answers are ties, written as an
    # unparseable sentence and counted as wrong (as the authors' parse did)
    assert json.loads((tmp_path / "stage1.summary.json").read_text())["this_run"]["rejudge_unparsed"] == 4


@pytest.mark.parametrize("line,message", [
    ('{"uid": "a", "behaviors": [{"query": "q", "chosen": "c"}]}', r"users.jsonl:2: behaviors\[0\].rejected: missing"),
    ('{"uid": "a", "behaviors": [{"item": {"query": "q", "chosen": "c", "rejected": "r"}, "logprob1": 0.5}]}',
     r"users.jsonl:2: behaviors\[0\].logprob1: expected a log-probability"),
    ('{"behaviors": []}', r"users.jsonl:2: uid: missing"),
    ('{"uid": "ok", "behaviors": []}', r"users.jsonl:2: uid: duplicate of .*users.jsonl:1"),
    ('{"uid": "a", "behaviors": [{"query"', r"users.jsonl:2: invalid JSON"),
])
def test_bad_user_rows_are_one_line_errors(tmp_path, line, message):
    src = tmp_path / "users.jsonl"
    src.write_text('{"uid": "ok", "behaviors": []}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        synth.load_stage_input(1, str(src), tmp_path)


def test_cli_reports_bad_input_in_one_line_before_loading_a_model(tmp_path):
    src = tmp_path / "users.jsonl"
    src.write_text('{"uid": "a", "history": [{"query": "q", "chosen": 3, "rejected": "r"}]}\n')
    proc = subprocess.run([sys.executable, "-m", "alignxplore.data.synth", "stage1", "--users", str(src), "--work-dir",
                           str(tmp_path / "w"), "--backend", "vllm", "--model", "not-loaded"],
                          capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {src}:1: history[0].chosen: expected a string, got int" in proc.stderr


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_output_prepares_and_trains_with_the_sft_stage(run, tmp_path, tiny_model_dir):
    """The SFT stage's own preparation (`prepare()`, what `python -m alignxplore.sft.prepare`
    runs) then `python -m alignxplore.sft.train` on the tiny Qwen3, as tests/test_sft.py does."""
    from alignxplore.sft.prepare import prepare

    prepared, out = tmp_path / "prepared", tmp_path / "out"
    summary = prepare(run["work"] / "sft.jsonl", tiny_model_dir, prepared, max_length=2048)
    assert summary["rows_read"] == summary["rows_kept"] == 6
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "alignxplore.sft.train", "--model_name_or_path", tiny_model_dir,
                           "--dataset_path", str(prepared), "--output_dir", str(out), "--per_device_train_batch_size", "2",
                           "--max_steps", "2", "--logging_steps", "1", "--save_steps", "2", "--report_to", "none",
                           "--learning_rate", "1e-3", "--dataloader_num_workers", "0", "--seed", "42"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)
    assert (out / "final").is_dir()


def test_offline_engine_path_on_the_tiny_model(tmp_path, fixtures_dir, hf_backend):
    """The same stage on the hf backend (the vLLM offline path's interface, no HTTP). The tiny
    model has random weights, so its answers have no think block: with our option
    ``unclosed_think="drop"`` every candidate is counted as a malformed teacher answer and the
    user is dropped before judging."""
    src = tmp_path / "users.jsonl"
    src.write_text((fixtures_dir / "synth_users.jsonl").read_text().splitlines()[0] + "\n")
    rows, source = synth.load_stage_input(1, str(src), tmp_path)
    config = SynthConfig(sampling=SamplingConfig(max_new_tokens=8), unclosed_think="drop")
    summary = synth.run_stage(1, rows, hf_backend, config, tmp_path, source=source)
    rec = records(tmp_path / "stage1.jsonl")["alice"]
    assert rec["reason"] == "too_few_confirmed" and len(rec["candidates_1"]) == 5
    assert all(isinstance(c["response"], str) and c["teacher_ok"] is False for c in rec["candidates_1"])
    assert summary["candidates"]["teacher_malformed"] == 5 and summary["this_run"]["calls_teacher"] == 5


def test_prompt_budget_skips_users_instead_of_failing_the_batch(tmp_path, fixtures_dir, tokenizer):
    from alignxplore.backends.base import count_tokens
    from alignxplore.prompts import synth_teacher_messages

    users = {u["uid"]: u for u in read_jsonl(fixtures_dir / "synth_users.jsonl")}
    def longest(uid, n):  # teacher prompt of the user's first n behaviours with a long target
        t = users[uid]["behaviors"][n]
        return count_tokens(tokenizer, synth_teacher_messages(users[uid]["behaviors"][:n], t["query"], t["chosen"], t["rejected"]))
    alice, judy = longest("alice", 5), longest("judy", 7)  # judy's thirds are 7 long, alice's 5
    assert alice + 20 < judy
    with ScriptedOpenAIServer() as server:
        summary = run_stage(server, 1, tmp_path, str(fixtures_dir / "synth_users.jsonl"), max_prompt_tokens=alice + 10)
    s1 = records(tmp_path / "stage1.jsonl")
    # judy: her teacher prompts are over budget, nothing was sent
    assert s1["judy"]["reason"] == "prompt_too_long" and not any("response" in c for c in s1["judy"]["candidates_1"])
    # alice: teacher prompts fit, the merge prompt (5 pairs + the long system text) does not
    assert s1["alice"]["reason"] == "prompt_too_long" and all(c["judge"]["correct"] for c in s1["alice"]["candidates_1"])
    assert "merge_output_1" not in s1["alice"]
    assert summary["kept"] == 0 and summary["config"]["max_prompt_tokens"] == alice + 10
