"""Benchmark metrics, in percent: accuracy of the judge's selection (the paper's table),
ROC-AUC of P(A) against "chosen shown as A" (recommendation sets), and the mean confidence
of the correct item. Failed items are excluded and counted."""
from __future__ import annotations

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


def summarize(records: Sequence[dict], *, with_auc: bool) -> dict:
    """Metrics over judged records (see :func:`alignxplore.judge.score_items`)."""
    scored = [r for r in records if "error" not in r]
    out: dict = {"n_items": len(records), "n_scored": len(scored), "n_failed": len(records) - len(scored)}
    if not scored:
        return out
    out["accuracy"] = accuracy([r["correct"] for r in scored])
    out["mean_confidence"] = 100.0 * mean([r["confidence"] for r in scored])
    if with_auc:
        labels = [r["chosen_is_a"] for r in scored]
        try:
            out["roc_auc"] = 100.0 * roc_auc(labels, [r["p_a"] for r in scored])
        except ValueError:
            out["roc_auc"] = None  # one class only (tiny runs)
    return out
