"""SFT steps with the output layer everywhere (stock TRL) vs only at completion positions.

    python benchmarks/sft_step_throughput.py [--steps 3] [--warmup 1] [--batch 4] [--out /tmp/sft_step_bench]

The same SFT steps, in one run, both ways, through our entry point
(``alignxplore.sft.train.main``: TRL SFTTrainer, CPU fp32 here): the learnable tiny Qwen3
(``alignxplore.demo.tiny``, shape "learnable": hidden 128, 2 layers, real 151,669-token
vocabulary, tied), rows of the real preference prompt with 6 behaviour triples (~520 prompt
tokens) and a short ``<think>…</think>`` answer (~30 completion tokens) — the shape of the
CPU demo's learning world. Same data, seed, batch and step count for both; the first
``--warmup`` steps are not timed. Prints seconds per step, tokens/s and the loss of each
step both ways (the objective is the same, so the losses agree), then the speed-up
``N.Nx`` on its last line (target >= 5x on CPU). Wall-clock per step is the headline; the
process CPU time per step and the load average are printed too, because on a shared box
other jobs stretch wall-clock time.

For the GPU variant (a Qwen3-0.6B shape on 16k-prompt rows, peak memory and tokens/s both
ways) see ``benchmarks/sft_gpu_throughput.py --logits both``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time
from pathlib import Path

GENRES = "jazz rock opera techno blues soul punk folk".split()  # single Qwen3 tokens each
NOUNS = "album concert record playlist single session festival ballad".split()


def synthetic_rows(n: int, triples: int, rng: random.Random) -> list[dict]:
    from alignxplore.prompts import preference_messages, sft_completion

    rows = []
    for _ in range(n):
        liked = rng.choice(GENRES)
        hist = []
        for _ in range(triples):
            other = rng.choice([g for g in GENRES if g != liked])
            hist.append({"query": "Please recommend some music to me.",
                         "chosen": f"A {liked} {rng.choice(NOUNS)}", "rejected": f"A {other} {rng.choice(NOUNS)}"})
        completion = sft_completion(f"Every chosen item is {liked}; the rejected ones are other genres, so {liked} is what matters.",
                                    f"The user prefers {liked}.")
        rows.append({"prompt": preference_messages(hist), "completion": [{"role": "assistant", "content": completion}]})
    return rows


def run(mode_on: bool, model_dir: Path, data_dir: Path, out: Path, args) -> dict:
    import torch
    from transformers import TrainerCallback

    from alignxplore.sft import train as sft_train

    times: list[float] = []
    cpu_times: list[float] = []
    losses: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter() - self.t0)
            cpu_times.append(time.process_time() - self.c0)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    argv = ["--model_name_or_path", str(model_dir), "--dataset_path", str(data_dir), "--output_dir", str(out / ("on" if mode_on else "off")),
            "--max_steps", str(args.steps + args.warmup), "--per_device_train_batch_size", str(args.batch),
            "--gradient_accumulation_steps", "1", "--learning_rate", "3e-3", "--lr_scheduler_type", "constant", "--warmup_ratio", "0",
            "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", "--resume", "false", "--seed", "0",
            "--dataloader_num_workers", "0", "--gradient_checkpointing", "false", "--max_length", "2048",
            "--completion_only_logits", "true" if mode_on else "false"]
    sft_train.main(argv, callbacks=[StepTimer()])
    gc.collect()
    steady, steady_cpu = times[args.warmup:], cpu_times[args.warmup:]
    return {"step_s": sum(steady) / len(steady), "cpu_s": sum(steady_cpu) / len(steady_cpu), "losses": losses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/sft_step_bench")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per side")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per side")
    ap.add_argument("--batch", type=int, default=4, help="rows per step (stock logits: ~0.6 GB of fp32 per row)")
    ap.add_argument("--triples", type=int, default=6)
    args = ap.parse_args()

    from datasets import load_from_disk

    from alignxplore.sft.prepare import prepare
    from alignxplore.demo.tiny import save_tiny_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = save_tiny_model(out / "tiny-learnable", shape="learnable")
    data = out / "sft.jsonl"
    n_rows = args.batch * (args.steps + args.warmup)
    data.write_text("".join(json.dumps(r) + "\n" for r in synthetic_rows(n_rows, args.triples, random.Random(0))))
    prepare(data, model_dir, out / "prepared", max_length=2048)
    ds = load_from_disk(str(out / "prepared"))
    prompt_tokens = sum(m.count(0) for m in ds["completion_mask"]) / len(ds)
    completion_tokens = sum(m.count(1) for m in ds["completion_mask"]) / len(ds)
    tokens_per_step = args.batch * (prompt_tokens + completion_tokens)

    full = run(False, Path(model_dir), out / "prepared", out, args)
    ours = run(True, Path(model_dir), out / "prepared", out, args)
    print(f"tiny Qwen3 'learnable' shape, CPU fp32, batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"rows of {prompt_tokens:.0f} prompt + {completion_tokens:.0f} completion tokens (mean)")
    for name, r in (("full logits (stock)", full), ("completion-only", ours)):
        print(f"{name:20s} {r['step_s']:7.3f} s/step (process CPU {r['cpu_s']:7.3f} s)  {tokens_per_step / r['step_s']:9.1f} tokens/s  "
              f"losses {' '.join(f'{x:.4f}' for x in r['losses'])}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"process-CPU-time ratio {full['cpu_s'] / ours['cpu_s']:.1f}x")
    ratio = full["step_s"] / ours["step_s"]
    print(f"speed-up ratio (wall-clock s/step): {ratio:.1f}x (target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
