"""Environment and Hydra overrides that make verl 0.9.1 train on CPU (tests and demo only).

Usage (the stock entry; any verl entry built on ``run_ppo`` works the same way)::

    env = {**os.environ, **cpu_env()}
    subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *my_overrides,
                    *cpu_overrides(n_procs=1, tmp_dir=run_dir)], env=env)

Importing this module does not import verl or torch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional

PLUGIN_MODULE = "alignxplore.rl.cpu.plugin"
REPO_ROOT = Path(__file__).resolve().parents[3]

# AF_UNIX socket paths are limited to 107 bytes; Ray puts its sockets at
# <temp_dir>/session_<date>_<pid>/sockets/plasma_store (about 60 more bytes).
_MAX_RAY_TEMP_DIR = 45


def cpu_env(extra_modules: Iterable[str] = (), base: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """Variables to export for a verl run on CPU (merge into the subprocess environment).

    Ray workers inherit them from the driver, so every verl process imports the plugin.

    - ``VERL_USE_EXTERNAL_MODULES``: the plugin first, then ``extra_modules`` and whatever the
      ``base`` environment already listed (a trainer's own reward manager or agent loop).
    - ``VERL_PLATFORM=cpu``: select the plugin's platform (verl would fall back to nvidia).
    - ``VERL_ENGINE_DEVICE=cuda``: verl registers its FSDP engine for cuda/npu only; this
      variable is read solely by ``EngineRegistry.get_engine_cls`` — tensors stay on "cpu".
    - ``PYTHONPATH``: this checkout first, so Ray workers import the same ``alignxplore``.
    - ``HF_HUB_OFFLINE``/``TOKENIZERS_PARALLELISM``: no hub, no tokenizer thread pools on 2 cores.
    - ``RAY_DEDUP_LOGS=0``: show each worker's errors instead of "repeated Nx".
    (``CUDA_VISIBLE_DEVICES`` is left alone: Ray refuses logical GPUs when it is empty.)
    """
    base = dict(os.environ if base is None else base)
    modules = [PLUGIN_MODULE, *extra_modules]
    for existing in base.get("VERL_USE_EXTERNAL_MODULES", "").split(","):
        if existing.strip():
            modules.append(existing.strip())
    ordered = list(dict.fromkeys(modules))
    python_path = [str(REPO_ROOT)] + [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "VERL_USE_EXTERNAL_MODULES": ",".join(ordered),
        "VERL_PLATFORM": "cpu",
        "VERL_ENGINE_DEVICE": "cuda",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(python_path)),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAY_DEDUP_LOGS": "0",
    }


def ray_temp_dir(tmp_dir: os.PathLike | str) -> str:
    """Ray's temp dir for a run folder; falls back to a short /tmp path when the run folder is too
    deep for Ray's unix sockets (the fallback is unique per run folder and still removable)."""
    path = Path(tmp_dir).resolve() / "ray"
    if len(str(path)) <= _MAX_RAY_TEMP_DIR:
        return str(path)
    import hashlib

    return f"/tmp/ray-{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"


def cpu_overrides(n_procs: int = 1, tmp_dir: os.PathLike | str | None = None, logical_cpus: int = 16) -> list[str]:
    """Hydra overrides for ``verl.trainer.main_ppo`` (or a main on ``run_ppo``) on CPU.

    ``n_procs`` FSDP ranks (one ``hf`` rollout server each); ``tmp_dir`` holds Ray's session
    files (sockets, logs) so a test can delete them and nothing leaks into /tmp/ray.
    Put these AFTER your own overrides: Hydra keeps the last value of a key.
    """
    if n_procs < 1:
        raise ValueError(f"n_procs must be >= 1, got {n_procs}")
    fp32 = "{param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}"
    overrides = [
        # The cpu platform reports device "cpu"; verl's auto_set_device leaves it alone then.
        "trainer.device=cpu",
        # Resource pools ask Ray for "GPU" (hard-coded use_gpu=True): declare n logical GPUs,
        # one per FSDP rank; trainer.n_gpus_per_node sizes the pool.
        f"trainer.n_gpus_per_node={n_procs}",
        "trainer.nnodes=1",
        f"+ray_kwargs.ray_init.num_gpus={n_procs}",
        # Logical CPUs, not cores: with num_cpus=2 Ray hangs silently because the TaskRunner,
        # agent-loop, reward and TransferQueue actors each reserve one.
        f"ray_kwargs.ray_init.num_cpus={logical_cpus}",
        "+ray_kwargs.ray_init.include_dashboard=False",
        # TransferQueue (V1 trainer) starts 8 storage actors by default; 1 is plenty here.
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        # Rollout through the plugin's HF server; TP/DP/PP 1 = one server per FSDP rank.
        "actor_rollout_ref.rollout.name=hf",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.data_parallel_size=1",
        "actor_rollout_ref.rollout.pipeline_model_parallel_size=1",
        # FSDP1 needs an accelerator; FSDP2 runs over gloo on CPU.
        "actor_rollout_ref.actor.strategy=fsdp2",
        "critic.strategy=fsdp2",
        # No FlashAttention on CPU: SDPA, and no remove-padding (it needs flash-attn's varlen).
        "actor_rollout_ref.model.use_remove_padding=False",
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        # fp32 compute (verl's default is bf16 autocast): CPU bf16 is slow, and the rollout
        # (fp32) and the actor then agree on log-probs to ~1e-6, which the tests check.
        f"+actor_rollout_ref.actor.fsdp_config.mixed_precision={fp32}",
        f"+actor_rollout_ref.ref.fsdp_config.mixed_precision={fp32}",
        # torch.compile would JIT-compile C++ on 2 cores for minutes; checkpointing only costs time.
        "actor_rollout_ref.actor.use_torch_compile=False",
        "actor_rollout_ref.actor.fsdp_config.use_torch_compile=False",
        "actor_rollout_ref.ref.fsdp_config.use_torch_compile=False",
        "actor_rollout_ref.model.enable_gradient_checkpointing=False",
        # One agent-loop worker and one reward worker: each is a Ray actor (a Python process).
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        # Dataloader worker processes would fork the TaskRunner (torch, Ray) for nothing.
        "data.dataloader_num_workers=0",
        # wandb is the default second logger and needs the network.
        "trainer.logger=[console]",
    ]
    if tmp_dir is not None:
        overrides.append(f"+ray_kwargs.ray_init._temp_dir={ray_temp_dir(tmp_dir)}")
    return overrides
