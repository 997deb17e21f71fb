"""The two-stage coupling of streaming GRPO, as plain functions (docs/formats.md §5).

Per prompt, stage 1 samples n responses (one GRPO group); one of them is picked uniformly at
random (:func:`pick_one_per_group`) and its summary fills the past slot of the stage-2 prompt
(:func:`stage2_messages`); stage 2 samples n responses (a new group). Then
(:func:`couple_stage1_scores`): the picked stage-1 row gets ``+ lam * mean(its n stage-2
scores)``, every other stage-1 row gets ``+ bonus`` (also when it failed the format gate,
as the authors did). The added term goes on the row's last valid response token, where verl
puts the outcome reward (:func:`add_at_last_token`). GRPO then runs per stage and group.

The trainer (:mod:`.trainer`) only wires these to verl's batches.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from ..prompts import extract_summary, rl_messages


def group_rows(uids: Sequence) -> dict:
    """uid -> row indices, in order of first appearance."""
    groups: dict = {}
    for row, uid in enumerate(uids):
        groups.setdefault(uid, []).append(row)
    return groups


def pick_one_per_group(uids: Sequence, rng: np.random.Generator) -> dict:
    """uid -> the one picked row of that group, uniform over the group, independent of scores
    and format (the authors' rule). Groups are visited in first-appearance order, so a seeded
    ``rng`` makes the picks reproducible."""
    return {uid: rows[int(rng.integers(len(rows)))] for uid, rows in group_rows(uids).items()}


def stage2_messages(stage2_history: Sequence[Mapping[str, str]], stage1_response: str) -> list[dict]:
    """The stage-2 prompt: ``history[mid:-1]`` with the picked stage-1 summary in the past slot
    only (``prompts.rl_messages``). Items that contain "Not Provided." stay as they are (the
    authors' ``str.replace`` on the whole prompt rewrote them too)."""
    return rl_messages(list(stage2_history), past=extract_summary(stage1_response))


def couple_stage1_scores(
    stage1_scores: np.ndarray,
    picked_rows: Sequence[int],
    stage2_scores: np.ndarray,
    stage2_parent: Sequence[int],
    *,
    lam: float,
    bonus: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The term added to each stage-1 row's score, and the coupled scores.

    ``picked_rows``: the picked stage-1 row of each group. ``stage2_parent[j]``: the picked
    stage-1 row whose summary stage-2 row ``j`` continued. A picked row gets ``lam * mean``
    of its stage-2 scores; every other row gets ``bonus``.
    """
    stage1_scores = np.asarray(stage1_scores, dtype=np.float64)
    stage2_scores = np.asarray(stage2_scores, dtype=np.float64)
    parent = np.asarray(stage2_parent)
    delta = np.full(stage1_scores.shape, float(bonus))
    for row in picked_rows:
        children = stage2_scores[parent == row]
        if children.size == 0:
            raise ValueError(f"picked stage-1 row {row} has no stage-2 responses")
        delta[row] = lam * children.mean()
    return delta, stage1_scores + delta


def last_token_index(response_attention_mask: torch.Tensor) -> torch.Tensor:
    """Per row, the last valid response position (verl's ``rm_scores`` position); 0 if empty."""
    return (response_attention_mask.sum(dim=-1) - 1).clamp(min=0).long()


def add_at_last_token(token_scores: torch.Tensor, response_attention_mask: torch.Tensor, delta) -> torch.Tensor:
    """A copy of ``token_scores`` with ``delta[i]`` added at row i's last valid token."""
    out = token_scores.clone()
    rows = torch.arange(out.shape[0])
    out[rows, last_token_index(response_attention_mask)] += torch.as_tensor(np.asarray(delta), dtype=out.dtype)
    return out
