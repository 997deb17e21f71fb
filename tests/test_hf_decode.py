"""The hf backend's decoding loop (alignxplore.backends.hf_decode) on the tiny Qwen3: the same
tokens as transformers' ``generate`` with the sampler as a logits processor (what the backend
ran before), and prefix sharing that changes nothing but the order of float sums."""
import pytest
import torch

from alignxplore.backends import hf_decode
from alignxplore.backends.base import SamplingConfig, render_generation_prompt
from alignxplore.backends.hf import sampling_kwargs, token_picker
from alignxplore.prompts import preference_messages

TRIPLES = [{"query": f"q{i}", "chosen": f"Title: jazz {i}", "rejected": f"Title: stocks {i}"} for i in range(4)]


def prompt_rows(backend, n):
    texts = [render_generation_prompt(backend.tokenizer, preference_messages(TRIPLES[: i + 1])) for i in range(n)]
    return backend.tokenizer(texts, add_special_tokens=False)["input_ids"]


def generate_reference(backend, rows, s: SamplingConfig):
    """What HFBackend.generate ran before: model.generate with TopKTopPSampler as a processor."""
    enc = backend.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
    torch.manual_seed(s.seed)
    with torch.no_grad():
        seqs = backend.model.generate(**enc, **sampling_kwargs(s.temperature, s.top_k, s.top_p), max_new_tokens=s.max_new_tokens,
                                      eos_token_id=backend._stop_ids, pad_token_id=backend.tokenizer.pad_token_id)
    return seqs[:, enc["input_ids"].shape[1]:].tolist()


def decode_loop(backend, rows, s: SamplingConfig, share_prefix: bool):
    torch.manual_seed(s.seed)
    with torch.no_grad():
        state = hf_decode.prefill(backend.model, rows, backend.tokenizer.pad_token_id, "cpu", share_prefix=share_prefix)
        new = hf_decode.sample(backend.model, *state, draw=token_picker(s.temperature, s.top_k, s.top_p),
                               max_new_tokens=s.max_new_tokens, stop_ids=backend._stop_ids, pad_id=backend.tokenizer.pad_token_id)
    return new.tolist()


def strip_pad(rows, pad):
    return [[t for t in r if t != pad] for r in rows]


@pytest.mark.parametrize("n, seed, temperature", [(1, 0, 0.6), (1, 3, 0.6), (3, 5, 0.6), (3, 1, 0.0)])
def test_loop_gives_generates_tokens(hf_backend, n, seed, temperature):
    """Same forward calls and the same draws as generate(): identical tokens for a seed, at
    batch size 1 (no prefix to share) and for a padded batch without sharing. (generate keeps
    padding after a finished row, the loop stops at the last row's stop: compared without pads.)"""
    rows = prompt_rows(hf_backend, n)
    s = SamplingConfig(temperature=temperature, max_new_tokens=12, seed=seed)
    pad = hf_backend.tokenizer.pad_token_id
    assert strip_pad(decode_loop(hf_backend, rows, s, share_prefix=False), pad) == strip_pad(generate_reference(hf_backend, rows, s), pad)


def test_backend_generate_at_batch_size_one_is_unchanged(hf_backend):
    """A seeded single request gives the text generate() gave before the loop replaced it."""
    conv = [preference_messages(TRIPLES[:2])]
    s = SamplingConfig(max_new_tokens=12, seed=11)
    ref = generate_reference(hf_backend, prompt_rows(hf_backend, 2)[1:], s)
    assert hf_backend.generate(conv, s)[0].text == hf_backend.tokenizer.decode(ref[0], skip_special_tokens=True)


def test_shared_prefix_prefill_matches_the_full_prefill(hf_backend):
    """Prefix sharing runs the common prefix once and the suffixes after it; every row sees the
    same tokens at the same positions, so the next-token logits agree with a full padded
    prefill up to float summation order. Bound: fp32 rounding over a 2-layer model whose logits
    are O(1) moves them by ~1e-6; 1e-4 holds on any CPU and is far below a changed input."""
    rows = prompt_rows(hf_backend, 4)
    shared = hf_decode.common_prefix_length(rows)
    assert shared >= hf_decode.MIN_SHARED_PREFIX  # the instruction is a long common prefix
    with torch.no_grad():
        full = hf_decode.prefill(hf_backend.model, rows, hf_backend.tokenizer.pad_token_id, "cpu", share_prefix=False)
        part = hf_decode.prefill(hf_backend.model, rows, hf_backend.tokenizer.pad_token_id, "cpu", share_prefix=True)
        assert torch.allclose(full[0], part[0], atol=1e-4, rtol=0)
        assert torch.equal(full[3], part[3])  # same last positions
        # and one decoding step later, from each cache
        tok = full[0].argmax(-1)[:, None]
        step = [hf_backend.model(input_ids=tok, attention_mask=torch.cat([m, m.new_ones((4, 1))], -1), position_ids=p + 1,
                                 past_key_values=c, use_cache=True, logits_to_keep=1).logits[:, -1, :] for _, c, m, p in (full, part)]
    assert torch.allclose(step[0], step[1], atol=1e-4, rtol=0)


def test_common_prefix_length():
    assert hf_decode.common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert hf_decode.common_prefix_length([[5, 6]]) == 2
    assert hf_decode.common_prefix_length([[1], [2]]) == 0
    assert hf_decode.common_prefix_length([]) == 0
