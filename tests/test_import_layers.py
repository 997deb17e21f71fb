"""The package's layers, read from every module's imports (``ast``: top-level imports and the
lazy ones inside functions alike, relative ones resolved).

* ``backends/`` (the engines) sit under everything that uses them: they import nothing from
  ``judge``, ``eval``, ``demo``, ``rl``, ``data``, ``infer``, ``sft`` or ``testing``.
* ``formats``, ``prompts``, ``history`` (the data formats and the prompt / history rules) sit
  under the engines: they import nothing from ``backends``, ``judge``, ``eval``, ``rl``,
  ``data``, ``infer``, ``sft``, ``demo`` or ``testing``.
* ``demo/`` (the CPU demo's tiny model and synthetic world) is imported only by itself and by
  the importers listed in ``DEMO_IMPORTERS``, each with its reason; an entry nothing needs any
  more fails too, so the list cannot rot.
* ``testing/`` (test servers) is imported by no module of the package outside it.

Tests, benchmarks and figures are outside the package and may import anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "alignxplore"

FORBIDDEN = {
    "backends": {"judge", "eval", "demo", "rl", "data", "infer", "sft", "testing"},
    "formats": {"backends", "judge", "eval", "rl", "data", "infer", "sft", "demo", "testing"},
    "prompts": {"backends", "judge", "eval", "rl", "data", "infer", "sft", "demo", "testing"},
    "history": {"backends", "judge", "eval", "rl", "data", "infer", "sft", "demo", "testing"},
}
# Who may import alignxplore.demo besides demo/ itself (a path prefix, relative to the repository root).
DEMO_IMPORTERS = {
    "alignxplore/testing/": "test servers answer /tokenize with the tiny Qwen3's real tokenizer by default "
                            "(fake_openai: demo.tiny.qwen3_tokenizer_dir); test support, never a production path",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source`` (module ``name``), at any depth:
    relative imports resolved, ``from X import y`` counted as ``X.y`` where that is a module,
    and ``importlib.import_module("...")`` with a constant name counted too."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                found.append((node.lineno, f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def layer(module: str) -> str | None:
    """``alignxplore.backends.base`` -> ``backends``; None outside the package."""
    parts = module.split(".")
    return parts[1] if parts[0] == "alignxplore" and len(parts) > 1 else None


def package_imports() -> list[tuple[str, int, str]]:
    """``(file, line, imported module)`` for every package-internal import of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for line, target in imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py"):
            if layer(target) is not None:
                out.append((str(path.relative_to(ROOT)), line, target))
    return out


def violations(imports: list[tuple[str, int, str]]) -> list[str]:
    bad = []
    for file, line, target in imports:
        source_layer, target_layer = Path(file).parts[1].removesuffix(".py"), layer(target)
        if target_layer in FORBIDDEN.get(source_layer, ()):
            bad.append(f"{file}:{line}: {source_layer} imports {target} ({target_layer} is above it)")
        if target_layer == "demo" and source_layer != "demo" and not any(file.startswith(p) for p in DEMO_IMPORTERS):
            bad.append(f"{file}:{line}: imports {target}: only demo/ and DEMO_IMPORTERS may import the demo's support")
        if target_layer == "testing" and source_layer != "testing":
            bad.append(f"{file}:{line}: imports {target}: test support is not part of the package's code paths")
    return bad


def test_the_package_keeps_its_layers():
    imports = package_imports()
    assert len({f for f, _, _ in imports}) > 50  # the scan sees the package (a broken walk finds nothing)
    bad = violations(imports)
    assert not bad, "\n".join(bad)


def test_every_demo_import_exception_is_still_needed():
    importers = {f for f, _, t in package_imports() if layer(t) == "demo" and not f.startswith("alignxplore/demo/")}
    unused = [p for p in DEMO_IMPORTERS if not any(f.startswith(p) for f in importers)]
    assert not unused, f"DEMO_IMPORTERS entries nothing needs any more: {unused}"


@pytest.mark.parametrize("source, expected", [
    # a lazy relative import inside a method, as embedding.py once had
    ("def f():\n    from ..judge import sampler_distribution\n", "alignxplore/backends/x.py:2: backends imports alignxplore.judge"),
    ("from .. import judge\n", "alignxplore/backends/x.py:1: backends imports alignxplore.judge"),
    ("import alignxplore.rl.reward as r\n", "alignxplore/backends/x.py:1: backends imports alignxplore.rl.reward"),
    ("import importlib\nm = importlib.import_module('alignxplore.eval.evaluate')\n", "alignxplore/backends/x.py:2: backends imports alignxplore.eval.evaluate"),
    ("from ..demo.tiny import qwen3_tokenizer_dir\n", "alignxplore/backends/x.py:1: backends imports alignxplore.demo.tiny"),
])
def test_the_check_sees_every_kind_of_import(source, expected):
    """The checker itself: each way a backend could reach up is reported (so the real test can fail)."""
    found = [("alignxplore/backends/x.py", line, t) for line, t in imported_modules(source, "alignxplore.backends.x", False)
             if layer(t) is not None]
    assert any(v.startswith(expected) for v in violations(found)), violations(found)


def test_allowed_imports_pass_the_check():
    ok = [("alignxplore/backends/x.py", 1, "alignxplore.prompts"), ("alignxplore/judge.py", 3, "alignxplore.backends.sampling"),
          ("alignxplore/testing/fake_openai.py", 9, "alignxplore.demo.tiny"), ("alignxplore/demo/run.py", 2, "alignxplore.eval.evaluate")]
    assert violations(ok) == []
    assert violations([("alignxplore/prompts.py", 5, "alignxplore.backends.base")])  # lower layers reach no engine
    assert violations([("alignxplore/rl/reward.py", 5, "alignxplore.testing.fake_openai")])
