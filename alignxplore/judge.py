"""Downstream-judge scoring: A/B placement, the two judge protocols, per-item results.

The one home of the judge's rules, shared by evaluation (:mod:`alignxplore.eval.evaluate`)
and the RL reward (:mod:`alignxplore.rl.reward`): the prompt with the chosen item as Item A
or B (:meth:`JudgeItem.messages`), the placement draws, and the read-out P(correct letter)
(:meth:`JudgeItem.p_correct`: evaluation's ``confidence``, the reward's score).

**A/B placement** (the authors' sequence, docs/formats.md §2): per benchmark file and mode, one
``random.Random(42)`` draws ``randint(0, 1)`` per item in the order of the file being judged
(the summaries file, i.e. the benchmark minus users the generator skipped; the benchmark file
itself for the direct baseline); 1 = the chosen item is Item A. Recommendation sets skip
users whose history is empty *without drawing* (:func:`ab_placement`). The RL reward judges
responses as they stream in, in no fixed order, so it draws per item from the item's own
key instead (:func:`keyed_placement`).

**Protocols** (``PROTOCOLS``):

* ``sampled`` (default; the published table): the judge's answer is sampled (thinking off,
  temperature 0.6, top-k 20, top-p 0.95, 16 new tokens, seeded per item) and parsed by the
  authors' rule (:func:`alignxplore.prompts.parse_selection`); an unparseable answer is wrong
  and stays in the denominator.
* ``teacher-forced``: the selection is the argmax of the teacher-forced P(A), P(B).

Either way every item also records P(A), P(B) (teacher-forced, one prefill per item), the
argmax selection, and ``expected_correct``: the probability that the authors' sampler picks
the correct letter, computed from the two-letter distribution with temperature, top-k and
top-p applied (:func:`alignxplore.backends.sampling.sampler_distribution`). Its mean is a noise-free estimate of the
published (sampled) accuracy.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Callable, Sequence

from .backends.base import Backend, JudgeSampling, JudgeScore
from .backends.sampling import sampler_distribution
from .prompts import judge_messages, parse_selection

PROTOCOLS = ("sampled", "teacher-forced")
JUDGE_SEED = 42


def ab_placement(n_items: int, seed: int = JUDGE_SEED, skip: Sequence[bool] | None = None) -> list[bool | None]:
    """For each item in order: is the chosen item shown as Item A? ``None`` where ``skip``
    is true: that item is not judged and, as in the authors' loop, draws nothing."""
    rng = random.Random(seed)
    skip = skip or [False] * n_items
    return [None if s else rng.randint(0, 1) == 1 for s in skip]


def keyed_placement(*key) -> bool:
    """One item's placement drawn from its own key: True (chosen is Item A) with probability 1/2.

    The RL reward's rule. The authors drew unseeded; we seed a private RNG with the SHA-256 of
    the key's parts joined by ``|`` (the reward's key: seed, stage, row index, response text),
    so the draw does not depend on which worker judges the item or in what order, and a rerun
    with the same responses places every item identically.
    """
    digest = hashlib.sha256("|".join(str(k) for k in key).encode()).hexdigest()
    return random.Random(int(digest[:16], 16)).randint(0, 1) == 1


@dataclass
class JudgeItem:
    query: str
    summary: str
    chosen: str
    rejected: str
    chosen_is_a: bool

    @property
    def correct_letter(self) -> str:
        return "A" if self.chosen_is_a else "B"

    def messages(self) -> list[dict]:
        """The judge prompt, with the chosen item shown as Item A or Item B."""
        a, b = (self.chosen, self.rejected) if self.chosen_is_a else (self.rejected, self.chosen)
        return judge_messages(self.query, self.summary, a, b)

    def p_correct(self, score: JudgeScore) -> float:
        """The read-out: the judge's teacher-forced P(correct letter). Evaluation records it as
        ``confidence``; it is the RL reward."""
        return float(score.p_a if self.chosen_is_a else score.p_b)


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
        correct_letter = it.correct_letter
        argmax = "A" if sc.p_a >= sc.p_b else "B"
        rec.update(
            p_a=sc.p_a,
            p_b=sc.p_b,
            letter_mass=sc.letter_mass,
            argmax_selection=argmax,
            argmax_correct=argmax == correct_letter,
            expected_correct=expected_correct(sc.p_a, sc.p_b, it.chosen_is_a, sampling),
            confidence=it.p_correct(sc),
        )
        if protocol == "sampled":
            selection = parse(answer)
            rec.update(answer=answer, selection=selection, correct=selection == correct_letter)
        else:
            rec.update(selection=argmax, correct=argmax == correct_letter)
        results.append(rec)
    return results
