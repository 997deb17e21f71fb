"""Downstream-judge scoring: A/B placement, the selection, and the confidence of the correct item.

The chosen item goes to slot A or B by a seeded coin flip: one ``random.Random(seed)`` draws
``random() < 0.5`` per item, in benchmark file order (seed 42 as in the paper), so the same
file always gets the same placement whichever summaries are being judged.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from .backends.base import Backend, JudgeScore
from .prompts import judge_messages

SELECTION_MODES = ("argmax", "sample")
JUDGE_SEED = 42
JUDGE_TEMPERATURE = 0.6  # only used by selection="sample"


def chosen_at_a(n_items: int, seed: int = JUDGE_SEED) -> list[bool]:
    """For each item in order: is the user's chosen item shown as Item A?"""
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(n_items)]


@dataclass
class JudgeItem:
    query: str
    summary: str
    chosen: str
    rejected: str
    chosen_is_a: bool

    def messages(self) -> list[dict]:
        a, b = (self.chosen, self.rejected) if self.chosen_is_a else (self.rejected, self.chosen)
        return judge_messages(self.query, self.summary, a, b)


def select(score: JudgeScore, mode: str, rng: random.Random, temperature: float = JUDGE_TEMPERATURE) -> str:
    """The judge's letter: argmax of P(A)/P(B), or a draw at ``temperature`` (the original
    sampled its answer at 0.6; use ``sample`` to reproduce that noise)."""
    if mode == "argmax":
        return "A" if score.p_a >= score.p_b else "B"
    if mode == "sample":
        la = math.log(max(score.p_a, 1e-30)) / temperature
        lb = math.log(max(score.p_b, 1e-30)) / temperature
        p_a = 1.0 / (1.0 + math.exp(lb - la))
        return "A" if rng.random() < p_a else "B"
    raise ValueError(f"unknown selection mode {mode!r}; expected one of {SELECTION_MODES}")


def score_items(
    backend: Backend,
    items: Sequence[JudgeItem],
    *,
    selection: str = "argmax",
    seed: int = JUDGE_SEED,
    temperature: float = JUDGE_TEMPERATURE,
) -> list[dict]:
    """Judge every item; one result dict per item, in order.

    Scored items carry ``p_a``, ``p_b``, ``selection``, ``correct`` and ``confidence`` (the
    probability of the correct letter); failed ones carry ``error`` and are left out of the
    metrics (and retried by a resumed run).
    """
    scores = backend.judge([it.messages() for it in items])
    rng = random.Random(seed + 1)
    results = []
    for it, sc in zip(items, scores):
        rec = {"chosen_is_a": it.chosen_is_a}
        if not sc.ok:
            rec["error"] = sc.error
        else:
            letter = select(sc, selection, rng, temperature)
            correct_letter = "A" if it.chosen_is_a else "B"
            rec.update(
                p_a=sc.p_a,
                p_b=sc.p_b,
                letter_mass=sc.letter_mass,
                selection=letter,
                correct=letter == correct_letter,
                confidence=sc.p_a if it.chosen_is_a else sc.p_b,
            )
        results.append(rec)
    return results
