"""Shared fixtures. Everything runs offline on the tiny random Qwen3 (real tokenizer)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    return FIXTURES / "benchmarks"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    from alignxplore.demo.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-qwen3")


@pytest.fixture(scope="session")
def tokenizer():
    from alignxplore.demo.tiny import load_qwen3_tokenizer

    return load_qwen3_tokenizer()


@pytest.fixture(scope="session")
def hf_backend(tiny_model_dir):
    from alignxplore.backends.hf import HFBackend

    return HFBackend(tiny_model_dir, device="cpu", progress=False, generation_batch_size=4, judge_batch_size=4)
