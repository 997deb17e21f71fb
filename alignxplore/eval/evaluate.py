"""Score preference summaries with a downstream judge: the paper's evaluation.

    python -m alignxplore.eval.evaluate --judge-backend vllm --judge-model Qwen/Qwen3-8B \\
        --data-dir data/benchmark --summaries-dir outputs/alignxplore-plus \\
        --modes direct,full,streaming --results-dir results --run-name alignxplore-plus

The judge is loaded once for every benchmark and mode (the authors reloaded it per file),
after every benchmark and summaries file has been read and validated. Per benchmark file and
mode (docs/formats.md §2, §4):

* the items are the summaries file's users in benchmark order (``full``/``streaming``: the
  benchmark minus users the generator skipped; ``direct``: every benchmark user);
* A/B placement = ``random.Random(42).randint(0, 1)`` per item in that order, 1 = chosen is
  Item A; recommendation sets skip users with an empty history without drawing;
* the judge sees the ``profile`` summary, or for ``direct`` the wrapped raw history
  (``prompts.direct_baseline_summary``: selection style with the whole history;
  recommendation style with the whole history cut to its most recent half until the judge
  prompt, measured with ``history[-1]`` as the A/B pair, is under the budget; a user left
  with nothing is skipped);
* protocol ``sampled`` (default, the published one) or ``teacher-forced``
  (:mod:`alignxplore.judge`); P(A), P(B) are recorded for every item either way;
* the sampled answer gets ``--judge-max-new-tokens`` (16), except the direct baseline on a
  non-recommendation set, which gets ``--direct-selection-max-new-tokens`` (4,096, the
  authors' ``evaluate_direct_select.py``: a raw-history judge may answer wordily, and an
  answer cut at 16 tokens is unparseable, hence wrong). The value is recorded per result
  (``protocol.settings``) and per item, so a resumed run re-judges items sampled under another.

Writes ``RESULTS_DIR/RUN/MODE/NAME.json`` (the results format, :mod:`alignxplore.formats.results`): ``protocol`` (name + settings), ``metrics``
(:mod:`alignxplore.metrics`), ``accounting`` (every benchmark user: judged, failed, or
skipped with its reason), the per-item records and the run's configuration.

Resumable: judged items are appended to ``NAME.items.jsonl`` as they finish, so a restarted
run judges only what is missing (or was judged under another protocol); failed ones are retried.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from pathlib import Path

from ..backends.base import JudgeSampling
from ..cli import add_backend_args, backend_from_args, git_commit, package_versions, run_main
from ..preflight import check_output_dir
from ..formats import EVAL_MODES, DataError, ResumableJsonl, iter_jsonl, read_jsonl, validate_summary_row, write_results
from ..history import MAX_PROMPT_TOKENS, truncate_to_budget
from ..judge import JUDGE_SEED, PROTOCOLS, JudgeItem, ab_placement, score_items
from ..metrics import summarize
from ..model_protocols import protocol_for as model_protocol_for
from ..prompts import direct_baseline_summary, judge_messages
from .registry import DEFAULT_REGISTRY, Benchmark, load_benchmarks, load_registry, select_benchmarks

log = logging.getLogger("alignxplore.evaluate")
# The authors' direct selection baseline (evaluate_direct_select.py) samples up to 4,096 new
# tokens; their direct recommendation baseline and every summary-based judge 16.
DIRECT_SELECTION_MAX_NEW_TOKENS = 4096


# The metrics read from the teacher-forced P(A)/P(B); null for a judge without that read-out.
READOUT_METRICS = ("argmax_accuracy", "expected_accuracy", "expected_accuracy_se", "sampled_accuracy_sd", "mean_confidence",
                   "roc_auc", "authors_confidence", "authors_roc_auc")


def protocol_for(config: dict, bench: Benchmark, mode: str) -> dict:
    """The run's protocol, with the answer budget of this judge and mode: the direct selection
    baseline's 4,096; else the judge's own (GPT-OSS-20B: 2,048) or the run's (16)."""
    protocol = config["protocol"]
    if mode == "direct" and bench.kind.direct_long_answer:
        return protocol | {"settings": protocol["settings"] | {"max_new_tokens": config["direct_selection_max_new_tokens"]}}
    judge_tokens = (protocol.get("judge") or {}).get("judge_max_new_tokens")
    if judge_tokens:
        return protocol | {"settings": protocol["settings"] | {"max_new_tokens": judge_tokens}}
    return protocol


def load_summaries(path: Path) -> dict[str, dict]:
    return {r["userid"]: r for r in read_jsonl(path, validate_summary_row, keep_where=True, log=log.error)}


def load_generator_skips(summaries_path: Path) -> dict[str, str]:
    """userid -> reason, from the generator's ``NAME.skipped.jsonl`` next to the summaries."""
    path = summaries_path.with_suffix(".skipped.jsonl")
    if not path.is_file():
        return {}
    def check(obj, where: str) -> dict:
        if not isinstance(obj, dict) or obj.get("userid") is None:
            raise DataError(where, "userid", "missing")
        return obj

    return {str(r["userid"]): r.get("reason", "skipped by the generator") for r in iter_jsonl(path, check, log=log.error)}


def direct_history(row: dict, bench: Benchmark, judge, budget: int) -> list[dict]:
    """The history a direct baseline shows: cut by judge-prompt length where the task kind says
    so (recommendation sets)."""
    hist = list(row["history"])
    if not bench.kind.direct_history_cut or not hist:
        return hist

    def n_tokens(h: list[dict]) -> int:
        last = h[-1]  # the authors measured with the last behaviour as the A/B pair
        summary = direct_baseline_summary(h, bench.kind.direct_style)
        return judge.count_prompt_tokens(judge_messages(last["query"], summary, last["chosen"], last["rejected"]), enable_thinking=False)

    kept, _ = truncate_to_budget(hist, n_tokens, budget, row["_where"])
    return kept


def build_items(rows: list[dict], bench: Benchmark, mode: str, summaries: dict | None, judge, budget: int, seed: int,
                generator_skips: dict[str, str] | None = None) -> tuple[list[tuple[str, int, JudgeItem]], dict[str, str]]:
    """``([(userid, index, item)], {userid: skip reason})`` in the order the judge sees them.

    ``index`` is the item's position in that order (its sampling seed offset, stable across
    resumed runs)."""
    skipped: dict[str, str] = {}
    ordered: list[tuple[dict, str]] = []  # (row, summary)
    for row in rows:
        uid = row["userid"]
        if mode == "direct":
            hist = direct_history(row, bench, judge, budget)
            row_hist, summary = hist, direct_baseline_summary(hist, bench.kind.direct_style)
        else:
            s = summaries.get(uid) if summaries else None
            if s is None:
                skipped[uid] = (generator_skips or {}).get(uid, "no summary (generation failed or not run)")
                continue
            row_hist, summary = s["history"], s["profile"]
        ordered.append(({"userid": uid, "history": row_hist, "target": row["target"]}, summary))
    skip = [bench.kind.skip_empty_history and not r["history"] for r, _ in ordered]
    placement = ab_placement(len(ordered), seed, skip)
    items = []
    for (r, summary), at_a in zip(ordered, placement):
        if at_a is None:
            skipped[r["userid"]] = "empty history (recommendation set: not judged, no A/B draw)"
            continue
        t = r["target"]
        items.append((r["userid"], len(items), JudgeItem(t["query"], summary, t["chosen"], t["rejected"], at_a)))
    return items, skipped


def evaluate_benchmark(judge, bench: Benchmark, mode: str, rows: list[dict], summaries: dict | None, out_dir: Path, config: dict,
                       generator_skips: dict[str, str] | None = None) -> dict:
    protocol = protocol_for(config, bench, mode)
    sampling = JudgeSampling(**protocol["settings"])
    items, skipped = build_items(rows, bench, mode, summaries, judge, config["judge_prompt_budget"], config["placement_seed"], generator_skips)
    for uid, reason in skipped.items():
        log.info("%s/%s: user %s not judged: %s", mode, bench.name, uid, reason)
    sink = ResumableJsonl(out_dir / f"{bench.name}.items.jsonl", key=lambda r: r["userid"])

    def done(uid: str, item: JudgeItem) -> bool:
        rec = sink.done.get(uid)
        same_budget = protocol["name"] != "sampled" or rec is not None and rec.get("max_new_tokens", JudgeSampling().max_new_tokens) == sampling.max_new_tokens
        return rec is not None and rec.get("protocol") == protocol["name"] and rec.get("chosen_is_a") == item.chosen_is_a and same_budget

    todo = [(u, k, it) for u, k, it in items if not done(u, it)]
    t0 = time.time()
    failed = []
    if todo:
        seeds = [sampling.seed + k for _, k, _ in todo]
        results = score_items(judge, [it for _, _, it in todo], protocol=protocol["name"], sampling=sampling, seeds=seeds,
                              parse=model_protocol_for(config["judge_model"]).selection)
        recs = [{"userid": u, "protocol": protocol["name"], "max_new_tokens": sampling.max_new_tokens} | r for (u, _, _), r in zip(todo, results)]
        sink.append([r for r in recs if "error" not in r])
        failed = [r for r in recs if "error" in r]
    failed_ids = {r["userid"] for r in failed}
    records = [sink.done[u] for u, _, _ in items if u not in failed_ids] + failed
    metrics = summarize(records, with_auc=bench.auc)
    if not (protocol.get("judge") or {}).get("readout_available", True):
        metrics |= {k: None for k in READOUT_METRICS if k in metrics}
        metrics["readout_unavailable"] = "this judge's teacher-forced read-out skips its own analysis (alignxplore/model_protocols.py)"
    accounting = {
        "n_benchmark_users": len(rows),
        "n_judged": metrics["n_scored"],
        "n_failed": metrics["n_failed"],
        "n_skipped": len(skipped),
        "skipped_by_reason": dict(Counter(skipped.values())),
        "skipped": skipped,
    }
    assert accounting["n_judged"] + accounting["n_failed"] + accounting["n_skipped"] == len(rows), "a user fell through"
    result = {
        "benchmark": bench.name,
        "column": bench.column,
        "mode": mode,
        "label": config["label"] if mode != "direct" else f"{Path(config['judge_model']).name} (direct)",
        "protocol": protocol,
        "metrics": metrics,
        "accounting": accounting,
        "config": config | {"benchmark": bench.__dict__},
        "judge_seconds": round(time.time() - t0, 3),
        "items": records,
    }
    out = out_dir / f"{bench.name}.json"
    write_results(out, result)  # the results format: alignxplore.formats.results
    log.info(
        "%s/%s: accuracy %s (%s protocol; argmax %s, expected %s) over %d judged, %d failed, %d skipped -> %s",
        mode, bench.name, _pct(metrics.get("accuracy")), protocol["name"], _pct(metrics.get("argmax_accuracy")),
        _pct(metrics.get("expected_accuracy")), metrics["n_scored"], metrics["n_failed"], len(skipped), out,
    )
    return result


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.eval.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder of the benchmark files, or a hub dataset (VanillaH1/AlignXplorePlus-Benchmark)")
    ap.add_argument("--summaries-dir", default=None, help="generation output folder (has full/ and/or streaming/)")
    ap.add_argument("--results-dir", required=True, help="results go to RESULTS_DIR/RUN_NAME/MODE/NAME.json")
    ap.add_argument("--run-name", default=None, help="row label in the table (default: the summaries folder's name)")
    ap.add_argument("--modes", default="direct,full,streaming", help=f"comma-separated subset of {EVAL_MODES}")
    ap.add_argument("--registry", default=str(DEFAULT_REGISTRY))
    ap.add_argument("--benchmarks", default="all")
    ap.add_argument("--limit", type=int, default=None, help="first N users per benchmark")
    ap.add_argument("--seed", type=int, default=JUDGE_SEED, help="A/B placement seed (the authors': 42)")
    ap.add_argument("--judge-protocol", choices=PROTOCOLS, default="sampled",
                    help="sampled: the published protocol (sampled answer, parsed); teacher-forced: argmax of P(A)/P(B)")
    d = JudgeSampling()
    g = ap.add_argument_group("sampled judge answer (paper defaults)")
    g.add_argument("--judge-temperature", type=float, default=d.temperature)
    g.add_argument("--judge-top-k", type=int, default=d.top_k)
    g.add_argument("--judge-top-p", type=float, default=d.top_p)
    g.add_argument("--judge-max-new-tokens", type=int, default=d.max_new_tokens)
    g.add_argument("--judge-seed", type=int, default=d.seed, help="item i of a file is sampled with seed JUDGE_SEED + i")
    g.add_argument("--direct-selection-max-new-tokens", type=int, default=DIRECT_SELECTION_MAX_NEW_TOKENS,
                   help="answer budget of the direct baseline on non-recommendation sets (the authors' 4,096)")
    ap.add_argument("--judge-prompt-budget", type=int, default=MAX_PROMPT_TOKENS, help="token budget of recommendation direct-baseline judge prompts")
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
    rows = load_benchmarks(args.data_dir, benches, args.limit)
    summaries: dict[tuple[str, str], dict] = {}
    skips: dict[tuple[str, str], dict] = {}
    for mode in modes:
        if mode == "direct":
            continue
        for b in benches:
            path = Path(args.summaries_dir) / mode / f"{b.name}.jsonl"
            if path.is_file():
                summaries[(mode, b.name)] = load_summaries(path)
                skips[(mode, b.name)] = load_generator_skips(path)
            else:
                log.warning("no %s summaries for %s (%s): skipped", mode, b.name, path)

    sampling = JudgeSampling(args.judge_temperature, args.judge_top_k, args.judge_top_p, args.judge_max_new_tokens, args.judge_seed)
    judge_protocol = model_protocol_for(args.judge_model)
    if args.judge_protocol == "teacher-forced" and not judge_protocol.readout_available:
        raise SystemExit(f"error: --judge-protocol teacher-forced is not defined for {args.judge_model} ({judge_protocol.note})")
    protocol = {
        "judge": judge_protocol.as_dict(),
        "name": args.judge_protocol,
        "settings": sampling.as_dict(),
        "parse_rule": "the judge's answer part (after the last </think>; GPT-OSS: its final channel, none = unparseable); json.loads, else json.loads of the first \\{.*\\} match; selection must be exactly 'Item A' or 'Item B'; unparseable = wrong",
        "thinking": False,
        "readout": "teacher-forced next-token P(' A') vs P(' B') after '{\"selection\": \"Item', recorded for every item",
    }
    config = {
        "label": run_name,
        "judge_backend": args.judge_backend,
        "judge_model": args.judge_model,
        "protocol": protocol,
        "placement_seed": args.seed,
        "placement": "random.Random(seed).randint(0, 1) per item in summaries-file order; 1 = chosen is Item A; recommendation sets skip empty histories without drawing",
        "judge_prompt_budget": args.judge_prompt_budget,
        "direct_selection_max_new_tokens": args.direct_selection_max_new_tokens,
        "summaries_dir": args.summaries_dir,
        "data_dir": args.data_dir,
        "limit": args.limit,
        "versions": package_versions(),
        "git_commit": git_commit(),
    }
    check_output_dir(args.results_dir, "--results-dir")
    judge = backend_from_args(args, "judge-")
    try:
        for mode in modes:
            for b in benches:
                if mode != "direct" and (mode, b.name) not in summaries:
                    continue
                out_dir = Path(args.results_dir) / run_name / mode
                evaluate_benchmark(judge, b, mode, rows[b.name], summaries.get((mode, b.name)), out_dir, config, skips.get((mode, b.name)))
    finally:
        judge.close()
    return 0


if __name__ == "__main__":
    run_main(main)
