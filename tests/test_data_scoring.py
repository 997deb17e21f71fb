"""Scoring: one pass per user gives the per-behaviour reference logprob1; resumable; sharded."""
import functools
import json

import pytest

from alignxplore.data.scorer import scoring
from alignxplore.data.scorer.text import encode_user, letter_token_ids, render
from alignxplore.formats import DataError


def user(uid, n, query=None):
    return {"uid": uid, "behaviors": [{"query": query, "chosen": f"item {uid} liked number {i}", "rejected": f"other thing {i} of {uid}"} for i in range(n)]}


USERS = [user("u1", 5), user("u2", 9, query="Which one?"), user("u3", 3), {"uid": "empty", "behaviors": []}, user(4, 4)]


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.jsonl"
    path.write_text("".join(json.dumps(u) + "\n" for u in USERS))
    return path


@pytest.fixture(scope="module")
def weak_model_dir(tmp_path_factory):
    from alignxplore.demo.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("weak") / "tiny-weak", seed=1)


def run(users_file, model, out, *extra):
    argv = ["--users", str(users_file), "--model", model, "--out", str(out), "--device", "cpu", "--batch-size", "2", *extra]
    return scoring.score(scoring.build_parser().parse_args(argv))


def read(path):
    return {r["uid"]: r for r in map(json.loads, path.read_text().splitlines())}


def scored(rec):
    return [b for b in rec["behaviors"] if "logprob1" in b]


def assert_same_records(got: dict, want: dict) -> None:
    """Equal records, log-probabilities to 1e-4: a user scored alone (a resumed run) and in a
    padded batch take different float paths (batch shape, kernels, thread count), so the last
    bits of a log-probability may differ; everything else must be identical."""
    assert set(got) == set(want)
    for uid in want:
        strip = lambda rec: {**rec, "behaviors": [{k: v for k, v in b.items() if k not in ("logprob1", "logprob2", "signal")} for b in rec["behaviors"]]}  # noqa: E731
        assert strip(got[uid]) == strip(want[uid]), uid
        for key in ("logprob1", "logprob2", "signal"):
            assert [b.get(key) is None for b in got[uid]["behaviors"]] == [b.get(key) is None for b in want[uid]["behaviors"]], (uid, key)
            assert [b[key] for b in got[uid]["behaviors"] if key in b] == pytest.approx([b[key] for b in want[uid]["behaviors"] if key in b], abs=1e-4), (uid, key)


@functools.lru_cache(maxsize=2)
def cpu_model(model_dir):
    return scoring.load_model(model_dir, "cpu")


def reference(model_dir, row, **kw):
    model, tok = cpu_model(model_dir)
    enc = encode_user(row, tok, max_length=kw.get("max_length", 16384), last=kw.get("last", 100))
    return enc, scoring.reference_logprobs(model, enc, letter_token_ids(tok))


def test_text_format_and_letter_positions(tokenizer):
    row = {"uid": "u", "behaviors": [{"query": None, "chosen": "yes", "rejected": "no"}, {"query": "q", "chosen": "c", "rejected": "r"}]}
    enc = encode_user(row, tokenizer, max_length=1000)
    text, pos = render(row["behaviors"], enc.letters)
    assert text.count("<prompt>None</prompt>") == 1 and "<prompt>q</prompt>" in text
    for k, (c, letter) in enumerate(zip(pos, enc.letters)):
        assert text[c - len("<preference> "): c + 1] == f"<preference> {letter}"
        # the chosen item sits under the letter that is the answer
        assert f"<option_{letter}>{row['behaviors'][k]['chosen']}</option_{letter}>" in text
        assert tokenizer.decode([enc.input_ids[enc.letter_tokens[k]]]) == f" {letter}"
    # seeded per user: the same letters whatever else is in the batch
    assert encode_user(row, tokenizer, max_length=1000).letters == enc.letters


@pytest.mark.slow
def test_one_pass_per_user_matches_per_behaviour_reference(users_file, tiny_model_dir, weak_model_dir, tmp_path):
    out = tmp_path / "scores.jsonl"
    stats = run(users_file, tiny_model_dir, out, "--weak-model", weak_model_dir)
    assert stats["users_scored"] == 4 and stats["users_skipped_empty"] == 1 and stats["behaviours_scored"] == 21
    got = read(out)
    assert set(got) == {"u1", "u2", "u3", "4"}
    values = []
    for row in USERS:
        if not row["behaviors"]:
            continue
        rec = got[str(row["uid"])]
        enc, ref1 = reference(tiny_model_dir, row)
        _, ref2 = reference(weak_model_dir, row)
        assert [{k: b[k] for k in ("query", "chosen", "rejected")} for b in rec["behaviors"]] == row["behaviors"]
        assert len(scored(rec)) == len(row["behaviors"])
        assert [s["answer"] for s in scored(rec)] == enc.letters
        for s, r1, r2 in zip(scored(rec), ref1, ref2):
            assert s["logprob1"] == pytest.approx(r1, abs=1e-4)
            assert s["logprob2"] == pytest.approx(r2, abs=1e-4)
            assert s["signal"] == pytest.approx(s["logprob1"] - s["logprob2"], abs=1e-9)
            values.append(s["logprob1"])
    assert max(values) - min(values) > 1e-3  # the comparison can tell positions apart


@pytest.mark.slow
def test_max_length_cut_last_n_resume_and_shards(users_file, tiny_model_dir, tmp_path):
    out = tmp_path / "cut.jsonl"
    run(users_file, tiny_model_dir, out, "--max-length", "220", "--last", "6")
    rec = read(out)["u2"]
    assert [{k: b[k] for k in ("query", "chosen", "rejected")} for b in rec["behaviors"]] == USERS[1]["behaviors"][-6:]
    n = len(scored(rec))
    assert 0 < n < 6 and rec["cut_off"] == 6 - n and scored(rec) == rec["behaviors"][:n]  # the cut is at the end
    enc, ref = reference(tiny_model_dir, USERS[1], max_length=220, last=6)
    assert [s["logprob1"] for s in scored(rec)] == pytest.approx(ref, abs=1e-4)

    # a killed run: drop the last record and leave half a line; the rerun scores only the rest
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    stats = run(users_file, tiny_model_dir, out, "--max-length", "220", "--last", "6")
    assert stats["users_scored"] == 1
    assert_same_records(read(out), {json.loads(line)["uid"]: json.loads(line) for line in lines})

    # two data-parallel shards = the single run
    for rank in (0, 1):
        run(users_file, tiny_model_dir, tmp_path / "sh.jsonl", "--max-length", "220", "--last", "6", "--rank", str(rank), "--world-size", "2")
    merged = read(tmp_path / "sh.jsonl.rank0") | read(tmp_path / "sh.jsonl.rank1")
    assert set(merged) == set(read(out))
    for uid, r in merged.items():
        assert [s["logprob1"] for s in scored(r)] == pytest.approx([s["logprob1"] for s in scored(read(out)[uid])], abs=1e-4)


def test_bad_user_rows_are_one_line_errors(tmp_path, tiny_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(USERS[0]) + "\n" + json.dumps({"uid": "x", "behaviors": [{"query": "q", "chosen": "a"}]}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: behaviors\[0\].rejected: missing"):
        run(bad, tiny_model_dir, tmp_path / "o.jsonl")
    bad.write_text(json.dumps(USERS[0]) + "\n" + json.dumps(USERS[0]) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: uid: 'u1' already at .*bad.jsonl:1"):
        run(bad, tiny_model_dir, tmp_path / "o.jsonl")


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tolerance", [("fp32", 1e-3), ("auto", 0.1)])
def test_cuda_scoring_matches_cpu_reference(users_file, tiny_model_dir, tmp_path, dtype, tolerance):
    """On a GPU node (`pytest -m gpu`): the CUDA path (device cuda:LOCAL_RANK; fp32 tight, the
    default bf16 within its precision) gives the CPU fp32 per-behaviour reference."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    out = tmp_path / "gpu.jsonl"
    argv = ["--users", str(users_file), "--model", tiny_model_dir, "--out", str(out), "--batch-size", "2", "--dtype", dtype]
    scoring.score(scoring.build_parser().parse_args(argv))
    got = read(out)
    for row in USERS:
        if row["behaviors"]:
            _, ref = reference(tiny_model_dir, row)
            assert [s["logprob1"] for s in scored(got[str(row["uid"])])] == pytest.approx(ref, abs=tolerance)


@pytest.mark.slow
def test_scored_rows_are_what_synthesis_and_pruning_read(users_file, tiny_model_dir, tmp_path):
    """The output is the scored-user-row format: behaviours carry logprob1 in place."""
    from alignxplore.data.scorer import pruning

    out = tmp_path / "s.jsonl"
    run(users_file, tiny_model_dir, out, "--last", "4")
    users = pruning.load_scored([str(out)])
    rows, summary = pruning.prune(users, 1.0, 1e-9, 1.0, signal_key="logprob1")
    assert summary["stages"][0]["behaviours"] == 4 + 4 + 3 + 4
    from alignxplore.data.synth.users import read_users  # the SFT synthesis reader (issue 10)

    read = list(read_users(out))
    assert all("logprob1" in b for u in read for b in u["behaviors"])
