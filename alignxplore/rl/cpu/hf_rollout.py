"""verl-side glue of the ``hf`` rollout: a ``RolloutReplica`` and a ``BaseRollout`` adapter.

- :class:`HFReplica` (registered as ``RolloutReplicaRegistry["hf"]``) is built by verl's
  ``LLMServerManager`` in the TaskRunner; ``launch_servers`` starts one named
  :class:`.hf_server.HFRolloutServer` Ray actor per replica. The agent loop then calls the
  actor's ``generate`` through the replica's ``server_handle``.
- :class:`HFServerAdapter` (registered as ``_ROLLOUT_REGISTRY[("hf", "async")]``) lives inside
  each FSDP ``ActorRolloutRefWorker``; verl's ``update_weights`` (checkpoint backend ``naive``,
  the hybrid default) hands it the actor's full tensors, which it sends to its replica's server.

Only the hybrid layout (rollout colocated with the FSDP workers, verl's default) and a rollout
world size of 1 (tensor/data/pipeline parallel 1) are supported: one server per trainer rank.
"""
from __future__ import annotations

import os
from typing import Any, Generator, Optional

import ray
import torch

from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica

from .hf_server import HFRolloutServer

SERVER_NAME_PREFIX = "alignxplore_hf_rollout"


def server_actor_name(replica_rank: int, job_id: Optional[str] = None) -> str:
    """Ray actor name of a replica's server; the job id keeps concurrent runs on one Ray apart."""
    job_id = job_id if job_id is not None else ray.get_runtime_context().get_job_id()
    return f"{SERVER_NAME_PREFIX}_{job_id}_{replica_rank}"


def _rollout_world_size(config) -> int:
    return (
        int(config.tensor_model_parallel_size)
        * int(config.data_parallel_size)
        * int(config.pipeline_model_parallel_size)
    )


class HFReplica(RolloutReplica):
    """One HF-transformers rollout server per replica (CPU, tests only)."""

    async def launch_servers(self):
        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(
                f"the hf rollout supports the hybrid layout only (got {self.rollout_mode}); "
                "it exists to run verl's trainer on CPU in tests"
            )
        if self.world_size != 1:
            raise NotImplementedError(
                f"the hf rollout needs tensor/data/pipeline parallel size 1 (world size {self.world_size})"
            )
        name = server_actor_name(self.replica_rank)
        server_cls = ray.remote(HFRolloutServer)
        # num_cpus=0: the server only runs while the trainer workers wait for rollouts, and a
        # CPU reservation would starve the small logical CPU pool of a test cluster.
        server = server_cls.options(name=name, num_cpus=0, max_concurrency=self.max_concurrency).remote(
            config=self.config,
            model_config=self.model_config,
            replica_rank=self.replica_rank,
            seed=int(getattr(self.config, "seed", 0) or 0),
        )
        # Fail here, not at the first request, if the model does not load.
        await server.wake_up.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf-rollout-{self.replica_rank}"  # a routing key; there is no HTTP server


class HFServerAdapter(BaseRollout):
    """Adapter in each FSDP worker: forwards the actor's weights to the replica's server."""

    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **_kwargs: Any):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        world = _rollout_world_size(self.config)
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % world
        self._has_server = self.rollout_rank == 0
        self.server_handle = None
        self.sleep_level = 2  # verl reads it for sglang only; weights stay resident on CPU

    @property
    def is_leader_rank(self) -> bool:
        return self._has_server

    def _server(self):
        if self.server_handle is None:
            self.server_handle = ray.get_actor(server_actor_name(self.replica_rank))
        return self.server_handle

    async def resume(self, tags: list[str]):
        return None  # nothing is released on CPU

    async def release(self):
        return None

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None],
        wire_format: str = "named_tensors",
        peft_config: Optional[dict] = None,
        global_steps: Optional[int] = None,
        **_kwargs: Any,
    ):
        if wire_format != "named_tensors":
            raise NotImplementedError(f"hf rollout: wire format {wire_format!r} (only named_tensors)")
        if peft_config is not None:
            raise NotImplementedError("hf rollout: LoRA adapter sync (merge LoRA or train full weights)")
        named: dict[str, torch.Tensor] = {}
        # Consume the whole generator on every rank: producing full tensors from FSDP shards is
        # a collective, so a rank that stopped early would hang the others.
        for name, tensor in weights:
            if self._has_server:
                if hasattr(tensor, "full_tensor"):
                    tensor = tensor.full_tensor()
                named[name] = tensor.detach().to("cpu", copy=True).contiguous()
        if not self._has_server:
            return None
        return await self._server().update_weights.remote(named, global_steps)
