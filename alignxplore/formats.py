"""Record schemas and JSONL I/O.

Records stay plain dicts (they round-trip to JSONL unchanged, extra keys included); the
``validate_*`` functions check the fields this project reads and raise :class:`DataError`
naming file, line and field, so bad input never surfaces as a traceback from deep inside.
Schemas: docs/formats.md §1, summarised in the README.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

Record = dict[str, Any]
Validator = Callable[[Any, str], Record]


class DataError(ValueError):
    """Bad input data. ``str(err)`` is one line: ``file:line: field: problem``."""

    def __init__(self, where: str, field: str | None, problem: str):
        self.where, self.field, self.problem = where, field, problem
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


def _require_str(obj: dict, key: str, where: str, prefix: str, *, allow_empty: bool = False) -> str:
    if key not in obj or obj[key] is None:
        raise DataError(where, f"{prefix}{key}", "missing")
    value = obj[key]
    if not isinstance(value, str):
        raise DataError(where, f"{prefix}{key}", f"expected a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise DataError(where, f"{prefix}{key}", "empty")
    return value


# log_softmax may round a sure prediction to a hair above 0; anything beyond this is not a log-probability.
LOGPROB_SLACK = 1e-6


def validate_logprob(value: Any, where: str, field: str) -> float:
    """A log-probability: a finite number <= 0 (``LOGPROB_SLACK`` allowed for rounding)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value > LOGPROB_SLACK:
        raise DataError(where, field, f"expected a log-probability (a finite number <= 0), got {value!r}")
    return float(value)


def validate_finite(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(where, field, f"expected a finite number, got {value!r}")
    return float(value)


def validate_triple(obj: Any, where: str, prefix: str = "", *, allow_empty_items: bool = False) -> Record:
    """A behaviour ``{query, chosen, rejected}``. ``query`` may be empty (recommendation data
    converters fill it); ``chosen`` and ``rejected`` must be strings, non-empty unless
    ``allow_empty_items`` (benchmark rows: see :func:`validate_benchmark_row`)."""
    if not isinstance(obj, dict):
        raise DataError(where, prefix.rstrip(".") or None, f"expected an object, got {type(obj).__name__}")
    query = obj.get("query")
    if query is None:
        query = ""
    elif not isinstance(query, str):
        raise DataError(where, f"{prefix}query", f"expected a string, got {type(query).__name__}")
    out = dict(obj)
    out["query"] = query
    out["chosen"] = _require_str(obj, "chosen", where, prefix, allow_empty=allow_empty_items)
    out["rejected"] = _require_str(obj, "rejected", where, prefix, allow_empty=allow_empty_items)
    return out


# Generation-style sources have no rejected item; the authors' converters filled the slot
# with this text (docs/formats.md §7).
NO_NEGATIVE_SAMPLE = "No negative sample."


def chat_to_triples(messages: Any, where: str, field: str = "history") -> list[Record]:
    """Render a chat-message history (HiCUPID, PersonaMem) as behaviour triples.

    Our rule (the authors did not release theirs): each user turn and the assistant reply that
    follows it become one triple ``{query: user text, chosen: assistant text, rejected:
    "No negative sample."}``. Consecutive messages of the same role are joined with a newline;
    system messages are ignored; a reply with no user turn before it gets an empty query; a
    final user turn with no reply is dropped (the user chose nothing yet).
    """
    if not isinstance(messages, list):
        raise DataError(where, field, f"expected a list of chat messages, got {type(messages).__name__}")
    triples: list[Record] = []
    query: list[str] = []
    reply: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise DataError(where, f"{field}[{i}]", f"expected a chat message object, got {type(msg).__name__}")
        role = msg.get("role")
        content = _require_str(msg, "content", where, f"{field}[{i}].", allow_empty=True)
        if role == "system":
            continue
        if role not in ("user", "assistant"):
            raise DataError(where, f"{field}[{i}].role", f"expected 'user', 'assistant' or 'system', got {role!r}")
        if role == "user" and reply:
            triples.append({"query": "\n".join(query), "chosen": "\n".join(reply), "rejected": NO_NEGATIVE_SAMPLE})
            query, reply = [], []
        (query if role == "user" else reply).append(content)
    if reply:
        triples.append({"query": "\n".join(query), "chosen": "\n".join(reply), "rejected": NO_NEGATIVE_SAMPLE})
    return triples


def _validate_history(obj: dict, where: str, *, min_len: int = 1, allow_empty_items: bool = False) -> list[Record]:
    history = obj.get("history")
    if history is None:
        raise DataError(where, "history", "missing")
    if not isinstance(history, list):
        raise DataError(where, "history", f"expected a list, got {type(history).__name__}")
    if len(history) < min_len:
        raise DataError(where, "history", f"needs at least {min_len} behaviour(s), got {len(history)}")
    return [validate_triple(t, where, f"history[{i}].", allow_empty_items=allow_empty_items) for i, t in enumerate(history)]


def _require_object(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def is_chat_history(history: Any) -> bool:
    """A HiCUPID-shaped history: a non-empty list of ``{role, content}`` chat messages."""
    return isinstance(history, list) and bool(history) and all(isinstance(m, dict) and "role" in m for m in history)


# A benchmark row without ``userid`` gets this prefix + a content hash (derived_userid).
DERIVED_USERID_PREFIX = "anon-"


def derived_userid(obj: dict) -> str:
    """A stable id for a benchmark record without ``userid`` (the authors' HiCUPID converter
    wrote none): ``anon-`` + the first 16 hex digits of the SHA-256 of the record's ``history``
    and ``target`` as canonical JSON (sorted keys). It depends on the content only, not on the
    file name or line, so the same user keeps the same id in the benchmark file, its summaries,
    a ``--limit`` subset or a noisy/no-negatives copy; two identical records are told apart by
    :func:`alignxplore.eval.registry.load_benchmark_rows` (``#2``, ``#3`` in file order)."""
    import hashlib

    payload = json.dumps({"history": obj.get("history"), "target": obj.get("target")}, sort_keys=True, ensure_ascii=False)
    return DERIVED_USERID_PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def validate_benchmark_row(obj: Any, where: str) -> Record:
    """Benchmark row: ``userid``, ``history``, ``target: triple``.

    A missing ``userid`` is derived from the content (:func:`derived_userid`; the row gets
    ``userid_derived: true``). Empty ``chosen`` / ``rejected`` strings (the authors' MIND
    converter could write them) are kept and rendered as is, as the authors' prompt code
    would; only a missing or non-string item is refused.

    ``history`` is a list of triples, or (HiCUPID, docs/formats.md §1) a list of chat messages,
    which is rendered into triples by :func:`chat_to_triples` (the original messages are kept
    under ``history_messages``). An empty history is valid: the authors kept such users (full
    mode renders zero triples; streaming and the recommendation evaluator skip them)."""
    obj = _require_object(obj, where)
    out = dict(obj)
    if obj.get("userid") is None:
        out["userid"], out["userid_derived"] = derived_userid(obj), True
    else:
        out["userid"] = str(obj["userid"])
    if is_chat_history(obj.get("history")):
        out["history_messages"] = obj["history"]
        out["history"] = chat_to_triples(obj["history"], where)
    else:
        out["history"] = _validate_history(obj, where, min_len=0, allow_empty_items=True)
    if "target" not in obj:
        raise DataError(where, "target", "missing")
    out["target"] = validate_triple(obj["target"], where, "target.", allow_empty_items=True)
    return out


def validate_summary_row(obj: Any, where: str) -> Record:
    """Generated-summary row: a benchmark row plus ``raw_prompt``, ``first_response``, ``profile``."""
    out = validate_benchmark_row(obj, where)
    for key in ("first_response", "profile"):
        if not isinstance(obj.get(key), str):
            raise DataError(where, key, "missing or not a string")
    return out


def _validate_messages(msgs: Any, where: str, field: str, roles: tuple[str, ...]) -> list[Record]:
    if not isinstance(msgs, list) or len(msgs) != len(roles):
        raise DataError(where, field, f"expected {len(roles)} chat message(s) with roles {list(roles)}")
    for i, (m, role) in enumerate(zip(msgs, roles)):
        if not isinstance(m, dict) or m.get("role") != role:
            raise DataError(where, f"{field}[{i}].role", f"expected {role!r}")
        _require_str(m, "content", where, f"{field}[{i}].")
    return msgs


def validate_sft_row(obj: Any, where: str) -> Record:
    """SFT row: ``prompt: [system, user]`` and ``completion: [assistant]``."""
    obj = _require_object(obj, where)
    if "prompt" not in obj:
        raise DataError(where, "prompt", "missing")
    if "completion" not in obj:
        raise DataError(where, "completion", "missing")
    _validate_messages(obj["prompt"], where, "prompt", ("system", "user"))
    _validate_messages(obj["completion"], where, "completion", ("assistant",))
    return obj


def validate_rl_row(obj: Any, where: str) -> Record:
    """RL row: ``uid``, ``history`` and ``mid_position`` in ``[1, L-3]`` (docs/formats.md §3), so that
    stage 1 sees at least one behaviour and stage 2 at least two before its target."""
    obj = _require_object(obj, where)
    if "uid" not in obj:
        raise DataError(where, "uid", "missing")
    history = _validate_history(obj, where, min_len=4)
    mid = obj.get("mid_position")
    if not isinstance(mid, int) or isinstance(mid, bool):
        raise DataError(where, "mid_position", "missing or not an integer")
    if not 1 <= mid <= len(history) - 3:
        raise DataError(where, "mid_position", f"{mid} outside [1, {len(history) - 3}] for a history of {len(history)}")
    out = dict(obj)
    out["history"] = history
    return out


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
    full, then only counted), and :meth:`finish` raises one :class:`DataError` naming the first
    and the total, unless the caller skips bad rows. One behaviour for every reader: the user
    sees everything to fix in one run, and ``--skip-bad-rows`` keeps going."""

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
        if n and not self.skip:
            first = self.errors[0]
            more = f" (and {n - 1} more bad line(s) in this file)" if n > 1 else ""
            raise DataError(first.where, first.field, first.problem + more)


def iter_jsonl(path: str | os.PathLike, validate: Validator | None = None, *, keep_where: bool = False,
               on_bad: Callable[[DataError], None] | None = None) -> Iterator[Record]:
    """Yield the records of a JSONL file, validated; blank lines are skipped. The one JSONL
    reader of the project.

    Each line is decoded on its own, so a non-UTF-8 line, a truncated or non-JSON line and a
    line the validator rejects are all the same kind of error: ``file:line: field: problem``.
    With ``on_bad``, every bad line goes to it and reading goes on (skip mode; a
    :class:`BadLines` counts and reports them). Without it, the first bad line stops the
    yielding, the rest of the file is still checked, every bad line is reported (capped) and
    one :class:`DataError` naming the first and the total is raised. ``keep_where`` stores
    ``"file:line"`` in each record's ``_where`` key, so later stages can point at the input line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file" if not path.is_dir() else "is a directory, expected a JSONL file")
    bad = BadLines() if on_bad is None else None
    report = bad if on_bad is None else on_bad
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = parse_json_line(raw, where)
                rec = validate(obj, where) if validate else obj
            except DataError as err:
                report(err)
                continue
            if bad is not None and len(bad):
                continue  # stopping: only checking the rest of the file
            if keep_where:
                if not isinstance(rec, dict):
                    report(DataError(where, None, f"expected a JSON object, got {type(rec).__name__}"))
                    continue
                rec["_where"] = where
            yield rec
    if bad is not None:
        bad.finish()


# The historical name: same reader.
read_jsonl = iter_jsonl


def read_jsonl_checked(path: str | os.PathLike, validate: Validator, *, keep_where: bool = False, log: Callable[[str], None] | None = None) -> list[Record]:
    """Every line of the file checked before anything is used: each bad line goes to ``log``
    (capped) and one :class:`DataError` names the first and counts the rest."""
    bad = BadLines(log)
    records = list(iter_jsonl(path, validate, keep_where=keep_where, on_bad=bad))
    bad.finish()
    return records


def load_jsonl(path: str | os.PathLike, validate: Validator | None = None) -> list[Record]:
    return list(read_jsonl(path, validate))


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
        for line in data[:end].decode("utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
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
