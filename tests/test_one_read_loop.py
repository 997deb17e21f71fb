"""The JSONL read loop lives in alignxplore/formats only (issue 19): a second one, outside it,
is found by this test. A read loop is a ``json.loads`` / ``parse_json_line`` call (or
``map(json.loads, ...)``) whose argument is the variable of the loop or comprehension around
it: each line of a file parsed by hand, with its own error handling and skip rule."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "alignxplore"
PARSERS = {"loads", "parse_json_line"}


def _is_parser(func: ast.AST) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr in PARSERS) or (isinstance(func, ast.Name) and func.id in PARSERS)


def _targets(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        return {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return set()


def read_loops(source: str) -> list[int]:
    """Line numbers of the per-line JSON parses in ``source``."""
    found = []

    def visit(node: ast.AST, loop_vars: frozenset[str]) -> None:
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            loop_vars = loop_vars | {v for g in node.generators for v in _targets(g)}
        loop_vars = loop_vars | _targets(node)
        if isinstance(node, ast.Call):
            if _is_parser(node.func) and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in loop_vars:
                found.append(node.lineno)
            if isinstance(node.func, ast.Name) and node.func.id == "map" and node.args and _is_parser(node.args[0]):
                found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, loop_vars)

    visit(ast.parse(source), frozenset())
    return found


@pytest.mark.parametrize("snippet", [
    "for line in path.read_text().splitlines():\n    rec = json.loads(line)\n",
    "rows = [json.loads(x) for x in open(p)]\n",
    "rows = list(map(json.loads, fh))\n",
    "with open(p, 'rb') as fh:\n    for lineno, raw in enumerate(fh):\n        obj = parse_json_line(raw, w)\n",
])
def test_the_detector_finds_a_read_loop(snippet):
    assert read_loops(snippet), snippet  # the guard below can fail


@pytest.mark.parametrize("snippet", [
    "conf = json.loads(path.read_text())\n",
    "for row in rows:\n    row['h'] = json.loads(row['h'])\n",  # a field of a record, not a file's lines
    "for rec in iter_jsonl(p, check):\n    out.append(rec)\n",
])
def test_the_detector_leaves_other_json_alone(snippet):
    assert read_loops(snippet) == []


def test_no_jsonl_read_loop_outside_formats():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "formats" in path.relative_to(PACKAGE).parts:
            continue
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{n}" for n in read_loops(path.read_text(encoding="utf-8"))]
    assert offenders == [], "read JSONL with alignxplore.formats.iter_jsonl, not a loop of your own: " + ", ".join(offenders)

