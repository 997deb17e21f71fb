"""The RL reward over real HTTP to the local fault-injecting OpenAI server, and in-process (hf)."""
from __future__ import annotations

import asyncio

import pytest

from alignxplore.prompts import judge_messages
from alignxplore.rl import reward
from alignxplore.judge import keyed_placement
from alignxplore.rl.reward import JudgeOutage, compute_score
from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer, fake_p_a

KEYS = {"score", "format_ok", "confidence", "judge_ok", "stage"}
GT = {
    "target1": {"query": "Recommend a movie.", "chosen": "Arrival", "rejected": "Titanic"},
    "target2": {"query": "Pick a film tonight.", "chosen": "Solaris", "rejected": "Notting Hill"},
}


@pytest.fixture(autouse=True)
def fresh_judges():
    reward._JUDGES.clear()
    yield
    reward._JUDGES.clear()


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as s:
        yield s


def score_all(responses, stage, **judge_kwargs):
    async def main():
        return await asyncio.gather(*(
            compute_score(data_source="alignxplore_rl", solution_str=r, ground_truth=GT,
                          extra_info={"stage": stage, "index": i}, **judge_kwargs)
            for i, r in enumerate(responses)))
    return asyncio.run(main())


def expected_score(target, response, stage, index, seed=1):
    summary = response.split("</think>")[-1].strip()
    a = keyed_placement(seed, stage, index, response)
    msgs = judge_messages(target["query"], summary, *((target["chosen"], target["rejected"]) if a else (target["rejected"], target["chosen"])))
    p_a = fake_p_a(msgs)
    return p_a if a else 1 - p_a


RESPONSES = [f"<think>\nreasoning {i}\n</think>\n\nLikes slow science fiction, taste {i}." for i in range(24)]


@pytest.mark.parametrize("stage", [1, 2])
def test_score_is_p_correct_for_the_target_of_the_stage(server, stage):
    out = score_all(RESPONSES, stage, base_url=server.base_url)
    right, wrong = GT[f"target{stage}"], GT[f"target{3 - stage}"]
    for i, (r, o) in enumerate(zip(RESPONSES, out)):
        assert set(o) == KEYS and o["stage"] == stage and o["format_ok"] and o["judge_ok"]
        assert o["score"] == o["confidence"] == pytest.approx(expected_score(right, r, stage, i), abs=1e-9)
        assert o["score"] != pytest.approx(expected_score(wrong, r, stage, i), abs=1e-6)
    # the seeded draw puts the chosen item on both sides
    placements = {keyed_placement(1, stage, i, r) for i, r in enumerate(RESPONSES)}
    assert placements == {True, False}


@pytest.mark.parametrize("bad", [
    "<think></think>\n\nsummary",            # empty thinking
    "Sure! <think>\nr\n</think>\n\nsummary",  # leading text
    "<think>\nr\n</think>",                   # nothing after </think>
    "<think>\nr\n</think><think>x</think>s",  # two think blocks
    "no thinking at all",
])
def test_format_gate_scores_zero_without_a_judge_call(server, bad):
    before = server.requests
    (out,) = score_all([bad], 1, base_url=server.base_url)
    assert out == {"score": 0.0, "format_ok": False, "confidence": 0.0, "judge_ok": True, "stage": 1}
    assert server.requests == before and not reward._JUDGES  # no client made for a format failure


def test_whitespace_only_tail_passes_the_gate_as_the_authors_regex_does(server):
    (out,) = score_all(["<think>\nr\n</think>\n\n "], 2, base_url=server.base_url)
    assert out["format_ok"] and out["judge_ok"] and out["stage"] == 2


def test_one_client_per_process_reused_across_calls(server):
    score_all(RESPONSES[:3], 1, base_url=server.base_url)
    (judge,) = reward._JUDGES.values()
    score_all(RESPONSES[3:6], 2, base_url=server.base_url)
    assert list(reward._JUDGES.values()) == [judge]


FAILING = [f"<think>\nr\n</think>\n\n{ALWAYS_FAIL_MARKER} {i}" for i in range(6)]


def test_outage_policy_zero_scores_failures_and_never_raises(server):
    out = score_all(FAILING, 1, base_url=server.base_url, max_retries=0, on_judge_error="zero", max_consecutive_failures=2)
    assert all(o == {"score": 0.0, "format_ok": True, "confidence": 0.0, "judge_ok": False, "stage": 1} for o in out)
    assert next(iter(reward._JUDGES.values())).failures == 6


def test_outage_policy_fail_raises_after_n_consecutive_failures(server):
    opts = dict(base_url=server.base_url, max_retries=0, on_judge_error="fail", max_consecutive_failures=3)
    first_two = score_all(FAILING[:2], 1, **opts)
    assert [o["judge_ok"] for o in first_two] == [False, False]  # below N: scored 0, counted
    score_all(RESPONSES[:1], 1, **opts)  # a success resets the run of failures
    score_all(FAILING[:2], 1, **opts)
    with pytest.raises(JudgeOutage, match="failed 3 times in a row"):
        score_all(FAILING[2:3], 1, **opts)


def test_transient_server_errors_are_retried_and_scored():
    faults = lambda key, attempt: "500" if attempt == 0 else None  # noqa: E731
    with FakeOpenAIServer(fault_plan=faults) as flaky:
        out = score_all(RESPONSES[:4], 1, base_url=flaky.base_url, max_retries=2)
        assert flaky.requests == 8
    assert all(o["judge_ok"] for o in out)
    assert [o["score"] for o in out] == pytest.approx([expected_score(GT["target1"], r, 1, i) for i, r in enumerate(RESPONSES[:4])])


def test_hf_judge_in_process(tiny_model_dir, hf_backend):
    out = score_all(RESPONSES[:2], 2, backend="hf", model=tiny_model_dir)
    for i, (r, o) in enumerate(zip(RESPONSES[:2], out)):
        t = GT["target2"]
        a = keyed_placement(1, 2, i, r)
        msgs = judge_messages(t["query"], r.split("</think>")[-1].strip(), *((t["chosen"], t["rejected"]) if a else (t["rejected"], t["chosen"])))
        (js,) = hf_backend.judge([msgs])
        assert set(o) == KEYS and o["judge_ok"]
        assert o["score"] == pytest.approx(js.p_a if a else js.p_b, abs=1e-5)


def test_embedding_judge_in_process_rewards_the_right_preference():
    """The demo's stand-in judge (a real sentence encoder): a summary naming the user's taste
    scores higher than one naming the other item's."""
    good = "<think>\nThe user chose Solaris.\n</think>\n\nThe user likes Solaris, slow science fiction."
    bad = "<think>\nThe user chose Notting Hill.\n</think>\n\nThe user likes Notting Hill, romantic comedy."
    out = score_all([good, bad], 2, backend="embedding", model="packaged")
    assert all(set(o) == KEYS and o["judge_ok"] for o in out)
    assert out[0]["score"] > 0.5 > out[1]["score"]


def test_unknown_stage_and_option_are_errors(server):
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        score_all(RESPONSES[:1], 3, base_url=server.base_url)
    with pytest.raises(ValueError, match="on_judge_error"):
        score_all(RESPONSES[:1], 1, base_url=server.base_url, on_judge_error="ignore")


def test_several_judge_urls_share_the_requests():
    """Judge replicas: every request goes to the least-loaded URL (ties in turn). All 24
    requests start before any answer is read (asyncio runs each task to its first network wait
    before it polls sockets), so the in-flight counts alternate and the split is exactly even —
    on any machine and load."""
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        out = score_all(RESPONSES, 1, base_url=f"{a.base_url}, {b.base_url}")
        assert (a.requests, b.requests) == (12, 12)
        (judge,) = reward._JUDGES.values()
        assert judge.sent == [12, 12] and judge.in_flight == [0, 0]
        # a YAML list is the same thing as the comma-separated string
        reward._JUDGES.clear()
        score_all(RESPONSES[:4], 1, base_url=[a.base_url, b.base_url])
        assert (a.requests, b.requests) == (14, 14)
    assert [o["score"] for o in out] == pytest.approx([expected_score(GT["target1"], r, 1, i) for i, r in enumerate(RESPONSES)])


def test_the_least_loaded_replica_is_picked_ties_in_turn():
    """Least-loaded, not plain round-robin: a replica that answers slowly keeps requests in
    flight and is passed over until the others are as busy."""
    # three live replicas: a judge client asks each for its letter ids when it is made
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b, FakeOpenAIServer() as c:
        judge = reward.get_judge(reward.JudgeOptions(base_url=",".join(s.base_url for s in (a, b, c))))
    judge.in_flight = [3, 0, 1]
    assert judge._pick() == 1
    judge.in_flight = [2, 2, 2]
    assert [judge._pick() for _ in range(4)] == [2, 0, 1, 2]  # ties in turn, after the last pick


def test_empty_judge_url_is_an_error():
    with pytest.raises(ValueError, match="names no judge URL"):
        score_all(RESPONSES[:1], 1, base_url=" , ")


def test_placement_draws_are_pinned():
    """The reward's A/B draws, as computed before the draw moved to ``alignxplore.judge``: a
    change here changes which side every RL item's chosen answer is shown on."""
    draws = lambda seed, stage: "".join("A" if keyed_placement(seed, stage, i, r) else "B" for i, r in enumerate(RESPONSES[:16]))  # noqa: E731
    assert draws(1, 1) == "AABBBAAAAABABBBB"
    assert draws(7, 2) == "BBBAAABBABAAABAA"


@pytest.mark.parametrize("judge_backend", ["openai", "embedding"])
@pytest.mark.parametrize("protocol", ["sampled", "teacher-forced"])
def test_reward_equals_the_evaluation_confidence_of_the_same_item(server, judge_backend, protocol):
    """One judge for RL and evaluation: the reward of a response is, bit for bit, the per-item
    probability evaluation records (``confidence`` = P(correct letter)) for the same summary,
    target and placement, judged through the same backend (real HTTP to the test server, or
    the in-process embedding judge). Exact equality holds on any machine: both paths send the
    same prompt to the same deterministic judge and read the same float."""
    from alignxplore.backends import load_backend
    from alignxplore.judge import JudgeItem, score_items

    stage, t = 2, GT["target2"]
    responses = RESPONSES[:6]
    if judge_backend == "openai":
        kwargs = {"base_url": server.base_url}
        backend = load_backend("openai", "judge", base_url=server.base_url, progress=False)
    else:
        kwargs = {"backend": "embedding", "model": "packaged"}
        backend = load_backend("embedding", "packaged", device="cpu")
    rewards = score_all(responses, stage, **kwargs)
    items = [JudgeItem(t["query"], r.split("</think>")[-1].strip(), t["chosen"], t["rejected"], keyed_placement(1, stage, i, r))
             for i, r in enumerate(responses)]
    try:
        evaluated = score_items(backend, items, protocol=protocol)
    finally:
        backend.close()
    assert {it.chosen_is_a for it in items} == {True, False}  # both sides are exercised
    assert [o["score"] for o in rewards] == [e["confidence"] for e in evaluated]
    assert all(0.0 < o["score"] < 1.0 for o in rewards)
