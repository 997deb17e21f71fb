"""Fixture helpers for tests/test_rl_cpu_backend.py: a tiny GRPO data set and a reward.

``compute_score`` is loaded by verl's reward workers through
``reward.custom_reward_function.path=<this file>`` (verl imports it by path, in a Ray actor).
It is trivial and deterministic, but NOT constant: a constant reward gives zero GRPO
advantages and the test could not tell a real policy-gradient update from weight decay.
"""
from __future__ import annotations

from pathlib import Path

PROMPTS = [
    "Name a colour.",
    "Say hello.",
    "Count to three.",
    "Pick a fruit.",
    "Write one word.",
    "Name an animal.",
    "Greet the user.",
    "Spell cat.",
]


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **_kwargs):
    """Share of the response's characters that are letters of ``ground_truth`` (in [0, 1])."""
    letters = set(str(ground_truth).lower())
    if not solution_str:
        return 0.0
    return sum(ch.lower() in letters for ch in solution_str) / len(solution_str)


def write_prompts_parquet(path: Path, n_rows: int = len(PROMPTS)) -> Path:
    """Rows in the shape verl's RLHFDataset and reward managers read."""
    import pandas as pd

    rows = []
    for i in range(n_rows):
        text = PROMPTS[i % len(PROMPTS)]
        rows.append(
            {
                "data_source": "rl_cpu_fixture",
                "prompt": [{"role": "user", "content": text}],
                "reward_model": {"style": "rule", "ground_truth": "aeiou"},
                "extra_info": {"index": i, "split": "train"},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


async def judge_every_response(data_source=None, solution_str="", ground_truth=None, extra_info=None, **kwargs):
    """The project's streaming reward (``alignxplore.rl.reward.compute_score``, same judge client
    and kwargs) on the response wrapped in the ``<think>…</think>`` format, so that every
    response reaches the judge: a random tiny policy never writes the format itself, and the
    format gate would then score 0 without a judge call (tests/test_rl_two_node_cpu.py)."""
    from alignxplore.rl.reward import compute_score as streaming_score

    text = solution_str.strip() or "."
    return await streaming_score(data_source, f"<think>\n{text}\n</think>\n\n{text}", ground_truth, extra_info, **kwargs)
