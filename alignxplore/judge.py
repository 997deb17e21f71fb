"""Downstream-judge scoring: A/B placement, the two judge protocols, per-item results.

**A/B placement** (the authors' sequence, docs/formats.md §2): per benchmark file and mode, one
``random.Random(42)`` draws ``randint(0, 1)`` per item in the order of the file being judged
(the summaries file, i.e. the benchmark minus users the generator skipped; the benchmark file
itself for the direct baseline); 1 = the chosen item is Item A. Recommendation sets skip
users whose history is empty *without drawing* (:func:`ab_placement`).

**Protocols** (``PROTOCOLS``):

* ``sampled`` (default; the published table): the judge's answer is sampled (thinking off,
  temperature 0.6, top-k 20, top-p 0.95, 16 new tokens, seeded per item) and parsed by the
  authors' rule (:func:`alignxplore.prompts.parse_selection`); an unparseable answer is wrong
  and stays in the denominator.
* ``teacher-forced``: the selection is the argmax of the teacher-forced P(A), P(B).

Either way every item also records P(A), P(B) (teacher-forced, one prefill per item), the
argmax selection, and ``expected_correct``: the probability that the authors' sampler picks
the correct letter, computed from the two-letter distribution with temperature, top-k and
top-p applied (:func:`sampler_distribution`). Its mean is a noise-free estimate of the
published (sampled) accuracy.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from .backends.base import Backend, JudgeSampling
from .prompts import judge_messages, parse_selection

PROTOCOLS = ("sampled", "teacher-forced")
JUDGE_SEED = 42


def ab_placement(n_items: int, seed: int = JUDGE_SEED, skip: Sequence[bool] | None = None) -> list[bool | None]:
    """For each item in order: is the chosen item shown as Item A? ``None`` where ``skip``
    is true: that item is not judged and, as in the authors' loop, draws nothing."""
    rng = random.Random(seed)
    skip = skip or [False] * n_items
    return [None if s else rng.randint(0, 1) == 1 for s in skip]


def chosen_at_a(n_items: int, seed: int = JUDGE_SEED) -> list[bool]:
    """The placement of ``n_items`` items none of which is skipped."""
    return ab_placement(n_items, seed)  # type: ignore[return-value]


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


def sampler_distribution(probs: Mapping[str, float], temperature: float, top_k: int, top_p: float) -> dict[str, float]:
    """What a vLLM / transformers sampler draws from, given token probabilities.

    Temperature: ``p ** (1/T)`` renormalised (= softmax of logits / T); temperature 0 is
    greedy. Top-k keeps the ``k`` most likely (``k <= 0``: all). Top-p, as both engines do it:
    sort ascending and drop every token whose cumulative mass (itself included) is
    ``<= 1 - top_p``, always keeping the most likely one. Ties break by key order.
    """
    keys = [k for k in probs if probs[k] > 0]
    if not keys:
        raise ValueError("no token with positive probability")
    if temperature <= 0:
        best = max(keys, key=lambda k: probs[k])
        return {k: float(k == best) for k in probs}
    logits = {k: math.log(probs[k]) / temperature for k in keys}
    top = max(logits.values())
    weights = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(weights.values())
    q = {k: w / total for k, w in weights.items()}
    ranked = sorted(q, key=lambda k: -q[k])
    if top_k and top_k > 0:
        ranked = ranked[:top_k]
    mass = sum(q[k] for k in ranked)
    q = {k: q[k] / mass for k in ranked}
    if top_p < 1.0:
        ascending = sorted(q, key=lambda k: q[k])
        cumulative, kept = 0.0, []
        for k in ascending:
            cumulative += q[k]
            if cumulative > 1.0 - top_p or k == ascending[-1]:
                kept.append(k)
        mass = sum(q[k] for k in kept)
        q = {k: q[k] / mass for k in kept}
    return {k: q.get(k, 0.0) for k in probs}


def expected_correct(p_a: float, p_b: float, chosen_is_a: bool, sampling: JudgeSampling) -> float:
    """P(the authors' sampler emits the correct letter), from the letter distribution."""
    q = sampler_distribution({"A": p_a, "B": p_b}, sampling.temperature, sampling.top_k, sampling.top_p)
    return q["A" if chosen_is_a else "B"]


def score_items(
    backend: Backend,
    items: Sequence[JudgeItem],
    *,
    protocol: str = "sampled",
    sampling: JudgeSampling = JudgeSampling(),
    seeds: Sequence[int] | None = None,
    parse: Callable[[str], str | None] = parse_selection,
) -> list[dict]:
    """Judge every item; one result dict per item, in order.

    Judged items carry ``p_a``, ``p_b``, ``letter_mass``, ``argmax_selection``,
    ``argmax_correct``, ``expected_correct``, ``confidence`` (P(correct letter)), and the
    protocol's ``selection`` (``"A"``, ``"B"`` or None = unparseable) and ``correct``; the
    sampled protocol adds ``answer`` (the raw sampled text), parsed by ``parse`` (the authors'
    rule; a judge's :class:`~alignxplore.model_protocols.ModelProtocol` may first cut the
    answer part out, e.g. GPT-OSS's final channel). Items whose request failed carry
    ``error`` and are left out of the metrics (and retried by a resumed run).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown judge protocol {protocol!r}; expected one of {PROTOCOLS}")
    convs = [it.messages() for it in items]
    if protocol == "sampled":
        judged = backend.judge_sampled(convs, sampling, seeds)
        scores = [j.score for j in judged]
        answers = [j.text for j in judged]
        errors = [j.error or j.score.error for j in judged]
    else:
        scores = backend.judge(convs)
        answers = [None] * len(items)
        errors = [s.error for s in scores]
    results = []
    for it, sc, answer, error in zip(items, scores, answers, errors):
        rec: dict = {"chosen_is_a": it.chosen_is_a}
        if error is not None:
            rec["error"] = error
            results.append(rec)
            continue
        correct_letter = "A" if it.chosen_is_a else "B"
        argmax = "A" if sc.p_a >= sc.p_b else "B"
        rec.update(
            p_a=sc.p_a,
            p_b=sc.p_b,
            letter_mass=sc.letter_mass,
            argmax_selection=argmax,
            argmax_correct=argmax == correct_letter,
            expected_correct=expected_correct(sc.p_a, sc.p_b, it.chosen_is_a, sampling),
            confidence=sc.p_a if it.chosen_is_a else sc.p_b,
        )
        if protocol == "sampled":
            selection = parse(answer)
            rec.update(answer=answer, selection=selection, correct=selection == correct_letter)
        else:
            rec.update(selection=argmax, correct=argmax == correct_letter)
        results.append(rec)
    return results
