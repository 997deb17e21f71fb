"""The completion-only output layer (alignxplore/sft/completion_logits.py) against the stock
full-logits loss of transformers/TRL, on the tiny Qwen3 and real prepared SFT rows: same loss
(within 1e-5) and same gradients for every parameter, for padded and padding-free batches,
with and without a gradient-accumulation count, gradient checkpointing, eager/sdpa
attention, bf16, and the learnable tiny shape. Training through the trainer (plain and
DeepSpeed ZeRO-3) is in tests/test_sft.py."""
import copy
import functools

import pytest
import torch

from alignxplore.sft.completion_logits import completion_metrics, completion_only_forward, supervised_positions
from alignxplore.sft.prepare import prepare


@pytest.fixture(scope="module")
def rows(tmp_path_factory, fixtures_dir, tiny_model_dir):
    """Two real prepared rows (real tokenizer, real completion mask) of different lengths, cut to
    the last few prompt tokens + the whole completion: the stock path's cost is a 151k-way
    logit row per position, and the equality holds position by position."""
    from datasets import load_from_disk

    out = tmp_path_factory.mktemp("cl") / "prepared"
    prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, out, max_length=1024)
    ds = load_from_disk(str(out))
    picked = sorted(range(len(ds)), key=lambda i: len(ds[i]["input_ids"]))
    picked = [picked[0], picked[-1]]
    assert len({len(ds[i]["input_ids"]) for i in picked}) == 2  # padding really happens
    cut = []
    for i, keep_prompt in zip(picked, (24, 40)):
        ids, mask = ds[i]["input_ids"], ds[i]["completion_mask"]
        start = mask.index(1) - keep_prompt
        cut.append({"input_ids": ids[start:], "completion_mask": mask[start:]})
    assert all(r["completion_mask"][0] == 0 and r["completion_mask"][-1] == 1 for r in cut)
    return cut


def collate(rows, tokenizer, padding_free):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, completion_only_loss=True, padding_free=padding_free)
    return collator(rows)


@functools.lru_cache(maxsize=None)
def _built(shape):
    from alignxplore.demo.tiny import build_tiny_model

    return build_tiny_model(shape=shape)


def model_for(shape="test", attn="sdpa", dtype=torch.float32, checkpointing=False):
    model, tok = _built(shape)
    model = copy.deepcopy(model)  # a fresh copy per test: settings below do not leak
    model.config._attn_implementation = attn
    model = model.to(dtype).train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tok


def loss_and_grads(model, fn):
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    return loss.detach().float(), {n: p.grad.detach().float().clone() for n, p in model.named_parameters()}


def stock(model, batch, n_items):
    # what Trainer.compute_loss does for a model that accepts loss kwargs: labels in, loss out
    kw = {} if n_items is None else {"num_items_in_batch": n_items}
    return loss_and_grads(model, lambda: model(**batch, use_cache=False, **kw).loss)


def ours(model, batch, n_items):
    return loss_and_grads(model, lambda: completion_only_forward(model, {**batch, "use_cache": False}, model.get_output_embeddings(), n_items)[0])


def assert_same(a, b, atol=1e-5, grad_rtol=1e-4, grad_atol=1e-6):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    assert abs(loss_a.item() - loss_b.item()) <= atol, (loss_a.item(), loss_b.item())
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=grad_rtol, atol=grad_atol, msg=name)


@pytest.mark.parametrize("padding_free", [False, True], ids=["padded", "padding_free"])
@pytest.mark.parametrize("accumulation_count", [False, True], ids=["mean", "num_items_in_batch"])
def test_loss_and_gradients_equal_the_stock_full_logits_loss(rows, tokenizer, padding_free, accumulation_count):
    model, tok = model_for()
    batch = collate(rows, tok, padding_free)
    if padding_free:
        assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1 and (batch["position_ids"] == 0).sum() == 2
    else:
        assert batch["input_ids"].shape[0] == 2 and (batch["attention_mask"] == 0).any()
    supervised = int((batch["labels"] != -100).sum())
    # as under gradient accumulation: this micro-batch holds a third of the step's tokens
    n_items = torch.tensor(3 * supervised) if accumulation_count else None
    reference = stock(model, batch, n_items)
    assert_same(reference, ours(model, batch, n_items))
    # a random 151k-way model: ~ln(151669) ~ 11.9 per token, not a zero loss
    assert reference[0].item() == pytest.approx(11.9 / (3 if accumulation_count else 1), rel=0.05)


def test_tied_output_layer_gets_both_gradient_paths(rows, tokenizer):
    model, tok = model_for()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    batch = collate(rows, tok, False)
    _, grads = ours(model, batch, None)
    g = grads["model.embed_tokens.weight"]
    # rows of vocabulary never in the input still get the output layer's softmax gradient
    unseen = torch.ones(g.shape[0], dtype=torch.bool)
    unseen[batch["input_ids"].unique()] = False
    assert g[unseen].abs().sum() > 0


@pytest.mark.parametrize("attn,padding_free", [("eager", False), ("sdpa", True)])
def test_gradient_checkpointing_and_attention_implementations(rows, tokenizer, attn, padding_free):
    model, tok = model_for(attn=attn, checkpointing=True)
    assert model.is_gradient_checkpointing
    batch = collate(rows, tok, padding_free)
    assert_same(stock(model, batch, None), ours(model, batch, None))


def test_bf16(rows, tokenizer):
    model, tok = model_for(dtype=torch.bfloat16)
    batch = collate(rows, tok, False)
    reference, mine = stock(model, batch, None), ours(model, batch, None)
    # both upcast the logits to fp32 for the softmax; the bf16 matmuls are the same per row
    assert_same(reference, mine, atol=1e-3, grad_rtol=2e-2, grad_atol=1e-4)


def test_learnable_tiny_shape(rows, tokenizer):
    from alignxplore.demo.tiny import TINY_SHAPES

    model, tok = model_for(shape="learnable")
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim, cfg.num_key_value_heads, cfg.intermediate_size) == (128, 2, 4, 32, 2, 256)
    assert cfg.initializer_range == 0.1  # docs/demo.md: from Qwen3's 0.02 the genre plateau's length depended on the seed
    assert cfg.tie_word_embeddings and 19_000_000 < sum(p.numel() for p in model.parameters()) < 20_500_000
    assert TINY_SHAPES["test"]["hidden_size"] == 64  # the default test model is unchanged
    batch = collate(rows, tok, True)
    assert_same(stock(model, batch, None), ours(model, batch, None))


def test_supervised_positions_shift_and_packing():
    labels = torch.tensor([[-100, -100, 7, 8, -100],  # completion 7, 8: predicted from positions 1, 2
                           [-100, 5, -100, -100, -100]])
    b, p, t = supervised_positions(labels)
    assert list(zip(b.tolist(), p.tolist(), t.tolist())) == [(0, 1, 7), (0, 2, 8), (1, 0, 5)]
    # already-shifted labels (context/sequence parallelism) are used as they are
    b, p, t = supervised_positions(shift_labels=torch.tensor([[3, -100, 4]]))
    assert (p.tolist(), t.tolist()) == ([0, 2], [3, 4])
    with pytest.raises(ValueError):
        supervised_positions()


def test_batch_without_completion_tokens_is_zero_and_touches_the_output_layer(rows, tokenizer):
    model, tok = model_for()
    batch = collate(rows, tok, False)
    batch["labels"][:] = -100
    loss, grads = ours(model, batch, None)
    assert loss.item() == 0.0 and torch.count_nonzero(grads["model.embed_tokens.weight"]) == 0


def test_metrics_match_trl_token_accuracy(rows, tokenizer):
    model, tok = model_for()
    batch = collate(rows, tok, False)
    with torch.no_grad():
        full = model(**batch).logits
        _, out = completion_only_forward(model, batch, model.get_output_embeddings())
    correct, total, entropy_sum = completion_metrics(out.logits, out.targets)
    shift_labels = batch["labels"][:, 1:]
    mask = shift_labels != -100
    assert total.item() == mask.sum().item() == out.logits.shape[0]
    # TRL's mean_token_accuracy: argmax of the full logits at supervised positions
    assert correct.item() == ((full[:, :-1].argmax(-1) == shift_labels) & mask).sum().item()
    logp = torch.log_softmax(full[:, :-1][mask].float(), -1)
    assert entropy_sum.item() == pytest.approx(-(logp.exp() * logp).sum().item(), rel=1e-5)


def test_trainer_evaluate_and_fallbacks(tmp_path, rows, tokenizer):
    """The SFTTrainer subclass in-process: evaluation loss equals the stock one (the eval
    path without compute_metrics uses completion-only logits too), also under TRL's default
    bf16 autocast over an fp32 model (the output layer must run under the same autocast as
    the model's forward); a custom loss falls back to the stock path instead of being bypassed."""
    from datasets import Dataset
    from trl import SFTConfig

    from alignxplore.sft.trainer import CompletionLogitsSFTTrainer

    model, tok = model_for()
    data = Dataset.from_list(rows)
    cfg = dict(output_dir=str(tmp_path), per_device_eval_batch_size=2, report_to="none", use_cpu=True,
               completion_only_loss=True, dataloader_num_workers=0)
    assert SFTConfig(**cfg).bf16  # TRL 0.27's default: autocast to bf16 around an fp32 model
    for bf16 in (True, False):
        results = {}
        for flag in (True, False):
            model, _ = model_for()  # fresh: accelerate wraps model.forward in autocast for good
            trainer = CompletionLogitsSFTTrainer(model=model, args=SFTConfig(**cfg, bf16=bf16), train_dataset=data, eval_dataset=data,
                                                 processing_class=tok, completion_only_logits=flag)
            assert trainer.uses_completion_only_logits is flag
            results[flag] = trainer.evaluate()
        assert results[True]["eval_loss"] == pytest.approx(results[False]["eval_loss"], abs=1e-5), bf16

    dft = CompletionLogitsSFTTrainer(model=model, args=SFTConfig(**cfg, loss_type="dft"), train_dataset=data, eval_dataset=data, processing_class=tok)
    assert not dft.uses_completion_only_logits and "custom loss" in dft.completion_logits_fallback
