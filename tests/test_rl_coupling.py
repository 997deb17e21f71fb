"""The stage coupling and the stage-2 prompt, with hand-computed expectations (docs/formats.md §5)."""
from __future__ import annotations

import statistics
from collections import Counter

import numpy as np
import pytest
import torch

from alignxplore.prompts import rl_messages
from alignxplore.rl.coupling import add_at_last_token, couple_stage1_scores, pick_one_per_group, stage2_messages

N = 4
UIDS = np.array(["p0"] * N + ["p1"] * N, dtype=object)  # verl's interleaved repeat: rows 0-3, 4-7


def test_one_pick_per_group_inside_its_group():
    picks = pick_one_per_group(UIDS, np.random.default_rng(0))
    assert set(picks) == {"p0", "p1"}
    assert picks["p0"] in range(0, 4) and picks["p1"] in range(4, 8)


def test_pick_is_uniform_over_seeds_and_reproducible():
    counts = Counter(pick_one_per_group(UIDS, np.random.default_rng([1, s]))["p0"] for s in range(4000))
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(850 < c < 1150 for c in counts.values()), counts  # 1000 expected, std ~27
    assert pick_one_per_group(UIDS, np.random.default_rng([1, 7])) == pick_one_per_group(UIDS, np.random.default_rng([1, 7]))


# Hand-worked step: 2 prompts x n=4. Row 5 failed the format gate (score 0).
S1 = [0.2, 0.4, 0.6, 0.8, 0.1, 0.0, 0.5, 0.9]
PICKED = [1, 6]
S2 = [0.5, 0.7, 0.9, 0.3, 0.2, 0.2, 0.4, 0.0]  # stage-2 rows 0-3 continue row 1, rows 4-7 row 6
PARENT = [1, 1, 1, 1, 6, 6, 6, 6]
# row 1: 0.9 * mean(0.5, 0.7, 0.9, 0.3) = 0.9 * 0.6 = 0.54; row 6: 0.9 * mean(0.2, 0.2, 0.4, 0.0) = 0.18
DELTA = [0.45, 0.54, 0.45, 0.45, 0.45, 0.45, 0.18, 0.45]
COUPLED = [0.65, 0.94, 1.05, 1.25, 0.55, 0.45, 0.68, 1.35]


def test_coupling_lambda_mean_on_the_picked_row_bonus_on_the_others():
    delta, coupled = couple_stage1_scores(S1, PICKED, S2, PARENT, lam=0.9, bonus=0.45)
    np.testing.assert_allclose(delta, DELTA)
    np.testing.assert_allclose(coupled, COUPLED)  # row 5 (format failure) still gets the bonus


def test_picked_row_without_stage2_children_is_an_error():
    with pytest.raises(ValueError, match="row 6"):
        couple_stage1_scores(S1, PICKED, S2[:4], PARENT[:4], lam=0.9, bonus=0.45)


def test_delta_lands_on_the_last_valid_token():
    lengths = [3, 5, 1, 0]
    mask = torch.tensor([[1] * n + [0] * (5 - n) for n in lengths])
    scores = torch.zeros(4, 5)
    scores[0, 2], scores[1, 4], scores[2, 0] = 0.2, 0.4, 0.6  # verl's rm_scores: outcome on the last token
    out = add_at_last_token(scores, mask, [0.45, 0.54, 0.45, 0.1])
    expected = torch.zeros(4, 5)
    expected[0, 2], expected[1, 4], expected[2, 0], expected[3, 0] = 0.65, 0.94, 1.05, 0.1
    torch.testing.assert_close(out, expected)
    assert scores.sum() == pytest.approx(1.2)  # input untouched


def _grpo(scores, uids, width=3):
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    mask = torch.ones(len(scores), width)
    tok = torch.zeros(len(scores), width)
    tok[:, -1] = torch.tensor(scores, dtype=torch.float32)
    data = DataProto.from_dict(tensors={"token_level_rewards": tok, "response_mask": mask},
                               non_tensors={"uid": np.array(uids, dtype=object)})
    return compute_advantage(data, adv_estimator="grpo", norm_adv_by_std_in_grpo=True).batch["advantages"]


def test_grpo_advantages_per_stage_and_group():
    adv1 = _grpo(COUPLED, UIDS)
    for rows in (range(0, 4), range(4, 8)):
        group = [COUPLED[r] for r in rows]
        mu, sd = statistics.mean(group), statistics.stdev(group)  # unbiased, as the authors'
        for r in rows:
            torch.testing.assert_close(adv1[r], torch.full((3,), (COUPLED[r] - mu) / (sd + 1e-6)))
    # group p0 by hand: mean 0.9725, unbiased std 0.25038, so row 3 gets (1.25 - 0.9725) / 0.25038
    assert adv1[3, 0].item() == pytest.approx(1.1083, abs=1e-4)
    # stage 2 has its own group ids: its advantages do not see stage 1's scores
    uids2 = np.array(["q0"] * N + ["q1"] * N, dtype=object)
    both = _grpo(COUPLED + S2, np.concatenate([UIDS, uids2]))
    torch.testing.assert_close(both[8:], _grpo(S2, uids2))
    torch.testing.assert_close(both[:8], adv1)


def test_stage2_prompt_fills_only_the_past_slot_when_items_say_not_provided():
    history = [
        {"query": "Pick a product.", "chosen": "Trail boots (size: Not Provided.)", "rejected": "Chef knife"},
        {"query": "Pick a product.", "chosen": "Tent", "rejected": "Rice cooker, Not Provided."},
    ]
    response = "<think>\nhiking gear beats kitchen gear\n</think>\n\n Likes hiking gear. "
    msgs = stage2_messages(history, response)
    user = msgs[1]["content"]
    assert msgs == rl_messages(history, past="Likes hiking gear.")
    assert "=====Past Preference Summary=====\n\nLikes hiking gear.\n\n=====Interaction History=====" in user
    assert "*CHOSEN ITEM BY THE USER:*\nTrail boots (size: Not Provided.)" in user
    assert "*REJECTED ITEM BY THE USER:*\nRice cooker, Not Provided." in user
    assert user.count("Not Provided.") == 2  # the two items; the slot no longer says it
    # what the authors' str.replace did: it would have rewritten the items as well
    authors = rl_messages(history)[1]["content"].replace("Not Provided.", "Likes hiking gear.")
    assert authors.count("Likes hiking gear.") == 3 and authors != user
