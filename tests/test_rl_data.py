"""RL preprocessing (rl.jsonl -> parquet) and the dataset verl loads (``data.custom_cls``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from alignxplore.formats import DataError
from alignxplore.prompts import rl_messages
from alignxplore.rl.data import DATA_SOURCE, convert

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rl_rows(fixtures_dir):
    return [json.loads(line) for line in (fixtures_dir / "rl.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def parquet(fixtures_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rl") / "train.parquet"
    summary = convert(fixtures_dir / "rl.jsonl", out, progress=False)
    assert summary["rows_written"] == 4 and summary["rows_skipped"] == 0
    return out


def test_parquet_rows_carry_both_stages(parquet, rl_rows):
    rows = pq.read_table(parquet).to_pylist()
    assert len(rows) == len(rl_rows)
    for i, (row, src) in enumerate(zip(rows, rl_rows)):
        hist, mid = src["history"], src["mid_position"]
        assert row["data_source"] == DATA_SOURCE
        assert row["prompt"] == rl_messages(hist[:mid])  # RL wording, no past
        assert "Not Provided." in row["prompt"][1]["content"]
        assert json.loads(row["stage2_history"]) == hist[mid:-1]
        assert row["reward_model"]["ground_truth"] == {"target1": hist[mid], "target2": hist[-1]}
        assert row["extra_info"] == {"stage": 1, "index": i, "userid": src["uid"], "mid_position": mid}


def _write(tmp_path, lines):
    p = tmp_path / "rl.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def _bad_file(tmp_path, rl_rows):
    good = json.dumps(rl_rows[0])
    no_hist = json.dumps({k: v for k, v in rl_rows[1].items() if k != "history"})
    too_late = json.dumps({**rl_rows[2], "mid_position": len(rl_rows[2]["history"]) - 2})  # L-2: stage 2 gets 1 behaviour
    zero = json.dumps({**rl_rows[3], "mid_position": 0})
    return _write(tmp_path, [good, "{not json", no_hist, too_late, zero, good])


def _run(*args):
    return subprocess.run([sys.executable, "-m", "alignxplore.rl.data", "--no-progress", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True)


def test_bad_row_is_fatal_by_default_every_bad_line_listed_no_output(tmp_path, rl_rows):
    src, out = _bad_file(tmp_path, rl_rows), tmp_path / "train.parquet"
    proc = _run("--input", src, "--output", out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"bad line: {src}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"bad line: {src}:3: history: missing",
        f"bad line: {src}:4: mid_position: 4 outside [1, 3] for a history of 6",
        f"bad line: {src}:5: mid_position: 0 outside [1, 3] for a history of 6",
        f"error: {src}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2) (and 3 more bad line(s) in this file)",
    ]
    assert "Traceback" not in proc.stderr and not out.exists()
    assert list(tmp_path.glob("*.tmp")) == []


def test_skip_bad_rows_reports_counts_and_drops(tmp_path, rl_rows):
    src, out = _bad_file(tmp_path, rl_rows), tmp_path / "train.parquet"
    proc = _run("--input", src, "--output", out, "--skip-bad-rows")
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("skipped:")]
    assert lines == [
        f"skipped: {src}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"skipped: {src}:3: history: missing",
        f"skipped: {src}:4: mid_position: 4 outside [1, 3] for a history of 6",
        f"skipped: {src}:5: mid_position: 0 outside [1, 3] for a history of 6",
    ]
    assert f"wrote 2 rows to {out} (4 bad rows skipped)" in proc.stdout
    assert "4 bad line(s) dropped (--skip-bad-rows)" in proc.stderr  # the one skip rule: every reader reports the count
    assert pq.read_table(out).num_rows == 2


def test_empty_input_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no valid RL rows"):
        convert(_write(tmp_path, [""]), tmp_path / "x.parquet", progress=False)


# -- the dataset contract (verl 0.9.1: raw_prompt, no token tensors) ---------------------------
def _data_config():
    from hydra import compose, initialize_config_dir

    from alignxplore.rl.main import CONFIG_DIR, CONFIG_NAME

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=CONFIG_NAME).data


def test_dataset_contract_through_verls_loader(parquet, rl_rows, tokenizer, tmp_path):
    import numpy as np
    from verl import DataProto
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.dataset.rl_dataset import collate_fn

    from alignxplore.rl.dataset import StreamingRLDataset

    config = _data_config()
    ds = create_rl_dataset([str(parquet)], config, tokenizer, None, is_train=True, max_samples=-1)
    assert type(ds) is StreamingRLDataset and len(ds) == 4
    item = ds[3]
    assert not {"input_ids", "attention_mask", "position_ids", "raw_prompt_ids"} & set(item)
    src = rl_rows[3]
    assert item["raw_prompt"] == rl_messages(src["history"][: src["mid_position"]])
    assert item["stage2_history"] == src["history"][src["mid_position"]:-1]
    assert item["extra_info"]["stage"] == 1 and item["index"] == 3
    assert item["dummy_tensor"].shape == (1,)
    batch = DataProto.from_single_dict(collate_fn([ds[i] for i in range(4)]))
    assert list(batch.batch.keys()) == ["dummy_tensor"]
    assert batch.non_tensor_batch["raw_prompt"].dtype == np.dtype(object) and len(batch) == 4
    # create_rl_dataset always passes max_samples (verl 0.9.1): the subclass honours it
    assert len(create_rl_dataset([str(parquet)], config, tokenizer, None, max_samples=2)) == 2


def test_dataset_rejects_a_parquet_not_made_by_preprocessing(tmp_path, tokenizer):
    import pyarrow as pa

    from alignxplore.rl.dataset import StreamingRLDataset

    p = tmp_path / "other.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": [{"role": "user", "content": "hi"}], "data_source": "x"}]), p)
    config = _data_config()
    with pytest.raises(DataError, match="stage2_history: missing column"):
        StreamingRLDataset([str(p)], tokenizer, config)
