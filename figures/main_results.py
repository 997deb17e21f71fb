"""Main results (the paper's main table as bars): per benchmark, our rows beside the published
AlignXplore+ rows, one panel per section (full history, streaming, direct).

    python figures/main_results.py --results-dir outputs/results --out outputs/figures/main_results.png
"""
from __future__ import annotations

import argparse

from _common import OURS_COLORS, PAPER_STYLE, pyplot, save  # noqa: I001  (also puts the repo on sys.path)

from alignxplore.eval.table import Row, our_rows, paper_rows

SECTION_TITLES = {"full": "Full history", "streaming": "Streaming", "direct": "Direct (raw history)"}
PAPER_REFERENCE = {"full": "AlignXplore+", "streaming": "AlignXplore+", "direct": "Qwen3-8B non-thinking"}


def draw(rows: list[Row], path, *, with_paper: bool = True):
    """Grouped bars, one panel per section that has rows of ours (or the paper's, if none)."""
    plt = pyplot()
    ours = [r for r in rows if r.source == "ours"]
    sections = [s for s in SECTION_TITLES if any(r.section == s for r in ours)] or ["full"]
    fig, axes = plt.subplots(len(sections), 1, figsize=(11, 3.6 * len(sections)), squeeze=False)
    for ax, section in zip(axes[:, 0], sections):
        mine = [r for r in ours if r.section == section]
        paper = [r for r in rows if r.source == "paper" and r.section == section and r.label == PAPER_REFERENCE[section]] if with_paper else []
        shown = paper + mine
        cols = _columns(shown)
        width = 0.8 / max(1, len(shown))
        for k, r in enumerate(shown):
            xs = [i + (k - (len(shown) - 1) / 2) * width for i in range(len(cols))]
            vals = [r.values.get(c, 0.0) for c in cols]
            style = PAPER_STYLE if r.source == "paper" else dict(color=OURS_COLORS[(k - len(paper)) % len(OURS_COLORS)])
            ax.bar(xs, vals, width, label=f"{r.label} ({r.source})", **style)
        ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right")
        ax.set_ylabel("judge accuracy (%)")
        ax.set_ylim(0, 100)
        ax.axhline(50, color="grey", lw=0.8, ls="--")
        ax.set_title(SECTION_TITLES[section])
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    out = save(fig, path)
    plt.close(fig)
    return out


def _columns(rows: list[Row]) -> list[str]:
    """The paper's nine in order, then custom benchmarks' (cross-task ones have their own figure)."""
    from alignxplore.eval.paper_results import CROSS_TASK_COLUMNS, PAPER_COLUMNS

    present = {c for r in rows for c in r.values} - set(CROSS_TASK_COLUMNS)
    return [c for c in PAPER_COLUMNS if c in present] + sorted(present - set(PAPER_COLUMNS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", required=True)
    ap.add_argument("--out", default="outputs/figures/main_results.png")
    ap.add_argument("--metric", default="accuracy")
    ap.add_argument("--no-paper", action="store_true", help="our rows only")
    args = ap.parse_args(argv)
    ours = our_rows(args.results_dir, args.metric)
    rows = ([] if args.no_paper else paper_rows()) + ours
    print(draw(rows, args.out, with_paper=not args.no_paper))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
