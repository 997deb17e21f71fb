"""verl 0.9.1 on CPU, for tests and the CPU demo only — never a training target.

verl 0.9.1 cannot train on CPU as shipped (no CPU platform, vLLM/SGLang-only rollout). This
package makes it, loaded only through verl's own hooks: ``VERL_USE_EXTERNAL_MODULES`` names
:mod:`alignxplore.rl.cpu.plugin`, which registers a ``cpu`` platform (``VERL_PLATFORM=cpu``)
and an ``hf`` rollout (HF transformers sampling in a Ray actor).

The public API (importing it loads neither verl nor torch):

- :func:`cpu_env` — environment variables to export for the verl processes;
- :func:`cpu_overrides` — the Hydra overrides (each one's reason is in its source);
- :func:`run_verl_cpu` — run a verl entry as a subprocess with both, bounded in time,
  killing its Ray processes afterwards.

    from alignxplore.rl.cpu import run_verl_cpu
    run = run_verl_cpu(["-m", "verl.trainer.main_ppo", "trainer.use_v1=false", ...], run_dir=tmp)
"""
from .runner import CpuRun, kill_ray_processes, run_verl_cpu
from .settings import PLUGIN_MODULE, cpu_env, cpu_overrides, ray_temp_dir

__all__ = ["CpuRun", "PLUGIN_MODULE", "cpu_env", "cpu_overrides", "kill_ray_processes", "ray_temp_dir", "run_verl_cpu"]
