"""The lock files (locks/*.txt) still satisfy the requirements*.txt they were compiled from.

A failure here means someone edited a requirements*.txt (or a lock) by hand: run
`make lock` and commit the regenerated locks. The checker is tools/locks.py (no network).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("locks_tool", ROOT / "tools" / "locks.py")
locks = importlib.util.module_from_spec(_spec)
sys.modules["locks_tool"] = locks  # dataclasses look their module up there
_spec.loader.exec_module(locks)


@pytest.mark.parametrize("stack", sorted(locks.STACKS))
def test_lock_matches_its_requirements(stack):
    problems = locks.check(locks.STACKS[stack])
    assert not problems, "\n".join(problems)


def test_gpu_lock_pins_the_tested_stack():
    pins, _ = locks.read_lock(ROOT / "locks" / "gpu.txt")
    expected = {"verl": "0.9.1", "torch": "2.11.0", "vllm": "0.24.0", "transformers": "5.9.0",
                "trl": "0.27.0", "deepspeed": "0.19.8", "ray": "2.55.1", "flash-attn": "2.8.3"}
    assert {k: pins.get(k) for k in expected} == expected
    assert any(n.startswith("nvidia-") and n.endswith("cu13") for n in pins)  # the CUDA 13 build


@pytest.mark.parametrize("stack", ["cpu", "vllm-cpu"])
def test_cpu_locks_hold_the_cpu_torch_only(stack):
    pins, _ = locks.read_lock(ROOT / locks.STACKS[stack].lock)
    assert pins["torch"] == "2.13.0+cpu"
    assert not [n for n in pins if n.startswith("nvidia-")]


@pytest.fixture
def cpu_copy(tmp_path):
    """A copy of the CPU stack's inputs and lock to edit."""
    stack = locks.STACKS["cpu"]
    for rel in (stack.requirements, *stack.constraints, stack.lock):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    assert locks.check(stack, tmp_path) == []
    return stack, tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_pin_changed_by_hand_in_requirements_is_caught(cpu_copy):
    stack, root = cpu_copy
    _edit(root / stack.requirements, "transformers==5.9.0", "transformers==5.10.0")
    problems = locks.check(stack, root)
    assert any("transformers==5.9.0 does not satisfy 'transformers==5.10.0' in requirements-cpu.txt"
               in p and "make lock" in p for p in problems), problems


def test_package_added_without_relocking_is_caught(cpu_copy):
    stack, root = cpu_copy
    (root / stack.requirements).write_text((root / stack.requirements).read_text() + "pyfiglet==1.0.2\n")
    problems = locks.check(stack, root)
    assert any("pyfiglet (from requirements-cpu.txt) is not in the lock" in p for p in problems), problems


def test_extra_changed_without_relocking_is_caught(cpu_copy):
    stack, root = cpu_copy
    _edit(root / stack.requirements, "verl[verl-core]==0.9.1", "verl[verl-core,math]==0.9.1")
    problems = locks.check(stack, root)
    assert any("input added or changed" in p and "verl[math,verl-core]==0.9.1" in p for p in problems), problems


def test_lock_edited_by_hand_is_caught(cpu_copy):
    stack, root = cpu_copy
    _edit(root / stack.lock, "\ntorch==2.13.0+cpu ", "\ntorch==2.13.0 ")
    problems = locks.check(stack, root)
    assert any("torch==2.13.0 is not a +cpu build" in p for p in problems), problems


def test_uv_gets_the_indexes_pip_is_configured_with(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "file:///srv/mirror/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/srv/wheels /srv/more-wheels")
    args, _ = locks.pip_index_args()
    assert args[:2] == ["--index-url", "file:///srv/mirror/simple"]
    pairs = list(zip(args, args[1:]))
    assert ("--find-links", "/srv/wheels") in pairs and ("--find-links", "/srv/more-wheels") in pairs
    assert args[-2:] == ["--index-strategy", "unsafe-best-match"]
