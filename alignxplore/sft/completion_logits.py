"""The SFT loss with the output layer applied only where a completion token is predicted.

AlignXplore+ SFT rows are prompt-heavy (a behaviour history of up to 16,384 tokens, a
completion of a few hundred to a few thousand). Stock TRL computes logits over the whole
151,936-token vocabulary at every position and then masks all but the completion: on a GPU
the fp32 logits of one 16k-token row are ~10 GB, on a CPU the output layer dominates a tiny
model's step. Here the model body runs once, the final hidden states are gathered at the
positions whose NEXT token is supervised, and the real output-layer module runs on those rows
only. The objective is the same token-mean cross-entropy (same numerator, same
``num_items_in_batch`` denominator), so losses and gradients equal the stock ones up to float
rounding (tests/test_sft_completion_logits.py).

How it runs the model (why this way):

* The forward goes through the wrapped model (``model(**inputs)``: the DeepSpeed engine, DDP,
  or the bare module) with ``output_hidden_states=True`` and a zero-length ``logits_to_keep``
  index, so the model's own head computes nothing. DeepSpeed 0.19 starts its backward
  bookkeeping (ZeRO gradient-reduction set-up) from hooks on the engine-forward *outputs*; the
  final hidden state is one of them (``hidden_states[-1]`` is the post-norm
  ``last_hidden_state`` in transformers 5), so the loss must flow through it — calling the
  body submodule directly would skip those hooks.
* The output layer is the model's real module (``get_output_embeddings()``), called on the
  gathered rows: under ZeRO-3 its partitioned weight is fetched and released by the module's
  own hooks, and its gradient is reduced like any other; tied embeddings stay tied.
* Positions come from the labels exactly as the stock loss shifts them: position ``t``
  predicts ``labels[t + 1]`` (``shift_labels`` are used as given when TRL supplies them for
  context/sequence parallelism). Padded rows, padding-free / packed rows (``position_ids``;
  TRL masks the first token of each packed sequence) and the attention implementation
  (sdpa, flash-attention) need nothing special: attention runs as before, only the head and
  the loss change.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from transformers.utils import ModelOutput

IGNORE_INDEX = -100
ENTROPY_CHUNK_ROWS = 1024  # rows of (rows, vocab) fp32 softmax at a time: ~0.6 GB for Qwen3's vocab


@dataclass
class CompletionOutputs(ModelOutput):
    """What the completion-only forward returns besides the loss (a ``ModelOutput``, so the
    Trainer's ``outputs[1:]`` / ``outputs["logits"]`` work).

    ``logits``: ``(n_supervised, vocab)`` in the model's dtype, one row per predicted
    completion token, in batch-major order (NOT ``(batch, seq, vocab)``); ``targets``: the
    token each row predicts.
    """

    logits: object = None
    targets: object = None


def supervised_positions(labels=None, shift_labels=None):
    """``(batch_idx, pos_idx, targets)`` of every position whose next token is supervised.

    ``labels`` are the unshifted labels (``-100`` = not trained on); with ``shift_labels``
    (already aligned: ``shift_labels[t]`` is the target of position ``t``) no shift is done.
    """
    import torch

    if shift_labels is None:
        if labels is None:
            raise ValueError("need labels or shift_labels")
        # same as transformers' ForCausalLMLoss: pad one ignored label at the end, drop the first
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    # nonzero() syncs with the device once per micro-batch (the row count sets the shapes)
    batch_idx, pos_idx = (shift_labels != IGNORE_INDEX).nonzero(as_tuple=True)
    return batch_idx, pos_idx, shift_labels[batch_idx, pos_idx]


def completion_only_forward(model, inputs: dict, output_layer, num_items_in_batch=None, output_layer_context=None):
    """Run ``model`` once and return ``(loss, CompletionOutputs)``.

    ``model``: what the trainer calls (engine/DDP wrapper or the module); ``output_layer``: the
    unwrapped model's output-embedding module; ``inputs``: the collator's batch with
    ``labels`` (or ``shift_labels``). The loss is ``sum(CE) / num_items_in_batch`` when a count
    is given (gradient-accumulation-correct, like transformers' ``ForCausalLMLoss``), else the
    mean over supervised tokens. A batch with no supervised token gives a zero loss that still
    depends on the output layer, so every rank runs the same modules (ZeRO-3 needs that).
    ``output_layer_context``: a zero-argument callable returning the mixed-precision context
    the model's forward runs under (the trainer builds it from ``accelerator.autocast()`` and
    DeepSpeed's ``torch_autocast``): those wrap only the model's forward, and the output layer
    now runs outside it, so without this an fp32 model trained with ``bf16: true`` would
    compute these logits in fp32 where stock computes them in bf16.
    """
    import torch

    inputs = dict(inputs)
    labels = inputs.pop("labels", None)
    shift_labels = inputs.pop("shift_labels", None)
    device = inputs["input_ids"].device if "input_ids" in inputs else None
    batch_idx, pos_idx, targets = supervised_positions(labels, shift_labels)

    # no logits at all from the model's own head; the body's final hidden state comes back
    inputs["logits_to_keep"] = torch.zeros(0, dtype=torch.long, device=device)
    inputs["output_hidden_states"] = True
    outputs = model(**inputs)
    hidden = outputs.hidden_states[-1]

    with output_layer_context() if output_layer_context is not None else contextlib.nullcontext():
        logits = output_layer(hidden[batch_idx, pos_idx])  # (n, vocab), the dtype stock logits have
    # fp32 for the softmax, as the stock loss upcasts; sum, then one division
    loss_sum = torch.nn.functional.cross_entropy(logits.float(), targets.to(logits.device), reduction="sum")
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss_sum.device)
        loss = loss_sum / num_items_in_batch
    else:
        loss = loss_sum / max(targets.numel(), 1)
    return loss, CompletionOutputs(logits=logits, targets=targets)


def completion_metrics(logits, targets):
    """``(correct, total, entropy_sum)`` over the supervised rows, without gradients: the
    inputs of TRL's ``mean_token_accuracy`` and (restricted to completion tokens) ``entropy``."""
    import torch

    with torch.no_grad():
        entropy_sum = torch.zeros((), dtype=torch.float32, device=logits.device)
        for chunk in logits.split(ENTROPY_CHUNK_ROWS):
            logp = torch.log_softmax(chunk.float(), dim=-1)
            entropy_sum += -(logp.exp() * logp).sum()
        correct = (logits.argmax(-1) == targets.to(logits.device)).sum()
        return correct, torch.tensor(targets.numel(), device=logits.device), entropy_sum
