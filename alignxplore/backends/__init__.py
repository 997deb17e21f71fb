"""Model engines behind one interface (see :mod:`.base`). Engines import lazily: ``vllm`` and
CUDA are only touched when that backend is asked for."""
from __future__ import annotations

from .base import Backend, Generated, JudgeScore, SamplingConfig

BACKENDS = ("hf", "vllm", "openai", "embedding")


def load_backend(name: str, model: str, **options) -> Backend:
    """Build a backend by name. ``model`` is a checkpoint path (hf, vllm) or the served
    model name (openai, with ``base_url=...``). Unknown options raise ``TypeError``."""
    if name == "hf":
        from .hf import HFBackend

        return HFBackend(model, **options)
    if name == "vllm":
        from .vllm import VLLMBackend

        return VLLMBackend(model, **options)
    if name == "openai":
        from .openai import OpenAIBackend

        return OpenAIBackend(model, **options)
    if name == "embedding":
        from .embedding import EmbeddingBackend

        return EmbeddingBackend(model, **options)
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


__all__ = ["Backend", "Generated", "JudgeScore", "SamplingConfig", "BACKENDS", "load_backend"]
