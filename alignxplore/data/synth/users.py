"""SFT synthesis inputs: scored user rows, the split into thirds, and the candidate targets.

Input row (one JSON object per line), the scorer's output (docs/formats.md §7)::

    {"uid": "u1", "behaviors": [{"query": "...", "chosen": "...", "rejected": "...", "logprob1": -0.02}, ...]}

Also accepted, so the authors' own files load unchanged: ``userid`` for ``uid``, ``history``
for ``behaviors``, and behaviours wrapped as ``{"item": {query, chosen, rejected}, "logprob1": ...}``.
A ``null``/missing query renders as the empty string (the project-wide rule of
:func:`alignxplore.formats.validate_triple`; the authors' f-strings wrote ``None``).

Rules (the authors' ``sft/stage1.py``/``stage2.py``): keep the last ``max_behaviors`` (100)
behaviours and, by default (``thirds_from="scored"``), of those only the *scored* ones (with a
``logprob1``: the authors' scorer output held only the behaviours inside its 16,384-token
window, and their thirds split that list); ``thirds_from="all"`` (ours before) splits every
behaviour, scored or not. ``s = L // 3``, skip users with ``s < 3``; thirds ``[0, s)``, ``[s, 2s)``,
``[2s, L)``. Candidate targets of a stage = behaviours of the next third with
``exp(logprob1) > min_target_prob``; ``max_targets`` sampled if more; the user is skipped
when fewer than ``min_candidates`` (4: the authors skipped ``len(targets) <= 3``) remain.
A behaviour without ``logprob1`` is never a candidate, except that a user with no scores at
all takes every behaviour as a candidate when ``unscored_as_candidates`` is set.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...formats import DataError, read_jsonl, validate_user_row

Record = dict[str, Any]


@dataclass(frozen=True)
class TargetRule:
    """Who gets synthesised, with the authors' defaults."""

    max_behaviors: int = 100
    min_third: int = 3
    min_target_prob: float = 0.9
    max_targets: int = 5
    min_candidates: int = 4
    unscored_as_candidates: bool = False
    thirds_from: str = "scored"  # THIRDS_FROM

    def __post_init__(self):
        if self.thirds_from not in THIRDS_FROM:
            raise ValueError(f"thirds_from must be one of {THIRDS_FROM}, got {self.thirds_from!r}")


THIRDS_FROM = ("scored", "all")


SYNTH_FIELDS = ("query", "chosen", "rejected", "logprob1")  # what synthesis reads (and its records keep) of a behaviour


def read_users(path: str | Path) -> Iterator[Record]:
    """Validated scored user rows (:func:`alignxplore.formats.validate_user_row`) with ``index``
    (0-based row number) and ``where`` (``file:line``); a duplicate uid names both lines."""
    seen: dict[str, str] = {}
    for index, row in enumerate(read_jsonl(path, validate_user_row, keep_where=True)):
        where = row.pop("_where")
        if row["uid"] in seen:
            raise DataError(where, "uid", f"duplicate of {seen[row['uid']]}")
        seen[row["uid"]] = where
        behaviours = [{k: b[k] for k in SYNTH_FIELDS if k in b} for b in row["behaviors"]]
        yield {"uid": row["uid"], "index": index, "where": where, "behaviors": behaviours}


def split_thirds(behaviours: list[Record], rule: TargetRule) -> list[list[Record]] | None:
    """The last ``max_behaviors`` behaviours in thirds, or None if a third is under ``min_third``."""
    recent = behaviours[-rule.max_behaviors:] if rule.max_behaviors > 0 else behaviours
    if rule.thirds_from == "scored" and is_scored(recent):
        recent = [b for b in recent if "logprob1" in b]
    s = len(recent) // 3
    if s < rule.min_third:
        return None
    return [recent[:s], recent[s:2 * s], recent[2 * s:]]


def pick_targets(third: list[Record], rule: TargetRule, rng: random.Random, *, user_scored: bool) -> list[int]:
    """Positions (within ``third``) of the stage's targets, in behaviour order; [] = skip the user.

    ``user_scored`` is whether any of the user's behaviours has a ``logprob1``."""
    if user_scored:
        positions = [i for i, b in enumerate(third) if "logprob1" in b and math.exp(b["logprob1"]) > rule.min_target_prob]
    elif rule.unscored_as_candidates:
        positions = list(range(len(third)))
    else:
        return []
    if len(positions) > rule.max_targets:
        positions = sorted(rng.sample(positions, rule.max_targets))
    return positions if len(positions) >= rule.min_candidates else []


def is_scored(behaviours: list[Record]) -> bool:
    return any("logprob1" in b for b in behaviours)
