"""Convert a raw public dataset (read from local files only) into user rows and a benchmark file.

    python -m alignxplore.data.converters mind          # data/raw/mind/{train,dev}/{news,behaviors}.tsv
    python -m alignxplore.data.converters amazon        # data/raw/amazon/{Books_5,meta_Books}.json.gz
    python -m alignxplore.data.converters movielens     # data/raw/movielens/{ratings,movies}.csv
    python -m alignxplore.data.converters alignx        # data/raw/alignx/{train,test} (files or folders)
    python -m alignxplore.data.converters personamem    # data/raw/personamem/personamem.jsonl
    python -m alignxplore.data.converters hicupid       # data/raw/hicupid/{qa_test_2,dialogue_test}.jsonl
    python -m alignxplore.data.converters movielens --ratings ml-32m/ratings.csv --movies ml-32m/movies.csv --out elsewhere

Raw inputs default to ``data/raw/<dataset>/`` (names above); every path flag overrides one.
Writes ``users/{name}_train.jsonl`` / ``users/{name}_test.jsonl`` (recommendation sets and
AlignX), ``benchmark/{name}_upi.jsonl`` and ``users/{name}_summary.json`` (counts and every
skip with its reason) under the data root ``--out`` (default ``data``): the scorer, scoring and
synthesis read ``data/users/``, the evaluation ``data/benchmark/``. Knobs default to the authors' rules: seed 42, 3,000 benchmark users,
80/20 user split, the per-dataset minimum history and null-query sentence. Every bad raw row
(not UTF-8, not JSON, a missing or malformed field) is reported as ``file:line: field:
problem`` (up to 20 listed, then counted); the run then stops before writing anything, or
with ``--skip-bad-rows`` drops and counts them. Expected gaps (unknown ids, short or empty
users) are skipped and counted.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...cli import run_main
from ...preflight import check_output_dir
from . import amazon, mind, movielens, selection
from .common import BENCHMARK_USERS, SEED, TEST_FRACTION, recommendation_benchmark, start_bad_rows, write_outputs

RECOMMENDATION = {"mind": mind, "amazon": amazon, "movielens": movielens}
RAW = Path("data/raw")  # default raw inputs: data/raw/<dataset>/ (relative to the working directory)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.converters", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="dataset", required=True)

    def common(p, *, rec: bool):
        p.add_argument("--out", type=Path, default=Path("data"), help="data root: writes OUT/users/ and OUT/benchmark/ (default: %(default)s)")
        p.add_argument("--name", default=None, help="file-name prefix (default: the dataset)")
        p.add_argument("--seed", type=int, default=SEED)
        p.add_argument("--skip-bad-rows", action="store_true", help="report, count and drop bad raw rows instead of stopping (every bad row is reported either way)")
        if rec:
            p.add_argument("--min-interactions", type=int, default=None, help="minimum behaviours per user (MIND 9, Amazon/MovieLens 17)")
            p.add_argument("--test-fraction", type=float, default=TEST_FRACTION, help="share of users in the test split")
            p.add_argument("--benchmark-users", type=int, default=BENCHMARK_USERS, help="users sampled into {name}_upi.jsonl")
            p.add_argument("--null-query", default=None, help="query for behaviours without one (per-dataset default)")

    p = sub.add_parser("mind", help="MIND news.tsv + behaviors.tsv folders")
    p.add_argument("--raw", nargs="+", type=Path, default=[RAW / "mind/train", RAW / "mind/dev"], help="folders holding news.tsv and behaviors.tsv (default: %(default)s)")
    common(p, rec=True)
    p = sub.add_parser("amazon", help="Amazon 5-core reviews + metadata (JSON lines, .gz ok)")
    p.add_argument("--reviews", type=Path, default=RAW / "amazon/Books_5.json.gz", help="default: %(default)s")
    p.add_argument("--meta", type=Path, default=RAW / "amazon/meta_Books.json.gz", help="default: %(default)s")
    common(p, rec=True)
    p = sub.add_parser("movielens", help="MovieLens ratings.csv + movies.csv")
    p.add_argument("--ratings", type=Path, default=RAW / "movielens/ratings.csv", help="default: %(default)s")
    p.add_argument("--movies", type=Path, default=RAW / "movielens/movies.csv", help="default: %(default)s")
    common(p, rec=True)
    p = sub.add_parser("alignx", help="AlignX rows (.jsonl/.json/.parquet or a folder)")
    p.add_argument("--train", type=Path, default=None, help=f"rows for user rows (scorer/SFT/RL); without --train/--test: {RAW / 'alignx/train'} if it exists")
    p.add_argument("--test", type=Path, default=None, help=f"rows for the benchmark; without --train/--test: {RAW / 'alignx/test'} if it exists")
    p.add_argument("--min-history", type=int, default=8)
    common(p, rec=False)
    for name, helptext in (("personamem", "PersonaMem rows with related_conversation_snippet"), ("hicupid", "HiCUPID qa (test_2) + dialogue (test) rows")):
        p = sub.add_parser(name, help=helptext)
        if name == "personamem":
            p.add_argument("--raw", type=Path, default=RAW / "personamem/personamem.jsonl", help="default: %(default)s")
        else:
            p.add_argument("--qa", type=Path, default=RAW / "hicupid/qa_test_2.jsonl", help="default: %(default)s")
            p.add_argument("--dialogues", type=Path, default=RAW / "hicupid/dialogue_test.jsonl", help="default: %(default)s")
        p.add_argument("--history-format", choices=selection.HISTORY_FORMATS, default="messages", help="chat messages (authors') or triples")
        common(p, rec=False)
    return ap


def convert(args) -> dict:
    name = args.name or args.dataset
    check_output_dir(args.out, "--out")  # before reading gigabytes of raw data
    start_bad_rows(args.skip_bad_rows)
    if args.dataset in RECOMMENDATION:
        module = RECOMMENDATION[args.dataset]
        knobs = {"seed": args.seed}
        if args.min_interactions is not None:
            knobs["min_pairs" if args.dataset == "mind" else "min_interactions"] = args.min_interactions
        if args.dataset == "mind":
            train, test, skips = module.convert(args.raw, train_fraction=1 - args.test_fraction, **knobs)
        elif args.dataset == "amazon":
            train, test, skips = module.convert(args.reviews, args.meta, test_fraction=args.test_fraction, **knobs)
        else:
            train, test, skips = module.convert(args.ratings, args.movies, test_fraction=args.test_fraction, **knobs)
        null_query = args.null_query if args.null_query is not None else module.NULL_QUERY
        bench = recommendation_benchmark(test, null_query, args.benchmark_users, args.seed)
        return write_outputs(name, args.out, train=train, test=test, benchmark=bench, skips=skips, extra={"null_query": null_query})
    if args.dataset == "alignx":
        if not (args.train or args.test):
            args.train, args.test = (p if p.exists() else None for p in (RAW / "alignx/train", RAW / "alignx/test"))
        if not (args.train or args.test):
            raise SystemExit(f"alignx: give --train and/or --test (neither {RAW / 'alignx/train'} nor {RAW / 'alignx/test'} exists)")
        train = bench = None
        skips = selection.Skips()
        if args.train:
            train, s = selection.alignx_users(args.train, min_history=args.min_history)
            skips.update(s)
        if args.test:
            bench, s = selection.alignx_benchmark(args.test, name)
            skips.update(s)
        return write_outputs(name, args.out, train=train, test=None, benchmark=bench, skips=skips)
    if args.dataset == "personamem":
        bench, skips = selection.personamem_benchmark(args.raw, seed=args.seed, history_format=args.history_format)
    else:
        bench, skips = selection.hicupid_benchmark(args.qa, args.dialogues, history_format=args.history_format)
    return write_outputs(name, args.out, train=None, test=None, benchmark=bench, skips=skips, extra={"history_format": args.history_format})


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(convert(build_parser().parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    run_main(main)
