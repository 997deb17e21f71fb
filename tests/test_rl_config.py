"""The shipped YAML composes with verl 0.9.1's defaults, holds docs/formats.md §5, passes verl's
own validation, and a misspelt key fails loudly."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from alignxplore.rl.main import CONFIG_DIR, CONFIG_NAME, check_config


def compose_cfg(overrides=()):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides))


def test_yaml_composes_with_verl_defaults_and_holds_the_paper_settings():
    cfg = compose_cfg()
    a, r, d = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout, cfg.data
    assert (d.train_batch_size, r.n, a.ppo_mini_batch_size, a.ppo_epochs) == (1024, 4, 512, 1)
    # 2 stages x 1024 prompts x n sequences, mini-batches of 512 x n: 4 optimizer steps per step
    assert 2 * d.train_batch_size * r.n // (a.ppo_mini_batch_size * r.n) == 4
    assert (a.optim.lr, a.optim.lr_warmup_steps_ratio, a.optim.lr_scheduler_type, a.optim.weight_decay) == (1e-6, 0.0, "constant", 0.01)
    assert (a.clip_ratio_low, a.clip_ratio_high, a.optim.clip_grad, a.loss_agg_mode) == (0.2, 0.2, 1.0, "token-mean")
    assert (a.use_kl_loss, cfg.algorithm.use_kl_in_reward, a.entropy_coeff) == (False, False, 0)
    assert (d.max_prompt_length, d.max_response_length, d.filter_overlong_prompts) == (8192, 4096, False)
    assert (r.name, r.tensor_model_parallel_size, r.temperature, r.top_p, r.top_k) == ("vllm", 2, 1.0, 1.0, -1)
    assert (d.shuffle, d.seed, cfg.trainer.test_freq, cfg.trainer.val_before_train, cfg.trainer.save_freq) == (True, 1, -1, False, 30)
    assert (cfg.trainer.total_epochs, cfg.trainer.use_v1, cfg.algorithm.adv_estimator) == (1, False, "grpo")
    assert cfg.actor_rollout_ref.model.enable_gradient_checkpointing and cfg.actor_rollout_ref.model.use_remove_padding
    assert cfg.actor_rollout_ref.ref.fsdp_config.param_offload and cfg.trainer.balance_batch
    assert (cfg.streaming.coupling_lambda, cfg.streaming.other_bonus) == (0.9, 0.45)
    assert cfg.reward.custom_reward_function.path == "pkg://alignxplore.rl.reward"
    assert cfg.data.custom_cls.name == "StreamingRLDataset"
    # verl's untouched defaults are still there (inherited, not copied)
    assert cfg.actor_rollout_ref.actor.policy_loss.loss_mode == "vanilla"


PRESETS = {  # preset: (nnodes, GPUs per node, rollout gpu_memory_utilization)
    "node_1x8": (1, 8, 0.6),
    "cluster_8x8": (8, 8, 0.8),
}


@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_yaml_and_presets_pass_verls_validation(preset):
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config
    from verl.workers.config import FSDPActorConfig, RolloutConfig

    cfg = compose_cfg([f"preset={preset}"] if preset else [])
    nnodes, gpus, mem = PRESETS[preset or "node_1x8"]  # node_1x8 is the default
    a, ref, r = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.ref, cfg.actor_rollout_ref.rollout
    assert (cfg.trainer.nnodes, cfg.trainer.n_gpus_per_node, r.gpu_memory_utilization) == (nnodes, gpus, mem)
    # memory-safe settings that leave the update unchanged, in every preset
    assert a.use_dynamic_bsz and ref.log_prob_use_dynamic_bsz and r.log_prob_use_dynamic_bsz and a.shuffle
    # every budget holds one full row (verl asserts it when it cuts micro-batches)
    row = cfg.data.max_prompt_length + cfg.data.max_response_length
    assert min(a.ppo_max_token_len_per_gpu, ref.log_prob_max_token_len_per_gpu, r.log_prob_max_token_len_per_gpu) >= row
    OmegaConf.resolve(cfg)
    check_config(cfg)
    assert not need_critic(cfg) and not need_reference_policy(cfg)
    validate_config(config=cfg, use_reference_policy=False, use_critic=False)
    actor = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    assert isinstance(actor, FSDPActorConfig) and isinstance(rollout, RolloutConfig)
    assert rollout.prompt_length == 8192 and rollout.response_length == 4096
    assert actor.use_dynamic_bsz and actor.shuffle and actor.ppo_max_token_len_per_gpu == 16384
    # chunked entropy reaches the FSDP engine of the actor (old-log-prob pass) and of the ref
    assert actor.engine.entropy_from_logits_with_chunking and actor.engine.entropy_from_logits_chunk_size == 2048
    assert cfg.actor_rollout_ref.ref.fsdp_config.entropy_from_logits_with_chunking
    # one node: (2 stages x 1024 x n=4) / 8 GPUs = 1024 rows per GPU per step, split by tokens
    assert rollout.log_prob_use_dynamic_bsz and rollout.log_prob_max_token_len_per_gpu == 32768


def test_composing_by_path_equals_composing_by_package():
    """``python -m alignxplore.rl.main`` finds verl's YAML by path (fast start-up checks); the
    result is the same config as the YAML's own ``pkg://`` search path gives."""
    from alignxplore.rl.main import verl_config_searchpath

    by_pkg = compose_cfg()
    by_path = compose_cfg([verl_config_searchpath()])
    assert OmegaConf.to_container(by_pkg) == OmegaConf.to_container(by_path)


def test_misspelt_override_fails_loudly():
    with pytest.raises(ConfigCompositionException, match="coupling_lamda"):
        compose_cfg(["streaming.coupling_lamda=0.5"])
    with pytest.raises(ConfigCompositionException, match="ppo_mini_batchsize"):
        compose_cfg(["actor_rollout_ref.actor.ppo_mini_batchsize=4"])


def test_misspelt_key_added_to_our_sections_fails_at_start_up():
    cfg = compose_cfg(["+streaming.bonus=0.3"])  # '+' bypasses Hydra's check; ours catches it
    with pytest.raises(ValueError, match=r"streaming\.\['bonus'\]"):
        check_config(cfg)
    from alignxplore.rl.reward import JudgeOptions

    kwargs = dict(compose_cfg(["+reward.custom_reward_function.reward_kwargs.base_ulr=x"]).reward.custom_reward_function.reward_kwargs)
    with pytest.raises(TypeError, match="base_ulr"):
        JudgeOptions.from_kwargs(kwargs)


def test_missing_inputs_are_one_line_before_ray_starts(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "alignxplore.rl.main", f"data.train_files={tmp_path}/none.parquet"],
                          cwd=repo, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/none.parquet: data.train_files: no such file (make it with bash verl/preprocess.sh)")
    assert "Traceback" not in proc.stderr
