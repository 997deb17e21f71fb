"""Metrics against hand-computed values and sklearn; A/B placement and selection."""
import random

import pytest
from sklearn.metrics import roc_auc_score

from alignxplore.backends.base import JudgeScore
from alignxplore.judge import JudgeItem, chosen_at_a, select
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


def test_summarize_excludes_failed_items():
    recs = [
        {"chosen_is_a": True, "p_a": 0.8, "correct": True, "confidence": 0.8},
        {"chosen_is_a": False, "p_a": 0.6, "correct": False, "confidence": 0.4},
        {"chosen_is_a": True, "error": "HTTP 500"},
    ]
    m = summarize(recs, with_auc=True)
    assert m["n_items"] == 3 and m["n_failed"] == 1 and m["n_scored"] == 2
    assert m["accuracy"] == 50.0 and m["mean_confidence"] == pytest.approx(60.0) and m["roc_auc"] == 100.0


def test_placement_is_seeded_and_balanced():
    a = chosen_at_a(1000, 42)
    assert a == chosen_at_a(1000, 42) and a != chosen_at_a(1000, 43)
    assert 450 < sum(a) < 550
    rng = random.Random(42)
    assert a[:5] == [rng.random() < 0.5 for _ in range(5)]


def test_judge_item_places_chosen_item():
    at_a = JudgeItem("q", "s", "CHOSEN", "REJECTED", True).messages()[1]["content"]
    at_b = JudgeItem("q", "s", "CHOSEN", "REJECTED", False).messages()[1]["content"]
    assert "<Item A>\nCHOSEN\n</Item A>" in at_a and "<Item B>\nREJECTED\n</Item B>" in at_a
    assert "<Item A>\nREJECTED\n</Item A>" in at_b and "<Item B>\nCHOSEN\n</Item B>" in at_b


def test_selection_argmax_and_sampling():
    rng = random.Random(0)
    assert select(JudgeScore(0.7, 0.3), "argmax", rng) == "A"
    draws = [select(JudgeScore(0.7, 0.3), "sample", rng, temperature=1.0) for _ in range(4000)]
    assert draws.count("A") / 4000 == pytest.approx(0.7, abs=0.03)
    # a lower temperature sharpens: 0.7^(1/0.6) / (0.7^(1/0.6) + 0.3^(1/0.6)) ~= 0.80
    draws = [select(JudgeScore(0.7, 0.3), "sample", rng, temperature=0.6) for _ in range(4000)]
    assert draws.count("A") / 4000 == pytest.approx(0.805, abs=0.03)


def test_only_one_letter_seen_uses_complement():
    s = JudgeScore.from_logprobs(-0.1, None)
    assert s.p_b == pytest.approx(1 - s.p_a) and s.ok
    assert not JudgeScore.from_logprobs(None, None).ok
