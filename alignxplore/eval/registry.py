"""The benchmark registry (``eval/benchmarks.yaml``): one entry per benchmark."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ..formats import DataError, read_jsonl, validate_benchmark_row
from ..history import SPLIT_RULES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = REPO_ROOT / "eval" / "benchmarks.yaml"
TASKS = ("recommendation", "response_selection", "response_generation")


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str
    task: str
    split: str
    column: str
    auc: bool = False

    def path(self, data_dir: str | Path) -> Path:
        return Path(data_dir) / self.file


def load_registry(path: str | Path = DEFAULT_REGISTRY) -> list[Benchmark]:
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such registry file")
    doc = yaml.safe_load(path.read_text()) or {}
    entries = doc.get("benchmarks")
    if not isinstance(entries, list) or not entries:
        raise DataError(str(path), "benchmarks", "expected a non-empty list")
    out, seen = [], set()
    for i, e in enumerate(entries):
        where = f"{path}: benchmarks[{i}]"
        if not isinstance(e, dict):
            raise DataError(where, None, "expected a mapping")
        for key in ("name", "file", "task", "split", "column"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise DataError(where, key, "missing or not a string")
        if e["task"] not in TASKS:
            raise DataError(where, "task", f"{e['task']!r} not in {TASKS}")
        if e["split"] not in SPLIT_RULES:
            raise DataError(where, "split", f"{e['split']!r} not in {SPLIT_RULES}")
        if e["name"] in seen:
            raise DataError(where, "name", f"duplicate benchmark {e['name']!r}")
        seen.add(e["name"])
        out.append(Benchmark(e["name"], e["file"], e["task"], e["split"], e["column"], bool(e.get("auc", False))))
    return out


def select_benchmarks(registry: list[Benchmark], names: str | list[str]) -> list[Benchmark]:
    """``"all"`` or a comma-separated list of names, kept in registry order."""
    if isinstance(names, str):
        if names.strip() == "all":
            return list(registry)
        names = [n.strip() for n in names.split(",") if n.strip()]
    known = {b.name for b in registry}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
    return [b for b in registry if b.name in names]


def load_benchmark_rows(path: Path, limit: int | None = None) -> list[dict]:
    """Validated rows with their ``file:line`` kept in ``_where`` (for later errors); userids unique."""
    rows, seen = [], {}
    for row in read_jsonl(path, validate_benchmark_row, keep_where=True):
        if row["userid"] in seen:
            raise DataError(row["_where"], "userid", f"duplicate of {seen[row['userid']]}")
        seen[row["userid"]] = row["_where"]
        rows.append(row)
    return rows[:limit] if limit else rows
