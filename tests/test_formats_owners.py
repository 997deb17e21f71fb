"""alignxplore.formats owns every shape: one user-row validator (its parameters are what the
scorer, the synthesis and `infer` differ in), one JSONL read loop with one bad-line rule, and
one declared results format."""
import json
import logging

import pytest

from alignxplore.eval import table
from alignxplore.formats import (
    DataError,
    iter_jsonl,
    read_jsonl,
    read_results,
    results_files,
    validate_user_row,
    write_results,
)

T = {"query": "q", "chosen": "c", "rejected": "r"}


# -- the user row -----------------------------------------------------------------------------
def test_user_row_aliases_and_canonical_keys():
    row = validate_user_row({"userid": 7, "history": [dict(T)], "cut_off": 0}, "f:1")
    assert row == {"uid": "7", "behaviors": [T], "cut_off": 0}  # other keys kept, aliases renamed
    assert validate_user_row({"uid": "u", "behaviors": []}, "f:1")["behaviors"] == []  # empty: valid, consumers count it


@pytest.mark.parametrize("obj, message", [
    ({"behaviors": [T]}, "f:1: uid: missing (also looked for 'userid')"),
    ({"uid": ["u"], "behaviors": [T]}, "f:1: uid: expected a string or an integer, got list"),
    ({"uid": True, "behaviors": [T]}, "f:1: uid: expected a string or an integer, got bool"),
    ({"uid": "u", "behaviors": [T], "history": [T]}, "f:1: behaviors: give exactly one of 'behaviors' or 'history'; got behaviors and history"),
    ({"uid": "u"}, "f:1: behaviors: missing (give exactly one of 'behaviors' or 'history')"),
    ({"uid": "u", "behaviors": [dict(T, chosen="")]}, "f:1: behaviors[0].chosen: empty"),
    ({"uid": "u", "behaviors": [dict(T, logprob1=0.5)]}, "f:1: behaviors[0].logprob1: expected a log-probability (a finite number <= 0), got 0.5"),
    ({"uid": "u", "behaviors": [dict(T, signal=float("inf"))]}, "f:1: behaviors[0].signal: expected a finite number, got inf"),
    ({"uid": "u", "behaviors": [dict(T, answer="C")]}, "f:1: behaviors[0].answer: expected 'A' or 'B', got 'C'"),
    ({"uid": "u", "behaviors": [T], "past": 3}, "f:1: past: expected a string, got int"),
])
def test_user_row_errors_name_the_field(obj, message):
    with pytest.raises(DataError) as err:
        validate_user_row(obj, "f:1")
    assert str(err.value) == message


def test_null_query_is_a_parameter_scorer_keeps_none_synthesis_renders_empty():
    row = {"uid": "u", "behaviors": [{"chosen": "c", "rejected": "r"}, {"query": None, "chosen": "c", "rejected": "r"}]}
    assert [b["query"] for b in validate_user_row(row, "f:1")["behaviors"]] == ["", ""]
    assert [b["query"] for b in validate_user_row(row, "f:1", null_query=None)["behaviors"]] == [None, None]


def test_scored_behaviours_and_the_authors_item_wrapper():
    row = validate_user_row({"uid": "u", "behaviors": [{"item": dict(T), "logprob1": -0.1}, dict(T, logprob1=None, answer="A")]}, "f:1")
    assert row["behaviors"] == [dict(T, logprob1=-0.1), dict(T, answer="A")]  # unwrapped; a null score is absent


def test_chat_histories_and_a_minimum_only_where_asked():
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(DataError, match=r"behaviors: missing \(give exactly one"):  # no 'messages' key without allow_chat
        validate_user_row({"uid": "u", "messages": chat}, "f:1")
    row = validate_user_row({"userid": "u", "messages": chat}, "f:1", allow_chat=True, min_behaviours=1)
    assert row["behaviors"][0]["chosen"] == "hello"
    with pytest.raises(DataError, match="f:1: history: empty: at least one behaviour is needed"):
        validate_user_row({"userid": "u", "history": []}, "f:1", allow_chat=True, min_behaviours=1)
    assert validate_user_row({"history": [T]}, "req", require_id=False)["uid"] is None


# -- the one read loop and its bad-line rule ---------------------------------------------------
def _mixed(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a": 1}\n{oops\n{"a": 2}\n\xff\n{"a": 3}\n')
    return p


def test_stop_mode_reports_every_bad_line_then_one_error_and_yields_nothing_after_the_first(tmp_path):
    p, logged = _mixed(tmp_path), []
    seen = []
    with pytest.raises(DataError) as err:
        for rec in iter_jsonl(p, log=logged.append):
            seen.append(rec)
    assert seen == [{"a": 1}]
    assert str(err.value) == f"{p}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2) (and 1 more bad line(s) in this file)"
    assert [m.split(": ")[1] for m in logged] == [f"{p}:2", f"{p}:4"]


def test_skip_mode_drops_reports_and_counts(tmp_path):
    p, logged = _mixed(tmp_path), []
    assert read_jsonl(p, on_bad="skip", log=logged.append) == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert logged[:2] == [f"skipped: {p}:2: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
                          f"skipped: {p}:4: not UTF-8 (byte 0xff at byte 1)"]
    assert logged[-1] == "2 bad line(s) dropped (--skip-bad-rows)"


def test_gzipped_jsonl_reads_the_same(tmp_path):
    import gzip

    p = tmp_path / "x.jsonl.gz"
    with gzip.open(p, "wb") as fh:
        fh.write(b'{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]


# -- the results format --------------------------------------------------------------------------
RESULT = {"benchmark": "mind", "column": "MIND", "mode": "full", "label": "run", "protocol": {"name": "sampled"},
          "metrics": {"accuracy": 61.0}, "accounting": {"n_benchmark_users": 1}, "config": {"judge_model": "tiny"},
          "judge_seconds": 0.5, "items": [{"userid": "u1", "correct": True}]}


def test_results_round_trip_and_are_found_by_their_place(tmp_path):
    path = tmp_path / "run" / "full" / "mind.json"
    path.parent.mkdir(parents=True)
    write_results(path, RESULT)
    assert read_results(path) == RESULT
    (path.parent / "mind.stats.json").write_text("{}")  # a generator sidecar: not a results file
    (tmp_path / "run" / "notes.json").write_text("[]")  # not in a mode folder
    assert results_files(tmp_path) == [path]


@pytest.mark.parametrize("change, message", [
    ({"metrics": None}, "metrics: expected an object, got NoneType"),
    ({"mode": "sideways"}, "mode: expected one of ('direct', 'full', 'streaming'), got 'sideways'"),
    ({"label": 3}, "label: expected a string, got int"),
])
def test_a_malformed_results_file_is_one_line_naming_file_and_field(tmp_path, change, message):
    path = tmp_path / "run" / "full" / "mind.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(RESULT | change))
    with pytest.raises(DataError) as err:
        read_results(path)
    assert str(err.value) == f"{path}: {message}"


def test_table_stops_on_a_malformed_results_file_instead_of_skipping_it(tmp_path, capsys):
    good = tmp_path / "run" / "full" / "mind.json"
    good.parent.mkdir(parents=True)
    write_results(good, RESULT)
    assert table.main(["--results-dir", str(tmp_path), "--no-paper"]) == 0
    assert "| run | ours | 61.00 |" in capsys.readouterr().out
    bad = good.with_name("amazon.json")
    bad.write_text(json.dumps({k: v for k, v in RESULT.items() if k != "column"}))
    with pytest.raises(DataError, match=rf"^{bad}: column: missing"):
        table.main(["--results-dir", str(tmp_path), "--no-paper"])
    bad.write_text('{"mode": "full",')
    with pytest.raises(DataError, match=rf"^{bad}:1: invalid JSON"):
        table.main(["--results-dir", str(tmp_path), "--no-paper"])


def test_results_writer_refuses_a_result_the_readers_could_not_read(tmp_path):
    with pytest.raises(DataError, match="column: missing"):
        write_results(tmp_path / "x.json", {k: v for k, v in RESULT.items() if k != "column"})
    assert not (tmp_path / "x.json").exists()
