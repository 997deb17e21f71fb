"""Bad input through the real entry points (``python -m ...`` in a subprocess): exit code 2,
no traceback, and one ``error:`` line naming the file, the line and the problem.

Covers issue 22: non-UTF-8 lines (1), broken model folders (2), bad output paths (3),
``--out`` = ``--input`` (6), out-of-range numbers (7) and "every bad line is reported" (9).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRIPLE = {"query": "q", "chosen": "liked", "rejected": "disliked"}
NOT_UTF8 = b'{"userid": "u9", "history": [{"query": "q", "chosen": "caf\xe9", "rejected": "r"}]}\n'


def run(module, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)


def error_line(proc) -> str:
    """The one ``error:`` line; the process exited 2 without a traceback."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def user_line(uid, n=3):
    return json.dumps({"userid": uid, "history": [TRIPLE] * n}) + "\n"


def bench_line(uid):
    return json.dumps({"userid": uid, "history": [TRIPLE] * 2, "target": TRIPLE}) + "\n"


def rl_line(uid):
    return json.dumps({"uid": uid, "history": [TRIPLE] * 6, "mid_position": 2}) + "\n"


def sft_line():
    return json.dumps({"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                       "completion": [{"role": "assistant", "content": "a"}]}) + "\n"


# -- 1. non-UTF-8 lines are bad lines like any other ---------------------------------------
def test_non_utf8_line_in_rl_preprocess(tmp_path):
    src = tmp_path / "rl.jsonl"
    src.write_bytes(rl_line("u1").encode() + NOT_UTF8)
    out = tmp_path / "train.parquet"
    line = error_line(run("alignxplore.rl.data", "--no-progress", "--input", src, "--output", out))
    assert line == f"error: {src}:2: not UTF-8 (byte 0xe9 at byte {NOT_UTF8.index(0xe9) + 1})"
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_non_utf8_line_in_infer_before_any_model_load(tmp_path, tiny_model_dir):
    src = tmp_path / "users.jsonl"
    src.write_bytes(user_line("u1").encode() + NOT_UTF8)
    proc = run("alignxplore.infer", "--input", src, "--out", tmp_path / "o.jsonl", "--backend", "hf", "--model", tiny_model_dir)
    assert error_line(proc).startswith(f"error: {src}:2: not UTF-8")
    assert "loading hf backend" not in proc.stderr


def test_non_utf8_line_in_eval_generate(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mind_upi.jsonl").write_bytes(bench_line("u1").encode() + b'{"userid": "\xff"}\n')
    proc = run("alignxplore.eval.generate", "--model", tmp_path / "m", "--data-dir", data, "--out-dir", tmp_path / "o", "--benchmarks", "mind")
    assert error_line(proc) == f"error: {data / 'mind_upi.jsonl'}:2: not UTF-8 (byte 0xff at byte 13)"


def test_non_utf8_line_in_sft_prepare(tmp_path, tiny_model_dir):
    src = tmp_path / "sft.jsonl"
    src.write_bytes(sft_line().encode() + b"\xc3\x28\n" + sft_line().encode())
    line = error_line(run("alignxplore.sft.prepare", "--data", src, "--model", tiny_model_dir, "--out", tmp_path / "o"))
    assert line == f"error: {src}:2: not UTF-8 (byte 0xc3 at byte 1)"


def test_non_utf8_line_in_a_converter(tmp_path):
    reviews = tmp_path / "r.json"
    reviews.write_bytes(b'{"reviewerID": "A", "asin": "B\xe91", "unixReviewTime": 1}\n')
    meta = ROOT / "tests/fixtures/raw/amazon/meta_Books.json"
    line = error_line(run("alignxplore.data.converters", "amazon", "--reviews", reviews, "--meta", meta, "--out", tmp_path / "o"))
    assert line.startswith(f"error: {reviews}:1: not UTF-8 (byte 0xe9")
    assert not (tmp_path / "o").exists()


# -- 9. every bad line is reported before stopping; --skip-bad-rows goes on ----------------
def test_infer_lists_every_bad_line_then_stops(tmp_path, tiny_model_dir):
    src = tmp_path / "users.jsonl"
    src.write_bytes(user_line("u1").encode() + b"{oops\n" + user_line("u3").encode() + NOT_UTF8 + b'{"userid": "u5"}\n')
    proc = run("alignxplore.infer", "--input", src, "--out", tmp_path / "o.jsonl", "--backend", "hf", "--model", tiny_model_dir)
    line = error_line(proc)
    assert line.startswith(f"error: {src}:2: invalid JSON") and line.endswith("(and 2 more bad line(s) in this file)")
    listed = [ln for ln in proc.stderr.splitlines() if ln.startswith("bad line:")]
    assert [ln.split(": ")[1] for ln in listed] == [f"{src}:2", f"{src}:4", f"{src}:5"]
    assert not (tmp_path / "o.jsonl").exists()


def test_listing_is_capped_but_the_count_is_total(tmp_path):
    src = tmp_path / "rl.jsonl"
    src.write_text(rl_line("u0") + "{bad\n" * 30)
    proc = run("alignxplore.rl.data", "--no-progress", "--input", src, "--output", tmp_path / "t.parquet")
    assert error_line(proc).endswith("(and 29 more bad line(s) in this file)")
    assert sum(ln.startswith("bad line:") for ln in proc.stderr.splitlines()) == 20
    assert "... and 10 more bad line(s) not listed (30 in all)" in proc.stderr


def test_prune_lists_every_bad_line_and_skip_mode_goes_on(tmp_path):
    def scored(uid, lp=-0.1):
        return {"uid": uid, "behaviors": [dict(TRIPLE, logprob1=lp, signal=0.1) for _ in range(6)]}

    src = tmp_path / "scores.jsonl"
    src.write_text("".join(json.dumps(u) + "\n" for u in (scored("a"), scored("b", 5.0), scored("c"), scored("d", float("nan")))))
    args = ("--scores", src, "--a", "1", "--b", "0.1", "--c", "1", "--signal-key", "logprob1", "--out", tmp_path / "rl.jsonl")
    proc = run("alignxplore.data.scorer.pruning", *args)
    # 7. a log-probability above 0 (and a NaN) is refused, naming the field
    assert error_line(proc) == (f"error: {src}:2: behaviors[0].logprob1: expected a log-probability (a finite number <= 0), got 5.0"
                                " (and 1 more bad line(s) in this file)")
    assert f"bad line: {src}:4: behaviors[0].logprob1: expected a log-probability (a finite number <= 0), got nan" in proc.stderr
    proc = run("alignxplore.data.scorer.pruning", *args, "--skip-bad-rows")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("skipped: ") == 2 and "users: 2 in" in proc.stdout


def test_converter_lists_every_bad_row_and_skip_mode_writes(tmp_path):
    reviews = tmp_path / "r.json"
    good = [{"reviewerID": f"A{i}", "asin": "B1", "unixReviewTime": i} for i in range(3)]
    reviews.write_text("\n".join([json.dumps(good[0]), "{oops", json.dumps({"asin": "B1", "unixReviewTime": 1}), json.dumps(good[1])]) + "\n")
    meta = ROOT / "tests/fixtures/raw/amazon/meta_Books.json"
    proc = run("alignxplore.data.converters", "amazon", "--reviews", reviews, "--meta", meta, "--out", tmp_path / "o")
    line = error_line(proc)
    assert line.startswith(f"error: {reviews}:2: ") and line.endswith("(and 1 more bad line(s) in this file)")
    assert f"bad line: {reviews}:3: reviewerID: missing column" in proc.stderr
    assert not (tmp_path / "o").exists()
    proc = run("alignxplore.data.converters", "amazon", "--reviews", reviews, "--meta", meta, "--out", tmp_path / "o", "--skip-bad-rows")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["skipped"]["bad raw row (reported above)"] == 2


# -- 2. broken model folders: one line before any load ------------------------------------
def _broken_model(tmp_path, tiny_model_dir, kind) -> tuple[Path, str]:
    d = tmp_path / f"model-{kind}"
    if kind == "missing":
        return d, "no such model folder"
    d.mkdir()
    if kind == "empty":
        return d, "empty folder"
    for f in Path(tiny_model_dir).iterdir():
        shutil.copy(f, d / f.name)
    if kind == "truncated":
        st = d / "model.safetensors"
        st.write_bytes(st.read_bytes()[: st.stat().st_size // 2])
        return d, "model.safetensors: truncated: "
    if kind == "config":
        (d / "config.json").write_text('{"model_type": "qwen3", ')
        return d, "config.json is unreadable"
    if kind == "no-tokenizer":
        (d / "tokenizer.json").unlink()
        (d / "tokenizer_config.json").unlink()
        return d, "no tokenizer (tokenizer.json or tokenizer_config.json)"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "config", "no-tokenizer"])
def test_generate_names_the_broken_model_folder(tmp_path, tiny_model_dir, kind):
    model, problem = _broken_model(tmp_path, tiny_model_dir, kind)
    data = tmp_path / "data"
    data.mkdir()
    (data / "mind_upi.jsonl").write_text(bench_line("u1"))
    proc = run("alignxplore.eval.generate", "--model", model, "--data-dir", data, "--out-dir", tmp_path / "o", "--benchmarks", "mind")
    assert error_line(proc).startswith(f"error: {model}: --model: {problem}")
    assert "loading hf backend" not in proc.stderr


def test_evaluate_names_a_wrong_judge_path_not_a_hub_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mind_upi.jsonl").write_text(bench_line("u1"))
    proc = run("alignxplore.eval.evaluate", "--judge-model", "judges/nope", "--data-dir", data, "--results-dir", tmp_path / "r",
               "--modes", "direct", "--benchmarks", "mind")
    assert error_line(proc) == ("error: judges/nope: --judge-model: no such folder, and not in the local Hugging Face cache"
                                " (downloads are off: HF_HUB_OFFLINE)")


def test_infer_names_a_model_without_tokenizer(tmp_path, tiny_model_dir):
    model, problem = _broken_model(tmp_path, tiny_model_dir, "no-tokenizer")
    src = tmp_path / "u.jsonl"
    src.write_text(user_line("u1"))
    proc = run("alignxplore.infer", "--input", src, "--out", tmp_path / "o.jsonl", "--backend", "hf", "--model", model)
    assert error_line(proc) == f"error: {model}: --model: {problem}"


def test_serve_names_a_truncated_model(tmp_path, tiny_model_dir):
    model, problem = _broken_model(tmp_path, tiny_model_dir, "truncated")
    proc = run("alignxplore.infer.service", "--backend", "hf", "--model", model, "--port", "0")
    assert error_line(proc).startswith(f"error: {model}: --model: {problem}")


# -- 3 and 6. output paths checked with the inputs, before any model loads -----------------
def test_rl_preprocess_output_is_a_directory(tmp_path):
    src = tmp_path / "rl.jsonl"
    src.write_text(rl_line("u1"))
    (tmp_path / "out").mkdir()
    line = error_line(run("alignxplore.rl.data", "--no-progress", "--input", src, "--output", tmp_path / "out"))
    assert line == f"error: {tmp_path / 'out'}: --output: is a directory, expected a file path"
    assert not list(tmp_path.glob("*.tmp"))


def test_infer_out_is_a_directory_before_model_load(tmp_path, tiny_model_dir):
    src = tmp_path / "u.jsonl"
    src.write_text(user_line("u1"))
    (tmp_path / "out").mkdir()
    proc = run("alignxplore.infer", "--input", src, "--out", tmp_path / "out", "--backend", "hf", "--model", tiny_model_dir)
    assert error_line(proc) == f"error: {tmp_path / 'out'}: --out: is a directory, expected a file path"
    assert "loading hf backend" not in proc.stderr


def test_generate_out_dir_is_a_file_before_model_load(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mind_upi.jsonl").write_text(bench_line("u1"))
    (tmp_path / "o").write_text("")
    proc = run("alignxplore.eval.generate", "--model", tiny_model_dir, "--data-dir", data, "--out-dir", tmp_path / "o", "--benchmarks", "mind")
    assert error_line(proc) == f"error: {tmp_path / 'o'}: --out-dir: is a file, expected a folder"
    assert "loading hf backend" not in proc.stderr


def test_infer_refuses_out_same_as_input(tmp_path, tiny_model_dir):
    src = tmp_path / "u.jsonl"
    src.write_text(user_line("u1"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", "from alignxplore.infer.entry import console; console()", "infer", "--input", str(src),
                           "--out", str(src), "--backend", "hf", "--model", tiny_model_dir], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert error_line(proc) == f"error: {src}: --out: is the same file as --input; write the output to another path"
    assert src.read_text() == user_line("u1")  # untouched
