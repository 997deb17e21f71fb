"""Generate preference summaries for every benchmark, full-history or streaming.

    # one GPU, vLLM
    python -m alignxplore.eval.generate --mode full --backend vllm --model VanillaH1/AlignXplore-Plus \\
        --data-dir data/benchmark --out-dir outputs/summaries/released
    # a node, tensor parallel 8 ... --tensor-parallel-size 8 ; a server: --backend openai --base-url URL
    # CPU, tiny model: see `make demo`

Writes ``{out_dir}/{mode}/{benchmark}.jsonl``: the benchmark record (``history`` = the
truncated history, as the authors' files had it) plus ``raw_prompt``, ``first_response`` and
``profile`` (streaming adds ``last_profile``, ``raw_prompt_next`` and ``second_response``;
``profile`` is always the summary the judge reads), ``history_dropped`` and ``n_triples``.
Users the authors' scripts skipped (streaming: empty history after truncation) go to
``{benchmark}.skipped.jsonl`` with the reason; ``{benchmark}.stats.json`` counts users
summarised / skipped / truncated / rendered with a zero-triple pass (also logged).

History rules (docs/formats.md §3, :mod:`alignxplore.history`): the whole history is truncated
once, before the split, on the no-past prompt of the stage (full: the quoted ``"Not
Provided."`` rendering, budget 16,384; streaming: recommendation sets only, 16,384 / 1.2),
then split. Prompts per stage: full -> ``prompts.full_history_messages``; streaming ->
``prompts.streaming_messages`` (pass 2 gets pass 1's summary, an empty one as the empty
string).

The model is loaded once for all benchmarks, after every benchmark file has been read and
validated. Work is done in chunks that are appended and fsynced as they finish; a killed run,
restarted with the same command, continues where it stopped without duplicates. Items the
HTTP backend could not generate are left out and reported (exit code 3); rerun to retry them.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from ..backends.base import Backend, SamplingConfig
from ..cli import add_backend_args, add_sampling_args, backend_from_args, check_backend_args, run_main, sampling_from_args
from ..preflight import check_output_dir
from ..formats import ResumableJsonl
from ..history import MAX_PROMPT_TOKENS, full_history, streaming_passes, streaming_skip_reason, truncate_to_budget, truncation_budget
from ..model_protocols import protocol_for
from ..prompts import extract_summary, full_history_messages, streaming_messages
from .registry import DEFAULT_REGISTRY, Benchmark, load_benchmarks, load_registry, select_benchmarks

log = logging.getLogger("alignxplore.generate")
MODES = ("full", "streaming")
# The no-past prompt each mode's truncation is measured on (the authors' build_prompt of that script).
NO_PAST_PROMPT = {"full": full_history_messages, "streaming": streaming_messages}


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


class SummaryGenerator:
    """Applies the history rules and runs one chunk of rows through a backend."""

    def __init__(self, backend: Backend, sampling: SamplingConfig, prompt_budget: int = MAX_PROMPT_TOKENS, extract=extract_summary):
        # extract: response -> summary (the model's protocol: after </think>, or GPT-OSS's final channel)
        self.extract = extract
        self.backend = backend
        self.sampling = sampling
        self.budget = prompt_budget

    def truncated(self, row: dict, bench: Benchmark, mode: str) -> tuple[list[dict], int]:
        """The whole history cut once to the mode's budget (before any split)."""
        budget = truncation_budget(mode, bench.split, self.budget)
        if budget is None:
            return list(row["history"]), 0
        render = NO_PAST_PROMPT[mode]
        return truncate_to_budget(row["history"], lambda h: self.backend.count_prompt_tokens(render(h)), budget, row["_where"])

    def full(self, rows: list[dict], bench: Benchmark) -> tuple[list[dict], list[dict], int]:
        """(records, skipped, n_failed). Full mode keeps every user, even with zero triples."""
        prepared = []
        for row in rows:
            hist, dropped = self.truncated(row, bench, "full")
            part = full_history(hist, bench.split, row["_where"])
            prepared.append((row, hist, dropped, part, full_history_messages(part)))
        gens = self.backend.generate([p[-1] for p in prepared], self.sampling)
        out, failed = [], 0
        for (row, hist, dropped, part, prompt), g in zip(prepared, gens):
            if not g.ok:
                failed += 1
                log.warning("%s: generation failed: %s", row["_where"], g.error)
                continue
            out.append(_public(row) | {"history": hist, "raw_prompt": prompt, "first_response": g.text,
                                       "profile": self.extract(g.text), "history_dropped": dropped, "n_triples": len(part)})
        return out, [], failed

    def streaming(self, rows: list[dict], bench: Benchmark) -> tuple[list[dict], list[dict], int]:
        """(records, skipped, n_failed). Skips users whose truncated history is empty."""
        live, skipped = [], []
        for row in rows:
            hist, dropped = self.truncated(row, bench, "streaming")
            reason = streaming_skip_reason(hist)
            if reason:
                skipped.append({"userid": row["userid"], "reason": reason, "where": row["_where"], "history_dropped": dropped})
                continue
            live.append((row, hist, dropped, *streaming_passes(hist, bench.split, row["_where"])))
        first = [streaming_messages(p1) for _, _, _, p1, _ in live]
        gens1 = self.backend.generate(first, self.sampling)
        ok1 = [i for i, g in enumerate(gens1) if g.ok]
        # An empty pass-1 summary stays empty in the pass-2 slot, as in the authors' script.
        second = {i: streaming_messages(live[i][4], past=self.extract(gens1[i].text)) for i in ok1}
        gens2 = dict(zip(ok1, self.backend.generate([second[i] for i in ok1], self.sampling)))
        out, failed = [], 0
        for i, (row, hist, dropped, p1, p2) in enumerate(live):
            g1, g2 = gens1[i], gens2.get(i)
            if not g1.ok or g2 is None or not g2.ok:
                failed += 1
                log.warning("%s: generation failed: %s", row["_where"], g1.error or (g2.error if g2 else ""))
                continue
            out.append(
                _public(row)
                | {
                    "history": hist,
                    "raw_prompt": first[i],
                    "first_response": g1.text,
                    "last_profile": self.extract(g1.text),
                    "raw_prompt_next": second[i],
                    "second_response": g2.text,
                    "profile": self.extract(g2.text),
                    "history_dropped": dropped,
                    "n_triples": [len(p1), len(p2)],
                }
            )
        return out, skipped, failed


def generation_stats(n_users: int, records: list[dict], skipped: list[dict]) -> dict:
    """Every benchmark user accounted for: summarised, skipped (by reason) or still missing."""
    def zero_pass(r: dict) -> bool:
        n = r.get("n_triples", 1)
        return (0 in n) if isinstance(n, list) else n == 0

    return {
        "n_users": n_users,
        "n_summarised": len(records),
        "n_skipped": len(skipped),
        "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)),
        "n_missing": n_users - len(records) - len(skipped),  # failed generations, retried by a rerun
        "n_truncated": sum(r.get("history_dropped", 0) > 0 for r in records) + sum(s.get("history_dropped", 0) > 0 for s in skipped),
        "n_zero_triple_pass": sum(zero_pass(r) for r in records),
    }


def generate_benchmark(gen: SummaryGenerator, bench: Benchmark, mode: str, rows: list[dict], out_path: Path, chunk_size: int) -> int:
    """Generate the missing summaries of one benchmark; returns the number of failed items."""
    sink = ResumableJsonl(out_path, key=lambda r: str(r["userid"]))
    skip_sink = ResumableJsonl(out_path.with_suffix(".skipped.jsonl"), key=lambda r: str(r["userid"]))
    todo = [r for r in rows if r["userid"] not in sink and r["userid"] not in skip_sink]
    if len(todo) < len(rows):
        log.info("%s/%s: %d of %d already done, resuming", mode, bench.name, len(rows) - len(todo), len(rows))
    failed = 0
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"{mode}/{bench.name}")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        records, skipped, n_failed = (gen.full if mode == "full" else gen.streaming)(chunk, bench)
        sink.append(records)
        skip_sink.append(skipped)
        for s in skipped:
            log.info("%s/%s: %s skipped: %s", mode, bench.name, s["where"], s["reason"])
        failed += n_failed
        bar.update(len(chunk))
    bar.close()
    ids = {r["userid"] for r in rows}
    stats = generation_stats(len(rows), [r for k, r in sink.done.items() if k in ids], [r for k, r in skip_sink.done.items() if k in ids])
    out_path.with_suffix(".stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    log.info("%s/%s: %s", mode, bench.name, json.dumps(stats))
    return failed


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.eval.generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=MODES, default="full", help="full history (one pass) or streaming (two passes)")
    ap.add_argument("--data-dir", required=True, help="folder holding the benchmark files named in the registry, or a hub dataset (VanillaH1/AlignXplorePlus-Benchmark)")
    ap.add_argument("--out-dir", required=True, help="summaries go to OUT_DIR/MODE/NAME.jsonl")
    ap.add_argument("--registry", default=str(DEFAULT_REGISTRY), help="benchmark registry YAML")
    ap.add_argument("--benchmarks", default="all", help="'all' or comma-separated names")
    ap.add_argument("--limit", type=int, default=None, help="first N users per benchmark (smoke runs)")
    ap.add_argument("--chunk-size", type=int, default=256, help="users per engine call; the unit of resumption")
    ap.add_argument("--prompt-budget", type=int, default=MAX_PROMPT_TOKENS, help="prompt tokens; streaming uses budget/1.2")
    add_sampling_args(ap)
    add_backend_args(ap, what="summary model")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    benches = select_benchmarks(load_registry(args.registry), args.benchmarks)
    # Validate every input before loading a model: a typo should cost seconds, not a model load.
    data = load_benchmarks(args.data_dir, benches, args.limit)
    check_output_dir(args.out_dir, "--out-dir")
    check_backend_args(args)
    sampling = sampling_from_args(args)
    backend = backend_from_args(args, judge=False)
    model_protocol = protocol_for(args.model)
    if model_protocol.name != "default":
        log.info("summary model %s: %s protocol (%s)", args.model, model_protocol.name, model_protocol.note)
    gen = SummaryGenerator(backend, sampling, args.prompt_budget, extract=model_protocol.summary)
    failed = 0
    try:
        for b in benches:
            failed += generate_benchmark(gen, b, args.mode, data[b.name], Path(args.out_dir) / args.mode / f"{b.name}.jsonl", args.chunk_size)
    finally:
        backend.close()
    if failed:
        log.error("%d item(s) failed to generate; rerun the same command to retry them", failed)
        return 3
    return 0


if __name__ == "__main__":
    run_main(main)
