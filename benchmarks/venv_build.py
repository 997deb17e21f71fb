"""Wall time of building the CPU/test venv from scratch: lock + uv vs the pip path it replaced.

    python3 benchmarks/venv_build.py                       # venvs and caches under /tmp/venv-build-bench
    python3 benchmarks/venv_build.py --workdir /tmp/x --warm

Both sides start from an empty venv AND an empty package cache of their own (a fresh
machine): the only thing already on disk is what this machine provides to every build,
the CPU torch wheel and the local package indexes. They run back to back in one process.
* pip (before the locks): `pip install --upgrade pip`, `pip install torch==2.13.0`, then
  `pip install -c constraints-cpu.txt -r requirements-cpu.txt` (pip resolves the stack),
  then the project, editable: the recipe of the Makefile before locks/ existed.
* uv: `make venv` today: `tools/locks.py install cpu` installs uv into the venv from PyPI,
  then `uv pip install -r locks/cpu.txt` and the project (editable).
`--warm` repeats both with the caches they filled (a developer rebuilding the venv).
The last line is the headline ratio (cold pip / cold uv).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 3.0


def sh(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, **env},
                   stdout=subprocess.DEVNULL if "-q" in cmd else None)


def pip_path(venv: Path, cache: Path) -> None:
    env = {"PIP_CACHE_DIR": str(cache), "DS_BUILD_OPS": "0"}
    vpy = str(venv / "bin" / "python")
    sh([sys.executable, "-m", "venv", str(venv)], env)
    sh([vpy, "-m", "pip", "install", "-q", "--upgrade", "pip"], env)
    sh([vpy, "-m", "pip", "install", "-q", "torch==2.13.0"], env)
    sh([vpy, "-m", "pip", "install", "-q", "-c", "constraints-cpu.txt", "-r", "requirements-cpu.txt"], env)
    sh([vpy, "-m", "pip", "install", "-q", "--no-deps", "-e", "."], env)


def uv_path(venv: Path, cache: Path) -> None:
    env = {"PIP_CACHE_DIR": str(cache / "pip"), "UV_CACHE_DIR": str(cache / "uv"),
           "PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                   if not (Path(p) / "uv").exists())}  # no uv on PATH: a fresh machine
    sh(["make", "-s", "venv", f"VENV={venv}", f"PYTHON={sys.executable}", "INSTALLER=uv"], env)


def timed(fn, venv: Path, cache: Path, fresh_cache: bool) -> float:
    shutil.rmtree(venv, ignore_errors=True)
    if fresh_cache:
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    fn(venv, cache)
    seconds = time.perf_counter() - t0
    n = len(subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                           capture_output=True, text=True).stdout.splitlines())
    print(f"{fn.__name__:8s} {'cold' if fresh_cache else 'warm'} cache: {seconds:7.1f} s  ({n} packages)",
          flush=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/venv-build-bench"))
    ap.add_argument("--warm", action="store_true", help="also time rebuilds with the caches kept")
    ap.add_argument("--keep", action="store_true", help="keep the venvs and caches afterwards")
    args = ap.parse_args()
    w = args.workdir.resolve()
    if w == ROOT or ROOT in w.parents or w == Path("/work/main"):
        raise SystemExit("--workdir must be outside the repository (never touch a real .venv)")
    cold_pip = timed(pip_path, w / "pip" / ".venv", w / "pip-cache", True)
    cold_uv = timed(uv_path, w / "uv" / ".venv", w / "uv-cache", True)
    if args.warm:
        warm_pip = timed(pip_path, w / "pip" / ".venv", w / "pip-cache", False)
        warm_uv = timed(uv_path, w / "uv" / ".venv", w / "uv-cache", False)
        print(f"warm-cache ratio pip/uv: {warm_pip / warm_uv:.1f}x")
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)
    ratio = cold_pip / cold_uv
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"cold-cache venv build speed-up, pip/uv: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {met})")


if __name__ == "__main__":
    main()
