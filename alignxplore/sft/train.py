"""Stage 1: supervised fine-tuning on the prepared (tokenised) SFT data, with TRL + DeepSpeed.

    # one node, 8 GPUs (the paper's settings are the config's defaults)
    bash sft/sft.sh
    # four nodes: on each node
    NNODES=4 NODE_RANK=$RANK MASTER_ADDR=node0 bash sft/sft.sh
    # directly, with overrides (YAML first, then any SFTConfig / script flag)
    torchrun --nproc_per_node 8 -m alignxplore.sft.train --config sft/configs/qwen3_8b.yaml \\
        --dataset_path data/sft/prepared --output_dir checkpoints/sft --learning_rate 1e-5
    # CPU (tests, demo): the same entry; no CUDA => use_cpu, fp32, gloo
    python -m alignxplore.sft.train --model_name_or_path runs/tiny --dataset_path prep --output_dir out --max_steps 5

The loss applies the output layer only at positions that predict a completion token
(``alignxplore.sft.completion_logits``; same objective as stock TRL, without the prompt
positions' 151,936-way logits); ``--completion_only_logits false`` runs the stock loss.

The data comes from ``alignxplore.sft.prepare`` (``input_ids`` + ``completion_mask``): TRL is
never asked to tokenise chat rows itself, and ``completion_only_loss`` is forced on, so the
loss covers exactly the assistant turn. Resumes from the last checkpoint in ``output_dir``
(so a crash loses at most ``save_steps`` steps); the final model is written to
``output_dir/final`` as a plain HF checkpoint (gathered from ZeRO-3 shards) that transformers
and vLLM load directly.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("alignxplore.sft.train")


@dataclass
class SFTScriptArguments:
    model_name_or_path: str = field(default="Qwen/Qwen3-8B", metadata={"help": "base model (path or hub id)"})
    dataset_path: str = field(default="data/sft/prepared", metadata={"help": "folder written by alignxplore.sft.prepare"})
    attn_implementation: str = field(default="auto", metadata={"help": "auto: flash_attention_2 when installed on CUDA, else sdpa"})
    resume: bool = field(default=True, metadata={"help": "continue from the last checkpoint in output_dir if there is one"})
    final_dir: str | None = field(default=None, metadata={"help": "where the final HF checkpoint goes (default OUTPUT_DIR/final)"})
    completion_only_logits: bool = field(default=True, metadata={
        "help": "apply the output layer and the loss only where a completion token is predicted (same objective, "
                "no prompt logits); false = stock TRL full-logits loss, for comparison"})


def pick_attn_implementation(requested: str, cuda: bool) -> str:
    if requested != "auto":
        return requested
    if cuda:
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            pass
    return "sdpa"


def cpu_overrides(argv: list[str]) -> list[str]:
    """On a machine without CUDA: CPU device, fp32 (no bf16), and a gloo process group set up
    *before* the training config is built, as DeepSpeed needs when several CPU processes run
    (accelerate would otherwise count one process while DeepSpeed sees all of them)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo")
    return argv + ["--use_cpu", "true", "--bf16", "false", "--fp16", "false"]


def parse(argv: list[str]):
    from trl import SFTConfig, TrlParser

    parser = TrlParser((SFTScriptArguments, SFTConfig))
    script_args, training_args = parser.parse_args_and_config(argv)
    if training_args.completion_only_loss is False:
        log.warning("completion_only_loss=False: the prompt tokens will be trained on too")
    else:
        # The prepared data has no prompt/completion columns, so TRL's default (None -> auto)
        # would switch the completion mask OFF; the paper trains on completions only.
        training_args.completion_only_loss = True
    return script_args, training_args


def last_checkpoint(output_dir: str) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


def main(argv: list[str] | None = None, callbacks: list | None = None) -> int:
    import torch

    argv = list(sys.argv[1:] if argv is None else argv)
    cuda = torch.cuda.is_available()
    if not cuda:
        argv = cpu_overrides(argv)
    script_args, training_args = parse(argv)

    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..formats import DataError
    from .trainer import CompletionLogitsSFTTrainer

    if not Path(script_args.dataset_path, "dataset_info.json").is_file():
        raise DataError(script_args.dataset_path, None, "not a prepared dataset (run alignxplore.sft.prepare / sft/prepare.sh first)")
    dataset = load_from_disk(script_args.dataset_path)
    missing = {"input_ids", "completion_mask"} - set(dataset.column_names)
    if missing:
        raise DataError(script_args.dataset_path, ",".join(sorted(missing)), "missing column(s) in the prepared dataset")

    try:
        tokenizer = AutoTokenizer.from_pretrained(script_args.model_name_or_path)
    except OSError as err:  # a wrong path or hub id: one line, not a hub traceback
        raise DataError(script_args.model_name_or_path, "model_name_or_path", f"cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    attn = pick_attn_implementation(script_args.attn_implementation, cuda)
    dtype = torch.bfloat16 if training_args.bf16 else torch.float32
    # Built after the training config: with ZeRO-3 enabled there, from_pretrained loads the
    # weights already partitioned (deepspeed.zero.Init) instead of a full copy per rank.
    model = AutoModelForCausalLM.from_pretrained(script_args.model_name_or_path, dtype=dtype, attn_implementation=attn)
    if training_args.gradient_checkpointing:
        model.config.use_cache = False

    trainer = CompletionLogitsSFTTrainer(
        model=model, args=training_args, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks,
        completion_only_logits=script_args.completion_only_logits,
    )
    log.info(
        "world size %d, device %s, attention %s, dtype %s, deepspeed %s, rows %d, output layer at %s",
        training_args.world_size, training_args.device, attn, dtype, training_args.deepspeed or "off", len(dataset),
        "completion positions only" if trainer.uses_completion_only_logits else "all positions (stock)",
    )
    resume_from = last_checkpoint(training_args.output_dir) if script_args.resume else None
    if resume_from:
        log.info("resuming from %s", resume_from)
    trainer.train(resume_from_checkpoint=resume_from)

    if training_args.save_strategy == "no" and not script_args.final_dir:
        return 0  # throughput runs: nothing to keep
    final_dir = script_args.final_dir or os.path.join(training_args.output_dir, "final")
    trainer.save_model(final_dir)  # gathers ZeRO-3 shards (stage3_gather_16bit_weights_on_model_save)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(final_dir)
        log.info("final model: %s", final_dir)
    return 0


if __name__ == "__main__":
    from ..cli import run_main

    run_main(main)
