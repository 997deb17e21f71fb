"""Checks run with the inputs, before any long work (model load, tokenising, generation).

A wrong output path or a broken model folder should cost a second and one line, not a
traceback after a 30 s model load. Every check raises :class:`~alignxplore.formats.DataError`
naming the path and what is missing or unreadable.

Model folders (:func:`check_model`): a local folder must hold a readable ``config.json`` (a
JSON object with ``model_type``), weights whose headers parse (``*.safetensors``: the 8-byte
header length and the JSON header are read, and the file must be as long as the header's
largest tensor end — a truncated download is caught without loading a byte of weights; an
index ``*.safetensors.index.json`` must name shards that exist) and, where a tokenizer is
needed, ``tokenizer.json`` or ``tokenizer_config.json``. A name that is not a local path
must look like a hub id (``org/name``); if the local hub cache has it, the cached snapshot is
checked like a folder; if not, it is refused when downloads are off (``HF_HUB_OFFLINE=1``,
as in tests and on machines without internet) and left to the engine's download otherwise.
"""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

from .formats import DataError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# -- outputs -----------------------------------------------------------------------------
def _check_parent(path: Path, flag: str) -> None:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(str(path), flag, f"{parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(str(path), flag, f"{parent} is not writable")


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """An output file: not a folder, its folder creatable and writable."""
    path = Path(path)
    if path.is_dir():
        raise DataError(str(path), flag, "is a directory, expected a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise DataError(str(path), flag, "exists and is not writable")
    _check_parent(path, flag)
    return path


def check_output_dir(path: str | os.PathLike, flag: str = "--out-dir") -> Path:
    """An output folder: not an existing file, creatable and writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(str(path), flag, "is a file, expected a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise DataError(str(path), flag, "is not writable")
    else:
        _check_parent(path, flag)
    return path


def check_distinct(out: str | os.PathLike, *inputs: tuple[str, str | os.PathLike | None]) -> None:
    """``out`` must not be one of the inputs (``(flag, path)`` pairs): writing over an input,
    or resuming from it, would silently do nothing or destroy it."""
    out_p = Path(out)
    for flag, p in inputs:
        if p is None:
            continue
        p = Path(p)
        if out_p.resolve() == p.resolve() or (out_p.exists() and p.exists() and os.path.samefile(out_p, p)):
            raise DataError(str(out_p), "--out", f"is the same file as {flag}; write the output to another path")


# -- models ------------------------------------------------------------------------------
def _safetensors_problem(f: Path) -> str | None:
    """Why this safetensors file cannot be loaded, from its header alone; None if it looks whole."""
    try:
        size = f.stat().st_size
        with f.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return "shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8 or n > 100 << 20:
                return "header length past the end of the file (truncated?)"
            header = json.loads(fh.read(n))
    except OSError as err:
        return f"unreadable ({err.strerror})"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "header is not valid JSON (not a safetensors file, or damaged)"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + (max(ends) if ends else 0)
    if size < need:
        return f"truncated: {size} bytes, the header describes {need}"
    return None


def _check_weights(folder: Path) -> str | None:
    st = sorted(folder.glob("*.safetensors"))
    index = sorted(folder.glob("*.safetensors.index.json"))
    for idx in index:
        try:
            shards = set(json.loads(idx.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{idx.name}: unreadable or without weight_map"
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            return f"{idx.name} names missing shard(s): {', '.join(missing[:3])}"
    for f in st:
        problem = _safetensors_problem(f)
        if problem:
            return f"{f.name}: {problem}"
    if not st and not any(folder.glob("*.bin")) and not any(folder.glob("*.pt")):
        return "no weights (*.safetensors or pytorch_model*.bin)"
    return None


def _hub_snapshot(name: str) -> Path | None:
    """The local hub-cache snapshot of ``org/name``, or None (nothing is downloaded)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def resolve_model(name: str, flag: str = "--model") -> Path | None:
    """A local model folder for ``name``: the folder itself, or the hub-cache snapshot of a hub
    id; None for a hub id that the engine will download (downloads on, not cached)."""
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise DataError(str(p), flag, "is a file, expected a model folder")
        return p
    if not HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise DataError(name, flag, "no such model folder")
    snap = _hub_snapshot(name)
    if snap is None:
        if _offline():
            raise DataError(name, flag, "no such folder, and not in the local Hugging Face cache (downloads are off: HF_HUB_OFFLINE)")
        return None
    return snap


def check_model(name: str, flag: str = "--model", *, weights: bool = True, tokenizer: bool = True) -> Path | None:
    """One check of a model folder before it is loaded (see the module docstring)."""
    folder = resolve_model(name, flag)
    if folder is None:
        return None  # a hub id to be downloaded by the engine
    where = str(Path(name)) if Path(name).exists() else name
    if not any(folder.iterdir()):
        raise DataError(where, flag, "empty folder")
    if weights:
        cfg = folder / "config.json"
        if not cfg.is_file():
            raise DataError(where, flag, "no config.json")
        try:
            conf = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(where, flag, f"config.json is unreadable ({str(err).splitlines()[0]})") from None
        if not isinstance(conf, dict) or "model_type" not in conf:
            raise DataError(where, flag, "config.json has no model_type")
        problem = _check_weights(folder)
        if problem:
            raise DataError(where, flag, problem)
    if tokenizer and not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()):
        raise DataError(where, flag, "no tokenizer (tokenizer.json or tokenizer_config.json)")
    return folder


def context_length(folder: str | os.PathLike) -> int | None:
    """The context length the model's config declares (``max_position_embeddings``), if any."""
    try:
        conf = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    n = conf.get("max_position_embeddings") if isinstance(conf, dict) else None
    return int(n) if isinstance(n, int) and n > 0 else None
