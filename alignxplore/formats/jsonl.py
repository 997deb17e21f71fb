"""JSONL I/O: the one read loop of the project (:func:`iter_jsonl`), its bad-line policy
(:class:`BadLines`), the atomic writer and the resumable append-only output.

The bad-line rule, the same for every reader (docs/formats.md §1): every bad line (not
UTF-8, not JSON, or refused by the record's validator) is reported as ``file:line: field:
problem``, the first ``BAD_LINES_SHOWN`` in full, then only counted. By default the reader
then stops with one :class:`DataError` naming the first bad line and the total, before the
caller writes anything; with ``--skip-bad-rows`` (``on_bad="skip"``) the bad lines are dropped
and one closing line gives their count.
"""
from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from .errors import DataError, Record, Validator

# How many bad lines a reader lists before it only counts them (the total is always given).
BAD_LINES_SHOWN = 20


def _decode_line(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(where, None, f"not UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1})") from None


def parse_json_line(raw: bytes | str, where: str) -> Any:
    """One JSONL line -> its JSON value; a non-UTF-8 or non-JSON line is a :class:`DataError`."""
    line = _decode_line(raw, where) if isinstance(raw, bytes) else raw
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(where, None, f"invalid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise DataError(where, None, "invalid JSON (nested too deeply)") from None


class BadLines:
    """Collects the bad lines of one input: each is reported (the first ``BAD_LINES_SHOWN`` in
    full, then only counted). :meth:`finish` then raises one :class:`DataError` naming the
    first and the total, or, skipping (``--skip-bad-rows``), logs how many were dropped. One
    behaviour for every reader: the user sees everything to fix in one run."""

    def __init__(self, log: Callable[[str], None] | None = None, *, skip: bool = False, shown: int = BAD_LINES_SHOWN):
        self.errors: list[DataError] = []
        self.skip, self.shown = skip, shown
        self.log = log or (lambda msg: print(msg, file=sys.stderr))

    def __call__(self, err: DataError) -> None:
        self.errors.append(err)
        if len(self.errors) <= self.shown:
            self.log(f"{'skipped' if self.skip else 'bad line'}: {err}")

    def __len__(self) -> int:
        return len(self.errors)

    def finish(self) -> None:
        n = len(self.errors)
        if n > self.shown:
            self.log(f"... and {n - self.shown} more bad line(s) not listed ({n} in all)")
        if n and self.skip:
            self.log(f"{n} bad line(s) dropped (--skip-bad-rows)")
        elif n:
            first = self.errors[0]
            more = f" (and {n - 1} more bad line(s) in this file)" if n > 1 else ""
            raise DataError(first.where, first.field, first.problem + more)


OnBad = Literal["stop", "skip"] | BadLines


def iter_jsonl(path: str | os.PathLike, validate: Validator | None = None, *, on_bad: OnBad = "stop", keep_where: bool = False,
               log: Callable[[str], None] | None = None, parse: Callable[[bytes, str], Any] = parse_json_line) -> Iterator[Record]:
    """Yield the validated records of a JSONL file (``.gz`` too); blank lines are skipped. The
    one JSONL read loop of the project: every reader goes through it.

    Each line is decoded on its own, so a non-UTF-8 line, a truncated or non-JSON line and a
    line the validator rejects are all the same kind of error: ``file:line: field: problem``.

    ``on_bad``: ``"stop"`` (default): after the first bad line nothing more is yielded, the rest
    of the file is still checked, every bad line is reported (to ``log``, capped) and one
    :class:`DataError` naming the first and the total is raised at the end. ``"skip"``
    (``--skip-bad-rows``): bad lines are reported and dropped, their count is logged at the
    end. A :class:`BadLines`: the caller's collector, for a caller that reads several files
    before deciding or needs the count; every good record is yielded and the caller calls
    :meth:`BadLines.finish`. ``keep_where`` stores ``"file:line"`` in each record's ``_where``
    key, so later stages can point at the input line. ``parse`` turns one raw line into a
    value (default: JSON; a converter also accepts Python literals).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file" if not path.is_dir() else "is a directory, expected a JSONL file")
    owned = not isinstance(on_bad, BadLines)
    if owned and on_bad not in ("stop", "skip"):
        raise ValueError(f"on_bad must be 'stop', 'skip' or a BadLines, got {on_bad!r}")
    bad = BadLines(log, skip=on_bad == "skip") if owned else on_bad
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = parse(raw, where)
                if validate:
                    rec = validate(rec, where)
                if keep_where and not isinstance(rec, dict):
                    raise DataError(where, None, f"expected a JSON object, got {type(rec).__name__}")
            except DataError as err:
                bad(err)
                continue
            if owned and len(bad) and not bad.skip:
                continue  # stopping: only checking the rest of the file
            if keep_where:
                rec["_where"] = where
            yield rec
    if owned:
        bad.finish()


def read_jsonl(path: str | os.PathLike, validate: Validator | None = None, **options) -> list[Record]:
    """:func:`iter_jsonl` as a list (same options): every line checked before anything is used."""
    return list(iter_jsonl(path, validate, **options))


def expand_globs(patterns: list[str]) -> list[str]:
    """The files matching each glob pattern (sorted, in pattern order); one that matches nothing
    is a :class:`DataError` naming it, so a wrong default never reads as zero rows."""
    import glob

    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern)))
        if not matches:
            raise DataError(str(pattern), None, "no such file")
        files += matches
    return files


def write_jsonl(path: str | os.PathLike, records: Iterator[Record] | list[Record]) -> None:
    """Write records atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(path)


class ResumableJsonl:
    """An append-only JSONL output that survives being killed.

    On open, a partial last line (the process died mid-write) is cut off, and the keys of the
    complete records are collected so a restarted job skips them. Every append is flushed and
    fsynced, so at most the batch in flight is lost.
    """

    def __init__(self, path: str | os.PathLike, key: Callable[[Record], str]):
        self.path = Path(path)
        self.key = key
        self.done: dict[str, Record] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._recover()

    def _recover(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # keep only complete lines
        if end != len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(end)
        for rec in iter_jsonl(self.path):  # a corrupt complete line is a bad input line like any other
            self.done[self.key(rec)] = rec

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def append(self, records: list[Record]) -> None:
        if not records:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                self.done[self.key(rec)] = rec
            fh.flush()
            os.fsync(fh.fileno())
