"""Task transfer (the published Task_Transfer figure): full-history accuracy when the summary
comes from one task's history and is judged on the other task's target — R.S. → Rec.,
Rec. → R.S. and their average — published rows beside ours.

    python figures/task_transfer.py --results-dir outputs/results --out outputs/figures/task_transfer.png
"""
from __future__ import annotations

import argparse

from _common import OURS_COLORS, PAPER_SHADES, pyplot, save  # noqa: I001

from alignxplore.eval.cross_task import our_cross_task_rows
from alignxplore.eval.paper_results import CROSS_TASK_COLUMNS, CROSS_TASK_RESULTS


def draw(ours: dict[str, dict[str, float]], path):
    plt = pyplot()
    groups = [*CROSS_TASK_COLUMNS, "AVG"]
    bars = [(f"{m} (paper)", dict(zip(groups, vals)), dict(color=PAPER_SHADES[i + 1], edgecolor="#333333", hatch="///", linewidth=0.6))
            for i, (m, vals) in enumerate(CROSS_TASK_RESULTS.items())]
    for i, (label, vals) in enumerate(sorted(ours.items())):
        row = dict(vals)
        if all(c in vals for c in CROSS_TASK_COLUMNS):
            row["AVG"] = sum(vals[c] for c in CROSS_TASK_COLUMNS) / len(CROSS_TASK_COLUMNS)
        bars.append((f"{label} (ours)", row, dict(color=OURS_COLORS[i % len(OURS_COLORS)])))
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.85 / len(bars)
    for k, (name, row, style) in enumerate(bars):
        pts = [(g + (k - (len(bars) - 1) / 2) * width, row[grp]) for g, grp in enumerate(groups) if grp in row]
        ax.bar([x for x, _ in pts], [y for _, y in pts], width, label=name, **style)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("judge accuracy (%), full history")
    ax.set_title("Cross-task transfer")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    out = save(fig, path)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", required=True)
    ap.add_argument("--out", default="outputs/figures/task_transfer.png")
    ap.add_argument("--metric", default="accuracy")
    args = ap.parse_args(argv)
    print(draw(our_cross_task_rows(args.results_dir, args.metric), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
