"""Where benchmark data comes from: a local folder or the HF hub dataset (via the HF cache),
and what the errors say when it is missing. No network: the hub is reached only through a
cache laid out exactly as huggingface_hub writes it."""
import json
import os
import re
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


def test_task_kind_comes_from_the_registry_and_an_unknown_one_is_refused(tmp_path):
    """The registry entry names its task kind; what the kind implies lives in one table
    (registry.TASK_KINDS), and a kind it does not know stops the run when the registry is read,
    naming the file, the entry and the benchmark."""
    from pathlib import Path

    from alignxplore.eval.registry import TASK_KINDS, Benchmark

    shipped = sorted((Path(__file__).resolve().parents[1] / "eval").glob("*.yaml"))
    assert len(shipped) >= 3  # benchmarks, cross-task, noisy
    for path in shipped:
        for b in load_registry(path):
            assert b.kind is TASK_KINDS[b.task], (path, b.name)
    reg = tmp_path / "mine.yaml"
    reg.write_text("benchmarks:\n  - {name: mind, file: mind_upi.jsonl, task: recommendation, split: recommendation, column: MIND}\n"
                   "  - {name: clicks, file: clicks_upi.jsonl, task: ranking, split: half, column: Clicks}\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(reg))}: benchmarks\[1\] \(benchmark 'clicks'\): task: 'ranking' is not a task kind; known kinds: recommendation, response_selection, response_generation"):
        load_registry(reg)
    with pytest.raises(ValueError, match="benchmark 'clicks': task 'ranking' is not a task kind"):
        Benchmark("clicks", "clicks_upi.jsonl", "ranking", "half", "Clicks")


@pytest.mark.parametrize("task", ["recommendation", "response_selection", "response_generation"])
def test_direct_answer_budget_follows_the_task_kind(task):
    """evaluate.py reads the kind's properties, never its name: the direct baseline's answer
    budget is the long one exactly where the kind says so, and summary modes keep the run's."""
    from alignxplore.eval.evaluate import protocol_for
    from alignxplore.eval.registry import Benchmark

    bench = Benchmark("x", "x_upi.jsonl", task, "half", "X")
    config = {"protocol": {"name": "sampled", "settings": {"max_new_tokens": 16}}, "direct_selection_max_new_tokens": 4096}
    direct = protocol_for(config, bench, "direct")["settings"]["max_new_tokens"]
    assert direct == (4096 if bench.kind.direct_long_answer else 16) == (16 if task == "recommendation" else 4096)
    assert protocol_for(config, bench, "full")["settings"]["max_new_tokens"] == 16
