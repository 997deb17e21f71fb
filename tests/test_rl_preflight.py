"""Start-up checks of streaming GRPO (alignxplore.rl.preflight): real files, real HTTP to the
local fake judge (alignxplore.testing.fake_openai), and the real launcher for the unreachable
judge. Nothing here starts Ray or loads a model."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from alignxplore.formats import DataError
from alignxplore.rl.main import CONFIG_DIR, CONFIG_NAME
from alignxplore.rl.preflight import JUDGE_FIELD, is_loopback, preflight
from alignxplore.testing.fake_openai import FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]


def compose_cfg(overrides=()):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides))


def dead_url() -> str:
    """A loopback port nobody listens on (bound, then closed: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def rl_parquet(tmp_path_factory, fixtures_dir) -> Path:
    from alignxplore.rl.data import convert

    out = tmp_path_factory.mktemp("rl") / "train.parquet"
    convert(fixtures_dir / "rl.jsonl", out, progress=False)  # 4 rows
    return out


@pytest.fixture(scope="module")
def judge():
    with FakeOpenAIServer() as server:
        yield server


def cfg_for(model: str, data: Path | str, url: str, *extra: str):
    return compose_cfg([f"actor_rollout_ref.model.path={model}", f"data.train_files={data}",
                        f"reward.custom_reward_function.reward_kwargs.base_url='{url}'",
                        "data.train_batch_size=4", "actor_rollout_ref.actor.ppo_mini_batch_size=4", *extra])


def test_all_checks_pass_and_paths_become_absolute(tmp_path, tiny_model_dir, rl_parquet, judge, monkeypatch):
    # relative model, data and output folders, resolved against the launch directory
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.parquet").write_bytes(rl_parquet.read_bytes())
    os.symlink(tiny_model_dir, tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    cfg = cfg_for("model", "data/train.parquet", judge.base_url, "trainer.default_local_dir=ckpt/rl")
    before = judge.requests
    warnings = []
    preflight(cfg, warn=warnings.append)
    assert cfg.data.train_files == str(tmp_path / "data" / "train.parquet")
    assert cfg.data.val_files == cfg.data.train_files  # the interpolation follows the absolute path
    assert cfg.actor_rollout_ref.model.path == str(tmp_path / "model")
    assert cfg.trainer.default_local_dir == str(tmp_path / "ckpt" / "rl")
    assert judge.requests == before + 1 and warnings == []  # one real scoring request; one node: no warning


def test_unreachable_judge_is_one_line_naming_the_url(tiny_model_dir, rl_parquet):
    url = dead_url()
    with pytest.raises(DataError) as err:
        preflight(cfg_for(tiny_model_dir, rl_parquet, url))
    assert str(err.value).startswith(f"{url}: {JUDGE_FIELD}: the judge did not answer a scoring request (")
    assert "\n" not in str(err.value)


def test_every_judge_url_is_checked(tiny_model_dir, rl_parquet, judge):
    with FakeOpenAIServer() as second:
        before = (judge.requests, second.requests)
        preflight(cfg_for(tiny_model_dir, rl_parquet, f"{judge.base_url},{second.base_url}"))
        assert (judge.requests, second.requests) == (before[0] + 1, before[1] + 1)
        url = dead_url()  # the last of three: the two live ones do not hide it
        with pytest.raises(DataError, match=f"^{url}: "):
            preflight(cfg_for(tiny_model_dir, rl_parquet, f"{judge.base_url},{second.base_url},{url}"))


def test_wrong_served_model_name_is_caught(tiny_model_dir, rl_parquet):
    """A server that answers HTTP 404 for an unknown model (vLLM does) fails the check."""
    def not_found(key, attempt):
        return "400"

    with FakeOpenAIServer(fault_plan=not_found) as server:
        with pytest.raises(DataError, match="HTTP 400"):
            preflight(cfg_for(tiny_model_dir, rl_parquet, server.base_url))


@pytest.mark.parametrize("url,loop", [("http://127.0.0.1:8000/v1", True), ("http://127.9.9.9:80/v1", True),
                                      ("http://localhost:8000/v1", True), ("http://[::1]:8000/v1", True),
                                      ("http://10.0.0.7:8000/v1", False), ("http://judge-node:8000/v1", False)])
def test_loopback_hosts(url, loop):
    assert is_loopback(url) is loop


def test_loopback_judge_refused_with_two_nodes_before_any_request(tiny_model_dir, rl_parquet, judge):
    before = judge.requests
    warnings = []
    with pytest.raises(DataError, match=r"a loopback address with trainer.nnodes=2"):
        preflight(cfg_for(tiny_model_dir, rl_parquet, judge.base_url, "trainer.nnodes=2"), warn=warnings.append)
    assert judge.requests == before
    # and the shared-filesystem warning names the absolute paths
    assert len(warnings) == 1 and str(rl_parquet) in warnings[0] and "shared filesystem" in warnings[0]


def test_missing_model_folder(tmp_path, rl_parquet, judge):
    with pytest.raises(DataError, match="actor_rollout_ref.model.path: no such model folder"):
        preflight(cfg_for(str(tmp_path / "none"), rl_parquet, judge.base_url))
    # a relative path of the layout (checkpoints/sft/final) is a folder, not a hub id
    with pytest.raises(DataError, match="^checkpoints/sft/final: actor_rollout_ref.model.path"):
        preflight(cfg_for("checkpoints/sft/final", rl_parquet, judge.base_url), cwd=tmp_path)
    # a hub id (org/name) is left to verl, which downloads it
    cfg = cfg_for("Qwen/Qwen3-8B", rl_parquet, judge.base_url)
    preflight(cfg, cwd=tmp_path)
    assert cfg.actor_rollout_ref.model.path == "Qwen/Qwen3-8B"


def test_missing_data_file(tmp_path, tiny_model_dir, judge):
    with pytest.raises(DataError, match="data.train_files: no such file"):
        preflight(cfg_for(tiny_model_dir, tmp_path / "none.parquet", judge.base_url))


def test_fewer_rows_than_one_batch(tiny_model_dir, rl_parquet, judge):
    cfg = compose_cfg([f"actor_rollout_ref.model.path={tiny_model_dir}", f"data.train_files={rl_parquet}",
                       f"reward.custom_reward_function.reward_kwargs.base_url={judge.base_url}"])  # batch 1,024
    before = judge.requests
    with pytest.raises(DataError) as err:
        preflight(cfg)
    assert str(err.value).startswith(f"{rl_parquet}: data.train_batch_size: 4 rows, fewer than one batch of 1024")
    assert judge.requests == before  # the cheap checks come first


def test_launcher_with_unreachable_judge_exits_in_seconds_with_one_line(tmp_path, tiny_model_dir, rl_parquet):
    """``bash verl/run_streaming_8p.sh`` itself: exit 2, the last line names the URL, no
    traceback, and neither Ray nor a model was started (their start-up lines are absent)."""
    url = dead_url()
    env = {**os.environ, "PYTHON": sys.executable, "MODEL": tiny_model_dir, "DATA": str(rl_parquet), "JUDGE_URL": url,
           "OUTPUT": str(tmp_path / "ckpt"), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "verl" / "run_streaming_8p.sh"), "data.train_batch_size=4",
                           "actor_rollout_ref.actor.ppo_mini_batch_size=4"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    wall = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {url}: {JUDGE_FIELD}: the judge did not answer a scoring request"), proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "ray init kwargs" not in out and "Started a local Ray instance" not in out
    print(f"launcher exited after {wall:.1f} s")  # not asserted: depends on the machine's load
