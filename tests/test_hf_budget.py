"""The hf backend batches by a token budget and fails an item that cannot run, not the run
(issue 22 item 4). Real tiny Qwen3 (real tokenizer, random weights) on CPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignxplore.backends.base import SamplingConfig
from alignxplore.backends.hf import plan_batches

ROOT = Path(__file__).resolve().parents[1]


def test_plan_keeps_every_batch_within_budget_and_long_prompts_alone():
    lengths = [100, 9000, 300, 4000, 120, 50, 4100, 10]
    batches = plan_batches(lengths, batch_size=4, max_tokens=8192, extra=64)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # each item exactly once
    for b in batches:
        assert len(b) <= 4
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 64) <= 8192
    assert [1] in batches  # over the budget: alone
    assert [6] in batches  # 2 x (4100 + 64) > 8192: alone
    assert [3, 2] in batches  # 2 x (4000 + 64) <= 8192: together
    assert batches[-1] == [4, 0, 5, 7]  # short ones fill batch_size rows, longest first


def test_prompt_beyond_the_context_is_failed_with_reason_others_generated(hf_backend):
    long_text = "word " * (hf_backend.context_length + 10)
    convs = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": long_text}], [{"role": "user", "content": "hello"}]]
    out = hf_backend.generate(convs, SamplingConfig(max_new_tokens=4))
    assert out[0].ok and out[2].ok and not out[1].ok
    assert f"does not fit the model's context of {hf_backend.context_length} tokens" in out[1].error
    scores = hf_backend.judge(convs)
    assert scores[0].ok and scores[2].ok and "does not fit" in scores[1].error


def test_out_of_memory_splits_the_batch_then_fails_only_the_item(hf_backend, monkeypatch):
    """A FAKE at the memory boundary (an allocation failure cannot be provoked safely here):
    the model's forward raises torch.OutOfMemoryError for any batch holding more than 300
    padded tokens. The batch is split and retried; only the one prompt too big alone fails."""
    import torch

    model = hf_backend.model
    real_forward = model.forward

    def forward(*args, **kw):
        ids = kw.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[0] * ids.shape[1] > 300 and kw.get("past_key_values") is None:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 29.6 GiB (fake)")
        return real_forward(*args, **kw)

    monkeypatch.setattr(model, "forward", forward)
    convs = [[{"role": "user", "content": f"short {i}"}] for i in range(4)] + [[{"role": "user", "content": "long " * 400}]]
    out = hf_backend.judge(convs)
    assert [s.ok for s in out] == [True, True, True, True, False]
    assert out[4].error.startswith("out of memory for a prompt of") and "OutOfMemoryError" in out[4].error


def test_streaming_half_rule_benchmark_with_a_64k_token_user(tmp_path, tiny_model_dir):
    """The issue's hold-out case: 7 users of a half-rule benchmark in streaming mode (no
    truncation there), one with a ~64k-token first half. The run finishes, that user is failed
    with its reason, every other user is summarised."""
    triple = {"query": "Which reply?", "chosen": "A short, kind answer.", "rejected": "A long, rude answer."}
    huge = dict(triple, chosen="lorem ipsum dolor sit amet " * 2600)  # ~13k tokens per behaviour
    rows = [{"userid": f"u{i}", "history": [triple] * 4, "target": triple} for i in range(6)]
    rows.insert(3, {"userid": "long", "history": [huge] * 5 + [triple] * 5, "target": triple})
    data = tmp_path / "data"
    data.mkdir()
    (data / "alignx_upi.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", "alignxplore.eval.generate", "--mode", "streaming", "--model", tiny_model_dir,
                           "--data-dir", str(data), "--out-dir", str(tmp_path / "o"), "--benchmarks", "alignx", "--max-new-tokens", "4"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 3, proc.stderr[-3000:]  # finished; failed items reported (exit 3)
    assert "Traceback" not in proc.stderr
    failed = [ln for ln in proc.stderr.splitlines() if "generation failed" in ln]
    assert len(failed) == 1 and f"{data / 'alignx_upi.jsonl'}:4: generation failed: prompt of " in failed[0]
    assert "does not fit the model's context of 32768 tokens" in failed[0]
    done = [json.loads(line) for line in (tmp_path / "o/streaming/alignx.jsonl").read_text().splitlines()]
    assert sorted(r["userid"] for r in done) == [f"u{i}" for i in range(6)]
    assert all(isinstance(r["profile"], str) for r in done)


@pytest.mark.parametrize("top_k, top_p", [(20, 0.95), (5, 0.5), (50, 1.0)])
def test_fast_sampler_has_transformers_distribution(top_k, top_p):
    """TopKTopPSampler draws from the same distribution as transformers' temperature -> top-k
    -> top-p warpers (continuous random logits: no ties at the k-th value)."""
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from alignxplore.backends.hf import TopKTopPSampler

    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 1000, generator=gen) * 3
    ref = scores.clone()
    for warper in (TemperatureLogitsWarper(0.6), TopKLogitsWarper(top_k), TopPLogitsWarper(top_p)):
        ref = warper(None, ref)
    want = torch.softmax(ref, dim=-1)
    index, probs = TopKTopPSampler(0.6, top_k, top_p).distribution(scores)
    got = torch.zeros_like(want).scatter_(-1, index, probs)
    got = got / got.sum(-1, keepdim=True)
    assert torch.allclose(got, want, atol=1e-6)
    drawn = TopKTopPSampler(0.6, top_k, top_p)(None, scores)
    picked = drawn.argmax(-1)
    assert bool((want.gather(-1, picked[:, None]) > 0).all())  # only tokens the warpers allow
    assert bool((drawn == 0).sum(-1).eq(1).all())  # greedy decoding picks exactly that token
