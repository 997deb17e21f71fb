"""Entry module verl imports through ``VERL_USE_EXTERNAL_MODULES=alignxplore.rl.cpu.plugin``.

``verl/__init__.py`` imports every module named in that variable, in every process that imports
verl (driver, TaskRunner, FSDP workers, agent-loop and reward workers, rollout servers), after
its own ``DataProto`` import. Importing this module:

1. registers the ``cpu`` platform (:mod:`.platform`) — selected only by ``VERL_PLATFORM=cpu``;
2. registers the ``hf`` rollout: ``RolloutReplicaRegistry`` gets ``"hf"`` (lazy loader) and
   ``_ROLLOUT_REGISTRY`` gets ``("hf", "async")`` -> :class:`.hf_rollout.HFServerAdapter`;
3. only when ``VERL_PLATFORM=cpu``: adds the missing ``torch.cpu`` functions verl calls, and
   makes verl's Ray process group plain ``gloo`` (:func:`_plain_gloo_process_group`).

Nothing here edits or copies verl; everything goes through its registries, except (3), which
wraps one verl function in this process only. Everything is pinned to ``verl==0.9.1``:
:func:`check_verl_version` fails loudly on any other version.
"""
from __future__ import annotations

import functools
import logging
import os

import verl.utils.distributed as verl_distributed
from verl.workers.rollout import base as rollout_base
from verl.workers.rollout.replica import RolloutReplicaRegistry

from .platform import CPU_PLATFORM, PlatformCPU, install_torch_cpu_shims  # noqa: F401  (registers)

logger = logging.getLogger(__name__)

SUPPORTED_VERL = "0.9.1"
HF_ROLLOUT = "hf"
HF_ADAPTER_FQN = "alignxplore.rl.cpu.hf_rollout.HFServerAdapter"


def check_verl_version() -> str:
    from importlib.metadata import version

    found = version("verl")
    if found != SUPPORTED_VERL:
        raise RuntimeError(
            f"alignxplore.rl.cpu supports verl=={SUPPORTED_VERL} only (found {found}): it relies on "
            "verl's platform/rollout registries, the TokenOutput schema and the rollout server methods"
        )
    return found


def _load_hf_replica():
    from .hf_rollout import HFReplica

    return HFReplica


def _plain_gloo_process_group(original):
    """verl 0.9.1 builds the backend ``cpu:gloo,{device}:{ccl}``, which on the cpu platform reads
    ``cpu:gloo,cpu:gloo`` and torch rejects ("Duplicate device type cpu"). Same call, plain gloo."""

    @functools.wraps(original)
    def initialize(timeout_second=None, backend=None):
        if backend is None or backend.replace(" ", "") == "cpu:gloo,cpu:gloo":
            backend = "gloo"
        return original(timeout_second=timeout_second, backend=backend)

    initialize.__alignxplore_cpu__ = True
    return initialize


def is_cpu_platform_selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == CPU_PLATFORM


def register() -> None:
    """Idempotent: safe to run in every process and more than once."""
    check_verl_version()
    RolloutReplicaRegistry.register(HF_ROLLOUT, _load_hf_replica)
    rollout_base._ROLLOUT_REGISTRY[(HF_ROLLOUT, "async")] = HF_ADAPTER_FQN
    if not is_cpu_platform_selected():
        return
    install_torch_cpu_shims()
    current = verl_distributed.initialize_global_process_group_ray
    if not getattr(current, "__alignxplore_cpu__", False):
        # Patched before verl.workers.engine_workers is imported (it copies the name at import),
        # because verl imports this module from its own __init__.
        verl_distributed.initialize_global_process_group_ray = _plain_gloo_process_group(current)


register()
