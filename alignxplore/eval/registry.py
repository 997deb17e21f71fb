"""The benchmark registry (``eval/benchmarks.yaml``) and where the benchmark files come from.

``--data-dir`` / ``DATA_DIR`` is a local folder, or the name of a dataset on the HF hub (the
released one is ``VanillaH1/AlignXplorePlus-Benchmark``; ``hf://datasets/OWNER/NAME`` also
works): it is fetched once with ``huggingface_hub.snapshot_download`` into the HF cache
(``HF_HOME`` / ``HF_HUB_CACHE``) and read from there; later and offline runs use the cache.
A file is looked up at ``DIR/FILE`` and, failing that, anywhere below ``DIR``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

import logging

from ..formats import DataError, read_jsonl, validate_benchmark_row
from ..history import SPLIT_RULES

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = REPO_ROOT / "eval" / "benchmarks.yaml"
HUB_BENCHMARK = "VanillaH1/AlignXplorePlus-Benchmark"
log = logging.getLogger("alignxplore.registry")


@dataclass(frozen=True)
class TaskKind:
    """What a benchmark's task kind means for evaluation.

    lm-evaluation-harness style: each registry entry names its kind (``task:``), and this table,
    the only place that knows the kinds, says what each one implies, so evaluation branches on
    these properties and never on a kind's name. All three rules are the authors' (their
    recommendation and selection scripts differ in exactly these points; docs/formats.md §2).
    """

    name: str
    direct_style: str  # how the direct baseline wraps the raw history (prompts.DIRECT_BASELINE_STYLES)
    direct_history_cut: bool  # the direct baseline's history is cut until its judge prompt fits the budget
    skip_empty_history: bool  # a user whose shown history is empty is not judged and draws no A/B placement
    direct_long_answer: bool  # the direct baseline's sampled answer gets --direct-selection-max-new-tokens


TASK_KINDS = {
    kind.name: kind
    for kind in (
        TaskKind("recommendation", direct_style="recommendation", direct_history_cut=True, skip_empty_history=True, direct_long_answer=False),
        TaskKind("response_selection", direct_style="selection", direct_history_cut=False, skip_empty_history=False, direct_long_answer=True),
        TaskKind("response_generation", direct_style="selection", direct_history_cut=False, skip_empty_history=False, direct_long_answer=True),
    )
}
TASKS = tuple(TASK_KINDS)


def unknown_kind(task: str) -> str:
    return f"{task!r} is not a task kind; known kinds: {', '.join(TASKS)} (alignxplore/eval/registry.py TASK_KINDS)"


@dataclass(frozen=True)
class Benchmark:
    name: str
    file: str
    task: str  # its TaskKind's name
    split: str
    column: str
    auc: bool = False

    def __post_init__(self) -> None:
        if self.task not in TASK_KINDS:
            raise ValueError(f"benchmark {self.name!r}: task {unknown_kind(self.task)}")

    @property
    def kind(self) -> TaskKind:
        return TASK_KINDS[self.task]

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
        if e["task"] not in TASK_KINDS:
            raise DataError(f"{where} (benchmark {e['name']!r})", "task", unknown_kind(e["task"]))
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


def how_to_get(data_dir: str | Path, repo_id: str = HUB_BENCHMARK) -> str:
    """The one-line instruction every missing-data error ends with."""
    return (
        f"download the benchmark files on a machine with internet: `huggingface-cli download --repo-type dataset {repo_id} "
        f"--local-dir data/benchmark`, copy that folder here and pass DATA_DIR=data/benchmark (or --data-dir); "
        f"or run online once with DATA_DIR={repo_id} to fill the HF cache (got DATA_DIR={data_dir})"
    )


def hub_repo_id(data_dir: str | Path) -> str | None:
    """``OWNER/NAME`` if ``data_dir`` names a hub dataset rather than an existing folder."""
    text = str(data_dir)
    if text.startswith("hf://datasets/"):
        return text[len("hf://datasets/") :].strip("/")
    if Path(text).exists() or text.startswith((".", "/", "~")):
        return None
    parts = text.split("/")
    return text if len(parts) == 2 and all(parts) else None


def resolve_data_dir(data_dir: str | Path, files: list[str] | None = None) -> Path:
    """A local folder holding the benchmark files; a hub dataset name is fetched into (or
    found in) the HF cache. Raises :class:`DataError` saying what to download and where."""
    repo_id = hub_repo_id(data_dir)
    if repo_id is None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(str(path), None, f"no such folder; {how_to_get(data_dir)}")
        return path
    from huggingface_hub import snapshot_download

    patterns = [f"*{f}" for f in files] if files else None  # fnmatch: '*' also matches '/'
    try:
        local = snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns)
    except Exception as err:  # offline, not cached, no such repo, no network: all end the same way
        # "data/benchmark" (the launchers' default) also looks like OWNER/NAME: say both.
        raise DataError(str(data_dir), None, f"no such folder, and no hub dataset {repo_id} in the HF cache or downloadable here "
                        f"({type(err).__name__}); {how_to_get(data_dir)}") from None
    log.info("benchmark data: %s -> %s", repo_id, local)
    return Path(local)


def benchmark_file(data_dir: Path, bench: Benchmark) -> Path:
    direct = data_dir / bench.file
    if direct.is_file():
        return direct
    found = sorted(data_dir.rglob(bench.file))
    if found:
        return found[0]
    raise DataError(str(direct), None, f"no such file; {how_to_get(data_dir)}")


def load_benchmark_rows(path: Path, limit: int | None = None) -> list[dict]:
    """Validated rows with their ``file:line`` kept in ``_where`` (for later errors); userids
    unique. Every line is checked before the first error is raised (see ``formats.iter_jsonl``).
    Rows without ``userid`` get a content-derived one (``formats.derived_userid``); identical
    such rows are numbered ``#2``, ``#3``, ... in file order instead of being refused."""
    rows, seen = [], {}
    derived = 0
    for row in read_jsonl(path, validate_benchmark_row, keep_where=True, log=log.error):
        if row.get("userid_derived"):
            derived += 1
            base, k = row["userid"], 1
            while row["userid"] in seen:
                k += 1
                row["userid"] = f"{base}#{k}"
        if row["userid"] in seen:
            raise DataError(row["_where"], "userid", f"duplicate of {seen[row['userid']]}")
        seen[row["userid"]] = row["_where"]
        rows.append(row)
    if derived:
        log.warning("%s: %d record(s) without userid: ids derived from their content (anon-<sha256 of history and target>)", path, derived)
    return rows[:limit] if limit else rows


def load_benchmarks(data_dir: str | Path, benches: list[Benchmark], limit: int | None = None) -> dict[str, list[dict]]:
    """Every selected benchmark, read and validated (before any model is loaded)."""
    root = resolve_data_dir(data_dir, [b.file for b in benches])
    return {b.name: load_benchmark_rows(benchmark_file(root, b), limit) for b in benches}
