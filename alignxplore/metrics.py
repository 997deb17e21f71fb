"""Benchmark metrics, in percent, over the judged items of one benchmark file and mode.

Failed requests (HTTP errors after retries) are excluded and counted (``n_failed``); an
unparseable sampled answer is *not* a failure: it is judged, wrong, and in the denominator.

Ours:

* ``accuracy``: correct / judged under the run's protocol (sampled: the parsed sampled
  answer — the published metric; teacher-forced: the argmax).
* ``argmax_accuracy``: argmax of the teacher-forced P(A), P(B).
* ``expected_accuracy``: mean over items of P(the authors' sampler picks the correct
  letter) (:func:`alignxplore.judge.expected_correct`) — the published metric without its
  sampling noise. ``expected_accuracy_se``: its standard error over users (sample sd / sqrt n);
  ``sampled_accuracy_sd``: the sd of one sampled run's accuracy around it,
  ``sqrt(sum q(1-q)) / n`` (how far a published, sampled number moves by sampling alone).
* ``mean_confidence``: mean teacher-forced P(correct letter).
* ``roc_auc`` (recommendation sets): teacher-forced P(A) against "chosen shown as A".

The authors' secondary figures, under their definitions (docs/formats.md §4):

* ``authors_confidence``: sum over *correct* items of the probability of the selected letter,
  divided by all judged items (we read that probability from the teacher-forced P(A)/P(B)).
* ``authors_roc_auc`` (recommendation sets): score = P(A) when an answer letter was
  selected (their ``P(' A')`` else ``1 - P(' B')``; equal here since P(A) + P(B) = 1), 0.5
  when the answer had no letter.
"""
from __future__ import annotations

import math
from typing import Sequence


def accuracy(correct: Sequence[bool]) -> float:
    if not correct:
        raise ValueError("accuracy of zero items")
    return 100.0 * sum(bool(c) for c in correct) / len(correct)


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) identity, ties averaged.
    Returns a fraction in [0, 1]; undefined (ValueError) when one class is absent."""
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    n_pos = sum(bool(y) for y in labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative labels")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg_rank = (i + j) / 2 + 1  # 1-based average rank of the tie block
        for k in range(i, j + 1):
            ranks[order[k]] = avg_rank
        i = j + 1
    rank_sum_pos = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of zero items")
    return sum(values) / len(values)


def _auc_or_none(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    try:
        return 100.0 * roc_auc(labels, scores)
    except ValueError:
        return None  # one class only (tiny runs)


def summarize(records: Sequence[dict], *, with_auc: bool) -> dict:
    """Metrics over judged records (see :func:`alignxplore.judge.score_items`)."""
    scored = [r for r in records if "error" not in r]
    out: dict = {"n_items": len(records), "n_scored": len(scored), "n_failed": len(records) - len(scored)}
    if not scored:
        return out
    n = len(scored)
    q = [r["expected_correct"] for r in scored]
    exp_acc = mean(q)
    out["n_correct"] = sum(bool(r["correct"]) for r in scored)
    out["n_unparseable"] = sum(r.get("selection") is None for r in scored)
    out["accuracy"] = accuracy([r["correct"] for r in scored])
    out["argmax_accuracy"] = accuracy([r["argmax_correct"] for r in scored])
    out["expected_accuracy"] = 100.0 * exp_acc
    out["expected_accuracy_se"] = 100.0 * (math.sqrt(sum((x - exp_acc) ** 2 for x in q) / (n - 1) / n) if n > 1 else 0.0)
    out["sampled_accuracy_sd"] = 100.0 * math.sqrt(sum(x * (1 - x) for x in q)) / n
    out["mean_confidence"] = 100.0 * mean([r["confidence"] for r in scored])

    def selected_p(r: dict) -> float:
        return r["p_a"] if r["selection"] == "A" else r["p_b"]

    out["authors_confidence"] = 100.0 * sum(selected_p(r) for r in scored if r["correct"]) / n
    if with_auc:
        labels = [r["chosen_is_a"] for r in scored]
        out["roc_auc"] = _auc_or_none(labels, [r["p_a"] for r in scored])
        out["authors_roc_auc"] = _auc_or_none(labels, [r["p_a"] if r.get("selection") else 0.5 for r in scored])
    return out
