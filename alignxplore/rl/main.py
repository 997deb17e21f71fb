"""Entry point of streaming GRPO: verl's ``run_ppo`` with our task runner (the DAPO recipe's route).

    python -m alignxplore.rl.main data.train_files=data/rl/train.parquet \\
        actor_rollout_ref.model.path=checkpoints/sft/final reward.custom_reward_function.reward_kwargs.base_url=http://judge:8000/v1

``bash verl/run_streaming_8p.sh`` runs exactly this with the knobs as env vars. The config is
``verl/config/streaming_grpo.yaml`` (``defaults: [ppo_trainer, _self_]``, searched through
``pkg://verl.trainer.config``); every further argument is a Hydra override, and a misspelt key
fails at start-up (Hydra's struct check; our ``streaming:`` section checks its own keys).

Before Ray starts, :func:`.preflight.preflight` checks the paths (and makes them absolute),
that the data holds a full batch, and that every judge URL answers a scoring request; each
failure is one line and exit status 2. The task runner (:mod:`.task_runner`) repeats
``main_ppo_v0.TaskRunner.run`` with :class:`~.trainer.StreamingGRPOTrainer` in place of
``RayPPOTrainer``; nothing of verl is copied beyond those few calls. Ray actors import
``alignxplore``: install the repository (``pip install -e .``) on every node.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "verl" / "config")
CONFIG_NAME = "streaming_grpo"


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


def run(config) -> None:
    from .preflight import preflight

    preflight(config)  # before verl's trainer stack is even imported
    check_config(config)

    import ray
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from .task_runner import StreamingTaskRunner

    auto_set_device(config)
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


def verl_config_searchpath() -> str:
    """``hydra.searchpath`` naming verl's config folder by path (found without importing verl).

    The YAML's ``pkg://verl.trainer.config`` imports the ``verl`` package to find it, i.e. torch
    and Ray (10-20 s on a busy machine); by path, the start-up checks answer in seconds.
    """
    import importlib.util

    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: verl is not installed (pip install -r requirements.txt)")
    return f"hydra.searchpath=[file://{Path(spec.submodule_search_locations[0]) / 'trainer' / 'config'}]"


if __name__ == "__main__":
    sys.argv.insert(1, verl_config_searchpath())
    main()
