"""Split rules (FORMATS.md §3) and truncation to the token budget."""
import pytest

from alignxplore.formats import DataError
from alignxplore.history import full_history, rl_stages, streaming_passes, truncate_to_budget


def hist(n):
    return [{"query": "q", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(n)]


def ids(triples):
    return [t["chosen"] for t in triples]


@pytest.mark.parametrize("n,full,first,second", [(7, 4, 2, 2), (9, 6, 3, 3), (10, 6, 3, 3), (3, 2, 1, 1)])
def test_recommendation_splits_use_thirds(n, full, first, second):
    h = hist(n)
    assert full_history(h, "recommendation") == h[:full]
    p1, p2 = streaming_passes(h, "recommendation")
    assert p1 == h[:first] and p2 == h[first : first + second]


@pytest.mark.parametrize("n,first", [(4, 2), (5, 2), (2, 1)])
def test_other_sets_use_all_and_halves(n, first):
    h = hist(n)
    assert full_history(h, "half") == h
    p1, p2 = streaming_passes(h, "half")
    assert p1 == h[:first] and p2 == h[first:]


def test_too_short_histories_are_reported_with_location():
    with pytest.raises(DataError, match="f.jsonl:4: history: 2 behaviour"):
        full_history(hist(2), "recommendation", "f.jsonl:4")
    with pytest.raises(DataError, match="too few"):
        streaming_passes(hist(1), "half", "f.jsonl:4")


def test_rl_stages():
    h = hist(6)
    (s1, t1), (s2, t2) = rl_stages(h, 2)
    assert ids(s1) == ["c0", "c1"] and t1["chosen"] == "c2"
    assert ids(s2) == ["c2", "c3", "c4"] and t2["chosen"] == "c5"


def test_truncation_keeps_most_recent_half_repeatedly():
    h = hist(10)
    calls = []

    def n_tokens(t):
        calls.append(len(t))
        return 100 * len(t)

    kept, dropped = truncate_to_budget(h, n_tokens, budget=250)
    assert calls == [10, 5, 3, 2]  # 10 -> last 5 -> last 3 -> last 2
    assert ids(kept) == ["c8", "c9"] and dropped == 8


def test_truncation_leaves_fitting_history_alone():
    h = hist(4)
    assert truncate_to_budget(h, lambda t: 1, budget=10) == (h, 0)


def test_single_behaviour_over_budget_is_an_error():
    with pytest.raises(DataError, match="f:9: history: one behaviour alone renders to 500 tokens"):
        truncate_to_budget(hist(3), lambda t: 500, budget=100, where="f:9")
