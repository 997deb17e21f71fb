"""Pruning: the global a/b/c filter and the mid-position rule select hand-computed rows."""
import json

import pytest

from alignxplore.data.scorer import pruning
from alignxplore.formats import DataError, read_jsonl, validate_rl_row


def beh(uid, i):
    return {"query": None, "chosen": f"{uid}-chosen-{i}", "rejected": f"{uid}-rejected-{i}"}


# Kept behaviours by hand: (user, index) -> (signal, logprob1). Every other behaviour is a
# filler with signal 0.5 and logprob1 -0.01 (in range, but at the top of the logprob1 ranking).
TARGETS = {
    ("u1", 2): (0.90, -1.00), ("u1", 6): (0.80, -1.01),
    ("u2", 1): (0.70, -1.02), ("u2", 3): (0.95, -1.03),
    ("u3", 0): (0.99, -1.04), ("u3", 4): (0.98, -1.05), ("u3", 5): (0.97, -1.06),
    ("u4", 4): (0.96, -1.07), ("u4", 5): (0.94, -1.08), ("u4", 1): (0.93, -1.09),
}
SIZES = {"u1": 8, "u2": 5, "u3": 6, "u4": 6, "f": 100}


def scored_users():
    users = []
    for uid, n in SIZES.items():
        behaviors = []
        for i in range(n):
            signal, lp = TARGETS.get((uid, i), (0.5, -0.01))
            if uid == "f" and i < 20:
                signal, lp = -1.0, -1.5  # in the logprob1 range, but cut by a (lowest signal)
            elif uid == "f" and i < 25:
                lp = -5.0  # high enough signal, cut by b (log 0.2 = -1.61)
            behaviors.append(dict(beh(uid, i), answer="A", logprob1=lp, logprob2=lp - signal, signal=signal))
        users.append({"uid": uid, "behaviors": behaviors, "cut_off": 0})
    return users


def write_scores(path, users):
    path.write_text("".join(json.dumps(u) + "\n" for u in users))
    return path


def test_filter_and_mid_rule_select_the_hand_computed_rows(tmp_path, capsys):
    # N = 125; a = 0.84 keeps 105 (drops the 20 signal -1 rows); b = 0.2 drops the 5 at -5.0;
    # n = 100 in range; c = 1.0 keeps positions [90, 100) = the 10 targets.
    src = write_scores(tmp_path / "scores.jsonl", scored_users())
    out = tmp_path / "rl.jsonl"
    assert pruning.main(["--scores", str(src), "--a", "0.84", "--b", "0.2", "--c", "1.0", "--out", str(out), "--null-query", "Please recommend."]) == 0
    rows = read_jsonl(out, validate_rl_row)
    by_uid = {r["uid"]: r for r in rows}
    assert list(by_uid) == ["u1", "u2", "u4"]  # u3: (0,4), (0,5) have mid 0; (4,5) has mid = L-2
    u1, u2, u4 = by_uid["u1"], by_uid["u2"], by_uid["u4"]
    assert (len(u1["history"]), u1["mid_position"], u1["distance_to_end"]) == (7, 2, 4)
    assert (len(u2["history"]), u2["mid_position"], u2["distance_to_end"]) == (4, 1, 2)
    # u4: pair (4, 5) fails (mid 4 = L-2 for L 6); the next pair in signal order is (4, 1)
    assert (len(u4["history"]), u4["mid_position"], u4["distance_to_end"]) == (5, 1, 3)
    assert u1["history"] == [dict(beh("u1", i), query="Please recommend.") for i in range(7)]
    assert u1["mid_record"] == {"logprob1": -1.00, "logprob2": pytest.approx(-1.90), "signal": 0.90}
    assert u1["last_record"]["signal"] == 0.80 and u1["signal_gap"] == pytest.approx(-0.10)
    assert u2["signal_gap"] == pytest.approx(0.25) and u4["signal_gap"] == pytest.approx(0.03)

    summary = json.loads((tmp_path / "rl.jsonl.summary.json").read_text())
    assert [s["behaviours"] for s in summary["stages"]] == [125, 105, 100, 10]
    assert summary["users_without_valid_pair"] == 1 and summary["rows"] == 3
    printed = capsys.readouterr().out
    assert "top a=0.84 by signal: 105 behaviours" in printed and "band [90, 100) of 100" in printed
    assert "P(correct) [0.9, 1.0]" in printed


def test_band_floors_are_exact_decimal_arithmetic():
    # 10 in-range records; c = 0.3 -> [floor(10 * 0.2), floor(10 * 0.3)) = [2, 3). Float
    # int(10 * (0.3 - 0.1)) would give 1 and keep two records.
    recs = [{"user": 0, "index": i, "logprob1": -0.1 * i, "logprob2": None, "signal": 1.0} for i in range(10)]
    kept, _ = pruning.select_records(recs, 1.0, 0.01, 0.3)
    assert [r["index"] for r in kept] == [2]
    # a floors too, and never below one record
    kept, stages = pruning.select_records(recs, 0.05, 0.01, 1.0)
    assert len(stages[1][1]) == 1 and kept == []  # band [max(1, 0), max(1, 0)) is empty


def test_unscored_behaviours_are_history_but_never_candidates(tmp_path):
    users = scored_users()
    for b in users[0]["behaviors"][6:]:  # u1's letters 6, 7 were beyond the scorer's max length
        for key in ("answer", "logprob1", "logprob2", "signal"):
            del b[key]
    rows, summary = pruning.prune(pruning.load_scored([str(write_scores(tmp_path / "s.jsonl", users))]), 0.84, 0.2, 1.0)
    assert summary["stages"][0]["behaviours"] == 123
    assert "u1" not in {r["uid"] for r in rows}  # its kept pair needed behaviour 6


def test_signal_key_logprob1_without_weak_model(tmp_path):
    users = scored_users()
    for u in users:
        for b in u["behaviors"]:
            del b["signal"], b["logprob2"]
    src = write_scores(tmp_path / "s.jsonl", users)
    with pytest.raises(DataError, match=r"s.jsonl:1: behaviors\[0\].signal: missing or not a number \(no weak model"):
        pruning.prune(pruning.load_scored([str(src)]), 0.5, 0.2, 1.0)
    rows, summary = pruning.prune(pruning.load_scored([str(src)]), 1.0, 0.2, 1.0, signal_key="logprob1")
    assert summary["stages"][0]["behaviours"] == 125
    for r in rows:
        validate_rl_row(r, "row")
        assert r["mid_record"]["logprob2"] is None and r["mid_record"]["signal"] == r["mid_record"]["logprob1"]


@pytest.mark.parametrize("mutate, message", [
    (lambda u: u["behaviors"][0].update(logprob1="high"), r"behaviors\[0\].logprob1: expected a log-probability \(a finite number <= 0\), got 'high'"),
    (lambda u: u["behaviors"][0].update(logprob1=5.0), r"behaviors\[0\].logprob1: expected a log-probability \(a finite number <= 0\), got 5.0"),
    (lambda u: u["behaviors"][0].update(logprob2=float("-inf")), r"behaviors\[0\].logprob2: expected a log-probability \(a finite number <= 0\), got -inf"),
    (lambda u: u["behaviors"][0].update(signal=float("nan")), r"behaviors\[0\].signal: expected a finite number, got nan"),
    (lambda u: u["behaviors"][1].pop("chosen"), r"behaviors\[1\].chosen: missing"),
    (lambda u: u.pop("behaviors"), r"behaviors: missing \(give exactly one of 'behaviors' or 'history'\)"),
    (lambda u: u.pop("uid"), r"uid: missing"),
])
def test_bad_scored_rows_are_one_line_errors(tmp_path, mutate, message):
    users = scored_users()
    mutate(users[0])
    src = write_scores(tmp_path / "bad.jsonl", users)
    with pytest.raises(DataError, match=r"bad.jsonl:1: " + message) as err:
        pruning.load_scored([str(src)])
    assert "\n" not in str(err.value)


def test_duplicate_uid_across_shards_and_bad_thresholds(tmp_path):
    users = scored_users()
    a = write_scores(tmp_path / "s.rank0", users[:2])
    write_scores(tmp_path / "s.rank1", users[1:3])
    with pytest.raises(DataError, match=r"s.rank1:1: uid: 'u2' already read at .*s.rank0:2"):
        pruning.load_scored([str(tmp_path / "s.rank*")])
    with pytest.raises(DataError, match="c: 1.5 is not in"):
        pruning.prune(pruning.load_scored([str(a)]), 0.5, 0.5, 1.5)
