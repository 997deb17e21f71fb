"""Scorer training: the prepared data masks only the letters; the SFT trainer's loss is the
letter loss and falls (real TRL training steps on the tiny Qwen3)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignxplore.data.scorer import prepare as scorer_prepare
from alignxplore.data.scorer.text import encode_user
from alignxplore.formats import DataError

ROOT = Path(__file__).resolve().parents[1]
ROW = {"uid": "u7", "behaviors": [{"query": None if i % 2 else "Pick one", "chosen": f"a quiet film about rivers {i}", "rejected": f"loud action sequel {i}"} for i in range(9)]}


def write_users(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_model_dir):
    d = tmp_path_factory.mktemp("scorer")
    users = write_users(d / "users.jsonl", [ROW] * 8 + [{"uid": "empty", "behaviors": []}])
    summary = scorer_prepare.prepare([str(users)], tiny_model_dir, d / "prepared")
    return d / "prepared", summary


def test_mask_is_one_exactly_on_the_letter_tokens(prepared, tokenizer):
    from datasets import load_from_disk

    path, summary = prepared
    assert (summary["users_read"], summary["users_empty"], summary["rows"], summary["letters_kept"]) == (9, 1, 8, 72)
    ds = load_from_disk(str(path))
    assert ds.column_names == ["input_ids", "completion_mask"]
    enc = encode_user(ROW, tokenizer, max_length=8192)
    ids, mask = ds[0]["input_ids"], ds[0]["completion_mask"]
    assert ids == enc.input_ids and len(mask) == len(ids)
    on = [i for i, m in enumerate(mask) if m]
    assert on == enc.letter_tokens and len(on) == len(ROW["behaviors"])
    assert [tokenizer.decode([ids[i]]) for i in on] == [f" {x}" for x in enc.letters]
    assert {tokenizer.decode([ids[i + 1]]) for i in on} == {" </"}  # the letter, not its tag


def test_letters_beyond_max_length_are_cut_and_counted(tmp_path, tiny_model_dir):
    users = write_users(tmp_path / "u.jsonl", [ROW])
    summary = scorer_prepare.prepare([str(users)], tiny_model_dir, tmp_path / "p", max_length=150)
    assert 0 < summary["letters_kept"] < 9 and summary["letters_kept"] + summary["letters_cut"] == 9
    with pytest.raises(DataError, match="no user with a behaviour to train on"):
        scorer_prepare.prepare([str(users)], tiny_model_dir, tmp_path / "p2", max_length=60)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"uid": 1, "behaviors": [{"query": "q", "chosen": "", "rejected": "r"}]}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: behaviors\[0\].chosen: empty"):
        scorer_prepare.prepare([str(bad)], tiny_model_dir, tmp_path / "p3")


def test_shipped_scorer_config_has_the_authors_values():
    from alignxplore.sft.train import parse

    argv = ["--config", str(ROOT / "pruning/configs/scorer.yaml"), "--deepspeed", "", "--bf16", "false", "--use_cpu", "true", "--output_dir", "/tmp/unused"]
    script, cfg = parse(argv)
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (1e-4, 1, 2, 8)
    assert (cfg.max_length, cfg.seed, cfg.warmup_ratio, cfg.weight_decay, cfg.lr_scheduler_type.value) == (8192, 42, 0.0, 0.0, "linear")
    assert cfg.completion_only_loss is True and script.model_name_or_path == "Qwen/Qwen3-1.7B"


def letter_loss(model_dir, ids, mask):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    pos = [i for i, m in enumerate(mask) if m]
    logp = torch.log_softmax(logits[[p - 1 for p in pos]], -1)
    return -logp[range(len(pos)), [ids[p] for p in pos]].mean().item()


@pytest.mark.slow
def test_scorer_trains_on_the_sft_trainer_and_loss_is_letters_only(prepared, tiny_model_dir, tmp_path):
    from datasets import load_from_disk

    path, _ = prepared
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "alignxplore.sft.train", "--config", str(ROOT / "pruning/configs/scorer.yaml"),
           "--model_name_or_path", tiny_model_dir, "--dataset_path", str(path), "--output_dir", str(out), "--deepspeed", "",
           "--max_steps", "6", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1",
           "--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--gradient_checkpointing", "false",
           "--report_to", "none", "--save_strategy", "steps", "--save_steps", "6", "--dataloader_num_workers", "0"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5, losses
    # step 1's loss is computed by the untouched model: it equals the mean cross-entropy of the
    # letter tokens alone, so nothing else in the text was trained on
    row = load_from_disk(str(path))[0]
    assert losses[0] == pytest.approx(letter_loss(tiny_model_dir, row["input_ids"], row["completion_mask"]), rel=1e-3)
    assert (out / "final" / "config.json").is_file()
