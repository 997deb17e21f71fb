"""Converters: each tiny raw fixture (real raw format) -> user rows + a benchmark file the
evaluation loader accepts; bad raw input -> one line; expected gaps -> counted skips."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alignxplore.data.converters import amazon, mind, movielens, selection
from alignxplore.data.converters.__main__ import main
from alignxplore.data.converters.common import split_users
from alignxplore.eval.registry import load_benchmark_rows
from alignxplore.formats import DataError, chat_to_triples, read_jsonl, validate_benchmark_row, validate_user_row

RAW = Path(__file__).parent / "fixtures" / "raw"


def news(i):
    return f"Title: Headline number {i} about {['news', 'sports', 'finance', 'travel', 'health', 'lifestyle', 'autos', 'weather', 'tv', 'music', 'video', 'foodanddrink'][i - 1]}\nAbstract: Abstract of story {i}."


def run(*argv):
    assert main(list(map(str, argv))) == 0


def test_mind_pairs_order_threshold_and_benchmark(tmp_path):
    train, test, skips = mind.convert([RAW / "mind/train", RAW / "mind/dev"], min_pairs=5)
    users = {u["uid"]: u["behaviors"] for u in train + test}
    assert sorted(users) == ["U1", "U3", "U4", "U5"]  # U2 has 3 pairs (one dropped: N99 unknown)
    # U1: longest history (4 clicks), then impressions in Time order (the 9 PM one first)
    assert [b["chosen"] for b in users["U1"]] == [news(i) for i in (1, 2, 3, 4, 8, 9, 5)]
    assert [b["rejected"] for b in users["U1"][4:6]] == [news(10), news(10)]
    assert users["U1"][6]["rejected"] in (news(6), news(7))
    assert all(b["rejected"] not in [news(i) for i in (1, 2, 3, 4)] for b in users["U1"][:4])  # not a history click
    assert [b["chosen"] for b in users["U3"]] == [news(i) for i in (1, 3, 5, 7, 9, 11, 2, 6, 10)]
    assert [b["chosen"] for b in users["U4"]] == [news(i) for i in (1, 3, 5, 7, 9, 11)]  # train + dev folders
    assert all(b["query"] is None for u in users.values() for b in u)
    assert skips == {"impression pair with a news id missing from news.tsv": 1, "impression token without a -0/-1 label": 1, "user with fewer than 5 pairs": 1}
    assert [u["uid"] for u in mind.convert([RAW / "mind/train", RAW / "mind/dev"])[0] + mind.convert([RAW / "mind/train", RAW / "mind/dev"])[1]] == ["U3"]  # default >= 9

    run("mind", "--raw", RAW / "mind/train", RAW / "mind/dev", "--out", tmp_path, "--min-interactions", "5", "--test-fraction", "0.5")
    bench = load_benchmark_rows(tmp_path / "benchmark/mind_upi.jsonl")
    test_users = read_jsonl(tmp_path / "users/mind_test.jsonl", validate_user_row)
    assert len(test_users) == 2 and len(read_jsonl(tmp_path / "users/mind_train.jsonl", validate_user_row)) == 2
    assert sorted(f"mind_{r['userid']}" for r in bench) == sorted(u["uid"] for u in test_users)  # user rows carry the dataset prefix
    for row in bench:
        full = users[row["userid"]]
        assert row["target"]["chosen"] == full[-1]["chosen"] and len(row["history"]) == len(full) - 1
        assert {b["query"] for b in row["history"]} == {"Please recommend some news to me."}
    summary = json.loads((tmp_path / "users/mind_summary.json").read_text())
    assert summary["benchmark_rows"] == 2 and summary["skipped"]["user with fewer than 5 pairs"] == 1
    # same seed, same files
    again = tmp_path / "again"
    run("mind", "--raw", RAW / "mind/train", RAW / "mind/dev", "--out", again, "--min-interactions", "5", "--test-fraction", "0.5")
    assert (again / "benchmark/mind_upi.jsonl").read_text() == (tmp_path / "benchmark/mind_upi.jsonl").read_text()


def test_amazon_meta_join_time_order_negatives_and_split(tmp_path):
    train, test, skips = amazon.convert(RAW / "amazon/Books_5.json", RAW / "amazon/meta_Books.json", min_interactions=3)
    assert (len(train), len(test)) == (3, 1)  # 4 users; ceil(0.2 * 4) = 1 test user
    assert sorted(u["uid"] for u in train + test) == [0, 1, 2, 3]
    by_first = {u["behaviors"][0]["chosen"].split("\n")[0]: u for u in train + test}
    a1 = by_first["Title: Cooking Slowly"]["behaviors"]  # A1 in time order; B9 has no metadata
    assert [b["chosen"] for b in a1] == ["Title: Cooking Slowly\nDescription: Recipes for patient cooks.",
                                         "Title: The River Path\nDescription: A quiet novel about rivers.",
                                         "Title: Space Wars\nDescription: Loud battles. Sequel to Space Battles."]
    rejected = [b["rejected"] for b in a1]
    assert len(set(rejected)) == 3 and not set(rejected) & {b["chosen"] for b in a1}
    assert skips == {"metadata entry without a title": 1, "review of an item missing from the metadata": 1, "user with fewer than 3 reviews": 1}
    run("amazon", "--reviews", RAW / "amazon/Books_5.json", "--meta", RAW / "amazon/meta_Books.json", "--out", tmp_path, "--min-interactions", "3")
    bench = load_benchmark_rows(tmp_path / "benchmark/amazon_upi.jsonl")
    assert len(bench) == 1 and bench[0]["userid"] == str(test[0]["uid"])
    assert bench[0]["history"][0]["query"] == "Please recommend some books to me."


def test_split_matches_scikit_learn_when_installed():
    ids = [f"user{i}" for i in range(23)]
    train, test = split_users(ids, 0.2, 42)
    assert len(test) == 5 and sorted(train + test) == sorted(ids)
    sklearn = pytest.importorskip("sklearn.model_selection")
    assert (train, test) == tuple(sklearn.train_test_split(ids, test_size=0.2, random_state=42))


def test_movielens_positives_in_time_order_and_unknown_movies_counted(tmp_path):
    train, test, skips = movielens.convert(RAW / "movielens/ratings.csv", RAW / "movielens/movies.csv", min_interactions=3)
    users = {u["uid"]: u["behaviors"] for u in train + test}
    assert sorted(users) == [1, 2, 4, 5, 6] and len(test) == 1  # user 3 has 2 ratings
    expected_u1 = ["Title: Toy Story (1995), Genres: Adventure|Animation|Children|Comedy|Fantasy", "Title: GoldenEye (1995), Genres: Action|Adventure|Thriller",
                   "Title: American President, The (1995), Genres: Comedy|Drama|Romance"]
    chosen = [b["chosen"] for b in users[1]]
    assert chosen == [c for c in expected_u1 if c in chosen]  # time order (a pair with an unknown negative is dropped)
    for uid, beh in users.items():
        assert not {b["rejected"] for b in beh} & {b["chosen"] for b in beh}
    n_pairs = sum(len(b) for b in users.values())
    assert skips["user with fewer than 3 ratings"] == 1 and skips["rating of a movie missing from movies.csv"] == 1
    assert n_pairs + skips["rating of a movie missing from movies.csv"] + skips.get("negative movie missing from movies.csv", 0) == 16
    run("movielens", "--ratings", RAW / "movielens/ratings.csv", "--movies", RAW / "movielens/movies.csv", "--out", tmp_path, "--min-interactions", "3", "--benchmark-users", "1")
    bench = load_benchmark_rows(tmp_path / "benchmark/movielens_upi.jsonl")
    assert len(bench) == 1 and bench[0]["history"][0]["query"] == "Please recommend some movies to me."


def test_alignx_users_and_benchmark(tmp_path):
    run("alignx", "--train", RAW / "alignx/alignx.jsonl", "--test", RAW / "alignx/alignx.jsonl", "--min-history", "2", "--out", tmp_path)
    users = read_jsonl(tmp_path / "users/alignx_train.jsonl", validate_user_row)
    assert [(u["uid"], len(u["behaviors"])) for u in users] == [("alignx_0", 3)]
    bench = load_benchmark_rows(tmp_path / "benchmark/alignx_upi.jsonl")
    assert [r["userid"] for r in bench] == ["alignx_0", "alignx_1"]
    assert bench[0]["target"] == {"query": "How should I plan a trip?", "chosen": "Plan around quiet museums.", "rejected": "Go to every club."}
    assert bench[0]["ground_truth_persona"] == "Prefers calm, reflective answers."
    assert bench[0]["history"][2] == {"query": "Post 0.2: what do you think?", "chosen": "A thoughtful reply 0.2", "rejected": "A dismissive reply 0.2"}
    summary = json.loads((tmp_path / "users/alignx_summary.json").read_text())
    assert summary["skipped"] == {"row with fewer than 2 feedback items": 2, "row without feedback items": 1}


def test_defaults_follow_the_layout(tmp_path, monkeypatch):
    """No path flags: raw files from data/raw/<dataset>/, user rows to data/users/, the benchmark to
    data/benchmark/ (README "Layout"), relative to the working directory like every launcher."""
    import shutil
    shutil.copytree(RAW / "movielens", tmp_path / "data/raw/movielens")
    shutil.copytree(RAW / "hicupid", tmp_path / "data/raw/hicupid")
    monkeypatch.chdir(tmp_path)
    run("movielens", "--min-interactions", "3", "--benchmark-users", "1")
    run("hicupid")
    assert all(u["uid"].startswith("movielens_") for u in read_jsonl("data/users/movielens_train.jsonl", validate_user_row))
    assert len(load_benchmark_rows(tmp_path / "data/benchmark/movielens_upi.jsonl")) == 1
    assert len(read_jsonl("data/benchmark/hicupid_upi.jsonl")) == 2
    with pytest.raises(SystemExit, match="data/raw/alignx/train nor data/raw/alignx/test exists"):
        main(["alignx"])


def as_triples(row, where="row"):
    return validate_benchmark_row(dict(row, history=chat_to_triples(row["history"], where)), where)


def test_personamem_chat_history(tmp_path):
    run("personamem", "--raw", RAW / "personamem/personamem.jsonl", "--out", tmp_path)
    rows = read_jsonl(tmp_path / "benchmark/personamem_upi.jsonl")
    assert [r["userid"] for r in rows] == ["0", "1"]
    assert rows[0]["history"][0] == {"role": "system", "content": "Persona: a runner recovering from a knee injury."}  # kept as given
    t0, t1 = as_triples(rows[0]), as_triples(rows[1])
    assert [h["query"] for h in t0["history"]] == ["I hurt my knee last spring.", "Mostly, but long runs still hurt."]
    assert t1["history"] == [{"query": "I stopped eating meat this year.", "chosen": "Great, lots of options then.", "rejected": "No negative sample."}]
    assert rows[0]["target"]["rejected"] in ("Run as much as you can every day.", "Skip stretching, it does not matter.", "Sprint daily.")
    assert rows[1]["target"] == {"query": "What should I cook tonight?", "chosen": "A vegetarian curry, since you avoid meat.", "rejected": "A steak."}
    run("personamem", "--raw", RAW / "personamem/personamem.jsonl", "--out", tmp_path / "t", "--history-format", "triples")
    assert load_benchmark_rows(tmp_path / "t/benchmark/personamem_upi.jsonl")[0]["history"] == t0["history"]


def test_hicupid_records_as_formats_section_1(tmp_path):
    run("hicupid", "--qa", RAW / "hicupid/qa_test_2.jsonl", "--dialogues", RAW / "hicupid/dialogue_test.jsonl", "--out", tmp_path)
    rows = read_jsonl(tmp_path / "benchmark/hicupid_upi.jsonl")
    assert [(r["userid"], r["qa_index"], r["type"], r["dialogue_id"]) for r in rows] == [("hicupid_0", 0, "persona", ["d1", "d2"]), ("hicupid_1", 1, "persona", ["d3", "d404"])]
    assert [m["content"] for m in rows[0]["history"]] == ["I got new binoculars.", "Nice! What will you use them for?", "I saw a heron this morning!",
                                                          "Herons are wonderful. Where was it?", "Weekends are my birdwatching time.", "Sounds relaxing."]
    assert rows[0]["golden"] == "The user loves birdwatching." and rows[1]["golden"] == "The user dislikes strong coffee."
    assert rows[0]["target"] == {"query": "Can you suggest a weekend activity?", "chosen": "Since you love birdwatching, visit the wetland reserve at dawn.", "rejected": "You could go to a movie."}
    for r in rows:
        assert len(as_triples(r)["history"]) == len(r["history"]) // 2
    summary = json.loads((tmp_path / "users/hicupid_summary.json").read_text())
    assert summary["skipped"] == {"dialogue id missing from the dialogue file": 1, "qa row not of type persona": 1}


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: ["mind", "--raw", write(d / "m/news.tsv", "N1\tc\ts\tT\tA\tu\t[]\t[]\n").parent, "--out", d]
     if write(d / "m/behaviors.tsv", "1\tU1\t11/15/2019 10:00:00 AM\tN1\n") else None, r"m/behaviors.tsv:1: expected 5 tab/comma-separated fields, got 4"),
    (lambda d: ["mind", "--raw", write(d / "m/news.tsv", "N1\tc\ts\tT\tA\tu\t[]\t[]\n").parent, "--out", d]
     if write(d / "m/behaviors.tsv", "1\tU1\tyesterday\tN1\tN1-1\n") else None, r"m/behaviors.tsv:1: Time: 'yesterday' is not like"),
    (lambda d: ["amazon", "--reviews", write(d / "r.json", '{"asin": "B1", "unixReviewTime": 1}\n'), "--meta", RAW / "amazon/meta_Books.json", "--out", d],
     r"r.json:1: reviewerID: missing column"),
    (lambda d: ["amazon", "--reviews", write(d / "r.json", '{"reviewerID": "A", "asin": "B1", "unixReviewTime": 1}\n{oops\n'), "--meta", RAW / "amazon/meta_Books.json", "--out", d],
     r"r.json:2: neither JSON|r.json:2: invalid JSON"),
    (lambda d: ["movielens", "--ratings", write(d / "ratings.csv", "userId,movieId,rating\n1,1,4.0\n"), "--movies", RAW / "movielens/movies.csv", "--out", d],
     r"ratings.csv:1: timestamp: missing column"),
    (lambda d: ["alignx", "--test", write(d / "a.jsonl", '{"prompt": "p", "chosen": "c", "rejected": "r"}\n'), "--out", d],
     r"a.jsonl:1: Pair-wise Comparative Feedback: missing column"),
    (lambda d: ["personamem", "--raw", write(d / "p.jsonl", '{"user_query": "q", "correct_answer": "c", "incorrect_answers": ["x"], "related_conversation_snippet": [{"role": "bot", "content": "hi"}]}\n'), "--out", d],
     r"p.jsonl:1: related_conversation_snippet\[0\].role: expected 'user', 'assistant' or 'system'"),
    (lambda d: ["hicupid", "--qa", write(d / "q.jsonl", '{"type": "persona", "dialogue_id": ["d1"], "question": "q", "personalized_answer": "a", "general_answer": "b", "metadata": {}}\n'),
                "--dialogues", RAW / "hicupid/dialogue_test.jsonl", "--out", d], r"q.jsonl:1: metadata.persona: missing relation/entity"),
    (lambda d: ["movielens", "--ratings", d / "nope.csv", "--movies", RAW / "movielens/movies.csv", "--out", d], r"nope.csv: no such file"),
])
def test_bad_raw_input_is_one_line(tmp_path, make, message):
    argv = [str(a) for a in make(tmp_path)]
    with pytest.raises(DataError, match=message) as err:
        main(argv)
    assert "\n" not in str(err.value)


def test_command_line_error_has_no_traceback(tmp_path):
    bad = write(tmp_path / "ratings.csv", "userId,movieId,rating\n")
    proc = subprocess.run([sys.executable, "-m", "alignxplore.data.converters", "movielens", "--ratings", str(bad), "--movies", str(RAW / "movielens/movies.csv"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=dict(os.environ), cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "timestamp: missing column" in proc.stderr


def test_local_hub_copies_parquet_and_save_to_disk(tmp_path):
    """A local copy of a hub dataset (parquet under data/) or a datasets.save_to_disk folder
    reads the same rows as the JSON-lines file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    rows = [json.loads(line) for line in (RAW / "alignx/alignx.jsonl").read_text().splitlines()]
    (tmp_path / "hub/data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "hub/data/train-00000-of-00001.parquet")
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    expected, _ = selection.alignx_benchmark(RAW / "alignx/alignx.jsonl")
    for folder in (tmp_path / "hub", tmp_path / "saved"):
        got, _ = selection.alignx_benchmark(folder)
        assert [(r["userid"], r["history"], r["target"]) for r in got] == [(r["userid"], r["history"], r["target"]) for r in expected]
