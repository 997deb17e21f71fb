"""Which behaviours each prompt sees (docs/formats.md §3), as the authors' generation scripts did.

1. **Truncation, once, on the whole history, before the split**
   (:func:`truncate_to_budget`): while the no-past prompt of the (remaining) history is *not
   below* the budget, keep its most recent ``L // 2`` behaviours; a single behaviour still
   over budget leaves an empty history. Full mode truncates every set at 16,384 tokens;
   streaming truncates recommendation sets only, at 16,384 / 1.2 (:func:`truncation_budget`).
2. **The split** of the (truncated) history, by benchmark kind:

   * ``recommendation`` (amazon, mind, movielens), ``m = L // 3``: full history = ``[0, 2m)``;
     streaming = ``[0, m)`` then ``[m, 2m)``.
   * ``half`` (every other set): full history = everything; streaming = ``[0, L//2)`` then
     ``[L//2, L)``.

Degenerate users are not errors: a split may be empty (rendered with zero triples); only
streaming skips a user, and only when the truncated history is empty (:func:`streaming_skip_reason`).
"""
from __future__ import annotations

from typing import Callable, Sequence

from .formats import Record

SPLIT_RULES = ("recommendation", "half")

# Context budget of the original runs; streaming prompts also carry a past summary, so the
# original gave their history a 1.2x smaller budget (recommendation sets only).
MAX_PROMPT_TOKENS = 16384
MAX_MODEL_LEN = MAX_PROMPT_TOKENS  # engine context length of the original runs (same number)
STREAMING_BUDGET_DIVISOR = 1.2


def _check_rule(rule: str) -> None:
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; expected one of {SPLIT_RULES}")


def truncation_budget(mode: str, rule: str, budget: float = MAX_PROMPT_TOKENS) -> float | None:
    """The token budget the whole history is cut to before the split, or None (no cut).

    Full mode: ``budget`` for every set. Streaming: ``budget / 1.2`` for recommendation sets,
    no truncation for the others (the authors' streaming script cut only those)."""
    _check_rule(rule)
    if mode == "full":
        return budget
    if mode == "streaming":
        return budget / STREAMING_BUDGET_DIVISOR if rule == "recommendation" else None
    raise ValueError(f"unknown generation mode {mode!r}")


def full_history(history: Sequence[Record], rule: str, where: str = "<row>") -> list[Record]:
    """Behaviours shown in full-history (one pass) mode; may be empty (a zero-triple prompt)."""
    _check_rule(rule)
    n = len(history)
    return list(history[: 2 * (n // 3)]) if rule == "recommendation" else list(history)


def streaming_passes(history: Sequence[Record], rule: str, where: str = "<row>") -> tuple[list[Record], list[Record]]:
    """Behaviours of the two streaming passes (pass 2 also gets pass 1's summary). Either may
    be empty; the caller skips a user only when the whole history is empty."""
    _check_rule(rule)
    n = len(history)
    if rule == "recommendation":
        m = n // 3
        return list(history[:m]), list(history[m : 2 * m])
    return list(history[: n // 2]), list(history[n // 2 :])


def streaming_skip_reason(history: Sequence[Record]) -> str | None:
    """Why streaming skips a user (the authors' ``if not item["history"]: continue``), or None."""
    return "empty history after truncation" if not history else None


def truncate_to_budget(
    triples: Sequence[Record],
    n_tokens: Callable[[list[Record]], int],
    budget: float,
    where: str = "<row>",
) -> tuple[list[Record], int]:
    """While ``n_tokens(kept)`` is not below ``budget``, keep the most recent ``len(kept) // 2``.

    Returns ``(kept, n_dropped)``. As in the authors' scripts the loop condition is
    ``>= budget`` (a prompt exactly at the budget is cut), the smaller half is kept (5 -> 2),
    and a single behaviour still over budget leaves an empty list (that user is then rendered
    with zero triples, or skipped by streaming). ``where`` is kept for callers' messages.
    """
    kept = list(triples)
    while kept and n_tokens(kept) >= budget:
        if len(kept) == 1:
            kept = []
            break
        kept = kept[-(len(kept) // 2) :]
    return kept, len(triples) - len(kept)
