"""Entry point of streaming GRPO: verl's ``run_ppo`` with our task runner (the DAPO recipe's route).

    python -m alignxplore.rl.main data.train_files=data/rl/train.parquet \\
        actor_rollout_ref.model.path=runs/sft/final reward.custom_reward_function.reward_kwargs.base_url=http://judge:8000/v1

``bash verl/run_streaming_8p.sh`` runs exactly this with the knobs as env vars. The config is
``verl/config/streaming_grpo.yaml`` (``defaults: [ppo_trainer, _self_]``, searched through
``pkg://verl.trainer.config``); every further argument is a Hydra override, and a misspelt key
fails at start-up (Hydra's struct check; our ``streaming:`` section checks its own keys).

The task runner repeats ``main_ppo_v0.TaskRunner.run`` with :class:`~.trainer.StreamingGRPOTrainer`
in place of ``RayPPOTrainer``; nothing of verl is copied beyond those few calls. Ray actors
import ``alignxplore``: install the repository (``pip install -e .``) on every node.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import hydra
import ray
from omegaconf import OmegaConf

from verl.trainer.main_ppo_v0 import BaseTaskRunner

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "verl" / "config")
CONFIG_NAME = "streaming_grpo"


class StreamingTaskRunner(BaseTaskRunner):
    def run(self, config):
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler, need_critic, need_reference_policy
        from verl.utils.config import omega_conf_to_dataclass, validate_config
        from verl.utils.dataset.rl_dataset import collate_fn
        from verl.workers.config import HFModelConfig

        from .trainer import StreamingGRPOTrainer

        print(f"StreamingTaskRunner hostname: {socket.gethostname()}, PID: {os.getpid()}")
        OmegaConf.resolve(config)
        _, ray_worker_group_cls = self.add_actor_rollout_worker(config)
        self.add_critic_worker(config)
        self.add_reward_model_resource_pool(config)
        self.add_teacher_model_resource_pool(config)
        validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
        model_config: HFModelConfig = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        tokenizer, processor = model_config.tokenizer, model_config.processor
        resource_pool_manager = self.init_resource_pool_mgr(config)

        def dataset(files, is_train, max_key):
            return create_rl_dataset(files, config.data, tokenizer, processor, is_train=is_train,
                                     max_samples=config.data.get(max_key, -1))

        train_dataset = dataset(config.data.train_files, True, "train_max_samples")
        val_dataset = dataset(config.data.val_files, False, "val_max_samples")
        trainer = StreamingGRPOTrainer(
            config=config, tokenizer=tokenizer, processor=processor, role_worker_mapping=self.role_worker_mapping,
            resource_pool_manager=resource_pool_manager, ray_worker_group_cls=ray_worker_group_cls,
            train_dataset=train_dataset, val_dataset=val_dataset, collate_fn=collate_fn,
            train_sampler=create_rl_sampler(config.data, train_dataset),
        )
        trainer.init_workers()
        trainer.fit()


def check_config(config) -> None:
    """What the rest of the stack assumes; fails (one line) before any Ray actor starts."""
    from ..formats import DataError
    from .trainer import StreamingConfig

    try:
        StreamingConfig.from_config(config.get("streaming"))
    except (TypeError, ValueError) as err:
        raise DataError("config", "streaming", str(err)) from None
    if config.trainer.use_v1:
        raise DataError("config", "trainer.use_v1", "streaming GRPO runs on the legacy trainer: set trainer.use_v1=false")
    if config.algorithm.adv_estimator != "grpo":
        raise DataError("config", "algorithm.adv_estimator", f"streaming GRPO needs grpo, got {config.algorithm.adv_estimator}")


def check_inputs(config) -> None:
    """Local inputs exist: a wrong path is one line here, not a traceback from a Ray actor."""
    from ..formats import DataError

    files = config.data.train_files
    for f in [files] if isinstance(files, str) else list(files):
        if "://" not in str(f) and not Path(f).is_file():
            raise DataError(str(f), "data.train_files", "no such file (make it with bash verl/preprocess.sh)")
    model = str(config.actor_rollout_ref.model.path)
    if "://" not in model and (model.startswith(("/", ".", "~")) or Path(model).exists()) and not Path(model).expanduser().is_dir():
        raise DataError(model, "actor_rollout_ref.model.path", "no such model folder")


def run(config) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    check_config(config)
    check_inputs(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=ray.remote(num_cpus=1)(StreamingTaskRunner))


@hydra.main(config_path=CONFIG_DIR, config_name=CONFIG_NAME, version_base=None)
def main(config) -> None:
    from ..formats import DataError

    try:
        run(config)
    except DataError as err:  # our start-up checks: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
