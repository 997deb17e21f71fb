"""Streaming GRPO end-to-end on CPU: the ``verl/run_streaming_8p.sh`` code path (same launcher
arguments, same main, same YAML) plus the CPU plug-in's overrides (``alignxplore.rl.cpu``), on
the tiny Qwen3, the fixture RL users and the in-process ``hf`` judge, for 2 training steps.

Checks: both stages generate; both stages' rewards and the coupling terms are logged; the
actor's weights change; a checkpoint is written; ``verl/merge.sh`` turns it into an HF folder
that ``alignxplore.backends`` loads and generates with.

The policy is the tiny model after a few seconds of supervised warm-up on one well-formed
answer (:func:`format_warmed_model`): a random-weight model never writes ``<think>…</think>``,
so every response would fail the format gate and the judge would never be called.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STEPS = 2
RESPONSE_LENGTH = 20
WARM_ANSWER = "<think>\nok\n</think>\n\nLikes science fiction."
WARM_LOSS = 0.05  # mean cross-entropy per answer token at which the warm-up stops
WARM_MAX_STEPS = 400  # a cap far above what it takes (60-80 steps), never the stopping rule


def launcher_args(tmp_path: Path, **env) -> list[str]:
    """The exact arguments ``verl/run_streaming_8p.sh`` passes to Python (PYTHON swapped for a
    script that prints them)."""
    printer = tmp_path / "print_args.sh"
    printer.write_text('#!/bin/sh\nprintf "%s\\0" "$@"\n')
    printer.chmod(0o755)
    out = subprocess.run(["bash", str(REPO / "verl" / "run_streaming_8p.sh")], env={**os.environ, **env, "PYTHON": str(printer)},
                         capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def format_warmed_model(base_dir: str, out_dir: Path, tokenizer, rl_rows: Path) -> str:
    """The tiny model fine-tuned (plain torch, seconds) to answer this run's RL prompts with WARM_ANSWER.

    The prompts are the ones the run will sample from: every fixture row's stage-1 prompt and
    its stage-2 prompt with WARM_ANSWER as the past summary (what stage 2 sees once stage 1
    answers in the format). Trained *until* it has learnt the answer on every one of them,
    not for a fixed number of steps: where a fixed-step Adam trajectory lands depends on the
    CPU's kernels (AVX-512 vs AVX2, thread count; 60 steps ended at loss 0.09 on one box and
    0.29 on another), the stopping rule does not. Learnt means every answer token is the argmax
    under teacher forcing on every prompt (so greedy decoding writes WARM_ANSWER exactly, by
    induction over the positions) and the mean cross-entropy per answer token is below
    WARM_LOSS (so a rollout sampled at temperature 1 keeps the whole 11-token answer with
    probability >= exp(-WARM_LOSS * 11) ~ 0.6: the 16 rollouts of a run call the judge).
    Memorising one short answer converges on any CPU; the cap only turns a broken optimiser
    into a failure instead of a hang. Logits only at the answer positions (the 151k-word output
    layer over the whole prompt would cost most of the time).
    """
    import torch
    from transformers import AutoModelForCausalLM

    from alignxplore.formats import read_jsonl, validate_rl_row
    from alignxplore.rl.coupling import stage2_messages
    from alignxplore.rl.data import rl_row_to_record

    conversations = []
    for i, row in enumerate(read_jsonl(rl_rows, validate_rl_row)):
        record = rl_row_to_record(row, i)
        conversations += [record["prompt"], stage2_messages(json.loads(record["stage2_history"]), WARM_ANSWER)]
    answer_ids = tokenizer(WARM_ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
    target = torch.tensor(answer_ids)
    sequences = []
    for conv in conversations:
        prompt_ids = tokenizer(tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False),
                               add_special_tokens=False)["input_ids"]
        sequences.append((torch.tensor([prompt_ids + answer_ids]), len(prompt_ids)))

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(WARM_MAX_STEPS):
        losses, learnt = [], True
        for ids, n_prompt in sequences:
            logits = model.lm_head(model.model(input_ids=ids).last_hidden_state[0, n_prompt - 1 : -1])
            losses.append(torch.nn.functional.cross_entropy(logits, target))
            learnt &= bool((logits.argmax(-1) == target).all())
        loss = torch.stack(losses).mean()
        if learnt and loss.item() < WARM_LOSS:
            break
        loss.backward()
        opt.step()
        opt.zero_grad()
    else:
        pytest.fail(f"the warm-up did not learn the answer in {WARM_MAX_STEPS} steps (loss {loss.item():.4f})")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return str(out_dir)


def step_metrics(log: str) -> dict[int, dict[str, float]]:
    """verl's console logger lines ``step:N - key:value - ...``."""
    steps = {}
    for line in log.splitlines():
        m = re.search(r"step:(\d+) - (.*)$", line)
        if m:
            metrics = {}
            for item in m.group(2).split(" - "):
                key, _, raw = item.partition(":")
                raw = re.sub(r"^np\.\w+\((.*)\)$", r"\1", raw.strip())
                try:
                    metrics[key] = float(raw)
                except ValueError:
                    pass
            steps[int(m.group(1))] = metrics
    return steps


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the verl run's own limit is 900 s; the suite's 600 s per test would cut it first
def test_streaming_grpo_trains_two_steps_on_cpu_and_merges(tmp_path, tiny_model_dir, tokenizer, fixtures_dir):
    import torch
    from safetensors.torch import load_file

    from alignxplore.backends import SamplingConfig, load_backend
    from alignxplore.rl.cpu import run_verl_cpu

    data = tmp_path / "train.parquet"
    subprocess.run(["bash", str(REPO / "verl" / "preprocess.sh"), "--no-progress"], check=True, capture_output=True,
                   env={**os.environ, "PYTHON": sys.executable, "DATA": str(fixtures_dir / "rl.jsonl"), "OUT": str(data)})
    policy = format_warmed_model(tiny_model_dir, tmp_path / "policy", tokenizer, fixtures_dir / "rl.jsonl")
    ckpt = tmp_path / "ckpt"
    args = launcher_args(tmp_path, MODEL=policy, DATA=str(data), JUDGE_NAME=tiny_model_dir, OUTPUT=str(ckpt))
    assert args[:2] == ["-m", "alignxplore.rl.main"]
    args += [
        # the in-process judge (the base tiny model) instead of a vLLM server
        "reward.custom_reward_function.reward_kwargs.backend=hf",
        # a miniature of the paper's run: 2 prompts x n=2 per stage, 2 steps
        "data.train_batch_size=2", "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "data.max_prompt_length=448", f"data.max_response_length={RESPONSE_LENGTH}",
        # larger steps and no weight decay, so the weights move visibly and only by the policy gradient
        "actor_rollout_ref.actor.optim.lr=1e-4", "actor_rollout_ref.actor.optim.weight_decay=0.0",
        f"trainer.total_training_steps={STEPS}", f"trainer.save_freq={STEPS}",
    ]
    run = run_verl_cpu(args, run_dir=tmp_path, timeout_s=900, n_procs=1)
    log = run.log()
    assert not run.timed_out, f"did not finish within 900 s:\n{run.tail()}"
    assert run.returncode == 0, run.tail()

    steps = step_metrics(log)
    assert sorted(steps) == list(range(1, STEPS + 1)), run.tail()
    for step, m in steps.items():
        assert m["streaming/stage1/responses"] == m["streaming/stage2/responses"] == 4  # both stages generated
        for stage in (1, 2):
            assert 1 <= m[f"streaming/stage{stage}/response_length_mean"] <= RESPONSE_LENGTH
            assert 0.0 <= m[f"streaming/stage{stage}/score_mean"] <= 1.0
            assert m[f"streaming/stage{stage}/judge_failures"] == 0
        assert m["streaming/coupling/bonus_term_mean"] == pytest.approx(0.45)
        assert m["streaming/coupling/bonus_rows"] == 2
        assert 0.0 <= m["streaming/coupling/picked_term_mean"] <= 0.9
    # the warmed policy writes the format often enough that the judge scored something
    assert max(m["streaming/stage1/score_mean"] + m["streaming/stage2/score_mean"] for m in steps.values()) > 0

    # the actor checkpoint of the last step differs from the starting weights
    actor = ckpt / f"global_step_{STEPS}" / "actor"
    state = torch.load(actor / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    initial = load_file(str(Path(policy) / "model.safetensors"))
    changed = sum(int(((state[k].to_local() if hasattr(state[k], "to_local") else state[k]).float() - v.float()).abs().max() > 1e-6)
                  for k, v in initial.items())
    assert changed >= len(initial) // 2, f"only {changed}/{len(initial)} tensors changed"

    merged = tmp_path / "merged"
    proc = subprocess.run(["bash", str(REPO / "verl" / "merge.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "CKPT": str(ckpt), "OUT": str(merged)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    backend = load_backend("hf", str(merged), device="cpu", progress=False)
    (gen,) = backend.generate([[{"role": "user", "content": "Hi"}]], SamplingConfig(max_new_tokens=8))
    assert gen.ok and isinstance(gen.text, str)
    # the merged folder holds the trained weights (verl's merger stores them in bf16)
    merged_weights = load_file(str(next(merged.glob("*.safetensors"))))
    for key in ("model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight"):
        trained = state[key].to_local() if hasattr(state[key], "to_local") else state[key]
        torch.testing.assert_close(merged_weights[key], trained.to(merged_weights[key].dtype))
