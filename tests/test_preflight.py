"""alignxplore.preflight on real files: the checks that run before any model load."""
import json
import shutil
from pathlib import Path

import pytest

from alignxplore.formats import DataError
from alignxplore.preflight import check_model, check_output_dir, check_output_file


def copy_model(src, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_whole_tiny_model_passes(tiny_model_dir):
    assert check_model(tiny_model_dir) == Path(tiny_model_dir)


def test_garbage_safetensors_and_missing_shard(tmp_path, tiny_model_dir):
    d = copy_model(tiny_model_dir, tmp_path / "m")
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(DataError, match=r"model.safetensors: header is not valid JSON"):
        check_model(str(d))
    (d / "model.safetensors").unlink()
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model-00001-of-00002.safetensors"}}))
    with pytest.raises(DataError, match=r"names missing shard\(s\): model-00001-of-00002.safetensors"):
        check_model(str(d))


def test_hub_ids_need_the_cache_only_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="not in the local Hugging Face cache"):
        check_model("someorg/not-cached-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert check_model("someorg/not-cached-model") is None  # left to the engine's download
    with pytest.raises(DataError, match="no such model folder"):
        check_model("./models/typo")  # a path, not a hub id


def test_output_paths(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(DataError, match="is a file, expected a folder"):
        check_output_dir(tmp_path / "f")
    with pytest.raises(DataError, match=r"f is a file, not a folder"):
        check_output_file(tmp_path / "f" / "x.jsonl")
    assert check_output_file(tmp_path / "new" / "deeper" / "x.jsonl") == tmp_path / "new" / "deeper" / "x.jsonl"
