"""Metrics against hand-computed values and sklearn; A/B placement; the authors' sampler."""
import json
import math
import random

import pytest
from sklearn.metrics import roc_auc_score

from alignxplore.backends.base import JudgeSampling, JudgeScore
from alignxplore.backends.sampling import sampler_distribution
from alignxplore.judge import JudgeItem, ab_placement, expected_correct
from alignxplore.metrics import accuracy, roc_auc, summarize


def test_accuracy_hand_computed():
    assert accuracy([True, False, True, True]) == 75.0


def test_auc_hand_computed_with_tie():
    # pairs (pos, neg): (0.9,0.1) win, (0.9,0.5) win, (0.5,0.1) win, (0.5,0.5) tie -> 3.5/4
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5]) == pytest.approx(0.875)


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_sklearn(seed):
    rng = random.Random(seed)
    labels = [rng.random() < 0.4 for _ in range(200)]
    scores = [round(rng.random(), 1) for _ in range(200)]  # rounding makes many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])


def rec(chosen_is_a, p_a, selection, **extra):
    """A judged item as score_items writes it, from fixed letter probabilities."""
    sampling = JudgeSampling()
    correct_letter = "A" if chosen_is_a else "B"
    argmax = "A" if p_a >= 1 - p_a else "B"
    return {"chosen_is_a": chosen_is_a, "p_a": p_a, "p_b": 1 - p_a, "selection": selection, "correct": selection == correct_letter,
            "argmax_selection": argmax, "argmax_correct": argmax == correct_letter,
            "expected_correct": expected_correct(p_a, 1 - p_a, chosen_is_a, sampling),
            "confidence": p_a if chosen_is_a else 1 - p_a} | extra


def test_sampler_distribution_hand_computed():
    # temperature 0.6: q_A = 0.7^(1/0.6) / (0.7^(1/0.6) + 0.3^(1/0.6)) = 0.55187 / 0.68631
    q = sampler_distribution({"A": 0.7, "B": 0.3}, 0.6, 20, 0.95)
    assert q["A"] == pytest.approx(0.804107, abs=1e-6) and q["B"] == pytest.approx(0.195893, abs=1e-6)
    # 0.9 / 0.1 -> 0.974963 / 0.025037; top-p 0.95 drops B (0.025 <= 1 - 0.95): A always
    assert sampler_distribution({"A": 0.9, "B": 0.1}, 0.6, 20, 0.95) == {"A": 1.0, "B": 0.0}
    assert sampler_distribution({"A": 0.9, "B": 0.1}, 0.6, 20, 1.0)["B"] == pytest.approx(0.025037, abs=1e-6)
    # top-k 1 keeps the most likely; temperature 0 is greedy; 50/50 stays 50/50
    assert sampler_distribution({"A": 0.4, "B": 0.6}, 1.0, 1, 1.0) == {"A": 0.0, "B": 1.0}
    assert sampler_distribution({"A": 0.4, "B": 0.6}, 0.0, 20, 0.95) == {"A": 0.0, "B": 1.0}
    assert sampler_distribution({"A": 0.5, "B": 0.5}, 0.6, 20, 0.95) == {"A": 0.5, "B": 0.5}


def test_sampler_distribution_matches_transformers_warpers():
    """The same three steps as transformers' TemperatureLogitsWarper / TopK / TopP on a
    5-token distribution (top-p cutting inside the tail)."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    probs = {"a": 0.5, "b": 0.25, "c": 0.15, "d": 0.07, "e": 0.03}
    logits = torch.log(torch.tensor([list(probs.values())]))
    for warper in (TemperatureLogitsWarper(0.6), TopKLogitsWarper(4), TopPLogitsWarper(0.9)):
        logits = warper(None, logits)
    want = torch.softmax(logits, -1)[0].tolist()
    got = sampler_distribution(probs, 0.6, 4, 0.9)
    assert [got[k] for k in probs] == pytest.approx(want, abs=1e-6)


def test_expected_accuracy_and_its_errors_hand_computed():
    recs = [
        rec(True, 0.7, "A"),  # q = 0.804107, correct
        rec(False, 0.9, "A"),  # chosen is B, the sampler always says A: q = 0, wrong
        rec(True, 0.5, None, answer="garbage"),  # unparseable: wrong, but judged; q = 0.5
        {"chosen_is_a": True, "error": "HTTP 500"},
    ]
    m = summarize(recs, with_auc=False)
    q = [0.804107, 0.0, 0.5]
    assert m["n_scored"] == 3 and m["n_failed"] == 1 and m["n_unparseable"] == 1
    assert m["accuracy"] == pytest.approx(100 / 3)  # 1 of 3 judged; the unparseable one counts as wrong
    assert m["argmax_accuracy"] == pytest.approx(200 / 3)  # A, A, A(tie) vs A, B, A
    assert m["expected_accuracy"] == pytest.approx(100 * sum(q) / 3, abs=1e-4)
    mean_q = sum(q) / 3
    se = math.sqrt(sum((x - mean_q) ** 2 for x in q) / 2 / 3)
    assert m["expected_accuracy_se"] == pytest.approx(100 * se, abs=1e-4)
    assert m["sampled_accuracy_sd"] == pytest.approx(100 * math.sqrt(sum(x * (1 - x) for x in q)) / 3, abs=1e-4)
    # ours: mean P(correct letter) = (0.7 + 0.1 + 0.5) / 3; the authors': sum over correct of P(selected) / all
    assert m["mean_confidence"] == pytest.approx(100 * 1.3 / 3)
    assert m["authors_confidence"] == pytest.approx(100 * 0.7 / 3)


def test_authors_auc_scores_unparseable_answers_one_half():
    recs = [rec(True, 0.8, "A"), rec(False, 0.3, "B"), rec(True, 0.2, None), rec(False, 0.6, "A")]
    m = summarize(recs, with_auc=True)
    assert m["roc_auc"] == pytest.approx(100 * roc_auc_score([1, 0, 1, 0], [0.8, 0.3, 0.2, 0.6]))
    assert m["authors_roc_auc"] == pytest.approx(100 * roc_auc_score([1, 0, 1, 0], [0.8, 0.3, 0.5, 0.6]))


def test_summarize_excludes_failed_items():
    recs = [rec(True, 0.8, "A"), rec(False, 0.6, "A"), {"chosen_is_a": True, "error": "HTTP 500"}]
    m = summarize(recs, with_auc=True)
    assert m["n_items"] == 3 and m["n_failed"] == 1 and m["n_scored"] == 2
    assert m["accuracy"] == 50.0 and m["mean_confidence"] == pytest.approx(60.0) and m["roc_auc"] == 100.0


def test_placement_is_the_authors_sequence(fixtures_dir):
    golden = json.loads((fixtures_dir / "golden_prompts.json").read_text())["placement_chosen_is_a_first_24"]
    assert ab_placement(24) == golden
    rng = random.Random(42)
    assert ab_placement(1000) == [rng.randint(0, 1) == 1 for _ in range(1000)]
    assert ab_placement(1000, 43) != ab_placement(1000)


def test_skipped_items_draw_nothing():
    full = ab_placement(6)
    got = ab_placement(7, skip=[False, True, False, False, True, False, False])
    assert got == [full[0], None, full[1], full[2], None, full[3], full[4]]


def test_judge_item_places_chosen_item():
    at_a = JudgeItem("q", "s", "CHOSEN", "REJECTED", True).messages()[1]["content"]
    at_b = JudgeItem("q", "s", "CHOSEN", "REJECTED", False).messages()[1]["content"]
    assert "<Item A>\nCHOSEN\n</Item A>" in at_a and "<Item B>\nREJECTED\n</Item B>" in at_a
    assert "<Item A>\nREJECTED\n</Item A>" in at_b and "<Item B>\nCHOSEN\n</Item B>" in at_b


def test_only_one_letter_seen_uses_complement():
    s = JudgeScore.from_logprobs(-0.1, None)
    assert s.p_b == pytest.approx(1 - s.p_a) and s.ok
    assert not JudgeScore.from_logprobs(None, None).ok
