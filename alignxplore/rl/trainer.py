"""Streaming two-stage GRPO on verl 0.9.1's legacy ``RayPPOTrainer`` (``trainer.use_v1=false``).

One training step (docs/formats.md §5; the authors' ``ray_trainer_streaming.py`` on verl 0.3.1):

1. stage 1: ``generate_sequences`` on the batch repeated n times (rewards stream in from
   :mod:`.reward` with ``extra_info.stage=1``, target1);
2. per prompt, pick one stage-1 response uniformly (seeded by ``streaming.pick_seed`` and the
   step) and render the stage-2 prompt with its summary in the past slot;
3. stage 2: ``generate_sequences`` again (new group ids, ``stage=2``, target2) — both rounds
   before ``sleep_replicas()``: hybrid replicas wake only on ``update_weights``;
4. coupling (:mod:`.coupling`): picked row ``+ lam * mean(stage-2 scores)``, other rows
   ``+ bonus``, at the last valid token; GRPO advantages per stage;
5. one concatenated batch (2·B·n rows): balance, old log-prob, (ref), one actor update
   (``ppo_mini_batch_size · n`` rows per optimizer step), checkpoint, ``update_weights``.

Metrics under ``streaming/``: per-stage score means, format and judge failures, response
lengths, the coupling terms; plus verl's data/timing/throughput metrics on the whole batch.
Only the wiring lives here; every decision is a tested function in :mod:`.coupling`.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, fields

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from verl import DataProto
from verl.trainer.ppo.core_algos import agg_loss
from verl.trainer.ppo.metric_utils import compute_data_metrics, compute_throughout_metrics, compute_timing_metrics
from verl.trainer.ppo.ray_trainer import RayPPOTrainer, compute_advantage, compute_response_mask
from verl.trainer.ppo.reward import extract_reward
from verl.utils.debug import marked_timer
from verl.utils.metric import reduce_metrics
from verl.utils.skip.skip_manager import SkipManager

from .coupling import add_at_last_token, couple_stage1_scores, pick_one_per_group, stage2_messages
from .dataset import STAGE2_HISTORY


@dataclass(frozen=True)
class StreamingConfig:
    """The ``streaming:`` section of the YAML (unknown keys are an error)."""

    coupling_lambda: float = 0.9  # picked stage-1 row: + lambda * mean(its stage-2 scores)
    other_bonus: float = 0.45  # every other stage-1 row (format failures included)
    pick_seed: int = 1  # the pick of each step uses rng([pick_seed, step]): resumes reproduce it

    @classmethod
    def from_config(cls, section) -> "StreamingConfig":
        values = OmegaConf.to_container(section, resolve=True) if section is not None else {}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown key(s) streaming.{unknown}; known: {[f.name for f in fields(cls)]}")
        return cls(**values)


def _object_array(items: list) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item  # element-wise: a list of message lists must stay 1-D
    return arr


def _new_uids(n: int) -> np.ndarray:
    return np.array([str(uuid.uuid4()) for _ in range(n)], dtype=object)


class StreamingGRPOTrainer(RayPPOTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.streaming = StreamingConfig.from_config(self.config.get("streaming"))
        if self.use_critic or self.config.algorithm.use_kl_in_reward:
            raise ValueError("streaming GRPO runs without a critic and without KL in the reward (docs/formats.md §5)")

    # -- stage 2 -------------------------------------------------------------------------
    def decode_responses(self, data: DataProto, rows) -> list[str]:
        """Response texts as the reward sees them (valid tokens, special tokens skipped)."""
        responses = data.batch["responses"]
        valid = data.batch["attention_mask"][:, -responses.shape[-1]:].sum(-1)
        return [self.tokenizer.decode(responses[r, : int(valid[r])], skip_special_tokens=True) for r in rows]

    def build_stage2(self, base: DataProto, gen1: DataProto, stage2_history, picked_texts: list[str]):
        """(base batch, generation batch) of stage 2, one row per prompt, new uids, stage 2."""
        msgs = [stage2_messages(h, t) for h, t in zip(stage2_history, picked_texts)]
        uids = _new_uids(len(base))
        extra = _object_array([{**e, "stage": 2} for e in base.non_tensor_batch["extra_info"]])
        base2, gen2 = copy.deepcopy(base), copy.deepcopy(gen1)
        for part in (base2, gen2):
            part.non_tensor_batch["uid"] = uids
            part.non_tensor_batch["extra_info"] = extra
        gen2.non_tensor_batch["raw_prompt"] = _object_array(msgs)
        return base2, gen2

    # -- one step ------------------------------------------------------------------------
    def _generate(self, base: DataProto, gen: DataProto, timing_raw: dict, stage: int) -> DataProto:
        n = self.config.actor_rollout_ref.rollout.n
        out = self.async_rollout_manager.generate_sequences(gen.repeat(repeat_times=n, interleave=True))
        timing_raw.update({f"stage{stage}/{k}": v for k, v in out.meta_info.pop("timing", {}).items()})
        data = base.repeat(repeat_times=n, interleave=True).union(out)
        if "response_mask" not in data.batch.keys():
            data.batch["response_mask"] = compute_response_mask(data)
        if "rm_scores" not in data.batch.keys():
            raise RuntimeError("no streamed rm_scores: set reward.custom_reward_function (alignxplore.rl.reward)")
        return data

    def rollout_two_stages(self, batch_dict: dict, metrics: dict, timing_raw: dict) -> tuple[DataProto, DataProto, dict]:
        batch = DataProto.from_single_dict(batch_dict)
        batch.meta_info["temperature"] = self.config.actor_rollout_ref.rollout.temperature
        stage2_history = batch.non_tensor_batch.pop(STAGE2_HISTORY)  # driver-side only
        batch.non_tensor_batch["uid"] = _new_uids(len(batch))
        gen1 = self._get_gen_batch(batch)
        gen1.meta_info["global_steps"] = self.global_steps
        with marked_timer("gen", timing_raw, color="red"):
            stage1 = self._generate(batch, gen1, timing_raw, 1)
            rng = np.random.default_rng([self.streaming.pick_seed, self.global_steps])
            picks = pick_one_per_group(stage1.non_tensor_batch["uid"], rng)
            picked_rows = [picks[u] for u in batch.non_tensor_batch["uid"]]
            base2, gen2 = self.build_stage2(batch, gen1, stage2_history, self.decode_responses(stage1, picked_rows))
            stage2 = self._generate(base2, gen2, timing_raw, 2)
            self.checkpoint_manager.sleep_replicas()  # only after both rounds
        parent_of = dict(zip(base2.non_tensor_batch["uid"], picked_rows))
        stage2_parent = [parent_of[u] for u in stage2.non_tensor_batch["uid"]]
        return stage1, stage2, {"picked_rows": picked_rows, "stage2_parent": stage2_parent}

    def couple_and_advantage(self, stage1: DataProto, stage2: DataProto, link: dict, metrics: dict) -> DataProto:
        """Coupled token-level rewards, GRPO per stage, one concatenated batch."""
        rewards1, _ = extract_reward(stage1)
        rewards2, _ = extract_reward(stage2)
        scores1, scores2 = rewards1.sum(-1).numpy(), rewards2.sum(-1).numpy()
        delta, coupled = couple_stage1_scores(scores1, link["picked_rows"], scores2, link["stage2_parent"],
                                              lam=self.streaming.coupling_lambda, bonus=self.streaming.other_bonus)
        resp_len = stage1.batch["responses"].shape[-1]
        stage1.batch["token_level_scores"] = add_at_last_token(rewards1, stage1.batch["attention_mask"][:, -resp_len:], delta)
        stage2.batch["token_level_scores"] = rewards2.clone()
        picked = np.zeros(len(stage1), dtype=bool)
        picked[link["picked_rows"]] = True
        stage1.non_tensor_batch["coupling_term"], stage2.non_tensor_batch["coupling_term"] = delta, np.zeros(len(stage2))
        stage1.non_tensor_batch["picked"], stage2.non_tensor_batch["picked"] = picked, np.zeros(len(stage2), dtype=bool)
        for stage, data in ((1, stage1), (2, stage2)):
            data.batch["token_level_rewards"] = data.batch["token_level_scores"]
            compute_advantage(data, adv_estimator=self.config.algorithm.adv_estimator, gamma=self.config.algorithm.gamma,
                              lam=self.config.algorithm.lam, num_repeat=self.config.actor_rollout_ref.rollout.n,
                              norm_adv_by_std_in_grpo=self.config.algorithm.get("norm_adv_by_std_in_grpo", True),
                              config=self.config.algorithm)
            metrics.update(stage_metrics(data, stage))
        metrics.update({
            "streaming/coupling/picked_term_mean": float(delta[picked].mean()),
            "streaming/coupling/bonus_term_mean": float(delta[~picked].mean()) if (~picked).any() else 0.0,
            "streaming/coupling/bonus_rows": int((~picked).sum()),
            "streaming/stage1/coupled_score_mean": float(coupled.mean()),
        })
        return DataProto.concat([stage1, stage2])

    def update_policy(self, batch: DataProto, metrics: dict, timing_raw: dict, is_last_step: bool) -> DataProto:
        if self.config.trainer.balance_batch:
            self._balance_batch(batch, metrics=metrics)
        batch.meta_info["global_token_num"] = torch.sum(batch.batch["attention_mask"], dim=-1).tolist()  # after concat
        batch.meta_info["images_seqlens"] = []
        with marked_timer("old_log_prob", timing_raw, color="blue"):
            old_log_prob, mfu = self._compute_old_log_prob(batch)
            actor = self.config.actor_rollout_ref.actor
            entropy = agg_loss(loss_mat=old_log_prob.batch.pop("entropys"), loss_mask=batch.batch["response_mask"],
                               loss_agg_mode=actor.loss_agg_mode, loss_scale_factor=actor.loss_scale_factor)
            metrics.update({"actor/entropy": entropy.detach().item(), "perf/mfu/actor_infer": mfu})
            batch = batch.union(old_log_prob)
        if self.use_reference_policy:
            with marked_timer("ref", timing_raw, color="olive"):
                batch = batch.union(self._compute_ref_log_prob(batch))
        with marked_timer("update_actor", timing_raw, color="red"):
            actor_output = self._update_actor(batch)
        save_freq = self.config.trainer.save_freq
        if save_freq > 0 and (is_last_step or self.global_steps % save_freq == 0):
            with marked_timer("save_checkpoint", timing_raw, color="green"):
                self._save_checkpoint()
        with marked_timer("update_weights", timing_raw, color="red"):
            self.checkpoint_manager.update_weights(self.global_steps)
        metrics.update(reduce_metrics(actor_output.meta_info["metrics"]))
        return batch

    # -- the loop ------------------------------------------------------------------------
    def fit(self):
        from verl.utils.tracking import Tracking

        logger = Tracking(project_name=self.config.trainer.project_name, experiment_name=self.config.trainer.experiment_name,
                          default_backend=self.config.trainer.logger, config=OmegaConf.to_container(self.config, resolve=True))
        self.global_steps = 0
        self._load_checkpoint()
        self.checkpoint_manager.update_weights(self.global_steps)
        current_epoch = self.global_steps // len(self.train_dataloader)
        SkipManager.init(self.config)
        if self.config.trainer.get("val_before_train", True):
            raise ValueError("streaming GRPO trains without validation (docs/formats.md §5): set trainer.val_before_train=false")
        progress = tqdm(total=self.total_training_steps, initial=self.global_steps, desc="Training Progress")
        self.global_steps += 1
        SkipManager.set_step(self.global_steps)
        for epoch in range(current_epoch, self.config.trainer.total_epochs):
            for batch_dict in self.train_dataloader:
                metrics, timing_raw = {}, {}
                is_last_step = self.global_steps >= self.total_training_steps
                with marked_timer("step", timing_raw):
                    stage1, stage2, link = self.rollout_two_stages(batch_dict, metrics, timing_raw)
                    with marked_timer("adv", timing_raw, color="brown"):
                        batch = self.couple_and_advantage(stage1, stage2, link, metrics)
                    batch = self.update_policy(batch, metrics, timing_raw, is_last_step)
                metrics.update({"training/global_step": self.global_steps, "training/epoch": epoch})
                metrics.update(compute_data_metrics(batch=batch, use_critic=False))
                metrics.update(compute_timing_metrics(batch=batch, timing_raw=timing_raw))
                metrics.update(compute_throughout_metrics(batch=batch, timing_raw=timing_raw,
                                                          n_gpus=self.resource_pool_manager.get_n_gpus()))
                logger.log(data=metrics, step=self.global_steps)
                progress.update(1)
                self.global_steps += 1
                SkipManager.set_step(self.global_steps)
                if is_last_step:
                    progress.close()
                    self._shutdown_dump_executor()
                    return
        self._shutdown_dump_executor()


def stage_metrics(data: DataProto, stage: int) -> dict:
    """Per-stage reward, format, judge and length figures (raw judge scores, before coupling)."""
    nt = data.non_tensor_batch
    p = f"streaming/stage{stage}"
    lengths = data.batch["response_mask"].sum(-1).float()
    return {
        f"{p}/score_mean": float(np.mean(nt["score"].astype(float))),
        f"{p}/format_fail_ratio": float(1.0 - np.mean(nt["format_ok"].astype(float))),
        f"{p}/judge_failures": int((~nt["judge_ok"].astype(bool)).sum()),
        f"{p}/response_length_mean": float(lengths.mean()),
        f"{p}/responses": len(data),
    }
