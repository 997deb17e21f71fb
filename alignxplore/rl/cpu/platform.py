"""A ``cpu`` platform for verl 0.9.1's platform registry (tests and the CPU demo only).

verl ships nvidia/huawei/amd platforms; on a CPU-only host ``get_platform()`` falls back to
``nvidia`` and every ``.to("cuda")`` fails. Registered as ``cpu`` and selected with
``VERL_PLATFORM=cpu`` (see :func:`alignxplore.rl.cpu.cpu_env`), this class makes verl place
tensors on ``"cpu"``, talk ``gloo`` and still ask Ray for logical ``GPU`` resources (verl's
resource pools hard-code ``use_gpu=True``; the CPU overrides declare ``num_gpus=N``).

``device_module`` is ``torch.cpu`` itself, not a wrapper: verl compares it by identity
(``get_torch_device() == torch.cpu``) to skip memory read-outs that do not exist on CPU
(``verl/utils/flops_counter.py``, ``verl/utils/profiler/performance.py``). The calls verl
makes unguarded (``empty_cache``, ``memory_allocated``…) are added as no-ops by
:func:`install_torch_cpu_shims`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Optional

import torch

from verl.plugin.platform import PlatformBase, PlatformRegistry

CPU_PLATFORM = "cpu"


def _zero(*_args, **_kwargs) -> int:
    return 0


def _noop(*_args, **_kwargs) -> None:
    return None


# Attributes verl calls on ``get_torch_device()`` without a CPU guard (found by grepping the
# 0.9.1 wheel for ``get_torch_device().<name>``); torch 2.13's ``torch.cpu`` lacks them.
# Memory read-outs report 0 (verl itself reports "0.00" for CPU in performance.py).
_TORCH_CPU_SHIMS: dict[str, Any] = {
    "empty_cache": _noop,
    "ipc_collect": _noop,
    "memory_allocated": _zero,
    "memory_reserved": _zero,
    "max_memory_allocated": _zero,
    "max_memory_reserved": _zero,
    "reset_peak_memory_stats": _noop,
    "set_per_process_memory_fraction": _noop,
    "mem_get_info": lambda *_a, **_k: (0, 0),
    "get_device_name": lambda *_a, **_k: "CPU",
    "get_rng_state": lambda *_a, **_k: torch.get_rng_state(),
    "set_rng_state": lambda state, *_a, **_k: torch.set_rng_state(state),
    "manual_seed": lambda seed: torch.manual_seed(seed),
    "manual_seed_all": lambda seed: torch.manual_seed(seed),
}


def install_torch_cpu_shims() -> list[str]:
    """Add the missing ``torch.cpu`` functions verl calls; never replace an existing one.

    Returns the names added (empty when torch already has them all)."""
    added = []
    for name, fn in _TORCH_CPU_SHIMS.items():
        if not hasattr(torch.cpu, name):
            setattr(torch.cpu, name, fn)
            added.append(name)
    return added


@PlatformRegistry.register(platform=CPU_PLATFORM)
class PlatformCPU(PlatformBase):
    """verl platform whose device is the host CPU; collectives over gloo."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        install_torch_cpu_shims()
        return torch.cpu

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only an explicit VERL_PLATFORM=cpu selects it, so a GPU node
        # that happens to import this plugin keeps its real accelerator.
        return os.environ.get("VERL_PLATFORM", "").strip().lower() == CPU_PLATFORM

    def current_device(self):  # verl uses the result as a device: the string "cpu" is right
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets CUDA_VISIBLE_DEVICES for actors holding logical GPUs; harmless on CPU.
        return "CUDA_VISIBLE_DEVICES"

    def ray_resource_name(self) -> str:
        # verl's resource pools ask Ray for "GPU"; the CPU overrides declare logical GPUs.
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def cudart(self) -> Any:
        return None
