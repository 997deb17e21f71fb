"""Which behaviours each prompt sees (FORMATS.md §3).

Split rules, by benchmark kind:

* ``recommendation`` (amazon, mind, movielens): full history = the first ``2*floor(L/3)``
  behaviours; streaming = ``[0, L/3)`` then ``[L/3, 2L/3)`` (floors).
* ``half`` (every other set): full history = all behaviours; streaming = first half, then
  second half.

A prompt over the token budget keeps the most recent half of its behaviours, repeatedly.
"""
from __future__ import annotations

from typing import Callable, Sequence

from .formats import DataError, Record

SPLIT_RULES = ("recommendation", "half")

# Context budget of the original runs; streaming prompts also carry a past summary, so the
# original gave their history a 1.2x smaller budget.
MAX_PROMPT_TOKENS = 16384
MAX_MODEL_LEN = MAX_PROMPT_TOKENS  # engine context length of the original runs (same number)
STREAMING_BUDGET_DIVISOR = 1.2


def _check_rule(rule: str) -> None:
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; expected one of {SPLIT_RULES}")


def full_history(history: Sequence[Record], rule: str, where: str = "<row>") -> list[Record]:
    """Behaviours shown in full-history (one pass) mode."""
    _check_rule(rule)
    n = len(history)
    part = list(history[: 2 * (n // 3)]) if rule == "recommendation" else list(history)
    if not part:
        raise DataError(where, "history", f"{n} behaviour(s) leave nothing for the {rule} full-history split")
    return part


def streaming_passes(history: Sequence[Record], rule: str, where: str = "<row>") -> tuple[list[Record], list[Record]]:
    """Behaviours of the two streaming passes (pass 2 also gets pass 1's summary)."""
    _check_rule(rule)
    n = len(history)
    if rule == "recommendation":
        first, second = list(history[: n // 3]), list(history[n // 3 : (2 * n) // 3])
    else:
        first, second = list(history[: n // 2]), list(history[n // 2 :])
    if not first or not second:
        raise DataError(where, "history", f"{n} behaviour(s) are too few for two {rule} streaming passes")
    return first, second


def rl_stages(history: Sequence[Record], mid: int) -> tuple[tuple[list[Record], Record], tuple[list[Record], Record]]:
    """RL training row: stage 1 sees ``history[:mid]`` and is judged on ``history[mid]``;
    stage 2 sees ``history[mid:-1]`` (after stage 1's summary) and is judged on ``history[-1]``."""
    if not 1 <= mid < len(history) - 1:
        raise ValueError(f"mid_position {mid} outside [1, {len(history) - 2}]")
    return (list(history[:mid]), history[mid]), (list(history[mid:-1]), history[-1])


def truncate_to_budget(
    triples: Sequence[Record],
    n_tokens: Callable[[list[Record]], int],
    budget: int,
    where: str = "<row>",
) -> tuple[list[Record], int]:
    """Keep the most recent half of ``triples`` until ``n_tokens(kept) <= budget``.

    Returns ``(kept, n_dropped)``. A single behaviour that is still over budget is an error:
    there is nothing left to cut, and silently sending it would fail inside the engine.
    """
    kept = list(triples)
    size = n_tokens(kept)
    while size > budget:
        if len(kept) <= 1:
            raise DataError(where, "history", f"one behaviour alone renders to {size} tokens, over the budget of {budget}")
        kept = kept[len(kept) // 2 :]
        size = n_tokens(kept)
    return kept, len(triples) - len(kept)
