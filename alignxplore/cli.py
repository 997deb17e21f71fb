"""Shared command-line plumbing: bad input ends in one readable line, not a traceback."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from .formats import DataError
from .history import MAX_MODEL_LEN

log = logging.getLogger("alignxplore")


def run_main(main: Callable[[], int | None]) -> None:
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(asctime)s %(levelname)s %(message)s")
    from .backends.base import BackendSetupError

    try:
        sys.exit(main() or 0)
    except (DataError, BackendSetupError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def package_versions(names=("alignxplore", "torch", "transformers", "vllm", "trl", "deepspeed", "verl")) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit(repo: Path = Path(__file__).resolve().parents[1]) -> str:
    """HEAD of the checkout the package runs from, with ``-dirty`` if it has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def add_backend_args(ap, prefix: str = "", *, what: str = "model") -> None:
    """Engine options shared by every command that loads a model (``prefix`` e.g. ``judge-``)."""
    g = ap.add_argument_group(f"{what} engine")
    from .backends import BACKENDS

    g.add_argument(f"--{prefix}backend", choices=BACKENDS, default="hf",
                   help="hf (transformers), vllm (offline engine), openai (HTTP server) or embedding (a sentence-encoder judge for CPU demos; model 'packaged')")
    g.add_argument(f"--{prefix}model", required=True, help="checkpoint path (hf, vllm) or served model name (openai)")
    g.add_argument(f"--{prefix}tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model replica")
    g.add_argument(f"--{prefix}max-model-len", type=int, default=None,
                   help=f"vllm: context length (default {MAX_MODEL_LEN}); openai: the server's, to cap max_tokens by (default: its /v1/models max_model_len)")
    g.add_argument(f"--{prefix}gpu-memory-utilization", type=float, default=0.9, help="vllm: share of GPU memory")
    g.add_argument(f"--{prefix}dtype", default="auto", help="hf/vllm weight dtype (auto: bf16 on GPU, fp32 on CPU)")
    g.add_argument(f"--{prefix}batch-size", type=int, default=8, help="hf: prompts per forward/generate batch (at most)")
    from .backends.hf import DEFAULT_BATCH_TOKENS

    g.add_argument(f"--{prefix}batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS,
                   help="hf: padded tokens per batch, rows x (longest prompt + new tokens); a longer prompt runs alone")
    g.add_argument(f"--{prefix}base-url", default="http://127.0.0.1:8000/v1", help="openai: server URL")
    g.add_argument(f"--{prefix}api-key", default=os.environ.get("OPENAI_API_KEY"), help="openai: key (default $OPENAI_API_KEY)")
    g.add_argument(f"--{prefix}concurrency", type=int, default=64, help="openai: requests in flight")
    g.add_argument(f"--{prefix}timeout", type=float, default=300.0, help="openai: seconds per request")
    g.add_argument(f"--{prefix}max-retries", type=int, default=4, help="openai: retries per request")
    g.add_argument(f"--{prefix}tokenizer", default=None, help="openai: the served model's own tokenizer (path or hub name); needed only when the server has no vLLM /tokenize")


def add_sampling_args(ap, *, title: str = "sampling (paper defaults)", defaults=None, seed_help: str | None = None) -> None:
    """Sampling knobs (``--temperature --top-k --top-p --max-new-tokens --seed``); shared by
    every command that generates text. ``defaults``: a ``SamplingConfig`` (default: the
    paper's); ``title`` / ``seed_help``: what a command says about them in ``--help``."""
    from .backends.base import SamplingConfig

    s = ap.add_argument_group(title)
    d = defaults or SamplingConfig()
    shown = " (default: %(default)s)"  # in the help text itself, so every formatter prints it
    s.add_argument("--temperature", type=float, default=d.temperature, help="sampling temperature" + shown)
    s.add_argument("--top-k", type=int, default=d.top_k, help="top-k cut" + shown)
    s.add_argument("--top-p", type=float, default=d.top_p, help="nucleus (top-p) cut" + shown)
    s.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens, help="new tokens per answer" + shown)
    s.add_argument("--seed", type=int, default=d.seed, help=(seed_help or "sampling seed") + shown)


def sampling_from_args(args):
    from .backends.base import SamplingConfig

    return SamplingConfig(args.temperature, args.top_k, args.top_p, args.max_new_tokens, args.seed)


def check_backend_args(args, prefix: str = "") -> None:
    """The model (hf, vllm) or tokenizer (openai ``--tokenizer``) folder checked before any
    load (:func:`alignxplore.preflight.check_model`): a bad path is one line naming it."""
    from .preflight import check_model

    p = prefix.replace("-", "_")
    name = getattr(args, p + "backend")
    if name in ("hf", "vllm"):
        check_model(getattr(args, p + "model"), f"--{prefix}model")
    elif name == "openai" and getattr(args, p + "tokenizer", None):
        check_model(getattr(args, p + "tokenizer"), f"--{prefix}tokenizer", weights=False)


def backend_from_args(args, prefix: str = "", *, judge: bool = True):
    """The backend the flags name. ``judge=False`` for generation-only callers (summaries,
    ``alignxplore infer``): an OpenAI-compatible server then needs no ``/tokenize`` or
    ``--tokenizer`` at start-up (the A/B letter ids are only asked by a judge call)."""
    from .backends import load_backend

    p = prefix.replace("-", "_")
    get = lambda name: getattr(args, p + name)  # noqa: E731
    name = get("backend")
    check_backend_args(args, prefix)
    if name == "hf":
        opts = dict(dtype=get("dtype"), generation_batch_size=get("batch_size"), judge_batch_size=get("batch_size"),
                    **({"max_batch_tokens": getattr(args, p + "batch_tokens")} if hasattr(args, p + "batch_tokens") else {}))
    elif name == "vllm":
        opts = dict(
            tensor_parallel_size=get("tensor_parallel_size"),
            max_model_len=get("max_model_len") or MAX_MODEL_LEN,
            gpu_memory_utilization=get("gpu_memory_utilization"),
            dtype=get("dtype"),
        )
    elif name == "embedding":
        opts = dict(batch_size=get("batch_size"))
    else:
        opts = dict(base_url=get("base_url"), api_key=get("api_key"), concurrency=get("concurrency"), timeout=get("timeout"),
                    max_retries=get("max_retries"), tokenizer=get("tokenizer"), max_model_len=get("max_model_len"), judge=judge)
    log.info("loading %s backend for %s", name, get("model"))
    return load_backend(name, get("model"), **opts)
