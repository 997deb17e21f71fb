"""bf16 SFT steps of a Qwen3-0.6B-shaped random model through our own SFT entry point:
tokens/s and MFU against the card's bf16 matmul peak, measured in the same run.

    python benchmarks/sft_gpu_throughput.py --out /tmp/sftbench [--steps 30] [--rows-tokens 4096] [--logits both]
    # issue 14: 16k-prompt rows, output layer everywhere vs only at completion positions
    python benchmarks/sft_gpu_throughput.py --out /tmp/sftbench --rows-tokens 16384 --logits both --steps 10

``--logits``: ``completion`` (the trainer's default: output layer and loss only where a
completion token is predicted), ``full`` (stock TRL: logits at every position; what the
results recorded before issue 14 measured), or ``both`` — the two runs in one process, one
RESULT line each, then the tokens/s ratio and both peak memories as ``N.Nx`` on the last line.

Pipeline: synthetic SFT rows (real Qwen3 tokenizer) -> alignxplore.sft.prepare ->
alignxplore.sft.train (TRL SFTTrainer, bf16, sdpa, batch 1 per step, no DeepSpeed on one GPU)
with a callback that times each optimizer step after warm-up. Model FLOPs per token:
6 * (matmul parameters, lm_head included) + 12 * layers * heads * head_dim * seq (attention,
causal halving ignored, as in the PaLM convention); gradient-checkpointing recompute is
not counted (MFU is model FLOPs, not hardware FLOPs). The output layer is counted at every
token both ways, so with ``--logits completion`` the figure is the stock model's FLOPs per
second of wall time (comparable across modes), not the FLOPs actually executed.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def matmul_peak_tflops(n: int = 8192, iters: int = 20) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t0) / 1e12


def model_flops_per_token(cfg, seq: int) -> float:
    d, L, h, hd, kv, ff, V = cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.head_dim, cfg.num_key_value_heads, cfg.intermediate_size, cfg.vocab_size
    per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * ff  # q, k+v, o, gate/up/down
    matmul_params = L * per_layer + d * V  # + lm_head
    return 6 * matmul_params + 12 * L * h * hd * seq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/sft_gpu_bench")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rows-tokens", type=int, default=4096, help="approximate tokens per SFT row")
    ap.add_argument("--gradient-checkpointing", choices=("true", "false"), default="true",
                    help="passed explicitly: TRL 0.27's SFTConfig turns it ON by default")
    ap.add_argument("--logits", choices=("completion", "full", "both"), default="completion",
                    help="output layer at completion positions only (default), everywhere (stock TRL), or both runs")
    ap.add_argument("--smoke", action="store_true", help="CPU check of this script: tiny model, no timing claims")
    args = ap.parse_args()

    import torch
    from transformers import Qwen3ForCausalLM

    from alignxplore.prompts import preference_messages, sft_completion
    from alignxplore.sft.prepare import prepare
    from alignxplore.demo.tiny import load_qwen3_tokenizer, qwen3_0_6b_config, tiny_qwen3_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_qwen3_tokenizer()
    cfg = tiny_qwen3_config(len(tok)) if args.smoke else qwen3_0_6b_config(len(tok))
    model_dir = out / ("tiny-random" if args.smoke else "qwen3-0.6b-random")
    if not (model_dir / "config.json").exists():
        torch.manual_seed(0)
        Qwen3ForCausalLM(cfg).to(torch.float32 if args.smoke else torch.bfloat16).save_pretrained(model_dir)
        tok.save_pretrained(model_dir)

    # Rows of about --rows-tokens tokens: long histories, a reasoning block and a summary.
    rng = random.Random(0)
    words = "jazz market film hiking museum quiet detailed concise friendly science travel news".split()
    n_triples = max(2, args.rows_tokens // 90)
    rows = []
    for _ in range(args.steps + args.warmup + 4):
        hist = [{"query": "Please recommend some news to me.", "chosen": "Title: " + " ".join(rng.choices(words, k=25)), "rejected": "Title: " + " ".join(rng.choices(words, k=25))} for _ in range(n_triples)]
        comp = sft_completion(" ".join(rng.choices(words, k=400)), " ".join(rng.choices(words, k=80)))
        rows.append({"prompt": preference_messages(hist), "completion": [{"role": "assistant", "content": comp}]})
    data = out / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prepare(data, str(model_dir), out / "prepared", max_length=args.rows_tokens * 4)

    peak = float("nan") if args.smoke else matmul_peak_tflops()
    modes = ("full", "completion") if args.logits == "both" else (args.logits,)
    results = {}
    for logits in modes:
        result = results[logits] = measure(logits, args, cfg, model_dir, out, peak)
        print("RESULT " + json.dumps(result), flush=True)
    (out / "result.json").write_text(json.dumps(results if len(results) > 1 else result, indent=1))
    if len(results) > 1:
        full, ours = results["full"], results["completion"]
        print(f"peak memory (GiB): full logits {full['peak_memory_gib']}, completion-only {ours['peak_memory_gib']}")
        print(f"tokens/s completion-only vs full logits: {ours['tokens_per_s'] / full['tokens_per_s']:.1f}x")


def measure(logits: str, args, cfg, model_dir: Path, out: Path, peak: float) -> dict:
    """One training run (``logits`` = "completion" or "full"): timings, tokens/s, peak memory."""
    import gc

    import torch
    from transformers import TrainerCallback

    from alignxplore.sft import train as sft_train

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the previous run's model and optimizer are gone
    times: list[float] = []
    tokens_seen: dict[int, float] = {}  # global step -> cumulative tokens (TRL logs num_tokens)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    seen: dict = {}

    class StepTimer(TrainerCallback):
        def on_train_begin(self, a, state, control, model=None, **kw):
            seen["gradient_checkpointing_active"] = bool(getattr(model, "is_gradient_checkpointing", False))
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

        def on_step_begin(self, a, state, control, **kw):
            sync()
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            sync()
            times.append(time.perf_counter() - self.t0)

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "num_tokens" in logs:
                tokens_seen[state.global_step] = float(logs["num_tokens"])

    argv = ["--model_name_or_path", str(model_dir), "--dataset_path", str(out / "prepared"), "--output_dir", str(out / f"run-{logits}"),
            "--max_steps", str(args.steps + args.warmup), "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1",
            "--learning_rate", "1e-5", "--bf16", "false" if args.smoke else "true", "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none",
            "--resume", "false", "--dataloader_num_workers", "0", "--max_length", str(args.rows_tokens * 4)]
    argv += ["--gradient_checkpointing", args.gradient_checkpointing, "--completion_only_logits", "true" if logits == "completion" else "false"]
    sft_train.main(argv, callbacks=[StepTimer()])

    steady = times[args.warmup:]
    step_s = sum(steady) / len(steady)
    last = args.warmup + len(steady)
    steady_tokens = tokens_seen[last] - tokens_seen[args.warmup]  # tokens of exactly the timed steps
    tokens_per_s = steady_tokens / sum(steady)
    seq = steady_tokens / len(steady)
    achieved = tokens_per_s * model_flops_per_token(cfg, int(seq)) / 1e12
    result = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu (smoke)", "torch": torch.__version__, "model": "tiny (smoke)" if args.smoke else "Qwen3-0.6B shape, random, bf16, sdpa",
        "tokens_per_step": round(seq, 1), "steps_timed": len(steady), "step_seconds": round(step_s, 4),
        "tokens_per_s": round(tokens_per_s, 1), "model_tflops": round(achieved, 2), "bf16_matmul_peak_tflops": round(peak, 1),
        "mfu": round(achieved / peak, 4), "gradient_checkpointing": args.gradient_checkpointing == "true",
        "gradient_checkpointing_active": seen.get("gradient_checkpointing_active"),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "logits": logits,
    }
    return result


if __name__ == "__main__":
    main()
