"""Cross-task transfer: the summary is inferred from one task's history and judged on the
other task's target of the same user (the paper's "R.S. → Rec." and "Rec. → R.S.", full history).

    # join two benchmark-format files of the SAME users on userid, both directions
    python -m alignxplore.eval.cross_task join --history data/benchmark/pairs_rs_upi.jsonl \\
        --target data/benchmark/pairs_rec_upi.jsonl --out data/benchmark/rs_to_rec_upi.jsonl
    python -m alignxplore.eval.cross_task join --history data/benchmark/pairs_rec_upi.jsonl \\
        --target data/benchmark/pairs_rs_upi.jsonl --out data/benchmark/rec_to_rs_upi.jsonl
    # then summaries and judge with the normal launchers and the cross-task registry
    bash eval/generate_preference.sh --registry eval/benchmarks_cross_task.yaml   # MODE=full (the default)
    RUN_NAME=... MODES=full bash eval/evaluation.sh --registry eval/benchmarks_cross_task.yaml
    # ours beside the published rows
    python -m alignxplore.eval.cross_task table --results-dir outputs/results

What a user must supply (the authors did not release their paired users): two benchmark files
(``{userid, history, target}``, docs/formats.md §1) over the same people, one whose history and
target are response-selection behaviours, one with recommendation behaviours; the join keeps the
history of the first and the target of the second. A joined row is an ordinary benchmark row
(``cross_task`` records where each part came from), registered in
``eval/benchmarks_cross_task.yaml`` with split rule ``half``, whose full-history mode uses the
whole history (the paper's setting); the task kind is the *target's* (it decides the judge's
skip rule and the AUC).

Users on one side only are counted, never silently dropped: the join prints and writes
``OUT.join.json`` (joined, only in the history file, only in the target file, with their ids)
and logs a warning; no user in common is an error. Rows keep the target file's order.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..cli import run_main
from ..formats import DataError, iter_results, write_jsonl
from .paper_results import CROSS_TASK_COLUMNS, CROSS_TASK_RESULTS
from .registry import load_benchmark_rows

log = logging.getLogger("alignxplore.cross_task")


def join_users(history_rows: list[dict], target_rows: list[dict], *, history_from: str = "history", target_from: str = "target") -> tuple[list[dict], dict]:
    """``(joined rows, report)``: one row per userid in both, in ``target_rows`` order."""
    by_id = {r["userid"]: r for r in history_rows}
    target_ids = {r["userid"] for r in target_rows}
    rows = []
    for t in target_rows:
        h = by_id.get(t["userid"])
        if h is None:
            continue
        row = {"userid": t["userid"], "history": h.get("history_messages", h["history"]), "target": t["target"],
               "cross_task": {"history_from": history_from, "target_from": target_from}}
        rows.append(row)
    only_h = [r["userid"] for r in history_rows if r["userid"] not in target_ids]
    only_t = [r["userid"] for r in target_rows if r["userid"] not in by_id]
    report = {"history_from": history_from, "target_from": target_from, "joined": len(rows),
              "only_in_history_file": len(only_h), "only_in_target_file": len(only_t),
              "only_in_history_file_ids": only_h, "only_in_target_file_ids": only_t}
    return rows, report


def join_files(history: str | Path, target: str | Path, out: str | Path) -> dict:
    """Join two benchmark files into ``out`` and write ``out.join.json``; returns the report."""
    h_rows, t_rows = load_benchmark_rows(Path(history)), load_benchmark_rows(Path(target))
    rows, report = join_users(h_rows, t_rows, history_from=str(history), target_from=str(target))
    if not rows:
        raise DataError(str(target), "userid", f"no user in common with {history}: nothing to join")
    if report["only_in_history_file"] or report["only_in_target_file"]:
        log.warning("cross-task join %s + %s: %d joined, %d only in the history file, %d only in the target file (left out)",
                    history, target, report["joined"], report["only_in_history_file"], report["only_in_target_file"])
    out = Path(out)
    write_jsonl(out, rows)
    out.with_suffix(".join.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return report


def our_cross_task_rows(results_dir: str | Path, metric: str = "accuracy") -> dict[str, dict[str, float]]:
    """label -> {cross-task column: value} over the full-history results JSON below ``results_dir``."""
    rows: dict[str, dict[str, float]] = {}
    for _, res in iter_results(results_dir):
        column, mode, label, value = res["column"], res["mode"], res["label"], res["metrics"].get(metric)
        if column in CROSS_TASK_COLUMNS and mode == "full" and value is not None:
            rows.setdefault(label, {})[column] = value
    return rows


def render_table(ours: dict[str, dict[str, float]], metric: str = "accuracy") -> str:
    """Markdown: the published rows, then ours (average over the directions present)."""
    lines = [f"# Cross-task transfer, full history: {metric} (%)", "",
             "| model | source | " + " | ".join(CROSS_TASK_COLUMNS) + " | AVG |", "|---|---|" + "---|" * (len(CROSS_TASK_COLUMNS) + 1)]
    for label, (a, b, avg) in CROSS_TASK_RESULTS.items():
        lines.append(f"| {label} | paper | {a:.2f} | {b:.2f} | {avg:.2f} |")
    for label, vals in ours.items():
        cells = [f"{vals[c]:.2f}" if c in vals else "–" for c in CROSS_TASK_COLUMNS]
        avg = sum(vals.values()) / len(vals)
        lines.append(f"| {label} | ours | " + " | ".join(cells) + f" | {avg:.2f}{'' if len(vals) == len(CROSS_TASK_COLUMNS) else f' ({len(vals)}/2)'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    j = sub.add_parser("join", help="join two benchmark files on userid (history of one, target of the other)")
    j.add_argument("--history", required=True, help="benchmark file whose histories are summarised")
    j.add_argument("--target", required=True, help="benchmark file whose targets are judged")
    j.add_argument("--out", required=True, help="joined benchmark file (register it in eval/benchmarks_cross_task.yaml)")
    t = sub.add_parser("table", help="ours beside the published cross-task rows")
    t.add_argument("--results-dir", required=True)
    t.add_argument("--metric", default="accuracy")
    t.add_argument("--out", default=None, help="also write the markdown here")
    args = ap.parse_args(argv)
    if args.command == "join":
        report = join_files(args.history, args.target, args.out)
        print(json.dumps({k: v for k, v in report.items() if not k.endswith("_ids")}))
        return 0
    md = render_table(our_cross_task_rows(args.results_dir, args.metric), args.metric)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md)
    print(md, end="")
    return 0


if __name__ == "__main__":
    run_main(main)
