"""Model transfer (the published Model_Transfer figure): per downstream judge, the four
aggregates of the full-history rows — In-domain Rec. = mean(MIND, Amazon), In-domain R.S. =
AlignX, Out-of-domain Rec. = MovieLens, Out-of-domain R.S. = mean(Info., Style, Expertise,
PersonaMem) — for the published summary models and ours, ours judged by the SAME judge only.

    python figures/model_transfer.py --results-dir outputs/results --out outputs/figures/model_transfer.png

One panel per judge (Qwen3-8B, Qwen2.5-7B-Instruct, GPT-OSS-20B); a result's judge is read
from its ``config.judge_model``. An aggregate missing a column in our results is not drawn.
"""
from __future__ import annotations

import argparse

from _common import OURS_COLORS, PAPER_SHADES, judge_name, load_results, pyplot, save  # noqa: I001

from alignxplore.eval.paper_results import MAIN_JUDGE, MODEL_TRANSFER_AGGREGATES, MODEL_TRANSFER_ROWS, aggregates, judge_full_rows

JUDGES = (MAIN_JUDGE, "Qwen2.5-7B-Instruct", "GPT-OSS-20B")


def our_aggregates(results: list[dict], metric: str = "accuracy") -> dict[str, dict[str, dict[str, float | None]]]:
    """judge -> our run label -> aggregates, over full-history results. A judge with no
    published table (a tiny or local one, the demo's) goes in the main judge's panel, as in
    ``python -m alignxplore.eval.table``."""
    values: dict[str, dict[str, dict[str, float]]] = {}
    for res in results:
        v = res["metrics"].get(metric)
        judge = judge_name(res)
        if judge not in JUDGES:
            judge = MAIN_JUDGE
        if res["mode"] == "full" and v is not None:
            values.setdefault(judge, {}).setdefault(res["label"], {})[res["column"]] = v
    return {j: {label: aggregates(cols) for label, cols in runs.items()} for j, runs in values.items()}


def draw(ours: dict, path):
    plt = pyplot()
    groups = list(MODEL_TRANSFER_AGGREGATES)
    fig, axes = plt.subplots(1, len(JUDGES), figsize=(6.2 * len(JUDGES), 4.6), sharey=True)
    for ax, judge in zip(axes, JUDGES):
        published = judge_full_rows(judge)
        bars = [(f"{m} (paper)", aggregates(published[m]), dict(color=PAPER_SHADES[i], edgecolor="#333333", hatch="///", linewidth=0.6))
                for i, m in enumerate(MODEL_TRANSFER_ROWS)]
        bars += [(f"{label} (ours)", agg, dict(color=OURS_COLORS[i % len(OURS_COLORS)]))
                 for i, (label, agg) in enumerate(sorted(ours.get(judge, {}).items()))]
        width = 0.85 / len(bars)
        for k, (name, agg, style) in enumerate(bars):
            xs = [g + (k - (len(bars) - 1) / 2) * width for g in range(len(groups))]
            present = [(x, agg[grp]) for x, grp in zip(xs, groups) if agg[grp] is not None]
            if present:
                ax.bar([x for x, _ in present], [y for _, y in present], width, label=name, **style)
        ax.set_xticks(range(len(groups)), groups, rotation=15)
        ax.set_ylim(40, 90)
        ax.set_title(f"judge: {judge}")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0].set_ylabel("judge accuracy (%), full history")
    fig.tight_layout()
    out = save(fig, path)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", required=True)
    ap.add_argument("--out", default="outputs/figures/model_transfer.png")
    ap.add_argument("--metric", default="accuracy")
    args = ap.parse_args(argv)
    print(draw(our_aggregates(load_results(args.results_dir), args.metric), args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
