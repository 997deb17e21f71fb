"""Final (or any) actor checkpoint of streaming GRPO -> a plain Hugging Face folder.

    python -m alignxplore.rl.merge --ckpt-dir checkpoints/rl --out checkpoints/rl/merged
    python -m alignxplore.rl.merge --ckpt-dir ... --step 30 --out checkpoints/rl/merged_step30

Resolves ``--step latest`` through verl's ``latest_checkpointed_iteration.txt``, runs verl's
own merger (``python -m verl.model_merger merge --backend fsdp``) on
``global_step_N/actor`` and checks that the result has weights, config and tokenizer, so that
``alignxplore.backends`` (hf / vllm) and ``eval/`` load it as they load any checkpoint.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ..cli import run_main
from ..formats import DataError


def actor_dir(ckpt_dir: Path, step: str) -> Path:
    if step == "latest":
        tracker = ckpt_dir / "latest_checkpointed_iteration.txt"
        if not tracker.is_file():
            raise DataError(str(ckpt_dir), None, "no latest_checkpointed_iteration.txt: no checkpoint saved yet (trainer.save_freq)")
        step = tracker.read_text().strip()
    path = ckpt_dir / f"global_step_{step}" / "actor"
    if not path.is_dir():
        raise DataError(str(path), None, "no such actor checkpoint")
    return path


def merge(ckpt_dir: str | Path, out: str | Path, step: str = "latest", backend: str = "fsdp") -> Path:
    src, out = actor_dir(Path(ckpt_dir), str(step)), Path(out)
    cmd = [sys.executable, "-m", "verl.model_merger", "merge", "--backend", backend, "--local_dir", str(src), "--target_dir", str(out)]
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise DataError(str(src), None, f"verl's model merger failed (exit {proc.returncode}): {' '.join(cmd)}")
    missing = [n for n in ("config.json", "tokenizer_config.json") if not (out / n).is_file()]
    if missing or not any(out.glob("*.safetensors")):
        raise DataError(str(out), None, f"merged folder incomplete (missing {missing or 'weights'})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.rl.merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt-dir", required=True, help="trainer.default_local_dir of the run")
    ap.add_argument("--step", default="latest", help="global step to merge (default: the latest saved)")
    ap.add_argument("--out", required=True, help="Hugging Face folder to write")
    ap.add_argument("--backend", default="fsdp", choices=("fsdp", "megatron"))
    args = ap.parse_args(argv)
    print(f"merged {merge(args.ckpt_dir, args.out, args.step, args.backend)}")
    return 0


if __name__ == "__main__":
    run_main(main)
