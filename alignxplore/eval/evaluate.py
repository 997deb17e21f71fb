"""Score preference summaries with a downstream judge: the paper's evaluation.

    python -m alignxplore.eval.evaluate --judge-backend vllm --judge-model Qwen/Qwen3-8B \\
        --data-dir data/benchmark --summaries-dir outputs/alignxplore-plus \\
        --modes direct,full,streaming --results-dir results --run-name alignxplore-plus

The judge is loaded once for every benchmark and mode. For each benchmark (file order) the
user's chosen item goes to A or B by a seeded coin flip (:mod:`alignxplore.judge`), the judge
sees the summary (``full``/``streaming``: ``profile`` from ``SUMMARIES_DIR/MODE/NAME.jsonl``)
or the raw full-history triples (``direct`` baseline), and P(A), P(B) are read at the answer
position. Writes ``RESULTS_DIR/RUN/MODE/NAME.json`` with the metrics, the per-item records and
the run's configuration (judge, seed, selection, package versions, git commit).

Resumable: scored items are appended to ``NAME.items.jsonl`` as they finish, so a restarted
run judges only what is missing; items the judge server failed on are retried.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from ..cli import add_backend_args, backend_from_args, git_commit, package_versions, run_main
from ..formats import ResumableJsonl, read_jsonl, validate_summary_row
from ..history import MAX_PROMPT_TOKENS, full_history, truncate_to_budget
from ..judge import JUDGE_SEED, JUDGE_TEMPERATURE, SELECTION_MODES, JudgeItem, chosen_at_a, score_items
from ..metrics import summarize
from ..prompts import history_as_summary, judge_messages
from .registry import DEFAULT_REGISTRY, Benchmark, load_benchmark_rows, load_registry, select_benchmarks

log = logging.getLogger("alignxplore.evaluate")
EVAL_MODES = ("direct", "full", "streaming")


def load_summaries(path: Path) -> dict[str, dict]:
    return {r["userid"]: r for r in read_jsonl(path, validate_summary_row, keep_where=True)}


def build_items(rows: list[dict], bench: Benchmark, mode: str, summaries: dict | None, judge, budget: int, seed: int) -> list[tuple[str, JudgeItem]]:
    """(userid, item) per benchmark row that has what the mode needs, in file order."""
    placement = chosen_at_a(len(rows), seed)
    items = []
    for row, at_a in zip(rows, placement):
        t = row["target"]
        if mode == "direct":
            # The raw history takes the summary's place; cut it to the judge's budget the
            # same way preference prompts are cut (most recent half, repeatedly).
            def n_tokens(h: list[dict], t: dict = t) -> int:
                return judge.count_prompt_tokens(judge_messages(t["query"], history_as_summary(h), t["chosen"], t["rejected"]), enable_thinking=False)

            hist, _ = truncate_to_budget(full_history(row["history"], bench.split, row["_where"]), n_tokens, budget, row["_where"])
            summary = history_as_summary(hist)
        else:
            s = summaries.get(row["userid"])
            if s is None:
                continue
            summary = s["profile"]
        items.append((row["userid"], JudgeItem(t["query"], summary, t["chosen"], t["rejected"], at_a)))
    return items


def evaluate_benchmark(judge, bench: Benchmark, mode: str, rows: list[dict], summaries: dict | None, out_dir: Path, config: dict) -> dict:
    items = build_items(rows, bench, mode, summaries, judge, config["judge_prompt_budget"], config["seed"])
    if mode != "direct" and len(items) < len(rows):
        log.warning("%s/%s: %d of %d users have no summary; they are not scored", mode, bench.name, len(rows) - len(items), len(rows))
    sink = ResumableJsonl(out_dir / f"{bench.name}.items.jsonl", key=lambda r: r["userid"])
    todo = [(u, it) for u, it in items if u not in sink]
    t0 = time.time()
    if todo:
        results = score_items(judge, [it for _, it in todo], selection=config["selection"], seed=config["seed"], temperature=config["selection_temperature"])
        sink.append([{"userid": u} | r for (u, _), r in zip(todo, results) if "error" not in r])
        failed = [{"userid": u} | r for (u, _), r in zip(todo, results) if "error" in r]
    else:
        failed = []
    records = [sink.done[u] for u, _ in items if u in sink] + failed
    metrics = summarize(records, with_auc=bench.auc)
    result = {
        "benchmark": bench.name,
        "column": bench.column,
        "mode": mode,
        "label": config["label"] if mode != "direct" else f"{Path(config['judge_model']).name} (direct)",
        "metrics": metrics,
        "config": config | {"benchmark": bench.__dict__},
        "judge_seconds": round(time.time() - t0, 3),
        "items": records,
    }
    out = out_dir / f"{bench.name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    tmp.replace(out)
    log.info("%s/%s: accuracy %s over %d items (%d failed) -> %s", mode, bench.name, f"{metrics.get('accuracy', float('nan')):.2f}", metrics["n_scored"], metrics["n_failed"], out)
    return result


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder of the benchmark files")
    ap.add_argument("--summaries-dir", default=None, help="generation output folder (has full/ and/or streaming/)")
    ap.add_argument("--results-dir", required=True, help="results go to RESULTS_DIR/RUN_NAME/MODE/NAME.json")
    ap.add_argument("--run-name", default=None, help="row label in the table (default: the summaries folder's name)")
    ap.add_argument("--modes", default="direct,full,streaming", help=f"comma-separated subset of {EVAL_MODES}")
    ap.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    ap.add_argument("--benchmarks", default="all")
    ap.add_argument("--limit", type=int, default=None, help="first N users per benchmark")
    ap.add_argument("--seed", type=int, default=JUDGE_SEED, help="A/B placement seed")
    ap.add_argument("--selection", choices=SELECTION_MODES, default="argmax", help="argmax of P(A)/P(B), or sample at --selection-temperature")
    ap.add_argument("--selection-temperature", type=float, default=JUDGE_TEMPERATURE)
    ap.add_argument("--judge-prompt-budget", type=int, default=MAX_PROMPT_TOKENS, help="token budget of direct-baseline judge prompts")
    add_backend_args(ap, "judge-", what="judge")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in EVAL_MODES]
    if bad:
        raise SystemExit(f"error: unknown mode(s) {bad}; expected {EVAL_MODES}")
    if any(m != "direct" for m in modes) and not args.summaries_dir:
        raise SystemExit("error: --summaries-dir is needed for the full and streaming modes")
    benches = select_benchmarks(load_registry(args.registry), args.benchmarks)
    run_name = args.run_name or (Path(args.summaries_dir).name if args.summaries_dir else "direct")

    # Read and validate every input before the judge is loaded.
    rows = {b.name: load_benchmark_rows(b.path(args.data_dir), args.limit) for b in benches}
    summaries: dict[tuple[str, str], dict] = {}
    for mode in modes:
        if mode == "direct":
            continue
        for b in benches:
            path = Path(args.summaries_dir) / mode / f"{b.name}.jsonl"
            if path.is_file():
                summaries[(mode, b.name)] = load_summaries(path)
            else:
                log.warning("no %s summaries for %s (%s): skipped", mode, b.name, path)

    config = {
        "label": run_name,
        "judge_backend": args.judge_backend,
        "judge_model": args.judge_model,
        "seed": args.seed,
        "selection": args.selection,
        "selection_temperature": args.selection_temperature,
        "judge_readout": "teacher-forced next-token P(' A') vs P(' B'), thinking off",
        "judge_prompt_budget": args.judge_prompt_budget,
        "summaries_dir": args.summaries_dir,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    judge = backend_from_args(args, "judge-")
    try:
        for mode in modes:
            for b in benches:
                if mode != "direct" and (mode, b.name) not in summaries:
                    continue
                out_dir = Path(args.results_dir) / run_name / mode
                evaluate_benchmark(judge, b, mode, rows[b.name], summaries.get((mode, b.name)), out_dir, config)
    finally:
        judge.close()
    return 0


if __name__ == "__main__":
    run_main(main)
