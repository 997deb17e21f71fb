"""StreamingGRPOTrainer's step on CPU: verl's real RayPPOTrainer built on CPU, with the GPU-only
pieces replaced at their boundary (docs/verl-on-cpu.md): the rollout (vLLM servers behind
verl's AgentLoopManager) by :class:`FakeRollout`, and the actor workers' log-prob / update /
checkpoint calls by recorders. Everything else is real: the dataset, ``DataProto`` handling,
``union``/``concat``, the reward (``compute_score`` over HTTP to the fake judge server), the
coupling, verl's ``compute_advantage``, ``_balance_batch`` and metrics.
"""
from __future__ import annotations

import asyncio
import statistics
from unittest import mock

import numpy as np
import pytest
import torch
from verl import DataProto

from alignxplore.prompts import extract_summary
from alignxplore.rl import reward
from alignxplore.rl.coupling import stage2_messages
from alignxplore.testing.fake_openai import FakeOpenAIServer

B, N, RESP = 2, 4, 24


def response_text(stage: int, row: int) -> str:
    if stage == 1 and row % 4 == 1:
        return f"no think tags, row {row}"  # fails the format gate
    return f"<think>\nr{row}\n</think>\n\nstage{stage} summary of row {row}"


class FakeRollout:
    """Stands in for AgentLoopManager.generate_sequences: tokenises ``raw_prompt`` with the chat
    template, answers canned text, awaits the real reward per response, and pads/masks exactly
    as the agent loop does (prompts left-padded, responses right-padded, ``rm_scores`` on the
    last valid token, reward extras as non-tensor columns)."""

    def __init__(self, tokenizer, prompt_len, judge_kwargs, log):
        self.tok, self.prompt_len, self.judge_kwargs, self.log = tokenizer, prompt_len, judge_kwargs, log
        self.inputs = []

    def generate_sequences(self, batch: DataProto) -> DataProto:
        stage = int(batch.non_tensor_batch["extra_info"][0]["stage"])
        self.log.append(f"generate{stage}")
        self.inputs.append(batch)
        pad = self.tok.pad_token_id
        rows, extras, scores = [], [], []
        for i in range(len(batch)):
            nt = {k: v[i] for k, v in batch.non_tensor_batch.items()}
            p = self.tok.apply_chat_template(list(nt["raw_prompt"]), add_generation_prompt=True, tokenize=True)
            p = list(p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p)[-self.prompt_len:]
            r = self.tok.encode(response_text(stage, i), add_special_tokens=False)[: RESP - 1] + [self.tok.convert_tokens_to_ids("<|im_end|>")]
            out = asyncio.run(reward.compute_score(data_source=nt["data_source"], ground_truth=nt["reward_model"]["ground_truth"],
                                                   solution_str=self.tok.decode(r, skip_special_tokens=True),
                                                   extra_info=dict(nt["extra_info"]), **self.judge_kwargs))
            rows.append((p, r)), extras.append(out), scores.append(out["score"])
        n = len(rows)
        prompts = torch.full((n, self.prompt_len), pad)
        responses = torch.full((n, RESP), pad)
        pmask, rmask = torch.zeros(n, self.prompt_len, dtype=torch.long), torch.zeros(n, RESP, dtype=torch.long)
        for i, (p, r) in enumerate(rows):
            prompts[i, self.prompt_len - len(p):], pmask[i, self.prompt_len - len(p):] = torch.tensor(p), 1
            responses[i, : len(r)], rmask[i, : len(r)] = torch.tensor(r), 1
        attention = torch.cat([pmask, rmask], 1)
        rm = torch.zeros(n, RESP)
        rm[torch.arange(n), rmask.sum(1) - 1] = torch.tensor(scores)
        keys = list(extras[0])
        return DataProto.from_dict(
            tensors={"prompts": prompts, "responses": responses, "response_mask": rmask, "input_ids": torch.cat([prompts, responses], 1),
                     "attention_mask": attention, "position_ids": (attention.cumsum(1) - 1).clamp(min=0), "rm_scores": rm},
            non_tensors={"__num_turns__": np.full(n, 2, dtype=np.int32), "raw_prompt": batch.non_tensor_batch["raw_prompt"],
                         **{k: np.array([e[k] for e in extras]) for k in keys}},
            meta_info={"timing": {"agent_loop/generate_sequences/mean": 0.01}, "reward_extra_keys": keys},
        )


@pytest.fixture(scope="module")
def judge_server():
    with FakeOpenAIServer() as s:
        yield s


@pytest.fixture(scope="module")
def trainer_run(fixtures_dir, tmp_path_factory, tokenizer, judge_server, tiny_model_dir):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from verl.trainer.ppo.ray_trainer import Role
    from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
    from verl.utils.dataset.rl_dataset import collate_fn

    from alignxplore.rl.data import convert
    from alignxplore.rl.main import CONFIG_DIR, CONFIG_NAME
    from alignxplore.rl.trainer import StreamingGRPOTrainer

    tmp_path = tmp_path_factory.mktemp("trainer")
    parquet = tmp_path / "train.parquet"
    convert(fixtures_dir / "rl.jsonl", parquet, progress=False)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=[
            f"data.train_files={parquet}", f"data.train_batch_size={B}", "data.max_prompt_length=1024", f"data.max_response_length={RESP}",
            f"actor_rollout_ref.rollout.n={N}", "actor_rollout_ref.actor.ppo_mini_batch_size=2", f"actor_rollout_ref.model.path={tiny_model_dir}",
            "trainer.total_training_steps=2", "trainer.save_freq=1", f"trainer.default_local_dir={tmp_path / 'ckpt'}",
        ])
    OmegaConf.resolve(cfg)
    ds = create_rl_dataset(cfg.data.train_files, cfg.data, tokenizer, None)
    pool = mock.Mock()
    pool.get_n_gpus.return_value = 1
    trainer = StreamingGRPOTrainer(config=cfg, tokenizer=tokenizer, role_worker_mapping={Role.ActorRollout: object},
                                   resource_pool_manager=pool, train_dataset=ds, val_dataset=ds, collate_fn=collate_fn,
                                   train_sampler=create_rl_sampler(cfg.data, ds))
    log, updates, logged = [], [], []
    judge = {"base_url": judge_server.base_url}
    trainer.async_rollout_manager = FakeRollout(tokenizer, 1024, judge, log)
    trainer.checkpoint_manager = mock.Mock()
    trainer.checkpoint_manager.sleep_replicas.side_effect = lambda: log.append("sleep")
    trainer.checkpoint_manager.update_weights.side_effect = lambda step: log.append(f"update_weights{step}")
    trainer.actor_rollout_wg = mock.Mock()
    trainer._get_dp_size = lambda *a, **k: 2

    def old_log_prob(batch):
        log.append("old_log_prob")
        shape = batch.batch["responses"].shape
        return DataProto.from_dict(tensors={"old_log_probs": torch.zeros(shape), "entropys": torch.ones(shape)}), 0.0

    def update_actor(batch):
        log.append("update_actor")
        updates.append(batch)
        return DataProto.from_single_dict({}, meta_info={"metrics": {"actor/pg_loss": [0.1]}})

    trainer._compute_old_log_prob, trainer._update_actor = old_log_prob, update_actor
    trainer._save_checkpoint = lambda: log.append("save")
    tracking = mock.Mock()
    tracking.return_value.log.side_effect = lambda data, step: logged.append((step, data))
    reward._JUDGES.clear()
    with mock.patch("verl.utils.tracking.Tracking", tracking):
        trainer.fit()
    return {"trainer": trainer, "log": log, "updates": updates, "logged": logged, "ds": ds}


def test_two_generation_rounds_before_sleep_then_one_update_per_step(trainer_run):
    assert trainer_run["log"] == ["update_weights0",
                                  "generate1", "generate2", "sleep", "old_log_prob", "update_actor", "save", "update_weights1",
                                  "generate1", "generate2", "sleep", "old_log_prob", "update_actor", "save", "update_weights2"]


def test_stage2_prompt_carries_the_picked_stage1_summary(trainer_run):
    rollout, ds = trainer_run["trainer"].async_rollout_manager, trainer_run["ds"]
    stage1_in, stage2_in = rollout.inputs[0], rollout.inputs[1]
    assert len(stage1_in) == len(stage2_in) == B * N
    by_index = {ds[i]["extra_info"]["index"]: ds[i] for i in range(len(ds))}
    update = trainer_run["updates"][0]
    picked = update.non_tensor_batch["picked"]
    stage = update.non_tensor_batch["stage"]
    assert picked.sum() == B and not picked[stage == 2].any()
    for p in range(B):
        rows2 = range(p * N, (p + 1) * N)
        msgs = stage2_in.non_tensor_batch["raw_prompt"][p * N]
        assert all(list(stage2_in.non_tensor_batch["raw_prompt"][r]) == list(msgs) for r in rows2)
        index = stage2_in.non_tensor_batch["extra_info"][p * N]["index"]
        summaries = {extract_summary(response_text(1, r)) for r in range(p * N, (p + 1) * N)}
        past = msgs[1]["content"].split("=====Past Preference Summary=====\n\n")[1].split("\n\n=====Interaction History=====")[0]
        assert past in summaries  # one of this prompt's own stage-1 responses
        picked_row = int(past.rsplit(" ", 1)[1]) if past.startswith("stage1") else None
        expected = stage2_messages(by_index[index]["stage2_history"],
                                   response_text(1, picked_row) if picked_row is not None else past)
        assert list(msgs) == expected
        assert stage1_in.non_tensor_batch["uid"][p * N] != stage2_in.non_tensor_batch["uid"][p * N]


def test_update_batch_coupled_rewards_and_per_stage_group_advantages(trainer_run):
    lam, bonus = 0.9, 0.45
    for batch in trainer_run["updates"]:
        nt, bt = batch.non_tensor_batch, batch.batch
        assert len(batch) == 2 * B * N and (nt["stage"] == 1).sum() == B * N
        assert batch.meta_info["global_token_num"] == bt["attention_mask"].sum(-1).tolist()
        raw = nt["score"].astype(float)
        total = bt["token_level_rewards"].sum(-1).numpy()
        uids = nt["uid"]
        groups = {u: np.flatnonzero(uids == u) for u in set(uids)}
        assert len(groups) == 2 * B and all(len(g) == N for g in groups.values())
        for rows in groups.values():
            if nt["stage"][rows[0]] == 2:
                np.testing.assert_allclose(total[rows], raw[rows], atol=1e-6)
                continue
            (pick,) = rows[nt["picked"][rows]]
            parent_extra = nt["extra_info"][pick]
            children = [r for r in np.flatnonzero(nt["stage"] == 2) if nt["extra_info"][r]["index"] == parent_extra["index"]]
            assert len(children) == N
            expected = raw[rows] + bonus
            expected[list(rows).index(pick)] = raw[pick] + lam * raw[children].mean()
            np.testing.assert_allclose(total[rows], expected, atol=1e-6)
            # the format failures (rows 1 and 5 of stage 1) still got their bonus when not picked
            mu, sd = statistics.mean(total[rows]), statistics.stdev(total[rows])
            for r in rows:
                adv = bt["advantages"][r][bt["response_mask"][r].bool()]
                torch.testing.assert_close(adv, torch.full_like(adv, (total[r] - mu) / (sd + 1e-6)), atol=1e-5, rtol=0)
        assert (~nt["format_ok"][nt["stage"] == 1]).sum() == 2


def test_metrics_logged_per_stage_with_coupling_terms(trainer_run):
    steps = [s for s, _ in trainer_run["logged"]]
    assert steps == [1, 2]
    m = trainer_run["logged"][0][1]
    for key in ("streaming/stage1/score_mean", "streaming/stage2/score_mean", "streaming/stage1/format_fail_ratio",
                "streaming/stage2/format_fail_ratio", "streaming/stage1/judge_failures", "streaming/stage2/judge_failures",
                "streaming/stage1/response_length_mean", "streaming/stage2/response_length_mean",
                "streaming/coupling/picked_term_mean", "streaming/coupling/bonus_term_mean", "streaming/stage1/coupled_score_mean",
                "critic/score/mean", "actor/pg_loss", "actor/entropy", "timing_s/gen"):
        assert key in m, key
    assert m["streaming/stage1/format_fail_ratio"] == pytest.approx(2 / (B * N))
    assert m["streaming/stage2/format_fail_ratio"] == 0.0 and m["streaming/stage1/judge_failures"] == 0
    assert m["streaming/coupling/bonus_term_mean"] == pytest.approx(0.45)
    assert m["streaming/coupling/bonus_rows"] == B * (N - 1)
