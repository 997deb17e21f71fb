"""SFT synthesis defaults to the authors' rules (sft/stage1.py, stage2.py, preprocess.py):
thirds over the scored behaviours, the sampled filtering judge, teacher answers without
``</think>`` kept; the query overwrite is an option. Ours stay available as options (the
pipeline test runs them). Real HTTP against the scripted server (alignxplore/testing/scripted_openai.py)."""
import json

from alignxplore.backends.openai import OpenAIBackend
from alignxplore.data.synth import run as synth
from alignxplore.data.synth.stage import SynthConfig, unclosed_teacher_answer
from alignxplore.data.synth.users import TargetRule, split_thirds
from alignxplore.formats import read_jsonl
from alignxplore.testing.scripted_openai import ScriptedOpenAIServer


def test_defaults_are_the_authors():
    cfg = SynthConfig()
    assert (cfg.judge_mode, cfg.unclosed_think, cfg.overwrite_query, cfg.rule.thirds_from) == ("sampled", "keep", None, "scored")
    args = synth.build_parser().parse_args(["stage1", "--users", "u", "--work-dir", "w", "--model", "m"])
    assert synth.config_from_args(args) == cfg


def test_thirds_split_only_the_scored_behaviours():
    # 12 behaviours, the last 3 beyond the scorer's window (no logprob1), as the scorer writes them
    beh = [{"query": "q", "chosen": f"c{i}", "rejected": "r", **({"logprob1": -0.01} if i < 9 else {})} for i in range(12)]
    thirds = split_thirds(beh, TargetRule())
    assert [[b["chosen"] for b in t] for t in thirds] == [["c0", "c1", "c2"], ["c3", "c4", "c5"], ["c6", "c7", "c8"]]
    ours = split_thirds(beh, TargetRule(thirds_from="all"))
    assert [len(t) for t in ours] == [4, 4, 4] and ours[2][-1]["chosen"] == "c11"
    unscored = [{k: v for k, v in b.items() if k != "logprob1"} for b in beh]  # no scores at all: every behaviour
    assert [len(t) for t in split_thirds(unscored, TargetRule())] == [4, 4, 4]


def test_unclosed_teacher_answer_is_read_as_the_authors_split_did():
    assert unclosed_teacher_answer("The user likes X.") == ("The user likes X.", "The user likes X.")
    assert unclosed_teacher_answer("<think>\nstill thinking") == ("still thinking", "<think>\nstill thinking")


def run(server, stage, work, users=None, **config):
    rows, source = synth.load_stage_input(stage, users, work)
    backend = OpenAIBackend("teacher", base_url=server.base_url, max_retries=1, backoff=0.01, progress=False)
    return synth.run_stage(stage, rows, backend, SynthConfig(**config), work, chunk_size=4, source=source)


def one_user(tmp_path, fixtures_dir, uid):
    src = tmp_path / f"{uid}.jsonl"
    src.write_text("".join(line + "\n" for line in (fixtures_dir / "synth_users.jsonl").read_text().splitlines() if f'"{uid}"' in line))
    return str(src)


def test_unclosed_answers_are_kept_and_judged_with_the_defaults(tmp_path, fixtures_dir):
    # grace's stage-2 targets: two teacher answers without a think block, one misleading; with
    # them dropped (ours) she falls under 3 confirmed, kept (the authors') she passes with 4
    with ScriptedOpenAIServer() as server:
        run(server, 1, tmp_path, one_user(tmp_path, fixtures_dir, "grace"))
        summary = run(server, 2, tmp_path)
        assert server.judge_readouts == 0 and any(kind == "judge" for kind, _ in server.calls)  # the sampled judge
    s2 = {r["uid"]: r for r in read_jsonl(tmp_path / "stage2.jsonl")}
    assert s2["grace"]["status"] == "kept"
    assert summary["this_run"]["candidates_teacher_unclosed"] == 2 and summary["config"]["unclosed_think"] == "keep"
    unclosed = [c for c in s2["grace"]["candidates_2"] if "<think>" not in c["response"]]
    assert len(unclosed) == 2 and all(c["reasoning"] == c["preference"] == c["response"].strip() for c in unclosed)


def test_overwrite_query_reaches_every_teacher_prompt(tmp_path, fixtures_dir):
    text = "Please recommend some movies to me."
    with ScriptedOpenAIServer() as server:
        summary = run(server, 1, tmp_path, one_user(tmp_path, fixtures_dir, "alice"), overwrite_query=text)
        teacher = [msgs for kind, msgs in server.calls if kind == "teacher"]
    assert teacher and all("alice query" not in json.dumps(m) and text in m[-1]["content"] for m in teacher)
    assert summary["config"]["overwrite_query"] == text
