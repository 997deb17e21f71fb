"""Shared pieces of the raw-dataset converters: reading raw files with one-line errors,
counted skips, the seeded user split, and the benchmark rules of the authors' ``unify_*``
scripts (docs/formats.md §7).

Outputs of every converter, under the data root ``--out`` (default ``data``, the project's
layout: README "Layout of data, checkpoints and outputs"): ``users/{name}_train.jsonl`` and
``users/{name}_test.jsonl`` (user rows ``{uid, behaviors: [triple]}`` in time order: the
scorer / SFT-synthesis / RL inputs; ``uid`` = ``{name}_{dataset's id}`` so that every
dataset's users can be scored and synthesised in one run without two users sharing an id),
``benchmark/{name}_upi.jsonl`` (the benchmark, the evaluation's ``DATA_DIR``; its ``userid``
stays the dataset's own id, as in the authors' files) and ``users/{name}_summary.json``
(counts, including every skip and its reason).
"""
from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import math
import random
from collections import Counter
from pathlib import Path
from typing import Iterator

from contextlib import contextmanager

from ...formats import BadLines, DataError, iter_jsonl, parse_json_line, write_jsonl

SEED = 42
BENCHMARK_USERS = 3000
TEST_FRACTION = 0.2


class Skips(Counter):
    """Counted skips by reason (bad-but-expected raw data: unknown ids, short users...)."""

    def add(self, reason: str, n: int = 1) -> None:
        self[reason] += n


class RawBadRows(BadLines):
    """Bad raw rows of one conversion, the same policy as every other reader: each is reported
    (capped), then the run stops before writing anything, or with ``--skip-bad-rows`` they are
    dropped and counted in the summary. Readers report line-level problems (not UTF-8, not
    JSON, wrong field count); converters wrap each row's own checks in :meth:`catch`."""

    @contextmanager
    def catch(self):
        try:
            yield
        except DataError as err:
            self(err)


# One conversion per process: the converter CLI resets it (start_bad_rows) and
# write_outputs settles it before anything is written.
bad_rows = RawBadRows(skip=False)


def start_bad_rows(skip: bool) -> RawBadRows:
    global bad_rows
    bad_rows = RawBadRows(skip=skip)
    return bad_rows


def open_text(path: Path):
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8", newline="")


def json_lines(path: Path, *, python_literals: bool = False) -> Iterator[tuple[str, dict]]:
    """``(file:line, object)`` per non-blank line; ``python_literals`` also accepts the
    Python-dict lines of some Amazon metadata dumps. Each line is decoded on its own: a
    non-UTF-8 or unparseable line goes to :data:`bad_rows` and reading goes on."""
    for obj in iter_jsonl(path, _object, keep_where=True, on_bad=bad_rows, parse=_json_or_literal if python_literals else parse_json_line):
        yield obj.pop("_where"), obj


def _object(obj, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(where, None, f"expected an object, got {type(obj).__name__}")
    return obj


def _json_or_literal(raw: bytes, where: str):
    """A JSON line, else a Python literal (some Amazon metadata dumps hold Python dicts)."""
    try:
        return parse_json_line(raw, where)
    except DataError:
        try:
            return ast.literal_eval(raw.decode("utf-8").strip())
        except (ValueError, SyntaxError, UnicodeDecodeError, RecursionError):
            raise DataError(where, None, "neither JSON nor a Python literal") from None


def records(path: Path) -> Iterator[tuple[str, dict]]:
    """Rows of a local dataset file: ``.jsonl`` / ``.json`` (a list or JSON lines) / ``.parquet``,
    or a folder of them (sorted by name). Nothing is downloaded."""
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "state.json").is_file():  # datasets.save_to_disk
            from datasets import load_from_disk

            for i, row in enumerate(load_from_disk(str(path))):
                yield f"{path}:row {i}", row
            return
        # a local copy of a hub dataset: data files anywhere below (e.g. data/train-00000-of-00001.parquet)
        files = sorted(p for p in path.rglob("*") if p.is_file() and (p.suffix in (".jsonl", ".json", ".parquet") or p.name.endswith((".jsonl.gz", ".json.gz"))))
        if not files:
            raise DataError(str(path), None, "no .jsonl/.json/.parquet files in this folder")
        for f in files:
            yield from records(f)
        return
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        if not path.is_file():
            raise DataError(str(path), None, "no such file")
        for i, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}:row {i}", row
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(1 << 16).lstrip()
    if head.startswith(b"["):
        with open_text(path) as fh:
            try:
                rows = json.load(fh)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{err.lineno}", None, f"invalid JSON ({err.msg})") from None
            except UnicodeDecodeError as err:
                raise DataError(str(path), None, f"not UTF-8 (byte 0x{err.object[err.start]:02x} at byte {err.start + 1})") from None
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                bad_rows(DataError(f"{path}:item {i}", None, f"expected an object, got {type(row).__name__}"))
                continue
            yield f"{path}:item {i}", row
        return
    yield from json_lines(path)


def require(row: dict, keys: tuple[str, ...], where: str) -> None:
    for k in keys:
        if k not in row:
            raise DataError(where, k, "missing column")


def delimited(path: Path, names: tuple[str, ...] | None, *, delimiter: str, header: bool) -> Iterator[tuple[str, dict]]:
    """Rows of a CSV/TSV file as dicts. ``names`` = the columns the converter needs (checked
    against the header), or the full column list of a header-less file. Lines are decoded one
    at a time: a non-UTF-8 line is a bad row (reported) and reads as blank."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file")

    def decoded(fh):
        for lineno, raw in enumerate(fh, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad_rows(DataError(f"{path}:{lineno}", None, f"not UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1})"))
                yield "\n"

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        reader = csv.reader(decoded(fh), delimiter=delimiter, quoting=quoting)
        columns = names
        if header:
            first = next(reader, None)
            if first is None:
                raise DataError(str(path), None, "empty file")
            columns = tuple(first)
            missing = [n for n in names or () if n not in columns]
            if missing:
                raise DataError(f"{path}:1", ",".join(missing), f"missing column(s); the header has {list(columns)}")
        for lineno, fields in enumerate(reader, 2 if header else 1):
            if not fields:
                continue
            if len(fields) != len(columns):
                bad_rows(DataError(f"{path}:{lineno}", None, f"expected {len(columns)} tab/comma-separated fields, got {len(fields)}"))
                continue
            yield f"{path}:{lineno}", dict(zip(columns, fields))


def split_users(ids: list, test_fraction: float = TEST_FRACTION, seed: int = SEED) -> tuple[list, list]:
    """Train/test users as scikit-learn's ``train_test_split(ids, test_size, random_state=seed)``
    does it (the authors' Amazon and MovieLens split): a NumPy ``RandomState(seed)``
    permutation, the first ``ceil(n · test)`` positions are the test users."""
    import numpy as np

    n = len(ids)
    n_test = math.ceil(test_fraction * n)
    perm = np.random.RandomState(seed).permutation(n)
    return [ids[i] for i in perm[n_test:]], [ids[i] for i in perm[:n_test]]


def recommendation_benchmark(test_users: list[dict], null_query: str, n_users: int = BENCHMARK_USERS, seed: int = SEED) -> list[dict]:
    """The authors' ``unify_recommendation_task``: fill a null query, last behaviour = target,
    the rest = history, ``userid = str(uid)``, ``random.Random(seed).sample`` of ``n_users``
    (all users, in the same sampled order, when there are fewer). Users with fewer than two
    behaviours cannot give a history and a target and are left out."""
    rows = []
    for u in test_users:
        history = [dict(b, query=null_query) if b.get("query") is None else dict(b) for b in u["behaviors"]]
        if len(history) < 2:
            continue
        rows.append({"userid": str(u["uid"]), "history": history[:-1], "target": history[-1]})
    return random.Random(seed).sample(rows, min(n_users, len(rows)))


def write_outputs(name: str, out_dir: Path, *, train: list[dict] | None, test: list[dict] | None, benchmark: list[dict] | None, skips: Skips, extra: dict | None = None) -> dict:
    try:
        bad_rows.finish()  # default: every bad raw row reported, then stop before writing
    finally:
        n_bad = len(bad_rows)
        start_bad_rows(bad_rows.skip)  # the next conversion in this process starts clean
    if n_bad:
        skips.add("bad raw row (reported above)", n_bad)
    users_dir, bench_dir = Path(out_dir) / "users", Path(out_dir) / "benchmark"
    users_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"dataset": name}
    for label, rows, path in (("train_users", train, users_dir / f"{name}_train.jsonl"), ("test_users", test, users_dir / f"{name}_test.jsonl"),
                              ("benchmark_rows", benchmark, bench_dir / f"{name}_upi.jsonl")):
        if rows is None:
            continue
        if label != "benchmark_rows":
            rows = [dict(r, uid=f"{name}_{r['uid']}") for r in rows]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, rows)
        summary[label] = len(rows)
        summary[f"{label}_file"] = str(path)
    summary["skipped"] = dict(sorted(skips.items()))
    summary.update(extra or {})
    (users_dir / f"{name}_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


class NegativeSampler:
    """Uniform negatives from ``all ids − the user's positives`` without building that pool
    per user (MIND and MovieLens have 10^5 items and 10^5–10^6 users): draws from the sorted id
    list until an id outside the positives comes up, which is the same distribution. Sorted,
    so the result does not depend on set order (the authors' ``list(set)`` did)."""

    def __init__(self, all_ids, rng: random.Random):
        self.ids = sorted(set(all_ids))
        self.rng = rng

    def pool_size(self, positives: set) -> int:
        return len(self.ids) - sum(1 for p in positives if p in self._index)

    @property
    def _index(self) -> set:
        if not hasattr(self, "_set"):
            self._set = set(self.ids)
        return self._set

    def choice(self, positives: set):
        """One negative (``random.choice`` of the pool); None if the pool is empty."""
        if self.pool_size(positives) == 0:
            return None
        while True:
            x = self.ids[self.rng.randrange(len(self.ids))]
            if x not in positives:
                return x

    def sample(self, positives: set, k: int) -> list:
        """``k`` distinct negatives (``random.sample`` of the pool; fewer if the pool is smaller)."""
        pool = self.pool_size(positives)
        k = min(k, pool)
        if k > pool // 2:  # dense: enumerate the pool
            return self.rng.sample([x for x in self.ids if x not in positives], k)
        out, seen = [], set()
        while len(out) < k:
            x = self.ids[self.rng.randrange(len(self.ids))]
            if x not in positives and x not in seen:
                seen.add(x)
                out.append(x)
        return out
