"""Run a verl entry point on CPU as a subprocess, bounded in time, leaving no Ray processes.

    result = run_verl_cpu(["-m", "verl.trainer.main_ppo", *overrides], run_dir=tmp, timeout_s=600)
    assert result.returncode == 0, result.tail()

The command gets :func:`.settings.cpu_env` and :func:`.settings.cpu_overrides` (pass
``with_overrides=False`` to add them yourself). It runs in its own session; whatever happens
(exit, time-out, KeyboardInterrupt) the process group is killed and every process whose
command line names this run's Ray temp dir (raylet, GCS, workers started by ``ray.init``) is
killed by pid — never by name, so other runs on the machine are untouched.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .settings import cpu_env, cpu_overrides, ray_temp_dir


@dataclass
class CpuRun:
    returncode: int
    timed_out: bool
    log_path: Path
    wall_s: float
    leftover_pids_killed: list[int]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 6000) -> str:
        return self.log()[-chars:]


def _pids_mentioning(marker: str) -> list[int]:
    """Processes (other than ours) whose command line contains ``marker``."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def _kill_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    if proc.poll() is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers of an exited leader
        except (ProcessLookupError, PermissionError):
            pass
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def kill_ray_processes(temp_dir: str) -> list[int]:
    """SIGKILL every process whose command line names ``temp_dir`` (this run's Ray session)."""
    pids = _pids_mentioning(temp_dir)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def run_verl_cpu(
    args: Sequence[str],
    run_dir: os.PathLike | str,
    *,
    timeout_s: float = 900,
    n_procs: int = 1,
    with_overrides: bool = True,
    extra_modules: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    cwd: Optional[os.PathLike | str] = None,
) -> CpuRun:
    """``python <args> <cpu overrides>`` with the CPU environment; output in ``run_dir/verl.log``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    temp_dir = ray_temp_dir(run_dir)
    full_env = {**os.environ, **(env or {})}
    full_env.update(cpu_env(extra_modules=extra_modules, base=full_env))
    argv = [sys.executable, *args]
    if with_overrides:
        argv += cpu_overrides(n_procs=n_procs, tmp_dir=run_dir)
    log_path = run_dir / "verl.log"
    start = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        log.write((" ".join(argv) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or run_dir, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)
            killed = kill_ray_processes(temp_dir)
    if temp_dir.startswith("/tmp/ray-"):  # the short fallback outside run_dir
        shutil.rmtree(temp_dir, ignore_errors=True)
    return CpuRun(
        returncode=proc.returncode if not timed_out else -9,
        timed_out=timed_out,
        log_path=log_path,
        wall_s=time.monotonic() - start,
        leftover_pids_killed=killed,
    )
