"""`alignxplore infer` on the tiny Qwen3 (real tokenizer, random weights): the Python API,
the CLI (full, streaming with K, resume, --past), personalize, and the console entry point."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from alignxplore.backends.base import SamplingConfig
from alignxplore.formats import NO_NEGATIVE_SAMPLE, DataError, read_jsonl
from alignxplore.infer import PreferenceInferer, User, as_triples, personalize
from alignxplore.infer import offline as infer_cli
from alignxplore.prompts import NO_PAST_SUMMARY, PERSONALIZE_SYSTEM, extract_summary, personalize_messages, rl_messages, streaming_messages

ROOT = Path(__file__).resolve().parents[1]
SAMPLING = SamplingConfig(max_new_tokens=8)


def behaviours(n, tag="b"):
    return [{"query": f"{tag} query {i}", "chosen": f"{tag} liked item {i}", "rejected": f"{tag} disliked item {i}"} for i in range(n)]


@pytest.fixture(scope="module")
def inferer(hf_backend):
    return PreferenceInferer(hf_backend, SAMPLING)


def test_infer_returns_summary_and_raw_response(inferer):
    res = inferer.infer(behaviours(3))
    assert res.ok and res.n_behaviours == 3 and res.n_dropped == 0
    assert isinstance(res.response, str) and res.summary == extract_summary(res.response)
    assert res.prompt == streaming_messages(behaviours(3))  # evaluation/SFT wording, no past
    assert f"=====Past Preference Summary=====\n\n{NO_PAST_SUMMARY}\n\n" in res.prompt[1]["content"]


def test_update_puts_the_summary_in_the_past_slot(inferer):
    res = inferer.update("Likes short answers.", behaviours(2, "new"))
    assert res.ok and res.past == "Likes short answers."
    assert res.prompt == streaming_messages(behaviours(2, "new"), "Likes short answers.")


def test_rl_wording_is_selectable(hf_backend):
    res = PreferenceInferer(hf_backend, SAMPLING, wording="rl").infer(behaviours(2), past="earlier")
    assert res.prompt == rl_messages(behaviours(2), "earlier") and "=====Tripe 1=====" in res.prompt[1]["content"]
    with pytest.raises(ValueError, match="wording"):
        PreferenceInferer(hf_backend, wording="chatty")


def test_chat_messages_become_triples(inferer):
    chat = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "more"}, {"role": "assistant", "content": "sure"}, {"role": "user", "content": "unanswered"}]
    res = inferer.infer(chat)
    assert res.ok and res.n_behaviours == 2
    assert res.prompt[1]["content"].count(NO_NEGATIVE_SAMPLE) == 2 and "unanswered" not in res.prompt[1]["content"]
    with pytest.raises(DataError, match="history: empty"):
        as_triples([], "req", "history")
    with pytest.raises(DataError, match=r"req: history\[1\]\.chosen: missing"):
        as_triples([{"query": "q", "chosen": "c", "rejected": "r"}, {"query": "q"}], "req", "history")


def test_streaming_replays_k_at_a_time_keeping_every_summary(inferer):
    res = inferer.stream(behaviours(5), chunk=2)
    assert res.ok and [s.n_behaviours for s in res.steps] == [2, 2, 1] and res.n_behaviours == 5
    assert res.steps[0].past is None
    for prev, step in zip(res.steps, res.steps[1:]):
        assert step.past == prev.summary  # each chunk continues from the previous summary
    assert res.summary == res.steps[-1].summary and res.response == res.steps[-1].response
    assert res.steps[2].prompt == streaming_messages(behaviours(5)[4:], res.steps[1].summary)


def test_batch_matches_one_by_one_prompts(inferer):
    users = [User(behaviours(2, "a"), None, "a"), User(behaviours(3, "b"), "past b", "b")]
    out = inferer.infer_many(users)
    assert [r.userid for r in out] == ["a", "b"]
    assert out[0].prompt == streaming_messages(behaviours(2, "a"))
    assert out[1].prompt == streaming_messages(behaviours(3, "b"), "past b")


def test_token_budget_keeps_the_most_recent_behaviours(hf_backend):
    hist = behaviours(8)
    budget = hf_backend.count_prompt_tokens(streaming_messages(hist[-2:])) + 1
    assert hf_backend.count_prompt_tokens(streaming_messages(hist[-4:])) > budget
    res = PreferenceInferer(hf_backend, SAMPLING, prompt_budget=budget).infer(hist)
    assert res.ok and (res.n_behaviours, res.n_dropped) == (2, 6)
    assert "item 7" in res.prompt[1]["content"] and "item 5" not in res.prompt[1]["content"]


@pytest.mark.parametrize("text", ["plain words", "naïve café ünïcödé", "emoji 🙂🚀🧠 and 中文字符", "\n\n  \t spaces \n\n", "=====" * 20, "a" * 3000])
def test_byte_bound_never_claims_a_prompt_fits_when_it_does_not(hf_backend, text):
    inf = PreferenceInferer(hf_backend, SAMPLING)
    for n in (1, 3):
        hist = [{"query": f"{text} {i}", "chosen": text, "rejected": text[::-1]} for i in range(n)]
        exact = hf_backend.count_prompt_tokens(streaming_messages(hist))
        assert not inf.surely_fits(hist, exact)  # the shortcut only ever says "fits" when it is true
        assert inf.surely_fits(hist, exact + 10 * len(text.encode()) * n + 200)  # and it does fire well below the budget


def test_nothing_within_budget_is_reported_not_sent(hf_backend):
    calls = []
    inf = PreferenceInferer(hf_backend, SAMPLING, prompt_budget=20)  # below the system prompt alone

    async def never(convs):
        calls.append(convs)
        raise AssertionError("nothing should be generated")

    import asyncio
    res = asyncio.run(inf.arun([User(behaviours(3), "kept past")], generate=never))[0]
    assert not res.ok and "prompt budget" in res.error and res.summary == "kept past" and res.n_dropped == 3
    assert calls in ([], [[]])


def test_personalize_puts_the_summary_in_the_system_prompt(hf_backend):
    msgs = personalize_messages("Prefers terse answers. ", "Recommend a film.")
    assert msgs == [{"role": "system", "content": PERSONALIZE_SYSTEM.format(summary="Prefers terse answers.")},
                    {"role": "user", "content": "Recommend a film."}]
    out = personalize(hf_backend, [("Prefers terse answers.", "Recommend a film."), ("Loves detail.", "Explain tides.")], SAMPLING)
    assert len(out) == 2 and all(g.ok and isinstance(g.text, str) for g in out)


# -- CLI ---------------------------------------------------------------------------------

def write_users(path, users):
    path.write_text("".join(json.dumps(u) + "\n" for u in users))
    return path


def cli(tiny_model_dir, *argv):
    return infer_cli.main([*argv, "--model", tiny_model_dir, "--max-new-tokens", "8", "--batch-size", "4"])


class KeepOpen:
    """The session's loaded tiny model, minus close(): spares each CLI run a model load (one
    test, test_cli_full_then_past_continues, loads it from the path as a user would)."""

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def close(self):
        pass


@pytest.fixture
def loaded(monkeypatch, hf_backend):
    monkeypatch.setattr(infer_cli, "backend_from_args", lambda args, **_: KeepOpen(hf_backend))


@pytest.fixture
def users_file(tmp_path):
    chat = [{"role": "user", "content": "u0"}, {"role": "assistant", "content": "a0"}, {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"}]
    return write_users(tmp_path / "users.jsonl", [
        {"userid": "u1", "history": behaviours(5, "u1")},
        {"userid": "u2", "messages": chat},
        {"userid": "u3", "history": behaviours(3, "u3"), "past": "inline past"},
    ])


@pytest.mark.slow
def test_cli_full_then_past_continues(tmp_path, tiny_model_dir, users_file, monkeypatch, hf_backend):
    out = tmp_path / "summaries.jsonl"
    assert cli(tiny_model_dir, "--input", str(users_file), "--out", str(out)) == 0
    rows = read_jsonl(out)
    assert [r["userid"] for r in rows] == ["u1", "u2", "u3"] and [r["n_behaviours"] for r in rows] == [5, 2, 3]
    assert all(r["summary"] == extract_summary(r["response"]) and "steps" not in r for r in rows)
    # continue: new behaviours in a new file, the earlier summaries from --past
    monkeypatch.setattr(infer_cli, "backend_from_args", lambda args, **_: KeepOpen(hf_backend))
    new = write_users(tmp_path / "new.jsonl", [{"userid": "u1", "history": behaviours(1, "later")}])
    nxt = tmp_path / "next.jsonl"
    assert cli(tiny_model_dir, "--input", str(new), "--out", str(nxt), "--past", str(out)) == 0
    (row,) = read_jsonl(nxt)
    assert row["userid"] == "u1" and row["n_behaviours"] == 1


def test_cli_streaming_with_k_keeps_each_intermediate_summary(tmp_path, tiny_model_dir, users_file, loaded):
    out = tmp_path / "stream.jsonl"
    assert cli(tiny_model_dir, "--input", str(users_file), "--out", str(out), "--stream-chunk", "2") == 0
    rows = {r["userid"]: r for r in read_jsonl(out)}
    assert [s["n_behaviours"] for s in rows["u1"]["steps"]] == [2, 2, 1]
    assert [s["n_behaviours"] for s in rows["u2"]["steps"]] == [2]
    assert [s["n_behaviours"] for s in rows["u3"]["steps"]] == [2, 1]
    for r in rows.values():
        assert r["summary"] == r["steps"][-1]["summary"]


@pytest.mark.slow
def test_cli_resumes_after_a_kill_without_duplicates(tmp_path, tiny_model_dir, users_file, loaded):
    out = tmp_path / "summaries.jsonl"
    assert cli(tiny_model_dir, "--input", str(users_file), "--out", str(out), "--chunk-size", "1") == 0
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1][:40])  # killed while writing the second user
    assert cli(tiny_model_dir, "--input", str(users_file), "--out", str(out), "--chunk-size", "1") == 0
    rows = read_jsonl(out)
    assert [r["userid"] for r in rows] == ["u1", "u2", "u3"]
    assert json.loads(lines[0]) == rows[0]  # the finished user was kept, not regenerated


def test_cli_bad_input_is_one_line_naming_file_line_field(tmp_path, tiny_model_dir):
    bad = write_users(tmp_path / "bad.jsonl", [{"userid": "x", "history": behaviours(1)}, {"userid": "y", "history": [{"query": "q", "chosen": "c"}]}])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: history\[0\]\.rejected: missing"):
        cli(tiny_model_dir, "--input", str(bad), "--out", str(tmp_path / "o.jsonl"))
    dup = write_users(tmp_path / "dup.jsonl", [{"userid": "x", "history": behaviours(1)}] * 2)
    with pytest.raises(DataError, match=r"dup\.jsonl:2: userid: duplicate 'x'"):
        cli(tiny_model_dir, "--input", str(dup), "--out", str(tmp_path / "o.jsonl"))
    proc = subprocess.run([sys.executable, "-m", "alignxplore.infer", "--input", str(bad), "--out", str(tmp_path / "o.jsonl"),
                           "--model", "/nonexistent"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr


def test_cli_personalize_flag(tmp_path, tiny_model_dir, users_file, loaded):
    summaries = tmp_path / "summaries.jsonl"
    summaries.write_text(json.dumps({"userid": "u1", "summary": "Prefers terse answers."}) + "\n")
    queries = write_users(tmp_path / "queries.jsonl", [
        {"userid": "u1", "query": "Recommend a film."},
        {"userid": "u1", "query": "And a book?"},
        {"userid": "zz", "query": "Hi", "summary": "Inline summary.", "id": "q-zz"},
    ])
    out = tmp_path / "answers.jsonl"
    assert cli(tiny_model_dir, "--personalize", "--input", str(queries), "--summaries", str(summaries), "--out", str(out)) == 0
    rows = read_jsonl(out)
    assert [r["key"] for r in rows] == ["u1@1", "u1@2", "q-zz"]
    assert [r["summary"] for r in rows] == ["Prefers terse answers.", "Prefers terse answers.", "Inline summary."]
    assert all(isinstance(r["response"], str) for r in rows)
    missing = write_users(tmp_path / "missing.jsonl", [{"userid": "nobody", "query": "Hi"}])
    with pytest.raises(DataError, match=r"missing\.jsonl:1: summary: none inline"):
        cli(tiny_model_dir, "--personalize", "--input", str(missing), "--summaries", str(summaries), "--out", str(out))


def test_console_entry_point_is_declared_and_runs():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["alignxplore"].split(":")
    code = f"import sys; from {module} import main; sys.exit(main(['infer', '--help']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "--stream-chunk" in proc.stdout and "alignxplore infer" in proc.stdout
    assert func == "console"


def test_streaming_failure_stops_that_user_only():
    """Over HTTP (the fault-injecting test server): user b's second chunk always fails."""
    from alignxplore.backends import load_backend
    from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer

    bad = behaviours(2, "b") + behaviours(1, ALWAYS_FAIL_MARKER) + behaviours(2, "b2")
    with FakeOpenAIServer() as server:
        backend = load_backend("openai", "policy", base_url=server.base_url, max_retries=0, progress=False)
        a, b = PreferenceInferer(backend, SAMPLING).infer_many([User(behaviours(4, "a"), userid="a"), User(bad, userid="b")], chunk=2)
        assert server.requests == 2 + 2  # a: 2 chunks; b: chunk 1, chunk 2 fails, chunk 3 never sent
    assert a.ok and len(a.steps) == 2
    assert not b.ok and "generation failed: HTTP 500" in b.error
    assert [s.ok for s in b.steps] == [True, False]
    assert b.summary == b.steps[0].summary and b.response is None and b.n_behaviours == 2


def test_cli_failed_users_exit_3_keep_the_rest_and_are_retried_alone(tmp_path):
    """Both modes over a real HTTP server: a user (or query) whose every request fails is left
    out and reported (exit 3), the others are written; a rerun asks again for that one only."""
    from alignxplore.demo.tiny import qwen3_tokenizer_dir
    from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer

    users = write_users(tmp_path / "users.jsonl", [
        {"userid": "u1", "history": behaviours(2)},
        {"userid": "u2", "history": behaviours(2, ALWAYS_FAIL_MARKER)},
        {"userid": "u3", "history": behaviours(1)},
    ])
    queries = write_users(tmp_path / "queries.jsonl", [
        {"userid": "u1", "query": "Recommend a film.", "summary": "Likes films."},
        {"userid": "u2", "query": f"{ALWAYS_FAIL_MARKER} and a book?", "summary": "Likes books."},
    ])
    with FakeOpenAIServer(tokenizer=qwen3_tokenizer_dir()) as server:
        def run(*argv):
            return infer_cli.main([*argv, "--backend", "openai", "--base-url", server.base_url, "--model", "fake",
                                   "--max-retries", "0", "--max-new-tokens", "8"])

        out = tmp_path / "summaries.jsonl"
        assert run("--input", str(users), "--out", str(out)) == 3
        assert [r["userid"] for r in read_jsonl(out)] == ["u1", "u3"]
        before = server.requests
        assert run("--input", str(users), "--out", str(out)) == 3
        assert server.requests - before == 1 and [r["userid"] for r in read_jsonl(out)] == ["u1", "u3"]

        answers = tmp_path / "answers.jsonl"
        assert run("--personalize", "--input", str(queries), "--out", str(answers)) == 3
        assert [r["key"] for r in read_jsonl(answers)] == ["u1@1"]
        before = server.requests
        assert run("--personalize", "--input", str(queries), "--out", str(answers)) == 3
        assert server.requests - before == 1
