"""A simulated cluster on this machine: streaming GRPO on a two-node Ray cluster (Ray's own
``ray.cluster_utils.Cluster``: a head and a worker node, each a raylet with its own resources,
one logical GPU each, sharing this machine's address), started with ``verl/run_streaming_8p.sh``'s arguments and
``NNODES=2 GPUS_PER_NODE=1``, plus the CPU plug-in's overrides (``alignxplore.rl.cpu``).

The judge (the fake OpenAI server over real HTTP) listens only on a non-loopback address of
this machine, given as ``JUDGE_URL`` — as on a cluster, where the judge has its own host. verl
places one reward worker on each node (``reward.num_workers=2``, round-robin over nodes); the
test checks from the run's log that reward workers on BOTH Ray nodes got answers from the
judge (each logs its first answer with its Ray node id), and that one training step completes
with FSDP over the two nodes.

The nodes listen on this machine's non-loopback address, not 127.0.0.1: Ray 2.60 rewrites a
loopback cluster address to the machine's own IP before it connects
(``ray._private.services.resolve_ip_for_localhost``), so nodes bound to 127.0.0.1 are never
reached.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from test_rl_e2e_cpu import launcher_args, step_metrics

REPO = Path(__file__).resolve().parents[1]


def non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (a UDP 'connect' sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        ip = s.getsockname()[0]
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_node_cluster_reward_workers_on_both_nodes_reach_the_judge(tmp_path, tiny_model_dir, fixtures_dir, monkeypatch):
    import re

    from ray.cluster_utils import Cluster

    from alignxplore.rl.cpu import cpu_env, cpu_overrides, kill_ray_processes, run_verl_cpu
    from alignxplore.testing.fake_openai import FakeOpenAIServer

    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address for the judge")
    data = tmp_path / "train.parquet"
    subprocess.run(["bash", str(REPO / "verl" / "preprocess.sh"), "--no-progress"], check=True, capture_output=True,
                   env={**os.environ, "PYTHON": sys.executable, "DATA": str(fixtures_dir / "rl.jsonl"), "OUT": str(data)})

    # The raylets start Ray's workers with their own environment: give them the CPU plug-in's.
    for key, value in cpu_env().items():
        monkeypatch.setenv(key, value)
    # A short folder of its own: a second node's socket paths are longer than the first's
    # (AF_UNIX paths are limited to 107 bytes), beyond what ray_temp_dir allows for one node.
    temp_dir = tempfile.mkdtemp(prefix="ray2n-", dir="/tmp")
    # Cluster() writes the head's address to <RAY_TMPDIR>/ray/ray_current_cluster (default
    # /tmp/ray, machine-wide: ray.init(address="auto") elsewhere would join this cluster). Keep
    # it inside this run's Ray folder, which both nodes share (as two `ray start` on one host do).
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    (Path(temp_dir) / "ray").mkdir(parents=True, exist_ok=True)
    node_args = dict(num_gpus=1, object_store_memory=300 * 1024**2, include_dashboard=False, temp_dir=temp_dir)
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=12, **node_args))
    try:
        worker = cluster.add_node(num_cpus=8, **node_args)
        node_ids = {cluster.head_node.node_id, worker.node_id}
        assert len(node_ids) == 2
        with FakeOpenAIServer(host=ip) as judge:
            args = launcher_args(tmp_path, MODEL=tiny_model_dir, DATA=str(data), JUDGE_URL=judge.base_url, OUTPUT=str(tmp_path / "ckpt"),
                                 NNODES="2", GPUS_PER_NODE="1")
            assert "trainer.nnodes=2" in args and "trainer.n_gpus_per_node=1" in args
            # the CPU plug-in's overrides, minus what the cluster already decides (nodes, GPUs,
            # Ray's resources) and with one reward worker per node
            skip = ("trainer.nnodes=", "trainer.n_gpus_per_node=", "reward.num_workers=", "+ray_kwargs.", "ray_kwargs.")
            args += [o for o in cpu_overrides(n_procs=1) if not o.startswith(skip)]
            args += [
                f"+ray_kwargs.ray_init.address={cluster.address}", "reward.num_workers=2",
                # the streaming reward on every response, format gate passed (see the fixture)
                f"reward.custom_reward_function.path={Path(__file__).parent / 'rl_cpu_fixture.py'}",
                "reward.custom_reward_function.name=judge_every_response",
                # 4 prompts x n=2 per stage: 16 responses for the 2 reward workers; one step
                "data.train_batch_size=4", "actor_rollout_ref.rollout.n=2", "actor_rollout_ref.actor.ppo_mini_batch_size=4",
                "data.max_prompt_length=448", "data.max_response_length=20",
                "trainer.total_training_steps=1", "trainer.save_freq=-1",
            ]
            run = run_verl_cpu(args, run_dir=tmp_path, timeout_s=780, with_overrides=False)
            requests = judge.requests
    finally:
        cluster.shutdown()
        kill_ray_processes(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    log = run.log()
    assert not run.timed_out, f"did not finish within 780 s:\n{run.tail()}"
    assert run.returncode == 0, run.tail()
    assert sorted(step_metrics(log)) == [1], run.tail()
    answered = set(re.findall(rf"alignxplore reward: judge {re.escape(judge.base_url)} answered \(host [^,]+, ray node (\w+), pid \d+\)", log))
    # both reward workers (one per node) reached the judge. verl picks a reward worker per
    # response at random: all 16 responses landing on one of the two has probability 2^-15.
    assert answered == node_ids, (answered, node_ids, run.tail())
    assert 2 <= requests <= 16  # 4 prompts x n=2 x 2 stages, each judged at most once
