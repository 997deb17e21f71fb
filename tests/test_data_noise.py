"""Noisy-history sets keep both orders and the ratio, are seeded, and are registered benchmarks."""
import json
from pathlib import Path

import pytest

from alignxplore.data.converters import noise
from alignxplore.eval.registry import load_benchmark_rows, load_registry
from alignxplore.formats import NO_NEGATIVE_SAMPLE, DataError, chat_to_triples, read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def base_rows(n_users=4, n=8, tag="u"):
    return [{"userid": f"{tag}{i}", "history": [{"query": f"q{i}.{k}", "chosen": f"{tag}{i}-c{k}", "rejected": f"{tag}{i}-r{k}"} for k in range(n + i)],
             "target": {"query": "t", "chosen": "a", "rejected": "b"}} for i in range(n_users)]


def origin(item):
    return item["chosen"].split("-")[0]


@pytest.mark.parametrize("mode", noise.MODES)
def test_order_ratio_and_positions(mode):
    base, src = base_rows(), base_rows(2, 20, tag="m")
    out = noise.make_noisy(base, src, mode=mode, ratio=0.75, seed=42, source_name="ml")
    for i, (row, new) in enumerate(zip(base, out)):
        k = int(len(row["history"]) * 0.75)
        donor = src[i % 2]["history"]
        mine = [h for h in new["history"] if origin(h) == row["userid"]]
        injected = [h for h in new["history"] if origin(h) != row["userid"]]
        assert mine == row["history"]  # every own behaviour, in order
        assert len(injected) == k == new["noise"]["inserted"]
        idx = [donor.index(h) for h in injected]
        assert idx == sorted(idx)  # noise keeps the source's order
        assert [new["history"][p] for p in new["noise"]["positions"]] == injected
        assert new["target"] == row["target"]
        if mode == "append":
            assert new["history"][: len(row["history"])] == row["history"]
        elif mode == "prepend":
            assert new["history"][k:] == row["history"]
    again = noise.make_noisy(base, src, mode=mode, ratio=0.75, seed=42, source_name="ml")
    assert again == out
    if mode == "interleave":
        assert noise.make_noisy(base, src, mode=mode, ratio=0.75, seed=7, source_name="ml") != out
        assert any(p not in range(len(base[0]["history"]), 99) for p in out[0]["noise"]["positions"])  # not just appended


def test_ratio_capped_by_the_donor_and_next_user():
    base = base_rows(3, 4)
    out = noise.make_noisy(base, None, mode="append", ratio=2.0, seed=1, source_name=noise.NEXT_USER)
    assert [r["noise"]["from_user"] for r in out] == ["u1", "u2", "u0"]
    assert [r["noise"]["inserted"] for r in out] == [5, 6, 4]  # min(2 * own, donor's length)
    pairs = noise.make_noisy(base_rows(5, 4), None, mode="prepend", ratio=0.5, seed=1, source_name=noise.NEXT_USER_PAIRS)
    assert [(r["userid"], r["noise"]["from_user"]) for r in pairs] == [("u0", "u1"), ("u2", "u3")]  # the authors' HiCUPID pairing


def chat_row(uid, turns):
    msgs = []
    for t in range(turns):
        msgs += [{"role": "user", "content": f"{uid} asks {t}"}, {"role": "assistant", "content": f"{uid} answer {t}"}]
    return {"userid": uid, "history": msgs, "target": {"query": "q", "chosen": "p", "rejected": "g"}}


def test_chat_histories_move_whole_turns():
    base = [chat_row("a", 4), chat_row("b", 6)]
    out = noise.make_noisy(base, None, mode="interleave", ratio=0.5, seed=3, source_name=noise.NEXT_USER)
    triples = chat_to_triples(out[0]["history"], "row")
    assert len(triples) == 4 + 2 and out[0]["noise"]["unit"] == "chat turn"
    for t in triples:  # no question separated from its answer
        assert t["query"].split()[0] == t["chosen"].split()[0]
    with pytest.raises(DataError, match="differ in shape"):
        noise.make_noisy([chat_row("a", 2)], base_rows(1), mode="append", ratio=0.5, seed=0, source_name="x")


def test_registered_noisy_sets_load_in_the_evaluation(tmp_path, bench_dir):
    registry = load_registry(ROOT / "eval/benchmarks_noisy.yaml")
    commands = {
        "alignx_movielens_interleave_75": ["--base", bench_dir / "alignx_upi.jsonl", "--source", bench_dir / "movielens_upi.jsonl", "--mode", "interleave", "--ratio", "0.75"],
        **{f"hicupid_next_user_{m}_50": ["--base", bench_dir / "hicupid_upi.jsonl", "--source", "next-user-pairs", "--mode", m, "--ratio", "0.5"] for m in noise.MODES},
        **{f"{b}_no_negatives": ["--base", bench_dir / f"{b}_upi.jsonl", "--mode", "no-negatives"]
           for b in ("mind", "amazon", "alignx", "movielens", "concise_detail", "friendly_unfriendly", "student_phd")},
    }
    assert sorted(b.name for b in registry) == sorted(commands)
    for bench in registry:
        assert noise.main([str(a) for a in commands[bench.name]] + ["--out", str(tmp_path / bench.file)]) == 0
        rows = load_benchmark_rows(bench.path(tmp_path))
        if bench.name.endswith("_no_negatives"):
            assert rows and sum(r["noise"]["replaced"] for r in rows) > 0
            assert {h["rejected"] for r in rows for h in r["history"]} <= {NO_NEGATIVE_SAMPLE}
        else:
            assert rows and all(r["noise"]["inserted"] > 0 for r in rows)
    mixed = read_jsonl(tmp_path / "alignx_movielens_interleave_75_upi.jsonl")
    base = read_jsonl(bench_dir / "alignx_upi.jsonl")
    assert [len(r["history"]) for r in mixed] == [len(b["history"]) + int(len(b["history"]) * 0.75) for b in base]


def test_bad_base_file_is_one_line(tmp_path):
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"userid": "x"}) + "\n")
    with pytest.raises(DataError, match=r"b.jsonl:1: history: missing"):
        noise.main(["--base", str(bad), "--source", "next-user", "--mode", "append", "--ratio", "0.5", "--out", str(tmp_path / "o.jsonl")])


def test_no_negatives_replaces_every_rejected_and_keeps_the_rest():
    base = base_rows(3, 4)
    base[0]["history"][1]["rejected"] = NO_NEGATIVE_SAMPLE  # already a filler: kept, not counted
    chat = chat_row("c", 2)
    out = noise.drop_negatives(base + [chat])
    for row, new in zip(base, out):
        assert [h["rejected"] for h in new["history"]] == [NO_NEGATIVE_SAMPLE] * len(row["history"])
        assert [(h["query"], h["chosen"]) for h in new["history"]] == [(h["query"], h["chosen"]) for h in row["history"]]
        assert new["target"] == row["target"] and new["userid"] == row["userid"]  # the judge still sees both items
    assert [r["noise"]["replaced"] for r in out] == [3, 5, 6, 0]
    assert out[3]["history"] == chat["history"]  # chat histories already have no negatives
    assert base[1]["history"][0]["rejected"] == "u1-r0"  # the input is not modified


def test_no_negatives_cli_refuses_injection_flags(tmp_path, bench_dir):
    with pytest.raises(SystemExit):
        noise.main(["--base", str(bench_dir / "alignx_upi.jsonl"), "--mode", "no-negatives", "--ratio", "0.5", "--out", str(tmp_path / "o.jsonl")])
    with pytest.raises(SystemExit):
        noise.main(["--base", str(bench_dir / "alignx_upi.jsonl"), "--mode", "append", "--out", str(tmp_path / "o.jsonl")])
