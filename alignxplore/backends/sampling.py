"""The sampler's arithmetic on a handful of token probabilities.

It lives with the engines because engines that cannot sample a judge letter themselves (the
embedding stand-in judge, the test server) draw from it, and the judge's noise-free
``expected_correct`` (:mod:`alignxplore.judge`) reads the same distribution: one rule for
what temperature, top-k and top-p do, used by every layer above.
"""
from __future__ import annotations

import math
from typing import Mapping


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
