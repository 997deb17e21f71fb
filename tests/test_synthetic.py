"""The synthetic world (formats every stage reads) and the embedding judge (a real encoder)."""
import random
import re

import pytest

from alignxplore.backends import load_backend
from alignxplore.backends.embedding import parse_judge_conversation
from alignxplore.eval.registry import load_benchmark_rows, load_registry
from alignxplore.formats import read_jsonl, validate_rl_row, validate_sft_row
from alignxplore.judge import JudgeItem
from alignxplore.prompts import NO_PAST_SUMMARY_QUOTED, judge_messages
from alignxplore.demo.world import GENRES, REC_QUERY, REFERENCE_SUMMARIZERS, SEL_QUERIES, WorldConfig, write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    write_world(out, WorldConfig(sft_users=6, rl_users=5, test_users=120, seed=3))
    return out


@pytest.fixture(scope="module")
def encoder():
    return load_backend("embedding", "packaged")


def test_world_is_written_in_the_real_formats(world, tokenizer):
    sft = read_jsonl(world / "sft.jsonl", validate_sft_row)
    assert len(sft) == 12  # two rows per SFT user
    assert "Not Provided." in sft[0]["prompt"][1]["content"]
    assert "The user prefers" in sft[1]["prompt"][1]["content"]  # row 2 carries the past summary
    assert sft[0]["completion"][0]["content"].startswith("<think>\n")
    rl = read_jsonl(world / "rl.jsonl", validate_rl_row)
    assert len(rl) == 5 and all(1 <= r["mid_position"] <= len(r["history"]) - 3 for r in rl)
    registry = load_registry(world / "benchmarks" / "benchmarks.yaml")
    assert [b.split for b in registry] == ["recommendation", "half"]
    for bench in registry:
        rows = load_benchmark_rows(bench.path(world / "benchmarks"))
        assert len(rows) == 120
    # every genre word is one token, so a tiny policy can name it in one step
    for g in GENRES:
        assert len(tokenizer.encode(" " + g, add_special_tokens=False)) == 1


def test_sft_rows_have_the_prompt_shapes_of_the_later_stages(tmp_path):
    """SFT rows cover what RL and evaluation render from an 18-behaviour user: no past with
    6..18 behaviours (both renderings of the empty slot), a past summary with 2..12; users of
    both benchmark styles. Bounds hold for any draw: they are the ranges the cuts come from."""
    write_world(tmp_path, WorldConfig(sft_users=40, rl_users=4, test_users=4, history_len=18, seed=1))
    sft = read_jsonl(tmp_path / "sft.jsonl", validate_sft_row)
    assert len(sft) == 80
    first, second = sft[0::2], sft[1::2]

    def n_behaviours(row):
        return len(re.findall(r"=====Tripl?e \d+=====", row["prompt"][1]["content"]))

    assert all(6 <= n_behaviours(r) <= 18 and "Not Provided." in r["prompt"][1]["content"] for r in first)
    assert all(2 <= n_behaviours(r) <= 12 and "The user prefers" in r["prompt"][1]["content"] for r in second)
    assert max(map(n_behaviours, first)) > 12  # longer than any row of the former thirds
    texts = [r["prompt"][1]["content"] for r in sft]
    assert any(REC_QUERY in t for t in texts) and any(q in t for t in texts for q in SEL_QUERIES)
    assert any(NO_PAST_SUMMARY_QUOTED in t for t in texts) and any(NO_PAST_SUMMARY_QUOTED not in t for t in texts[0::2])


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_sft_label_noise_is_the_teachers_share_of_wrong_genres(tmp_path, noise):
    """The second row of each SFT user carries the true preference as its past summary; its
    completion (reasoning and summary alike) names the true genre unless the teacher erred."""
    write_world(tmp_path, WorldConfig(sft_users=200, rl_users=4, test_users=4, history_len=18, seed=2, sft_label_noise=noise))
    sft = read_jsonl(tmp_path / "sft.jsonl", validate_sft_row)
    wrong = 0
    for row in sft[1::2]:
        truth = re.search(r"The user prefers (\w+)\.", row["prompt"][1]["content"]).group(1)
        said = re.fullmatch(r"<think>\nMost chosen items are (\w+)\.\n</think>\n\nThe user prefers (\w+)\.", row["completion"][0]["content"])
        assert said and said.group(1) == said.group(2) in GENRES
        wrong += said.group(1) != truth
    if noise == 0:
        assert wrong == 0
    else:  # 200 draws at 0.5: [0.35, 0.65] is more than 4 standard deviations wide
        assert 0.35 <= wrong / 200 <= 0.65


def test_world_is_seeded(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_world(a, WorldConfig(sft_users=3, rl_users=3, test_users=3, seed=7))
    write_world(b, WorldConfig(sft_users=3, rl_users=3, test_users=3, seed=7))
    assert (a / "rl.jsonl").read_text() == (b / "rl.jsonl").read_text()
    assert (a / "benchmarks" / "synth_sel_upi.jsonl").read_text() == (b / "benchmarks" / "synth_sel_upi.jsonl").read_text()


def test_judge_conversation_round_trips():
    msgs = judge_messages("q?", "likes {jazz}\nand more", "Item one", "Item two")
    assert parse_judge_conversation(msgs) == {"query": "q?", "summary": "likes {jazz}\nand more", "item_a": "Item one", "item_b": "Item two"}
    with pytest.raises(ValueError, match="judge conversation"):
        parse_judge_conversation([{"role": "user", "content": "hello"}])


def _accuracy(encoder, rows):
    rng = random.Random(42)
    items = [JudgeItem(r["target"]["query"], r["profile"], r["target"]["chosen"], r["target"]["rejected"], rng.randint(0, 1) == 1) for r in rows]
    scores = encoder.judge([it.messages() for it in items])
    assert all(abs(s.p_a + s.p_b - 1) < 1e-9 for s in scores)
    return sum((s.p_a >= 0.5) == it.chosen_is_a for s, it in zip(scores, items)) / len(items)


@pytest.mark.parametrize("bench", ["synth_rec", "synth_sel"])
def test_embedding_judge_sanity_rows(world, encoder, bench):
    """The stand-in judge reads the summary: the true preference wins, an empty summary is
    chance, another user's preference is worse than chance."""
    acc = {s: _accuracy(encoder, read_jsonl(world / "summaries" / s / "full" / f"{bench}.jsonl")) for s in REFERENCE_SUMMARIZERS}
    assert acc["teacher"] >= 0.9
    assert acc["empty"] == 0.5  # mirrored test pairs: a judge that ignores the summary is at exactly 50%
    assert acc["other_user"] < 0.5


def test_embedding_sampled_protocol_draws_from_the_letter_distribution(encoder):
    """Sampled answers parse, are seeded, and follow P(A) through the published sampler."""
    from alignxplore.backends.base import JudgeSampling
    from alignxplore.backends.sampling import sampler_distribution
    from alignxplore.prompts import parse_selection

    conv = judge_messages("q", "The user prefers jazz.", "A jazz podcast", "A horror podcast")
    sampling = JudgeSampling()
    runs = encoder.judge_sampled([conv] * 400, sampling)
    assert runs == encoder.judge_sampled([conv] * 400, sampling)  # seeded
    letters = [parse_selection(r.text) for r in runs]
    assert set(letters) <= {"A", "B"}
    q = sampler_distribution({"A": runs[0].score.p_a, "B": runs[0].score.p_b}, sampling.temperature, sampling.top_k, sampling.top_p)
    assert letters.count("A") / len(letters) == pytest.approx(q["A"], abs=0.08)
    flat = JudgeSampling(temperature=5.0, top_p=1.0)  # a flatter distribution: both letters drawn
    drawn = [parse_selection(r.text) for r in encoder.judge_sampled([conv] * 400, flat)]
    q = sampler_distribution({"A": runs[0].score.p_a, "B": runs[0].score.p_b}, 5.0, flat.top_k, 1.0)
    assert drawn.count("A") / len(drawn) == pytest.approx(q["A"], abs=0.08)


def test_embedding_backend_does_not_generate(encoder):
    with pytest.raises(NotImplementedError, match="judge only"):
        encoder.generate([[{"role": "user", "content": "x"}]], None)
