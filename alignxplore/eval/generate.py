"""Generate preference summaries for every benchmark, full-history or streaming.

    # one GPU, vLLM
    python -m alignxplore.eval.generate --mode full --backend vllm --model VanillaH1/AlignXplore-Plus \\
        --data-dir data/benchmark --out-dir outputs/alignxplore-plus
    # a node, tensor parallel 8 ... --tensor-parallel-size 8 ; a server: --backend openai --base-url URL
    # CPU, tiny model: see `make demo`

Writes ``{out_dir}/{mode}/{benchmark}.jsonl``: the benchmark record plus ``raw_prompt``,
``first_response`` and ``profile`` (streaming adds ``last_profile``, ``raw_prompt_next`` and
``second_response``; ``profile`` is always the summary the judge reads). The model is loaded
once for all benchmarks. Work is done in chunks that are appended and fsynced as they finish;
a killed run, restarted with the same command, continues where it stopped without duplicates.
Items the HTTP backend could not generate are left out and reported (exit code 3); rerun to
retry them.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm.auto import tqdm

from ..backends.base import Backend, SamplingConfig
from ..cli import add_backend_args, add_sampling_args, backend_from_args, run_main, sampling_from_args
from ..formats import ResumableJsonl
from ..history import MAX_PROMPT_TOKENS, STREAMING_BUDGET_DIVISOR, full_history, streaming_passes, truncate_to_budget
from ..prompts import extract_summary, preference_messages
from .registry import DEFAULT_REGISTRY, Benchmark, load_benchmark_rows, load_registry, select_benchmarks

log = logging.getLogger("alignxplore.generate")
MODES = ("full", "streaming")


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}


class SummaryGenerator:
    """Builds prompts within the token budget and runs one chunk of rows through a backend."""

    def __init__(self, backend: Backend, sampling: SamplingConfig, prompt_budget: int = MAX_PROMPT_TOKENS):
        self.backend = backend
        self.sampling = sampling
        self.budget = prompt_budget
        self.streaming_budget = int(prompt_budget / STREAMING_BUDGET_DIVISOR)

    def _prompt(self, triples: list[dict], past: str | None, budget: int, where: str) -> tuple[list[dict], int]:
        def n_tokens(t: list[dict]) -> int:
            return self.backend.count_prompt_tokens(preference_messages(t, past))

        kept, dropped = truncate_to_budget(triples, n_tokens, budget, where)
        return preference_messages(kept, past), dropped

    def full(self, rows: list[dict], bench: Benchmark) -> tuple[list[dict], int]:
        prompts, dropped = [], []
        for row in rows:
            p, d = self._prompt(full_history(row["history"], bench.split, row["_where"]), None, self.budget, row["_where"])
            prompts.append(p)
            dropped.append(d)
        gens = self.backend.generate(prompts, self.sampling)
        out, failed = [], 0
        for row, p, d, g in zip(rows, prompts, dropped, gens):
            if not g.ok:
                failed += 1
                log.warning("%s: generation failed: %s", row["_where"], g.error)
                continue
            out.append(_public(row) | {"raw_prompt": p, "first_response": g.text, "profile": extract_summary(g.text), "history_dropped": d})
        return out, failed

    def streaming(self, rows: list[dict], bench: Benchmark) -> tuple[list[dict], int]:
        passes = [streaming_passes(row["history"], bench.split, row["_where"]) for row in rows]
        first = [self._prompt(p1, None, self.streaming_budget, row["_where"]) for row, (p1, _) in zip(rows, passes)]
        gens1 = self.backend.generate([p for p, _ in first], self.sampling)
        live = [i for i, g in enumerate(gens1) if g.ok]
        second = {}
        for i in live:
            past = extract_summary(gens1[i].text)
            second[i] = self._prompt(passes[i][1], past, self.streaming_budget, rows[i]["_where"])
        gens2 = dict(zip(live, self.backend.generate([second[i][0] for i in live], self.sampling)))
        out, failed = [], 0
        for i, row in enumerate(rows):
            g1, g2 = gens1[i], gens2.get(i)
            if not g1.ok or g2 is None or not g2.ok:
                failed += 1
                log.warning("%s: generation failed: %s", row["_where"], g1.error or (g2.error if g2 else ""))
                continue
            out.append(
                _public(row)
                | {
                    "raw_prompt": first[i][0],
                    "first_response": g1.text,
                    "last_profile": extract_summary(g1.text),
                    "raw_prompt_next": second[i][0],
                    "second_response": g2.text,
                    "profile": extract_summary(g2.text),
                    "history_dropped": [first[i][1], second[i][1]],
                }
            )
        return out, failed


def generate_benchmark(gen: SummaryGenerator, bench: Benchmark, mode: str, rows: list[dict], out_path: Path, chunk_size: int) -> int:
    """Generate the missing summaries of one benchmark; returns the number of failed items."""
    sink = ResumableJsonl(out_path, key=lambda r: str(r["userid"]))
    todo = [r for r in rows if r["userid"] not in sink]
    if len(todo) < len(rows):
        log.info("%s/%s: %d of %d already done, resuming", mode, bench.name, len(rows) - len(todo), len(rows))
    failed = 0
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=f"{mode}/{bench.name}")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        records, n_failed = (gen.full if mode == "full" else gen.streaming)(chunk, bench)
        sink.append(records)
        failed += n_failed
        bar.update(len(chunk))
    bar.close()
    return failed


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=MODES, default="full", help="full history (one pass) or streaming (two passes)")
    ap.add_argument("--data-dir", required=True, help="folder holding the benchmark files named in the registry")
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
    data = {}
    for b in benches:
        data[b.name] = load_benchmark_rows(b.path(args.data_dir), args.limit)
    sampling = sampling_from_args(args)
    backend = backend_from_args(args)
    gen = SummaryGenerator(backend, sampling, args.prompt_budget)
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
