"""Render every results JSON found into the paper's main table, beside the published rows.

    python -m alignxplore.eval.table --results-dir outputs/results --out outputs/results/table   # .md, .html
    python -m alignxplore.eval.table --results-dir outputs/results --figure outputs/figures/results.png

Sections: direct / full-history / streaming; columns in the paper's order. Our cells show
``metrics.accuracy`` (the run's judge protocol; by default the sampled answer, as the paper
did) unless ``--metric`` picks another figure of the results JSON (``argmax_accuracy``,
``expected_accuracy``, ...); the heading names the metric; rows judged
under another protocol than the sampled one say so in their label.
Averages are recomputed from the nine columns (over the columns present for our rows, marked
``n/9`` when incomplete). Published averages that differ from their row's mean by more than
0.01 are flagged (two rows of the paper: AlignXplore full-history and DeepSeek-R1 streaming).
"""
from __future__ import annotations

import argparse
import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..cli import run_main
from ..formats import iter_results
from .paper_results import JUDGE_RESULTS, MAIN_JUDGE, PAPER_COLUMNS, PAPER_RESULTS, SECTIONS, TRANSFER_COLUMNS, published_judge

log = logging.getLogger("alignxplore.table")
AVG_TOLERANCE = 0.01


@dataclass
class Row:
    section: str
    label: str
    source: str  # "paper" or "ours"
    values: dict[str, float] = field(default_factory=dict)
    published_avg: float | None = None
    columns: tuple[str, ...] = PAPER_COLUMNS  # the judge's published columns (another judge: eight, no HiCUPID)

    @property
    def computed_avg(self) -> float | None:
        # Over the published columns; a row of only custom benchmarks (none of them) is
        # averaged over its own columns instead.
        vals = [self.values[c] for c in self.columns if c in self.values] or list(self.values.values())
        return sum(vals) / len(vals) if vals else None

    @property
    def n_columns(self) -> int:
        return sum(c in self.values for c in self.columns)

    @property
    def avg_mismatch(self) -> bool:
        return self.published_avg is not None and abs(self.published_avg - self.computed_avg) > AVG_TOLERANCE


def judge_columns(judge: str = MAIN_JUDGE) -> tuple[str, ...]:
    return PAPER_COLUMNS if judge == MAIN_JUDGE else TRANSFER_COLUMNS


def paper_rows(judge: str = MAIN_JUDGE) -> list[Row]:
    """The published rows of one downstream judge (the main table's, or a transfer table's)."""
    cols = judge_columns(judge)
    table = PAPER_RESULTS if judge == MAIN_JUDGE else JUDGE_RESULTS[judge]
    rows = []
    for section, models in table.items():
        for label, vals in models.items():
            rows.append(Row(section, label, "paper", dict(zip(cols, vals[: len(cols)])), vals[len(cols)], cols))
    return rows


TABLE_METRICS = ("accuracy", "argmax_accuracy", "expected_accuracy", "mean_confidence", "authors_confidence", "roc_auc", "authors_roc_auc")


def our_rows(results_dir: str | Path, metric: str = "accuracy", judge: str = MAIN_JUDGE) -> list[Row]:
    """One row per (mode, label) over the ``*.json`` results below ``results_dir`` scored by
    ``judge`` (their ``config.judge_model``); the main judge's table also takes results of
    judges with no published table (a tiny or local judge), never another published judge's."""
    rows: dict[tuple[str, str], Row] = {}
    for _, res in iter_results(results_dir):  # a malformed results file stops here, naming file and field
        section, label, column = res["mode"], res["label"], res["column"]
        acc = res["metrics"].get(metric)
        if acc is None:
            continue
        theirs = published_judge((res.get("config") or {}).get("judge_model", ""))
        if theirs != judge and not (judge == MAIN_JUDGE and theirs is None):
            continue
        if column in PAPER_COLUMNS and column not in judge_columns(judge):
            continue  # the transfer tables dropped HiCUPID: so does ours beside them
        protocol = (res.get("protocol") or {}).get("name", "sampled")
        if protocol != "sampled":
            label = f"{label} [{protocol}]"  # never mix protocols in one row
        row = rows.setdefault((section, label), Row(section, label, "ours", columns=judge_columns(judge)))
        row.values[column] = acc
    return list(rows.values())


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _avg_cell(row: Row) -> tuple[str, bool]:
    """(text, flagged)"""
    if row.source == "paper":
        if row.avg_mismatch:
            return f"{row.published_avg:.2f}† (mean {row.computed_avg:.2f})", True
        return _fmt(row.published_avg), False
    if 0 < row.n_columns < len(row.columns):
        return f"{_fmt(row.computed_avg)} ({row.n_columns}/{len(row.columns)})", False
    return _fmt(row.computed_avg), False


def _columns(rows: list[Row]) -> list[str]:
    """The paper's columns (those any row has; all of them once paper rows are shown), then
    custom benchmarks' columns."""
    published = rows[0].columns if rows else PAPER_COLUMNS
    paper = [c for c in published if any(c in r.values for r in rows)]
    extra = sorted({c for r in rows for c in r.values if c not in published})
    return paper + extra


def heading(metric: str = "accuracy", judge: str = MAIN_JUDGE) -> str:
    what = "accuracy (%) of the downstream judge, sampled answer as published" if metric == "accuracy" else f"{metric} (%) of the downstream judge"
    return f"Main results: {what}" if judge == MAIN_JUDGE else f"Cross-model transfer, downstream judge {judge}: {what}"


def render_markdown(rows: list[Row], metric: str = "accuracy", judge: str = MAIN_JUDGE) -> str:
    cols = _columns(rows)
    out = [f"# {heading(metric, judge)}", ""]
    flagged = False
    for section, title in SECTIONS.items():
        sec = [r for r in rows if r.section == section]
        if not sec:
            continue
        out += [f"## {title}", "", "| model | source | " + " | ".join(cols) + " | Avg. |", "|" + " --- |" * (len(cols) + 3)]
        for r in sec:
            avg, f = _avg_cell(r)
            flagged |= f
            out.append(f"| {r.label} | {r.source} | " + " | ".join(_fmt(r.values.get(c)) for c in cols) + f" | {avg} |")
        out.append("")
    if flagged:
        out.append("† published average differs from the mean of its row; the mean is shown beside it.")
    n = len(judge_columns(judge))
    out.append(f"Our averages are recomputed; `(n/{n})` marks rows with results for only n benchmarks.")
    return "\n".join(out) + "\n"


def render_html(rows: list[Row], metric: str = "accuracy", judge: str = MAIN_JUDGE) -> str:
    cols = _columns(rows)
    parts = ["<!doctype html><meta charset='utf-8'><title>AlignXplore+ results</title>",
             "<style>table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #999;padding:2px 6px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}tr.ours{background:#eef6ee}.flag{color:#b00}</style>",
             f"<h1>{html.escape(heading(metric, judge))}</h1>"]
    for section, title in SECTIONS.items():
        sec = [r for r in rows if r.section == section]
        if not sec:
            continue
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr><th>model</th><th>source</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "<th>Avg.</th></tr>")
        for r in sec:
            avg, f = _avg_cell(r)
            avg_html = f"<span class='flag'>{html.escape(avg)}</span>" if f else html.escape(avg)
            parts.append(f"<tr class='{r.source}'><td>{html.escape(r.label)}</td><td>{r.source}</td>" + "".join(f"<td>{_fmt(r.values.get(c))}</td>" for c in cols) + f"<td>{avg_html}</td></tr>")
        parts.append("</table>")
    parts.append(f"<p>† published average differs from the mean of its row. Our averages are recomputed; (n/{len(judge_columns(judge))}) marks incomplete rows.</p>")
    return "\n".join(parts) + "\n"


def plot_grouped_bars(rows: list[Row], path: str | Path) -> None:
    """The main-results figure; its code lives in ``figures/main_results.py`` (one script per
    paper figure), loaded from the repository so ``--figure`` keeps working."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "figures" / "main_results.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script}: the figure scripts ship with the repository checkout, not the installed package")
    spec = importlib.util.spec_from_file_location("alignxplore_figure_main_results", script)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(script.parent))  # its _common helper
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(script.parent))
    if not rows:
        raise ValueError("no rows to plot")
    module.draw(rows, path, with_paper=any(r.source == "paper" for r in rows))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.eval.table", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", required=True)
    ap.add_argument("--out", default=None, help="write OUT.md and OUT.html (default RESULTS_DIR/table)")
    ap.add_argument("--figure", default=None, help="also write a grouped bar chart (PNG)")
    ap.add_argument("--no-paper", action="store_true", help="only our rows")
    ap.add_argument("--metric", choices=TABLE_METRICS, default="accuracy",
                    help="figure shown for our rows (default: accuracy under the run's protocol, sampled by default)")
    ap.add_argument("--judge", default=MAIN_JUDGE,
                    help="downstream judge (a model name or path; e.g. the run's JUDGE_MODEL): the table of its published rows "
                         "(Qwen3-8B: the main table; Qwen2.5-7B-Instruct, GPT-OSS-20B: eight columns, PersonaMem last), ours judged by it")
    args = ap.parse_args(argv)
    judge = published_judge(args.judge) or MAIN_JUDGE
    ours = our_rows(args.results_dir, args.metric, judge)
    if not ours:
        log.warning("no results JSON under %s", args.results_dir)
    rows = ([] if args.no_paper else paper_rows(judge)) + ours
    # interleave: each section shows the paper rows, then ours
    rows.sort(key=lambda r: (list(SECTIONS).index(r.section), r.source != "paper"))
    default = "table" if judge == MAIN_JUDGE else "table_" + judge.lower().replace(".", "_")  # no dot: .md/.html are suffixes
    out = Path(args.out or Path(args.results_dir) / default)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = render_markdown(rows, args.metric, judge)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".html").write_text(render_html(rows, args.metric, judge))
    print(md)
    if args.figure:
        plot_grouped_bars(rows, args.figure)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    run_main(main)
