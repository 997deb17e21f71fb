"""SFT stage on the tiny Qwen3: data preparation, real training steps (plain, DeepSpeed
ZeRO-3 in one and two CPU processes), resumption, and the saved checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignxplore.formats import DataError, read_jsonl
from alignxplore.sft.prepare import prepare, tokenize_row

FIXTURE_DS = Path(__file__).parent / "fixtures" / "ds" / "zero3_cpu.json"


@pytest.fixture(scope="module")
def sft_rows(fixtures_dir):
    return read_jsonl(fixtures_dir / "sft.jsonl")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, fixtures_dir, tiny_model_dir):
    out = tmp_path_factory.mktemp("sft") / "prepared"
    summary = prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, out, max_length=1024)
    return out, summary


@pytest.fixture(scope="module")
def repeated(tmp_path_factory, fixtures_dir, tiny_model_dir, sft_rows):
    """One fixture row eight times: a batch the model can memorise, so the loss must fall."""
    src = tmp_path_factory.mktemp("rep") / "rep.jsonl"
    src.write_text("".join(json.dumps(sft_rows[0]) + "\n" for _ in range(8)))
    out = src.parent / "prepared"
    prepare(src, tiny_model_dir, out, max_length=1024)
    return out


def test_completion_mask_is_exactly_the_assistant_turn(tokenizer, sft_rows):
    row = sft_rows[1]  # the streaming row: has a past summary in the prompt
    out = tokenize_row(row, tokenizer, max_length=4096, overlong="drop")
    ids, mask = out["input_ids"], out["completion_mask"]
    assert out["status"] == "ok" and len(ids) == len(mask)
    n_prompt = mask.index(1)
    assert all(m == 0 for m in mask[:n_prompt]) and all(m == 1 for m in mask[n_prompt:])
    prompt_text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(ids[:n_prompt]) == prompt_text
    assert prompt_text.endswith("<|im_start|>assistant\n")
    # token by token: the supervised part is the completion (with its <think> block) + <|im_end|>
    completion = row["completion"][0]["content"]
    assert completion.startswith("<think>\n") and "\n</think>\n\n" in completion
    expected = tokenizer(completion + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert ids[n_prompt:] == expected
    assert tokenizer.convert_ids_to_tokens(ids[n_prompt]) == "<think>"
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_prepare_summary_and_saved_columns(prepared):
    out, s = prepared
    from datasets import load_from_disk

    ds = load_from_disk(str(out))
    assert ds.column_names == ["input_ids", "completion_mask"] and len(ds) == 12
    assert s["rows_read"] == s["rows_kept"] == 12 and s["rows_dropped_overlong"] == 0
    assert s["tokens_kept"] == sum(len(x) for x in ds["input_ids"])
    assert sum(b["count"] for b in s["length_histogram"]) == 12
    assert json.loads((out / "summary.json").read_text())["rows_kept"] == 12


def test_overlong_rows_dropped_or_truncated(tmp_path, fixtures_dir, tiny_model_dir):
    from datasets import load_from_disk

    # the fixture rows are 357..407 tokens long; 6 of them exceed 380
    dropped = prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, tmp_path / "d", max_length=380)
    assert dropped["rows_dropped_overlong"] == 6 and dropped["rows_kept"] == 6
    assert max(len(x) for x in load_from_disk(str(tmp_path / "d"))["input_ids"]) <= 380
    cut = prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, tmp_path / "t", max_length=380, overlong="truncate")
    assert cut["rows_kept"] == 12 and cut["rows_truncated"] == 6
    assert max(len(x) for x in load_from_disk(str(tmp_path / "t"))["input_ids"]) == 380
    with pytest.raises(DataError, match="all 12 rows are longer than --max-length 300"):
        prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, tmp_path / "x", max_length=300)


def test_row_without_completion_is_fatal_or_skipped(tmp_path, fixtures_dir, tiny_model_dir):
    lines = (fixtures_dir / "sft.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    del bad["completion"]
    src = tmp_path / "sft.jsonl"
    src.write_text("\n".join(lines[:2] + [json.dumps(bad)] + lines[3:]) + "\n")
    with pytest.raises(DataError, match=rf"^{src}:3: completion: missing$"):
        prepare(src, tiny_model_dir, tmp_path / "o")
    s = prepare(src, tiny_model_dir, tmp_path / "o", skip_bad_rows=True)
    assert s["rows_bad_skipped"] == 1 and s["rows_kept"] == 11


def test_unrenderable_row_names_the_row(tokenizer, sft_rows):
    class Broken:
        """The real tokenizer with a chat template that rejects assistant turns."""

        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def apply_chat_template(self, messages, **kw):
            if messages[-1]["role"] == "assistant":
                raise ValueError("template cannot render this message")
            return tokenizer.apply_chat_template(messages, **kw)

    out = tokenize_row(sft_rows[0] | {"_where": "sft.jsonl:1"}, Broken(), 4096, "drop")
    assert out["status"].split("\t")[:3] == ["error", "sft.jsonl:1", "completion"]
    assert "cannot render" in out["status"]


def train(tiny_model_dir, dataset, out, *extra, nproc=1, deepspeed=False, timeout=600):
    args = ["-m", "alignxplore.sft.train", "--model_name_or_path", tiny_model_dir, "--dataset_path", str(dataset),
            "--output_dir", str(out), "--per_device_train_batch_size", "1", "--learning_rate", "1e-3",
            "--lr_scheduler_type", "constant", "--warmup_ratio", "0", "--logging_steps", "1", "--report_to", "none",
            "--save_steps", "2", "--seed", "42", "--dataloader_num_workers", "0", *extra]
    if deepspeed:
        args += ["--deepspeed", str(FIXTURE_DS)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port", str(_free_port()), *args]
    else:
        cmd = [sys.executable, *args]
        if deepspeed:  # a single DeepSpeed process still wants a rendezvous
            env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(out):
    state = json.loads((Path(out) / sorted(Path(out).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1].name / "trainer_state.json").read_text())
    return [h["loss"] for h in state["log_history"] if "loss" in h], state


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, tiny_model_dir, repeated):
    out = tmp_path_factory.mktemp("plain") / "out"
    train(tiny_model_dir, repeated, out, "--max_steps", "6")
    return out


@pytest.fixture(scope="module")
def stock_logits_run(tmp_path_factory, tiny_model_dir, repeated):
    """The same 6 steps with the stock TRL loss (output layer at every position)."""
    out = tmp_path_factory.mktemp("stock") / "out"
    proc = train(tiny_model_dir, repeated, out, "--max_steps", "6", "--completion_only_logits", "false")
    assert "output layer at all positions (stock)" in proc.stderr
    return out


def test_completion_only_logits_train_like_the_stock_loss(plain_run, stock_logits_run):
    """Default training (output layer at completion positions only) and the stock full-logits
    loss: the same losses, gradient norms and token accuracy, step by step."""
    ours, ours_state = losses(plain_run)
    stock, stock_state = losses(stock_logits_run)
    assert ours == pytest.approx(stock, rel=1e-4)

    def logged(state, key):
        return [h[key] for h in state["log_history"] if "loss" in h]

    assert logged(ours_state, "grad_norm") == pytest.approx(logged(stock_state, "grad_norm"), rel=1e-3)
    assert logged(ours_state, "mean_token_accuracy") == pytest.approx(logged(stock_state, "mean_token_accuracy"), abs=1e-6)
    assert logged(ours_state, "num_tokens") == logged(stock_state, "num_tokens")
    # entropy is logged both ways; ours averages completion tokens only (documented)
    assert all(0 < e < 12 for e in logged(ours_state, "entropy"))


@pytest.mark.slow
def test_gradient_accumulation_over_padded_batches_matches_stock(tmp_path, tiny_model_dir, prepared):
    """Rows of different lengths, 2 per padded micro-batch, 2 micro-batches per step: the
    Trainer's num_items_in_batch normalisation must give the stock loss (padding-free batches
    with an accumulation count: tests/test_sft_completion_logits.py)."""
    runs = {}
    for flag in ("true", "false"):
        out = tmp_path / flag
        train(tiny_model_dir, prepared[0], out, "--max_steps", "2", "--per_device_train_batch_size", "2",
              "--gradient_accumulation_steps", "2", "--completion_only_logits", flag)
        runs[flag] = losses(out)
    (ours, ours_state), (stock, stock_state) = runs["true"], runs["false"]
    assert len(ours) == 2 and ours == pytest.approx(stock, rel=1e-4)
    assert [h["grad_norm"] for h in ours_state["log_history"] if "loss" in h] == pytest.approx(
        [h["grad_norm"] for h in stock_state["log_history"] if "loss" in h], rel=1e-3)


def test_loss_goes_down_on_repeated_batch(plain_run):
    ls, state = losses(plain_run)
    assert len(ls) == 6 and state["global_step"] == 6
    assert ls[-1] < ls[0] - 0.3, ls


def test_saved_checkpoint_loads_and_generates(plain_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final = plain_run / "final"
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    enc = tok(tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True), return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    new = out[0, enc["input_ids"].shape[1]:]
    assert 1 <= len(new) <= 5 and all(0 <= t < len(tok) for t in new.tolist())


def test_resume_continues_the_step_count(tmp_path, tiny_model_dir, repeated):
    out = tmp_path / "out"
    train(tiny_model_dir, repeated, out, "--max_steps", "2")
    first, _ = losses(out)
    proc = train(tiny_model_dir, repeated, out, "--max_steps", "4")
    assert "resuming from" in proc.stderr and "checkpoint-2" in proc.stderr
    ls, state = losses(out)
    assert state["global_step"] == 4
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert steps == [1, 2, 3, 4] and ls[:2] == first


@pytest.mark.slow
def test_deepspeed_zero3_one_process_matches_plain_training(tmp_path, tiny_model_dir, repeated, plain_run, stock_logits_run):
    out = tmp_path / "out"
    proc = train(tiny_model_dir, repeated, out, "--max_steps", "2", deepspeed=True)
    assert "output layer at completion positions only" in proc.stderr  # the partitioned lm_head path ran
    ds_losses, state = losses(out)
    plain, _ = losses(plain_run)
    stock, _ = losses(stock_logits_run)
    assert state["global_step"] == 2
    assert ds_losses == pytest.approx(plain[:2], rel=1e-3)
    assert ds_losses == pytest.approx(stock[:2], rel=1e-3)


@pytest.mark.slow
def test_deepspeed_zero3_two_processes(tmp_path, tiny_model_dir, repeated, stock_logits_run):
    out = tmp_path / "out"
    proc = train(tiny_model_dir, repeated, out, "--max_steps", "2", nproc=2, deepspeed=True)
    ls, state = losses(out)
    assert state["global_step"] == 2 and len(ls) == 2
    assert "output layer at completion positions only" in proc.stderr
    # every row of `repeated` is the same, so two ranks x batch 1 average to the one-process
    # step: the lm_head weight, partitioned over two ranks, trains as the stock loss does
    stock, _ = losses(stock_logits_run)
    assert ls == pytest.approx(stock[:2], rel=1e-3)
    # two ranks trained under ZeRO-3, and the gathered model was saved whole
    assert "world size 2" in proc.stderr and "deepspeed " + str(FIXTURE_DS) in proc.stderr
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "final")
    assert sum(p.numel() for p in model.parameters()) > 9_000_000


def test_wrong_dataset_path_is_one_line(tmp_path, tiny_model_dir):
    proc = subprocess.run([sys.executable, "-m", "alignxplore.sft.train", "--model_name_or_path", tiny_model_dir,
                           "--dataset_path", str(tmp_path / "nope"), "--output_dir", str(tmp_path / "o")],
                          capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2
    assert f"error: {tmp_path / 'nope'}: not a prepared dataset" in proc.stderr and "Traceback" not in proc.stderr


def test_prompt_boundary_exact_fallback(tokenizer):
    from alignxplore.sft.prepare import _prompt_length

    def check(prompt, full):
        enc = tokenizer([full], add_special_tokens=False)
        return _prompt_length(prompt, enc["input_ids"][0], enc, 0, tokenizer)

    # boundary before an added token: fast path, equal to tokenising the prompt alone
    assert check("user text\n", "user text\n<think>\nx") == len(tokenizer("user text\n", add_special_tokens=False)["input_ids"])
    # plain-text boundary: the exact path agrees when the prompt is a token prefix ...
    assert check("hello", "hello world") == len(tokenizer("hello", add_special_tokens=False)["input_ids"])
    # ... and refuses when BPE merges across the boundary
    assert check("hel", "hello") is None


def test_parallel_preparation_matches_single_process(tmp_path, fixtures_dir, tiny_model_dir, prepared):
    from datasets import load_from_disk

    prepare(fixtures_dir / "sft.jsonl", tiny_model_dir, tmp_path / "p2", max_length=1024, num_proc=2)
    one, two = load_from_disk(str(prepared[0])), load_from_disk(str(tmp_path / "p2"))
    assert one["input_ids"] == two["input_ids"] and one["completion_mask"] == two["completion_mask"]


def test_wrong_model_path_is_one_line(tmp_path, fixtures_dir, prepared):
    with pytest.raises(DataError, match=r"nope: --model: no such model folder"):
        prepare(fixtures_dir / "sft.jsonl", str(tmp_path / "nope"), tmp_path / "o")
    proc = subprocess.run([sys.executable, "-m", "alignxplore.sft.train", "--model_name_or_path", str(tmp_path / "nope"),
                           "--dataset_path", str(prepared[0]), "--output_dir", str(tmp_path / "o")],
                          capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {tmp_path / 'nope'}: model_name_or_path: cannot load a tokenizer" in proc.stderr


def test_shipped_paper_config_parses_with_overrides():
    """`bash sft/sft.sh --learning_rate 1e-5` = the YAML plus a CLI override; every key must be
    a real SFTConfig / script field and the paper's values must arrive unchanged."""
    from alignxplore.sft.train import parse

    root = Path(__file__).resolve().parents[1]
    argv = ["--config", str(root / "sft/configs/qwen3_8b.yaml"), "--learning_rate", "1e-5",
            "--deepspeed", "", "--bf16", "false", "--use_cpu", "true", "--output_dir", "/tmp/unused"]
    script, cfg = parse(argv)
    assert cfg.learning_rate == 1e-5  # the override wins
    assert (cfg.num_train_epochs, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps) == (4, 1, 16)
    assert (cfg.max_length, cfg.warmup_ratio, cfg.lr_scheduler_type.value, cfg.weight_decay, cfg.seed) == (16384, 0.1, "cosine", 0.0, 42)
    assert cfg.completion_only_loss is True and cfg.gradient_checkpointing is True
    assert script.model_name_or_path == "Qwen/Qwen3-8B" and script.attn_implementation == "auto"
    assert script.completion_only_logits is True
    assert parse(argv + ["--completion_only_logits", "false"])[0].completion_only_logits is False
