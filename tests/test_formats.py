"""Bad input gives one line naming file:line and field; resumable outputs survive a kill."""
import json
import subprocess
import sys

import pytest

from alignxplore.formats import (
    DataError,
    ResumableJsonl,
    read_jsonl,
    validate_benchmark_row,
    validate_rl_row,
    validate_sft_row,
)

GOOD = {"userid": "u1", "history": [{"query": "q", "chosen": "a", "rejected": "b"}], "target": {"query": "q", "chosen": "a", "rejected": "b"}}


def write(path, *lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_valid_rows_load_and_missing_query_becomes_empty(tmp_path):
    row = dict(GOOD, history=[{"chosen": "a", "rejected": "b"}])
    rows = read_jsonl(write(tmp_path / "b.jsonl", json.dumps(GOOD), "", json.dumps(row)), validate_benchmark_row)
    assert len(rows) == 2 and rows[1]["history"][0]["query"] == ""


def test_truncated_json_line_names_file_and_line(tmp_path):
    p = write(tmp_path / "b.jsonl", json.dumps(GOOD), json.dumps(GOOD)[:30])
    with pytest.raises(DataError) as e:
        read_jsonl(p, validate_benchmark_row)
    assert str(e.value).startswith(f"{p}:2: invalid JSON")


def test_missing_chosen_names_the_field(tmp_path):
    bad = json.loads(json.dumps(GOOD))
    del bad["history"][0]["chosen"]
    p = write(tmp_path / "b.jsonl", json.dumps(GOOD), json.dumps(bad))
    with pytest.raises(DataError, match=r"b\.jsonl:2: history\[0\]\.chosen: missing$"):
        read_jsonl(p, validate_benchmark_row)


def test_empty_history_is_a_valid_benchmark_row(tmp_path):
    # the authors kept such users (full mode: zero triples; streaming / rec evaluation: skipped)
    p = write(tmp_path / "b.jsonl", json.dumps(dict(GOOD, history=[])))
    assert read_jsonl(p, validate_benchmark_row)[0]["history"] == []
    with pytest.raises(DataError, match=r":1: history: expected a list"):
        read_jsonl(write(tmp_path / "c.jsonl", json.dumps(dict(GOOD, history="x"))), validate_benchmark_row)


def test_hicupid_chat_history_is_rendered_as_triples(bench_dir):
    rows = read_jsonl(bench_dir / "hicupid_upi.jsonl", validate_benchmark_row)
    r = rows[0]
    assert len(r["history_messages"]) == 8 and r["history_messages"][0]["role"] == "user"
    assert len(r["history"]) == 4
    assert r["history"][0] == {"query": "Weekend chat 0: I really enjoy museums and quiet cafes.",
                               "chosen": "Noted, you enjoy museums and quiet cafes (turn 0).", "rejected": "No negative sample."}
    assert r["golden"] == "The user likes museums and quiet cafes." and r["type"] == "persona"
    bad = dict(r, history=[{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}])
    bad.pop("history_messages")
    with pytest.raises(DataError, match=r"f:3: history\[1\]\.role: expected 'user', 'assistant' or 'system'"):
        validate_benchmark_row(bad, "f:3")


def test_missing_file():
    with pytest.raises(DataError, match="no such file"):
        read_jsonl("/nonexistent/x.jsonl")


def test_rl_row_mid_position_within_1_and_L_minus_3(tmp_path):
    """docs/formats.md §3: mid in [1, L-3] (the pruning rule: mid not 0, not L-2, L >= 4)."""
    hist = [{"query": "q", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(5)]
    for mid in (1, 2):
        assert validate_rl_row({"uid": 1, "history": hist, "mid_position": mid}, "f:1")["history"] == hist
    for mid in (0, 3):
        with pytest.raises(DataError, match=f"mid_position: {mid} outside \\[1, 2\\]"):
            validate_rl_row({"uid": 1, "history": hist, "mid_position": mid}, "f:1")
    with pytest.raises(DataError, match="at least 4"):
        validate_rl_row({"uid": 1, "history": hist[:3], "mid_position": 1}, "f:1")


def test_sft_row_needs_prompt_and_completion():
    prompt = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    validate_sft_row({"prompt": prompt, "completion": [{"role": "assistant", "content": "x"}]}, "f:1")
    with pytest.raises(DataError, match="f:3: completion: missing"):
        validate_sft_row({"prompt": prompt}, "f:3")


def test_resumable_jsonl_cuts_partial_line_and_skips_done(tmp_path):
    p = tmp_path / "out.jsonl"
    sink = ResumableJsonl(p, key=lambda r: r["userid"])
    sink.append([{"userid": "a"}, {"userid": "b"}])
    with p.open("a") as fh:  # a kill in the middle of a write
        fh.write('{"userid": "c", "prof')
    again = ResumableJsonl(p, key=lambda r: r["userid"])
    assert set(again.done) == {"a", "b"} and "c" not in again
    again.append([{"userid": "c"}])
    assert [json.loads(line)["userid"] for line in p.read_text().splitlines()] == ["a", "b", "c"]


def test_cli_reports_bad_input_in_one_line(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    bad = json.loads(json.dumps(GOOD))
    del bad["target"]["chosen"]
    write(data / "mind_upi.jsonl", json.dumps(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "alignxplore.eval.generate", "--model", tiny_model_dir, "--data-dir", str(data), "--out-dir", str(tmp_path / "o"), "--benchmarks", "mind"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert err == [f"error: {data / 'mind_upi.jsonl'}:1: target.chosen: missing"]
    assert "Traceback" not in proc.stderr


def test_every_bad_line_is_reported_before_any_model_load(tmp_path, caplog):
    bad1 = json.loads(json.dumps(GOOD))
    del bad1["target"]["chosen"]
    data = tmp_path / "data"
    data.mkdir()
    write(data / "mind_upi.jsonl", json.dumps(GOOD), json.dumps(bad1), "{oops", json.dumps(dict(GOOD, userid="u3")))
    # the model path does not exist: reaching the model load would fail differently
    proc = subprocess.run(
        [sys.executable, "-m", "alignxplore.eval.generate", "--model", str(tmp_path / "no-model"), "--data-dir", str(data),
         "--out-dir", str(tmp_path / "o"), "--benchmarks", "mind"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    f = data / "mind_upi.jsonl"
    assert f"{f}:2: target.chosen: missing" in proc.stderr and f"{f}:3: invalid JSON" in proc.stderr  # both logged
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert err == [f"error: {f}:2: target.chosen: missing (and 1 more bad line(s) in this file)"]
    assert "loading hf backend" not in proc.stderr


def test_duplicate_userid_names_both_lines(tmp_path):
    from alignxplore.eval.registry import load_benchmark_rows

    p = write(tmp_path / "b.jsonl", json.dumps(GOOD), json.dumps(dict(GOOD, userid="u2")), json.dumps(GOOD))
    with pytest.raises(DataError, match=rf"^{p}:3: userid: duplicate of {p}:1$"):
        load_benchmark_rows(p)
