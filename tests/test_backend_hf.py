"""The hf backend on the tiny Qwen3: real chat templates, tokenisation, generation, judge read-out."""
import math

import pytest
import torch

from alignxplore.backends.base import JudgeSampling, SamplingConfig, letter_token_ids, render_judge_prompt
from alignxplore.prompts import judge_messages, preference_messages

TRIPLES = [{"query": "q", "chosen": f"Title: jazz {i}", "rejected": f"Title: stocks {i}"} for i in range(3)]


def judge_convs(n):
    return [judge_messages(f"query {i}", "likes jazz" * (i + 1), f"item a {i}", f"item b {i}") for i in range(n)]


def test_judge_probabilities_sum_to_one(hf_backend):
    scores = hf_backend.judge(judge_convs(6))
    assert len(scores) == 6
    for s in scores:
        assert s.ok and 0 < s.p_a < 1 and s.p_a + s.p_b == pytest.approx(1.0, abs=1e-9)
        assert 0 < s.letter_mass <= 1


def test_batched_judge_matches_single_unpadded_forward(hf_backend):
    """Left padding and batching must not change the read-out: recompute one item by hand."""
    convs = judge_convs(5)
    batched = hf_backend.judge(convs)
    tok, model = hf_backend.tokenizer, hf_backend.model
    ids = letter_token_ids(tok)
    for conv, score in zip(convs, batched):
        enc = tok(render_judge_prompt(tok, conv), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logp = torch.log_softmax(model(**enc).logits[0, -1].float(), -1)
        pa, pb = math.exp(logp[ids["A"]]), math.exp(logp[ids["B"]])
        assert score.p_a == pytest.approx(pa / (pa + pb), abs=1e-5)
        assert score.letter_mass == pytest.approx(pa + pb, rel=1e-4)


def test_generation_is_seeded_and_returns_text(hf_backend):
    convs = [preference_messages(TRIPLES[: i + 1]) for i in range(3)]
    s = SamplingConfig(max_new_tokens=8, seed=7)
    a = hf_backend.generate(convs, s)
    b = hf_backend.generate(convs, s)
    assert [g.text for g in a] == [g.text for g in b]
    assert all(g.ok and isinstance(g.text, str) and g.text for g in a)
    # the new tokens are at most max_new_tokens long
    assert all(len(hf_backend.tokenizer(g.text, add_special_tokens=False)["input_ids"]) <= 9 for g in a)


def test_prompt_token_count_uses_chat_template(hf_backend):
    msgs = preference_messages(TRIPLES)
    n = hf_backend.count_prompt_tokens(msgs)
    text = hf_backend.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert n == len(hf_backend.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert hf_backend.count_prompt_tokens(preference_messages(TRIPLES[:1])) < n


SAMPLED = JudgeSampling(max_new_tokens=16, seed=7)


@pytest.mark.slow
def test_sampled_judge_reads_the_same_p_a_and_is_reproducible(hf_backend):
    convs = judge_convs(3)
    forced = hf_backend.judge(convs)
    a = hf_backend.judge_sampled(convs, SAMPLED)
    b = hf_backend.judge_sampled(convs, SAMPLED)
    assert [j.text for j in a] == [j.text for j in b]  # same seed, same answers
    for j, f in zip(a, forced):  # the one prefill gives the teacher-forced read-out as well
        assert j.ok and isinstance(j.text, str)
        assert j.score.p_a == pytest.approx(f.p_a, abs=1e-5) and j.score.letter_mass == pytest.approx(f.letter_mass, rel=1e-4)
    other = hf_backend.judge_sampled(convs, SAMPLED, seeds=[100 + i for i in range(3)])
    assert [j.text for j in other] != [j.text for j in a]


@pytest.mark.slow
def test_sampled_answer_continues_from_the_cache_exactly(hf_backend):
    """Sampling from the cropped teacher-forced cache gives the very tokens a fresh
    generate() on the bare judge prompt (thinking off) gives with the same seed."""
    convs = judge_convs(3)[::-1]  # one batch of the fixture's batch size 4
    sampled = hf_backend.judge_sampled(convs, SAMPLED, seeds=[7, 7, 7])
    plain = hf_backend.generate(convs, SamplingConfig(temperature=0.6, top_k=20, top_p=0.95, max_new_tokens=16, seed=7), enable_thinking=False)
    assert [j.text for j in sampled] == [g.text for g in plain]


@pytest.mark.slow
def test_tiny_model_answers_are_unparseable_and_count_wrong(hf_backend):
    """A random model does not write the JSON: the authors' rule rejects it, the item stays
    judged (no error) and counts as wrong."""
    from alignxplore.judge import JudgeItem, score_items

    items = [JudgeItem(f"q{i}", "s", "yes", "no", i % 2 == 0) for i in range(4)]
    recs = score_items(hf_backend, items, protocol="sampled", sampling=SAMPLED)
    assert all("error" not in r and r["selection"] is None and r["correct"] is False for r in recs)
    assert all(0 < r["p_a"] < 1 and 0 <= r["expected_correct"] <= 1 for r in recs)
    forced = score_items(hf_backend, items, protocol="teacher-forced")
    assert [r["correct"] for r in forced] == [r["argmax_correct"] for r in recs]
