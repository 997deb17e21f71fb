"""Shared by the figure scripts: results JSON loading and one visual rule for every figure.

Published values are drawn as light hatched bars with a dark edge, ours as solid saturated
bars, and every legend entry says "paper" or "ours", so the two never look alike.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python figures/NAME.py` from anywhere: the repository's package
    sys.path.insert(0, str(ROOT))

PAPER_STYLE = dict(color="#d9d9d9", edgecolor="#333333", hatch="///", linewidth=0.8)
OURS_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
PAPER_SHADES = ("#f0f0f0", "#d9d9d9", "#bdbdbd", "#969696", "#737373")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_results(results_dir: str | Path) -> list[dict]:
    """Every evaluation results file below ``results_dir`` (alignxplore.formats.results), without items."""
    from alignxplore.formats import iter_results

    out = []
    for _, res in iter_results(results_dir):  # a malformed results file: one line naming file and field
        res.pop("items", None)
        out.append(res)
    return out


def judge_name(res: dict) -> str:
    """The judge a result was scored with, as the published tables name it (else its own name)."""
    from alignxplore.eval.paper_results import published_judge

    model = str((res.get("config") or {}).get("judge_model", ""))
    return published_judge(model) or Path(model).name or "unknown judge"


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path
