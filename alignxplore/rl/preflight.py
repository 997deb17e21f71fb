"""Start-up checks of a streaming-GRPO run, on the driver, before Ray starts or a model loads.

Each failure is one line (:class:`~alignxplore.formats.DataError`: ``where: field: problem``)
and ``python -m alignxplore.rl.main`` exits 2; what the checks cost is a file listing, a
parquet footer and one judge request per URL. They catch, in seconds, what verl 0.9.1 would
report minutes later from inside a Ray actor (or never, as a hang of retries):

* **paths**: the model folder and the data files exist; they and the checkpoint folder are
  made absolute, because Ray workers resolve relative paths in their own working directory;
  with ``trainer.nnodes > 1`` a warning says they must be on a filesystem every node mounts;
* **one full batch**: the data has at least ``data.train_batch_size`` rows (verl drops the last
  partial batch; with fewer rows its dataloader is empty and it stops with an assertion);
* **loopback judge on several nodes**: verl places reward workers round-robin on every Ray
  node, so a judge URL at 127.0.0.0/8, ``localhost`` or ``::1`` only works on one of them;
* **the judge answers**: every URL of ``reward_kwargs.base_url`` answers one real scoring
  request (the reward's own client and request), so a wrong host, port, served model name or
  a server without log-probs is one line naming the URL.

Hub model ids (``org/name``, not present locally) pass the path check: verl downloads them.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from omegaconf import OmegaConf, open_dict

from ..formats import DataError

JUDGE_FIELD = "reward.custom_reward_function.reward_kwargs.base_url (JUDGE_URL)"
PREFLIGHT_TIMEOUT_S = 20.0  # per judge URL; a vLLM server answers one 1-token request in well under a second
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _is_remote(path: str) -> bool:
    return "://" in path


def _absolute(path: str, cwd: Path) -> str:
    p = Path(path).expanduser()
    return os.path.normpath(p if p.is_absolute() else cwd / p)  # symlinks kept: the user's names


def resolve_paths(config, cwd: Path | None = None) -> list[str]:
    """Check the model and data paths and make them (and the checkpoint folder) absolute in
    ``config``, in place. Returns the local paths the run reads or writes."""
    cwd = Path.cwd() if cwd is None else cwd
    files = config.data.train_files
    listed = [files] if isinstance(files, str) else list(files)
    train = []
    for f in listed:
        f = str(f)
        if _is_remote(f):
            train.append(f)
            continue
        if not Path(_absolute(f, cwd)).is_file():
            raise DataError(f, "data.train_files", "no such file (make it with bash verl/preprocess.sh)")
        train.append(_absolute(f, cwd))
    model = str(config.actor_rollout_ref.model.path)
    local_model = not _is_remote(model) and (Path(_absolute(model, cwd)).exists() or not _HUB_ID.match(model))
    if local_model:
        if not Path(_absolute(model, cwd)).is_dir():
            raise DataError(model, "actor_rollout_ref.model.path", "no such model folder (make it with bash sft/sft.sh)")
        model = _absolute(model, cwd)
    output = _absolute(str(config.trainer.default_local_dir), cwd)
    val_follows_train = OmegaConf.to_container(config.data, resolve=False).get("val_files") == "${data.train_files}"
    with open_dict(config):
        config.data.train_files = train[0] if isinstance(files, str) else train
        if not val_follows_train and config.data.get("val_files"):
            vals = config.data.val_files
            vals = [vals] if isinstance(vals, str) else list(vals)
            config.data.val_files = [v if _is_remote(str(v)) else _absolute(str(v), cwd) for v in vals]
        config.actor_rollout_ref.model.path = model
        config.trainer.default_local_dir = output
    return [p for p in [*train, model if local_model else None, output] if p and not _is_remote(p)]


def count_rows(files) -> int:
    """Rows in the training files (parquet: from the footers; json/jsonl: non-empty lines)."""
    total = 0
    for f in [files] if isinstance(files, str) else list(files):
        f = str(f)
        if _is_remote(f):
            return -1  # unknown: leave it to verl
        if f.endswith(".parquet"):
            import pyarrow.parquet as pq

            total += pq.ParquetFile(f).metadata.num_rows
        else:
            with open(f, encoding="utf-8") as fh:
                total += sum(1 for line in fh if line.strip())
    return total


def check_one_batch(config) -> None:
    rows = count_rows(config.data.train_files)
    limit = config.data.get("train_max_samples", -1)
    if rows >= 0 and limit is not None and limit > 0:
        rows = min(rows, limit)
    batch = int(config.data.train_batch_size)
    if 0 <= rows < batch:
        raise DataError(str(config.data.train_files), "data.train_batch_size",
                        f"{rows} rows, fewer than one batch of {batch} (verl drops the partial batch): "
                        f"add rows or lower data.train_batch_size (and actor.ppo_mini_batch_size)")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def judge_options(config):
    from .reward import JudgeOptions

    rcfg = config.reward.custom_reward_function
    if rcfg.get("path") != "pkg://alignxplore.rl.reward":
        return None  # another reward function: nothing of ours to check
    kwargs = OmegaConf.to_container(rcfg.get("reward_kwargs") or {}, resolve=True)
    try:
        return JudgeOptions.from_kwargs(kwargs)
    except (TypeError, ValueError) as err:
        raise DataError("config", "reward.custom_reward_function.reward_kwargs", str(err)) from None


def check_judge_placement(opts, nnodes: int) -> None:
    if opts is None or opts.backend != "openai" or nnodes <= 1:
        return
    for url in opts.base_urls():
        if is_loopback(url):
            raise DataError(url, JUDGE_FIELD, f"a loopback address with trainer.nnodes={nnodes}: verl runs reward workers on "
                                              f"every node; give the judge host's address (see verl/serve_judge.sh)")


def check_judges_answer(opts, timeout_s: float = PREFLIGHT_TIMEOUT_S) -> None:
    """One real scoring request per URL, all at once; the first failure is raised."""
    if opts is None or opts.backend != "openai":
        return
    from ..backends import load_backend
    from ..prompts import judge_messages

    messages = judge_messages("Pick a film for tonight.", "Likes slow, thoughtful science fiction.", "Solaris", "Notting Hill")

    async def connect(url: str) -> str | None:
        """A TCP connection first: an unreachable judge fails in milliseconds, before the
        client's imports (its tokenizer) and retries."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout_s)
        except (OSError, asyncio.TimeoutError) as err:
            return f"cannot connect to {parts.hostname}:{port}: {type(err).__name__}: {err}"
        writer.close()
        return None

    async def ask(url: str) -> str | None:
        error = await connect(url)
        if error is not None:
            return error
        backend = load_backend("openai", opts.model, base_url=url, concurrency=1, timeout=timeout_s, max_retries=1,
                               tokenizer=opts.tokenizer, progress=False)
        try:
            score = await backend.ajudge(messages)
        except Exception as err:  # e.g. the letter-token look-up: one line, not a traceback
            return f"{type(err).__name__}: {err}"
        finally:
            await backend.aclose()
        return None if score.ok else score.error

    async def ask_all() -> list[str | None]:
        return await asyncio.gather(*(ask(u) for u in opts.base_urls()))

    for url, error in zip(opts.base_urls(), asyncio.run(ask_all())):
        if error is not None:
            raise DataError(url, JUDGE_FIELD, f"the judge did not answer a scoring request ({error}); "
                                              f"start it with bash verl/serve_judge.sh and check JUDGE_URL / JUDGE_NAME")


def preflight(config, *, warn: Callable[[str], None] = lambda m: print(m, file=sys.stderr), cwd: Path | None = None) -> None:
    """All checks, cheapest first; ``config`` gets absolute paths. Raises DataError."""
    paths = resolve_paths(config, cwd)
    nnodes = int(config.trainer.nnodes)
    if nnodes > 1:
        warn(f"warning: trainer.nnodes={nnodes}: every node must see {', '.join(paths)} at the same path (a shared filesystem)")
    check_one_batch(config)
    opts = judge_options(config)
    check_judge_placement(opts, nnodes)
    check_judges_answer(opts)
