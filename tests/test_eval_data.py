"""Where benchmark data comes from: a local folder or the HF hub dataset (via the HF cache),
and what the errors say when it is missing. No network: the hub is reached only through a
cache laid out exactly as huggingface_hub writes it."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from alignxplore.eval.registry import HUB_BENCHMARK, hub_repo_id, load_benchmarks, load_registry, select_benchmarks
from alignxplore.formats import DataError

HOW = f"huggingface-cli download --repo-type dataset {HUB_BENCHMARK} --local-dir data/benchmark"
LOAD = "from alignxplore.eval.registry import *; import sys; b = select_benchmarks(load_registry(), 'mind,hicupid'); " \
       "rows = load_benchmarks(sys.argv[1], b); print({k: len(v) for k, v in rows.items()})"


def test_hub_names_are_told_apart_from_folders(tmp_path):
    assert hub_repo_id(HUB_BENCHMARK) == HUB_BENCHMARK
    assert hub_repo_id("hf://datasets/a/b") == "a/b"
    assert hub_repo_id("data/benchmark") == "data/benchmark"  # looks like one and does not exist: a hub name
    (tmp_path / "x").mkdir()
    assert hub_repo_id(str(tmp_path / "x")) is None and hub_repo_id("./data/benchmark") is None


def run_load(data_dir, cache):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(cache.parent / "hf-home"))
    return subprocess.run([sys.executable, "-c", LOAD, str(data_dir)], capture_output=True, text=True, env=env)


def test_hub_dataset_offline_and_not_cached_says_what_to_download(tmp_path):
    proc = run_load(HUB_BENCHMARK, tmp_path / "hub")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f"{HUB_BENCHMARK}: no such folder, and no hub dataset {HUB_BENCHMARK} in the HF cache" in last
    assert HOW in last and "DATA_DIR=data/benchmark" in last


def test_hub_dataset_is_read_from_the_hf_cache(tmp_path, bench_dir):
    cache = tmp_path / "hub"
    repo = cache / f"datasets--{HUB_BENCHMARK.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit / "benchmark"  # files below a sub-folder are found too
    snap.mkdir(parents=True)
    for name in ("mind_upi.jsonl", "hicupid_upi.jsonl"):
        shutil.copy(bench_dir / name, snap / name)
    proc = run_load(HUB_BENCHMARK, cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str({"mind": 3, "hicupid": 3})


def test_missing_folder_and_missing_file_say_the_same(tmp_path, bench_dir):
    benches = select_benchmarks(load_registry(), "mind,alignx")
    with pytest.raises(DataError, match="no such folder") as e:
        load_benchmarks(tmp_path / "nowhere", benches)
    assert HOW in str(e.value)
    (tmp_path / "d").mkdir()
    shutil.copy(bench_dir / "mind_upi.jsonl", tmp_path / "d")
    with pytest.raises(DataError) as e:
        load_benchmarks(tmp_path / "d", benches)
    assert str(e.value).startswith(f"{tmp_path / 'd' / 'alignx_upi.jsonl'}: no such file; ") and HOW in str(e.value)
    assert json.dumps(str(e.value)).count("\\n") == 0  # one line
