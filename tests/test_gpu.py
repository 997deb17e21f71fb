"""Accelerator paths: run with `pytest -m gpu` on a CUDA machine (deselected on CPU).

These use the same tiny Qwen3 as the CPU suite, so they check the CUDA/bf16 code paths, not
model quality. The vLLM tests also need the `vllm` package (the GPU stack in requirements.txt).
"""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

from alignxplore.backends.base import JudgeSampling, SamplingConfig  # noqa: E402
from alignxplore.prompts import judge_messages, preference_messages  # noqa: E402


def convs(n):
    return [judge_messages(f"query {i}", "likes jazz " * (i + 1), f"item a {i}", f"item b {i}") for i in range(n)]


def test_hf_backend_on_cuda_matches_cpu(tiny_model_dir, hf_backend):
    from alignxplore.backends.hf import HFBackend

    gpu = HFBackend(tiny_model_dir, device="cuda", dtype="float32", progress=False)
    for a, b in zip(gpu.judge(convs(8)), hf_backend.judge(convs(8))):
        assert a.p_a == pytest.approx(b.p_a, abs=1e-4)
    bf16 = HFBackend(tiny_model_dir, device="cuda", progress=False)  # auto: bf16 on CUDA
    assert bf16.model.dtype == torch.bfloat16
    for a, b in zip(bf16.judge(convs(8)), hf_backend.judge(convs(8))):
        assert a.p_a + a.p_b == pytest.approx(1.0) and a.p_a == pytest.approx(b.p_a, abs=3e-2)
    gens = bf16.generate([preference_messages([{"query": "q", "chosen": "a", "rejected": "b"}])] * 4, SamplingConfig(max_new_tokens=16))
    assert all(g.ok and g.text for g in gens)


def test_sft_bf16_steps_on_cuda(tmp_path, tiny_model_dir, fixtures_dir):
    from alignxplore.sft.prepare import prepare

    prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, tmp_path / "prep", max_length=1024)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "alignxplore.sft.train", "--model_name_or_path", tiny_model_dir, "--dataset_path", str(tmp_path / "prep"),
           "--output_dir", str(out), "--max_steps", "8", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--bf16", "true",
           "--logging_steps", "1", "--save_steps", "8", "--report_to", "none", "--gradient_checkpointing", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "device cuda" in proc.stderr and "torch.bfloat16" in proc.stderr
    state = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 8 and losses[-1] < losses[0]


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory):
    from alignxplore.demo.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny64") / "m", head_dim=64)


def test_vllm_backend_judge_agrees_with_hf(tiny64):
    pytest.importorskip("vllm")
    from alignxplore.backends.hf import HFBackend
    from alignxplore.backends.vllm import VLLMBackend

    v = VLLMBackend(tiny64, dtype="float32", max_model_len=2048, gpu_memory_utilization=0.3, enforce_eager=True, progress=False)
    h = HFBackend(tiny64, device="cuda", dtype="float32", progress=False)
    for a, b in zip(v.judge(convs(8)), h.judge(convs(8))):
        assert a.p_a == pytest.approx(b.p_a, abs=1e-3)
    gens = v.generate([preference_messages([{"query": "q", "chosen": "a", "rejected": "b"}])] * 4, SamplingConfig(max_new_tokens=16))
    assert all(g.ok for g in gens)


def test_sampled_judge_on_cuda_hf_and_vllm(tiny64):
    """The published judge protocol on both GPU engines: answers come back, are reproducible
    with the same seed, and carry the same P(A) as the teacher-forced read-out."""
    pytest.importorskip("vllm")
    from alignxplore.backends.hf import HFBackend
    from alignxplore.backends.vllm import VLLMBackend

    h = HFBackend(tiny64, device="cuda", dtype="float32", progress=False)
    v = VLLMBackend(tiny64, dtype="float32", max_model_len=2048, gpu_memory_utilization=0.3, enforce_eager=True, progress=False)
    sampling = JudgeSampling()
    for engine in (h, v):
        a, b = engine.judge_sampled(convs(8), sampling), engine.judge_sampled(convs(8), sampling)
        assert all(j.ok and isinstance(j.text, str) for j in a)
        assert [j.text for j in a] == [j.text for j in b]
    for x, y in zip(h.judge_sampled(convs(8), sampling), v.judge_sampled(convs(8), sampling)):
        assert x.score.p_a == pytest.approx(y.score.p_a, abs=1e-3)


# --- The cluster launchers' real paths on ONE GPU (issue 18) ----------------------------------
# `bash sft/sft.sh` (torchrun + DeepSpeed ZeRO-3, bf16) and `bash verl/run_streaming_8p.sh`
# (verl 0.9.1: vLLM rollout, FSDP on CUDA, streaming reward from a `vllm serve` judge) on a
# Qwen3-0.6B-shaped model with random weights, 2 steps each. They check that the GPU stack
# runs end to end (installs, launchers, configs, vLLM/FSDP wiring), not model quality.
# benchmarks/device_check.sh runs them; DEVICE_OUT (a folder) receives their measured numbers.

from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def qwen3_06b_shaped(tmp_path_factory):
    """A random Qwen3-0.6B-shaped checkpoint (bf16) with the real Qwen3 tokenizer."""
    from transformers import Qwen3ForCausalLM

    from alignxplore.demo.tiny import load_qwen3_tokenizer, qwen3_0_6b_config

    out = tmp_path_factory.mktemp("q06b") / "model"
    tok = load_qwen3_tokenizer()
    torch.manual_seed(0)
    Qwen3ForCausalLM(qwen3_0_6b_config(len(tok))).to(torch.bfloat16).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def _record(name: str, payload: dict) -> None:
    out = os.environ.get("DEVICE_OUT")
    print(f"\n[{name}] {json.dumps(payload)}")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"{name}.json").write_text(json.dumps(payload, indent=1))


def test_sft_launcher_two_steps_on_one_gpu(tmp_path, qwen3_06b_shaped, fixtures_dir):
    """`bash sft/sft.sh` as a user runs it (torchrun, DeepSpeed ZeRO-3 from sft/ds_zero3.json,
    bf16, gradient checkpointing), one GPU, 2 optimizer steps."""
    import time

    from alignxplore.sft.prepare import prepare

    prepare(fixtures_dir / "sft.jsonl", qwen3_06b_shaped, tmp_path / "prep", max_length=4096)
    out = tmp_path / "sft"
    env = dict(os.environ, PYTHON=sys.executable, GPUS_PER_NODE="1", MASTER_PORT="29517", HF_HUB_OFFLINE="1")
    start = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "sft" / "sft.sh"), "--model_name_or_path", qwen3_06b_shaped,
                           "--dataset_path", str(tmp_path / "prep"), "--output_dir", str(out), "--max_steps", "2",
                           "--gradient_accumulation_steps", "2", "--save_steps", "2", "--logging_steps", "1",
                           "--report_to", "none", "--dataloader_num_workers", "0"],
                          capture_output=True, text=True, env=env, timeout=900)
    wall = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-4000:]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(l == l and l > 0 for l in losses)  # finite, positive cross-entropy
    _record("sft_launcher_gpu", {"steps": 2, "wall_s": round(wall, 1), "losses": losses,
                                 "train_runtime_s": state["log_history"][-1].get("train_runtime")})


def test_streaming_grpo_launcher_two_steps_on_one_gpu(tmp_path, qwen3_06b_shaped, fixtures_dir):
    """`bash verl/run_streaming_8p.sh` as a user runs it, shrunk to one GPU: verl 0.9.1's vLLM
    rollout (async server, sleep/wake), FSDP actor on CUDA with the presets' dynamic batch,
    chunked entropy and shuffle, both stages, the reward streamed from a `vllm serve` judge
    (the random 0.6B-shaped model, on the same GPU at a small memory share), 2 steps, a
    checkpoint, then verl/merge.sh. The policy is the same random model (the reward wraps each
    response in the format, tests/rl_cpu_fixture.py::judge_every_response)."""
    import re
    import signal
    import time

    pytest.importorskip("vllm")
    from alignxplore.rl.cpu import kill_ray_processes
    from alignxplore.testing.vllm_server import VLLMServer
    from test_rl_e2e_cpu import step_metrics

    data = tmp_path / "train.parquet"
    subprocess.run(["bash", str(REPO / "verl" / "preprocess.sh"), "--no-progress"], check=True, capture_output=True,
                   env={**os.environ, "PYTHON": sys.executable, "DATA": str(fixtures_dir / "rl.jsonl"), "OUT": str(data)})
    ckpt, ray_tmp = tmp_path / "ckpt", f"/tmp/ray-gpu-{os.getpid()}"
    with VLLMServer(qwen3_06b_shaped, served_name="judge", dtype="bfloat16", max_model_len=8192,
                    extra_args=["--gpu-memory-utilization", "0.15"], log_path=tmp_path / "judge.log") as judge:
        env = dict(os.environ, PYTHON=sys.executable, NNODES="1", GPUS_PER_NODE="1", MODEL=qwen3_06b_shaped, DATA=str(data),
                   JUDGE_URL=judge.base_url, JUDGE_NAME="judge", OUTPUT=str(ckpt), HF_HUB_OFFLINE="1")
        overrides = [
            "data.train_batch_size=2", "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.actor.ppo_mini_batch_size=2",
            "data.max_prompt_length=3072", "data.max_response_length=128",
            "actor_rollout_ref.rollout.tensor_model_parallel_size=1", "actor_rollout_ref.rollout.gpu_memory_utilization=0.35",
            "actor_rollout_ref.rollout.agent.num_workers=1", "reward.num_workers=1",
            "trainer.total_training_steps=2", "trainer.save_freq=2", "trainer.logger=[console]",
            f"+ray_kwargs.ray_init._temp_dir={ray_tmp}",
            # the streaming reward with its format gate passed: random weights never write
            # <think>...</think>, and every response should reach the judge server
            f"reward.custom_reward_function.path={REPO / 'tests' / 'rl_cpu_fixture.py'}",
            "reward.custom_reward_function.name=judge_every_response",
        ]
        start = time.monotonic()
        proc = subprocess.Popen(["bash", str(REPO / "verl" / "run_streaming_8p.sh"), *overrides], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=900)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            kill_ray_processes(ray_tmp)
        wall = time.monotonic() - start
        judge_log = (tmp_path / "judge.log").read_text(errors="replace")
    (tmp_path / "rl.log").write_text(log)
    assert proc.returncode == 0, log[-6000:]
    steps = step_metrics(log)
    assert sorted(steps) == [1, 2], log[-6000:]
    for m in steps.values():
        assert m["streaming/stage1/responses"] == m["streaming/stage2/responses"] == 4
        assert m["streaming/stage1/judge_failures"] == m["streaming/stage2/judge_failures"] == 0
    # the reward reached the judge server (up to 2 prompts x n=2 x 2 stages x 2 steps = 16 requests)
    assert judge_log.count("POST /v1/chat/completions") > 0
    assert (ckpt / "global_step_2" / "actor").is_dir()
    merged = tmp_path / "merged"
    merge = subprocess.run(["bash", str(REPO / "verl" / "merge.sh")], capture_output=True, text=True,
                           env={**os.environ, "PYTHON": sys.executable, "CKPT": str(ckpt), "OUT": str(merged)})
    assert merge.returncode == 0, merge.stderr[-3000:]
    assert list(merged.glob("*.safetensors"))
    perf = {k: v for k, v in steps[2].items() if re.match(r"perf/|timing_s/step$", k)}
    _record("rl_launcher_gpu", {"steps": 2, "wall_s": round(wall, 1), "step2": perf,
                                "judge_requests": judge_log.count("POST /v1/chat/completions")})
