"""The world-sized tokenizer (``alignxplore.demo.world_tokenizer``) of the demo's tiny policy: on every
text of every world file it gives exactly the full Qwen3 tokenizer's token strings, and the
tiny model saved with it is a consistent HF checkpoint folder (config ids = tokenizer ids)."""
from __future__ import annotations

import json

import pytest

from alignxplore.demo import world as synthetic
from alignxplore.demo.tiny import load_qwen3_tokenizer, save_tiny_model
from alignxplore.demo.world_tokenizer import restrict_tokenizer, world_texts


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    synthetic.write_world(out, synthetic.WorldConfig(sft_users=12, rl_users=4, test_users=8, history_len=9))
    return out


@pytest.fixture(scope="module")
def tokenizers(world):
    full = load_qwen3_tokenizer()
    return full, restrict_tokenizer(full, world_texts(world, full))


def test_every_world_text_tokenizes_to_the_full_tokenizers_token_strings(world, tokenizers):
    full, small = tokenizers
    texts = list(world_texts(world, full))
    files = {p.relative_to(world).as_posix() for p in world.rglob("*.jsonl")}
    assert {"sft.jsonl", "rl.jsonl", "benchmarks/synth_rec_upi.jsonl", "summaries/teacher/full/synth_sel.jsonl"} <= files
    assert len(texts) > 100
    for text, a, b in zip(texts, full(texts)["input_ids"], small(texts)["input_ids"]):
        assert full.convert_ids_to_tokens(a) == small.convert_ids_to_tokens(b), text[:200]
        assert small.decode(b) == text


def test_the_restricted_vocabulary_is_small_and_keeps_bytes_and_special_tokens(tokenizers):
    full, small = tokenizers
    # 256 byte-level tokens + the world's tokens and their BPE ancestors + the added tokens
    assert 256 + len(full.get_added_vocab()) < len(small) < 2000 < len(full)
    assert set(small.get_added_vocab()) == set(full.get_added_vocab())
    assert sorted(small.get_vocab().values()) == list(range(len(small)))  # compact ids
    # any text still round-trips (byte fallback through the 256 base tokens)
    odd = "Zebra ünïcödé 東京 🙂 <think>x</think>"
    assert small.decode(small(odd)["input_ids"]) == odd
    assert small.chat_template == full.chat_template


def test_the_tiny_world_policy_folder_is_consistent(world, tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    path = save_tiny_model(tmp_path / "policy", shape="learnable", world=world)
    tok, config = AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)
    assert config.model_type == "qwen3" and config.vocab_size == len(tok) < 2000
    assert config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert config.pad_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    generation = json.loads((tmp_path / "policy" / "generation_config.json").read_text())
    assert generation.get("eos_token_id") in (config.eos_token_id, [config.eos_token_id])
