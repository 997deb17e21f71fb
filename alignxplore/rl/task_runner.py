"""The Ray task runner of streaming GRPO: ``main_ppo_v0.TaskRunner.run`` with
:class:`~.trainer.StreamingGRPOTrainer` in place of ``RayPPOTrainer`` (the DAPO recipe's route).

Its own module so that ``alignxplore.rl.main`` runs the start-up checks before importing verl's
trainer stack (which imports torch and Ray).
"""
from __future__ import annotations

import os
import socket

from omegaconf import OmegaConf

from verl.trainer.main_ppo_v0 import BaseTaskRunner


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
