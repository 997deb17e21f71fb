"""TRL 0.27.0's SFTTrainer with the completion-only output layer (``completion_logits.py``).

``CompletionLogitsSFTTrainer(..., completion_only_logits=True)`` overrides ``compute_loss``
only; everything else (collator, padding-free, DeepSpeed, gradient checkpointing, logging,
checkpoints) is TRL's. What stays as stock, and why it is the same objective:

* **Gradient accumulation.** The Trainer counts ``num_items_in_batch`` (supervised labels
  over all micro-batches of an optimizer step, summed over ranks when
  ``average_tokens_across_devices``) and, for a model that accepts loss kwargs (Qwen3 does),
  expects ``compute_loss`` to return ``sum(CE) / num_items_in_batch`` — times the number of
  processes when averaging across devices, which DDP/ZeRO's gradient mean undoes. We return
  exactly that, so ``training_step`` applies no extra division, as for the stock loss.
* **Metrics.** ``num_tokens`` is counted as TRL counts it. ``mean_token_accuracy`` is the
  same quantity (argmax == target over supervised tokens). ``entropy`` can only be computed
  where logits exist: it is the mean entropy over *completion* tokens here, whereas stock TRL
  averages over every non-padding token (prompt included) — documented, not hidden.
* **Where the stock path is kept** (logged once): ``use_liger_kernel`` (Liger's fused linear
  cross-entropy replaces the model's forward; it avoids materialising logits but still
  multiplies every position by the output layer), a custom ``compute_loss_func`` /
  ``loss_type="dft"``, MoE auxiliary losses, prompt-tuning virtual tokens, a model whose
  ``forward`` has no ``logits_to_keep``, and evaluation with ``compute_metrics`` (which wants
  ``(batch, seq, vocab)`` logits).
"""
from __future__ import annotations

import contextlib
import inspect
import logging

from trl import SFTTrainer

from .completion_logits import completion_metrics, completion_only_forward

log = logging.getLogger("alignxplore.sft.trainer")


class CompletionLogitsSFTTrainer(SFTTrainer):
    def __init__(self, *args, completion_only_logits: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.completion_only_logits = completion_only_logits
        self.completion_logits_fallback = self._fallback_reason() if completion_only_logits else None
        if self.completion_logits_fallback:
            log.warning("completion-only logits not used: %s; the stock full-logits loss runs instead", self.completion_logits_fallback)

    def _fallback_reason(self) -> str | None:
        model = self.accelerator.unwrap_model(self.model)
        if self.args.use_liger_kernel:
            return "use_liger_kernel is on (Liger's fused linear cross-entropy computes the loss)"
        if self.compute_loss_func is not None:
            return f"a custom loss function is set (loss_type={self.args.loss_type})"
        if self.aux_loss_enabled:
            return "the model adds a router auxiliary loss"
        if self.num_virtual_tokens:
            return "prompt tuning adds virtual tokens"
        if model.get_output_embeddings() is None or "logits_to_keep" not in inspect.signature(model.forward).parameters:
            return f"{type(model).__name__}.forward has no logits_to_keep / output layer"
        return None

    @property
    def uses_completion_only_logits(self) -> bool:
        return self.completion_only_logits and self.completion_logits_fallback is None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        if not self.uses_completion_only_logits or (mode == "eval" and self.compute_metrics is not None):
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

        inputs["use_cache"] = False  # as TRL: no KV cache while training (and none with checkpointing)
        # Trainer.compute_loss hands the count to the model only if it accepts loss kwargs;
        # otherwise the loss is a mean and training_step divides by the accumulation steps.
        count = num_items_in_batch if self.model_accepts_loss_kwargs else None
        output_layer = self.accelerator.unwrap_model(model).get_output_embeddings()
        loss, outputs = completion_only_forward(model, inputs, output_layer, num_items_in_batch=count,
                                                output_layer_context=lambda: self._forward_autocast(model))
        if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes if self.args.n_gpu <= 1 else self.args.n_gpu)

        self._log_completion_metrics(mode, inputs, outputs)
        return (loss, outputs) if return_outputs else loss

    def _forward_autocast(self, model):
        """The autocast the model's forward ran under: accelerate's (mixed precision over fp32
        weights) and, for a DeepSpeed engine with a ``torch_autocast`` section, DeepSpeed's."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.accelerator.autocast())
        if callable(getattr(model, "torch_autocast_enabled", None)) and model.torch_autocast_enabled():
            from deepspeed.runtime.torch_autocast import autocast_if_enabled

            stack.enter_context(autocast_if_enabled(model))
        return stack

    def _log_completion_metrics(self, mode: str, inputs: dict, outputs) -> None:
        import torch

        gather = self.accelerator.gather_for_metrics
        if mode == "train":  # TRL's count: real tokens (padding-free: the packed length)
            if "attention_mask" in inputs:
                local = inputs["attention_mask"].sum()
            else:
                local = torch.tensor(inputs["position_ids"].size(1), device=inputs["position_ids"].device)
            self._total_train_tokens += gather(local).sum().item()
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

        correct, total, entropy_sum = completion_metrics(outputs.logits, outputs.targets)
        total_all = gather(total).sum()
        if total_all > 0:
            self._metrics[mode]["mean_token_accuracy"].append((gather(correct).sum() / total_all).item())
            self._metrics[mode]["entropy"].append((gather(entropy_sum).sum() / total_all).item())
