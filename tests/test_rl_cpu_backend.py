"""verl 0.9.1 on CPU through alignxplore.rl.cpu: the stock GRPO entry end-to-end, and the pieces.

The end-to-end test runs ``python -m verl.trainer.main_ppo trainer.use_v1=false`` (verl's own
legacy GRPO path, not ours) on the tiny random Qwen3 for 2 steps, through Ray, FSDP2 over gloo
and the plugin's ``hf`` rollout. The unit tests exercise the platform registration, the
process-group fix, the sampler's log-probs, weight updates and the runner's clean-up.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import rl_cpu_fixture  # noqa: E402

from alignxplore.rl.cpu import cpu_env, cpu_overrides, kill_ray_processes, ray_temp_dir, run_verl_cpu  # noqa: E402
from alignxplore.rl.cpu.settings import PLUGIN_MODULE, REPO_ROOT  # noqa: E402

STEPS = 2
RESPONSE_LENGTH = 16
# Rollout (hf server, fp32) and actor (FSDP2, fp32) compute the same log-probs up to float
# round-off (measured about 1e-11 in probability); a stale or wrong weight sync gives >1e-2.
MAX_PROB_DIFF = 1e-4


def _grpo_args(run: Path, model_dir: str, data: Path) -> list[str]:
    return [
        "-m", "verl.trainer.main_ppo",
        "trainer.use_v1=false",
        "algorithm.adv_estimator=grpo",
        f"data.train_files={data}",
        f"data.val_files={data}",
        "data.train_batch_size=4",
        "data.max_prompt_length=64",
        f"data.max_response_length={RESPONSE_LENGTH}",
        f"actor_rollout_ref.model.path={model_dir}",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.actor.use_kl_loss=false",
        "algorithm.use_kl_in_reward=false",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        # No weight decay: weights may only move through the policy gradient.
        "actor_rollout_ref.actor.optim.weight_decay=0.0",
        f"reward.custom_reward_function.path={rl_cpu_fixture.__file__}",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.total_training_steps={STEPS}",
        f"trainer.save_freq={STEPS}",
        "trainer.test_freq=-1",
        "trainer.val_before_train=false",
        f"trainer.default_local_dir={run}/ckpt",
        "trainer.project_name=rl_cpu_test",
        "trainer.experiment_name=stock_grpo",
    ]


def _step_metrics(log: str) -> dict[int, dict[str, float]]:
    """verl's console logger: ``step:N - key:value - key:np.float64(value) - ...``."""
    steps = {}
    for line in log.splitlines():
        m = re.search(r"step:(\d+) - (.*)$", line)
        if not m:
            continue
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
def test_stock_grpo_runs_two_steps_on_cpu(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    data = rl_cpu_fixture.write_prompts_parquet(tmp_path / "train.parquet")
    run = run_verl_cpu(_grpo_args(tmp_path, tiny_model_dir, data), run_dir=tmp_path, timeout_s=600, n_procs=1)
    log = run.log()
    assert not run.timed_out, f"verl did not finish within 600 s:\n{run.tail()}"
    assert run.returncode == 0, run.tail()

    steps = _step_metrics(log)
    assert sorted(steps) == list(range(1, STEPS + 1)), run.tail()
    for step, metrics in steps.items():
        assert metrics["training/rollout_probs_diff_valid"] == 1.0
        assert metrics["training/rollout_probs_diff_max"] < MAX_PROB_DIFF, (step, metrics)
        # The reward is not constant, so GRPO has non-zero advantages to learn from.
        assert metrics["critic/advantages/max"] > 0.1, (step, metrics)
        assert 1 <= metrics["response_length/mean"] <= RESPONSE_LENGTH

    # The actor checkpoint written at the last step differs from the initial weights.
    ckpt = tmp_path / "ckpt" / f"global_step_{STEPS}" / "actor"
    state = torch.load(ckpt / "model_world_size_1_rank_0.pt", map_location="cpu", weights_only=False)
    initial = load_file(str(Path(tiny_model_dir) / "model.safetensors"))
    changed = 0
    for name, init in initial.items():
        trained = state[name]
        trained = trained.to_local() if hasattr(trained, "to_local") else trained
        assert trained.shape == init.shape and torch.isfinite(trained).all(), name
        changed += int((trained.float() - init.float()).abs().max() > 1e-6)
    assert changed >= len(initial) // 2, f"only {changed}/{len(initial)} tensors changed"
    assert (tmp_path / "ckpt" / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)

    # Ray ran in this run's own temp dir (inside tmp_path when the path is short enough for
    # Ray's unix sockets, else a /tmp/ray-* folder the runner removes) and nothing is left running.
    temp_dir = Path(ray_temp_dir(tmp_path))
    assert temp_dir.is_dir() if tmp_path in temp_dir.parents else not temp_dir.exists()
    assert run.leftover_pids_killed == [] or run.returncode == 0
    assert kill_ray_processes(str(temp_dir)) == []


# ---------------------------------------------------------------------------------------------
# Settings and runner (no verl import)


def test_cpu_env_puts_the_plugin_first_and_keeps_other_modules():
    env = cpu_env(extra_modules=["my.reward"], base={"VERL_USE_EXTERNAL_MODULES": "a.b,my.reward", "PYTHONPATH": "/x"})
    assert env["VERL_USE_EXTERNAL_MODULES"] == f"{PLUGIN_MODULE},my.reward,a.b"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/x"]
    assert env["VERL_PLATFORM"] == "cpu" and env["VERL_ENGINE_DEVICE"] == "cuda"
    assert "CUDA_VISIBLE_DEVICES" not in env  # Ray refuses logical GPUs with an empty list


def test_cpu_overrides_select_the_cpu_pieces(tmp_path):
    overrides = cpu_overrides(n_procs=2, tmp_dir=tmp_path)
    for expected in (
        "actor_rollout_ref.rollout.name=hf",
        "actor_rollout_ref.actor.strategy=fsdp2",
        "trainer.n_gpus_per_node=2",
        "+ray_kwargs.ray_init.num_gpus=2",
        "actor_rollout_ref.model.use_remove_padding=False",
        "reward.num_workers=1",
        "trainer.logger=[console]",
        f"+ray_kwargs.ray_init._temp_dir={ray_temp_dir(tmp_path)}",
    ):
        assert expected in overrides
    keys = [o.lstrip("+").split("=", 1)[0] for o in overrides]
    assert len(keys) == len(set(keys)), "a key is overridden twice"
    with pytest.raises(ValueError):
        cpu_overrides(n_procs=0)


def test_ray_temp_dir_stays_short_enough_for_unix_sockets(tmp_path):
    assert ray_temp_dir("/tmp/r") == "/tmp/r/ray"
    deep = tmp_path / ("x" * 80)
    short = ray_temp_dir(deep)
    assert short.startswith("/tmp/ray-") and len(short) <= 45
    assert short == ray_temp_dir(deep) != ray_temp_dir(tmp_path / ("y" * 80))


def test_cpu_overrides_compose_with_verls_config(tmp_path):
    """Every key exists in verl 0.9.1's ppo_trainer config (a renamed key would fail here)."""
    from hydra import compose, initialize_config_dir
    import verl

    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="ppo_trainer", overrides=cpu_overrides(n_procs=1, tmp_dir=tmp_path))
    assert cfg.actor_rollout_ref.rollout.name == "hf"
    assert cfg.actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype == "fp32"
    assert cfg.ray_kwargs.ray_init._temp_dir == ray_temp_dir(tmp_path)


def test_runner_times_out_and_kills_what_it_started(tmp_path):
    marker = ray_temp_dir(tmp_path)  # processes naming the run's Ray dir are the run's own
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', {marker!r}], start_new_session=True)\n"
        "time.sleep(120)\n"
    )
    run = run_verl_cpu(["-c", script], run_dir=tmp_path, timeout_s=3, with_overrides=False)
    assert run.timed_out and run.returncode != 0
    assert len(run.leftover_pids_killed) == 1  # the grandchild that escaped the process group
    time.sleep(0.2)
    assert kill_ray_processes(marker) == []


# ---------------------------------------------------------------------------------------------
# Plugin registration, in a fresh interpreter (verl's platform is a per-process singleton)


def _run_python(code: str, env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = r"""
import json, os, torch
import verl
from verl.utils.device import get_device_name, get_nccl_backend, get_resource_name, get_torch_device
from verl.workers.rollout.base import get_rollout_class
from verl.workers.rollout.replica import RolloutReplicaRegistry
out = {"device": get_device_name(), "ccl": get_nccl_backend(), "resource": get_resource_name(),
       "torch_cpu": get_torch_device() is torch.cpu,
       "adapter": get_rollout_class("hf", "async").__name__, "replica": RolloutReplicaRegistry.get("hf").__name__}
if out["device"] == "cpu":
    import torch.distributed as dist
    os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000))
    from verl.workers import engine_workers  # copies the patched function at import
    engine_workers.initialize_global_process_group_ray(timeout_second=60)
    out["pg_backend"] = dist.get_backend()
    from verl.workers.engine import EngineRegistry
    out["engine"] = EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__
    get_torch_device().empty_cache(); get_torch_device().synchronize()
    out["mem"] = get_torch_device().memory_allocated()
    dist.destroy_process_group()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_plugin_registers_cpu_platform_gloo_group_and_hf_rollout():
    got = _run_python(PROBE, cpu_env())
    assert got == {
        "device": "cpu", "ccl": "gloo", "resource": "GPU", "torch_cpu": True,
        "adapter": "HFServerAdapter", "replica": "HFReplica",
        "pg_backend": "gloo", "engine": "FSDPEngineWithLMHead", "mem": 0,
    }


@pytest.mark.slow
def test_plugin_leaves_the_platform_alone_without_verl_platform_cpu():
    env = cpu_env()
    env["VERL_PLATFORM"] = ""
    got = _run_python(PROBE, env)
    assert got["device"] == "cuda"  # verl's own fallback on a GPU-less host, not ours
    assert got["adapter"] == "HFServerAdapter"  # the rollout is registered either way


# ---------------------------------------------------------------------------------------------
# The hf rollout server, in-process (its Ray wrapper is exercised end-to-end above)


def _server(model_dir: str, response_length: int = 8):
    from alignxplore.rl.cpu.hf_server import HFRolloutServer

    config = SimpleNamespace(prompt_length=32, response_length=response_length, max_model_len=None)
    return HFRolloutServer(config, {"local_path": model_dir}, replica_rank=0, seed=3)


def _prompt(tokenizer) -> list[int]:
    messages = [{"role": "user", "content": "Say hello."}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]


def test_sampled_log_probs_equal_a_teacher_forced_forward(tiny_model_dir, tokenizer):
    import torch

    from alignxplore.rl.cpu.hf_server import Sampling, sample_tokens

    server = _server(tiny_model_dir)
    prompt = _prompt(tokenizer)
    sampling = Sampling(max_tokens=8, temperature=0.7, top_p=0.9, top_k=50)
    tokens, log_probs, finish = sample_tokens(server.model, prompt, sampling, set(), torch.Generator().manual_seed(0))
    assert len(tokens) == len(log_probs) == 8 and finish == "length"
    with torch.no_grad():
        logits = server.model(input_ids=torch.tensor([prompt + tokens])).logits[0].float()
    expected = torch.log_softmax(logits[len(prompt) - 1 : -1] / 0.7, dim=-1)
    expected = expected.gather(1, torch.tensor(tokens)[:, None])[:, 0]
    assert torch.allclose(torch.tensor(log_probs), expected, atol=1e-4)
    again, _, _ = sample_tokens(server.model, prompt, sampling, set(), torch.Generator().manual_seed(0))
    assert again == tokens  # seeded


def test_sampling_stops_at_eos_and_includes_it(tiny_model_dir, tokenizer):
    import torch

    from alignxplore.rl.cpu.hf_server import Sampling, sample_tokens

    server = _server(tiny_model_dir)
    prompt = _prompt(tokenizer)
    greedy = Sampling(max_tokens=6, temperature=0.0)
    tokens, _, _ = sample_tokens(server.model, prompt, greedy, set(), torch.Generator())
    stop_at = tokens[2]
    cut, log_probs, finish = sample_tokens(server.model, prompt, greedy, {stop_at}, torch.Generator())
    assert finish == "stop" and cut == tokens[: tokens.index(stop_at) + 1] and len(log_probs) == len(cut)


def test_top_k_and_top_p_filtering():
    import torch

    from alignxplore.rl.cpu.hf_server import _filter_logits

    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isinf(_filter_logits(logits, top_k=2, top_p=1.0)).tolist() == [False, False, True, True]
    # top-p 0.7: 0.5 < 0.7, 0.5 + 0.3 crosses it -> keep two.
    assert torch.isinf(_filter_logits(logits, top_k=-1, top_p=0.7)).tolist() == [False, False, True, True]
    assert not torch.isinf(_filter_logits(logits, top_k=-1, top_p=1.0)).any()


def test_sampling_params_follow_verls_conventions():
    from alignxplore.rl.cpu.hf_server import Sampling

    s = Sampling.from_verl({"temperature": 1.0, "top_k": -1, "top_p": 1.0, "logprobs": True, "repetition_penalty": 1.0},
                           default_max_tokens=16, max_possible=10)
    assert (s.max_tokens, s.top_k, s.logprobs) == (10, -1, True)
    assert Sampling.from_verl({"max_tokens": 0}, default_max_tokens=16, max_possible=10).max_tokens == 1
    with pytest.raises(ValueError, match="no room"):
        Sampling.from_verl({}, default_max_tokens=16, max_possible=0)


def test_server_generate_update_weights_and_abort(tiny_model_dir, tokenizer):
    import torch

    server = _server(tiny_model_dir, response_length=4)
    prompt = _prompt(tokenizer)
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}

    async def scenario():
        out = await server.generate(prompt_ids=prompt, sampling_params=dict(params), request_id="r1")
        assert len(out.token_ids) == len(out.log_probs) == 4 and out.stop_reason == "completed"

        state = await server.get_state_dict()
        name = "model.layers.0.mlp.down_proj.weight"
        new = torch.full_like(state[name], 0.01)
        assert await server.update_weights({name: new}, global_steps=7) == 1
        assert torch.equal((await server.get_state_dict())[name], new)
        out = await server.generate(prompt_ids=prompt, sampling_params=dict(params), request_id="r2")
        assert out.extra_fields["global_steps"] == 7
        with pytest.raises(KeyError, match="not in the model"):
            await server.update_weights({"model.no_such.weight": new})
        with pytest.raises(ValueError, match="shape"):
            await server.update_weights({name: new[:1]})

        await server.abort_all_requests()
        out = await server.generate(prompt_ids=prompt, sampling_params=dict(params), request_id="r3")
        assert out.stop_reason == "aborted" and out.token_ids == []
        await server.resume_generation()
        out = await server.generate(prompt_ids=prompt, sampling_params=dict(params), request_id="r4")
        assert out.stop_reason == "completed"

    asyncio.run(scenario())
