"""The evaluation results file: ``RESULTS_DIR/RUN/MODE/NAME.json`` (docs/formats.md §1).

Written by :mod:`alignxplore.eval.evaluate` (one file per benchmark and mode), read by the
table, the cross-task table, the figures and the demo. One JSON object, indented::

    benchmark    str   the registry name (the file's NAME)
    column       str   the table column it fills (e.g. "MIND")
    mode         str   direct | full | streaming (the folder MODE)
    label        str   the table row (the run name; direct: "<judge> (direct)")
    protocol     dict  name (sampled | teacher-forced), settings (judge sampling), judge, parse_rule...
    metrics      dict  alignxplore.metrics.summarize: accuracy, argmax_accuracy, ... (null = not measured)
    accounting   dict  n_benchmark_users, n_judged, n_failed, n_skipped, skipped_by_reason, skipped
    config       dict  the run's configuration (judge_model, placement seed, versions, git commit...)
    judge_seconds float
    items        list  one record per judged (or failed) user

A reader needs ``mode``, ``label``, ``column`` and ``metrics`` (:data:`RESULTS_REQUIRED`);
the rest is read when present (older or hand-made files may lack it). Results files are found
by their place, not by trying to parse every JSON: every ``*.json`` directly in a ``MODE``
folder, except the generator's ``NAME.stats.json`` and the joiner's ``NAME.join.json``. Any
other JSON there is read as results, and a malformed one stops the reader naming file and field.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, TypedDict

from .errors import DataError

EVAL_MODES = ("direct", "full", "streaming")


class Results(TypedDict, total=False):
    benchmark: str
    column: str
    mode: str
    label: str
    protocol: dict[str, Any]
    metrics: dict[str, Any]
    accounting: dict[str, Any]
    config: dict[str, Any]
    judge_seconds: float
    items: list[dict[str, Any]]


# field -> the JSON type a reader relies on
RESULTS_REQUIRED = {"mode": str, "label": str, "column": str, "metrics": dict}
RESULTS_OPTIONAL = {"benchmark": str, "protocol": dict, "accounting": dict, "config": dict, "judge_seconds": (int, float), "items": list}
_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", (int, float): "a number"}


def validate_results(obj: Any, where: str) -> Results:
    """A results object; a missing or mistyped field is a :class:`DataError` naming it."""
    if not isinstance(obj, dict):
        raise DataError(where, None, f"expected a results JSON object, got {type(obj).__name__}")
    for key, typ in RESULTS_REQUIRED.items():
        if key not in obj:
            raise DataError(where, key, "missing (not an evaluation results file?)")
    for key, typ in RESULTS_REQUIRED.items() | RESULTS_OPTIONAL.items():
        if key in obj and (not isinstance(obj[key], typ) or isinstance(obj[key], bool)):
            raise DataError(where, key, f"expected {_TYPE_NAMES[typ]}, got {type(obj[key]).__name__}")
    if obj["mode"] not in EVAL_MODES:
        raise DataError(where, "mode", f"expected one of {EVAL_MODES}, got {obj['mode']!r}")
    return obj  # type: ignore[return-value]


def write_results(path: str | os.PathLike, results: Results) -> None:
    """Write a results file atomically (temp file + rename), after checking it."""
    path = Path(path)
    validate_results(results, str(path))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    tmp.replace(path)


def read_results(path: str | os.PathLike) -> Results:
    """One results file, checked: bad JSON or a bad field is one line naming the file and field."""
    path = Path(path)
    try:
        obj = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DataError(str(path), None, "no such file") from None
    except UnicodeDecodeError as err:
        raise DataError(str(path), None, f"not UTF-8 (byte {err.start + 1})") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}", None, f"invalid JSON ({err.msg})") from None
    return validate_results(obj, str(path))


# JSON files the generator and the cross-task joiner write beside their JSONL outputs
# (``NAME.stats.json``, ``NAME.join.json``), which may share a MODE folder with results.
SIDECAR_SUFFIXES = (".stats.json", ".join.json")


def is_results_path(path: Path) -> bool:
    return path.suffix == ".json" and path.parent.name in EVAL_MODES and not path.name.endswith(SIDECAR_SUFFIXES)


def results_files(results_dir: str | os.PathLike) -> list[Path]:
    """The results files below ``results_dir`` (sorted), found by their place (module docstring)."""
    return [p for p in sorted(Path(results_dir).rglob("*.json")) if p.is_file() and is_results_path(p)]


def iter_results(results_dir: str | os.PathLike) -> Iterator[tuple[Path, Results]]:
    """``(path, results)`` for every results file below ``results_dir``, each checked."""
    for path in results_files(results_dir):
        yield path, read_results(path)
