"""History rules (docs/formats.md §3): splits, degenerate users, and the whole-history truncation
before the split, checked with real Qwen3 token counts."""
import pytest

from alignxplore.backends.base import SamplingConfig
from alignxplore.eval.generate import SummaryGenerator
from alignxplore.eval.registry import Benchmark
from alignxplore.history import (
    STREAMING_BUDGET_DIVISOR,
    full_history,
    streaming_passes,
    streaming_skip_reason,
    truncate_to_budget,
    truncation_budget,
)
from alignxplore.prompts import full_history_messages, streaming_messages

REC = Benchmark("mind", "mind_upi.jsonl", "recommendation", "recommendation", "MIND", True)
SEL = Benchmark("alignx", "alignx_upi.jsonl", "response_selection", "half", "AlignX")


def hist(n):
    return [{"query": "q", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(n)]


def ids(triples):
    return [t["chosen"] for t in triples]


@pytest.mark.parametrize("n,full,first,second", [(7, 4, 2, 2), (9, 6, 3, 3), (10, 6, 3, 3), (8, 4, 2, 2), (3, 2, 1, 1)])
def test_recommendation_splits_use_thirds(n, full, first, second):
    h = hist(n)
    assert full_history(h, "recommendation") == h[:full]
    p1, p2 = streaming_passes(h, "recommendation")
    assert p1 == h[:first] and p2 == h[first : first + second]


def test_pass_two_is_m_to_2m_when_length_is_2_mod_3():
    # L = 8, m = 2: pass 2 is [2, 4), not [2, 5) (the authors' 2*m, not floor(2L/3))
    p1, p2 = streaming_passes(hist(8), "recommendation")
    assert ids(p1) == ["c0", "c1"] and ids(p2) == ["c2", "c3"]
    p1, p2 = streaming_passes(hist(11), "recommendation")
    assert ids(p2) == ["c3", "c4", "c5"]


@pytest.mark.parametrize("n,first", [(4, 2), (5, 2), (2, 1)])
def test_other_sets_use_all_and_halves(n, first):
    h = hist(n)
    assert full_history(h, "half") == h
    p1, p2 = streaming_passes(h, "half")
    assert p1 == h[:first] and p2 == h[first:]


def test_short_histories_give_empty_splits_not_errors():
    assert full_history(hist(2), "recommendation") == []
    assert streaming_passes(hist(2), "recommendation") == ([], [])
    assert streaming_passes(hist(1), "half") == ([], hist(1))
    assert full_history([], "half") == [] and streaming_passes([], "half") == ([], [])
    assert streaming_skip_reason([]) and streaming_skip_reason(hist(1)) is None


def test_truncation_budget_per_mode_and_set():
    assert truncation_budget("full", "recommendation") == truncation_budget("full", "half") == 16384
    assert truncation_budget("streaming", "recommendation") == pytest.approx(16384 / 1.2)
    assert truncation_budget("streaming", "half") is None  # the authors cut only recommendation sets


def test_truncation_keeps_the_smaller_recent_half_repeatedly():
    calls = []

    def n_tokens(t):
        calls.append(len(t))
        return 100 * len(t)

    kept, dropped = truncate_to_budget(hist(10), n_tokens, budget=250)
    assert calls == [10, 5, 2]  # 10 -> last 5 -> last 2 (5 // 2, the smaller half)
    assert ids(kept) == ["c8", "c9"] and dropped == 8


def test_truncation_budget_is_strict():
    # a prompt exactly at the budget is not below it: cut
    kept, dropped = truncate_to_budget(hist(4), lambda t: 100 * len(t), budget=400)
    assert ids(kept) == ["c2", "c3"] and dropped == 2
    assert truncate_to_budget(hist(4), lambda t: 1, budget=10) == (hist(4), 0)


def test_single_behaviour_over_budget_leaves_an_empty_history():
    assert truncate_to_budget(hist(3), lambda t: 500, budget=100, where="f:9") == ([], 3)
    assert truncate_to_budget([], lambda t: 500, budget=100) == ([], 0)


def real_history(n):
    return [{"query": "Please recommend some news to me.", "chosen": f"Title: Jazz story number {i} about saxophones",
             "rejected": f"Title: Market report number {i} about bonds"} for i in range(n)]


def test_truncation_with_real_token_counts(tokenizer):
    from alignxplore.backends.base import count_tokens

    h = real_history(10)
    n = lambda t: count_tokens(tokenizer, full_history_messages(t))  # noqa: E731
    sizes = {k: n(h[-k:]) for k in (10, 5, 2, 1)}
    assert sizes[10] > sizes[5] > sizes[2] > sizes[1]
    kept, dropped = truncate_to_budget(h, n, budget=sizes[5] + 1)  # 5 fit strictly below
    assert kept == h[-5:] and dropped == 5
    kept, _ = truncate_to_budget(h, n, budget=sizes[5])  # exactly at the budget: cut again
    assert kept == h[-2:]
    assert truncate_to_budget(h, n, budget=sizes[1]) == ([], 10)


def test_whole_history_is_cut_before_the_split(hf_backend):
    gen = SummaryGenerator(hf_backend, SamplingConfig(), prompt_budget=10**9)
    h = real_history(9)
    n5 = hf_backend.count_prompt_tokens(full_history_messages(h[-4:]))
    gen.budget = n5 + 1  # the no-past prompt of the whole 9 is over; of its last 4 is under
    row = {"history": h, "_where": "f:1"}
    kept, dropped = gen.truncated(row, REC, "full")
    assert kept == h[-4:] and dropped == 5
    # then the recommendation split of the *truncated* history: first 2*(4//3) = 2
    assert full_history(kept, "recommendation") == h[5:7]
    # measured on the full-mode no-past prompt (the quoted "Not Provided.")
    assert hf_backend.count_prompt_tokens(full_history_messages(kept)) < gen.budget


def test_streaming_cuts_recommendation_sets_only(hf_backend):
    h = real_history(9)
    gen = SummaryGenerator(hf_backend, SamplingConfig())
    gen.budget = hf_backend.count_prompt_tokens(streaming_messages(h[-4:])) * STREAMING_BUDGET_DIVISOR + 1
    row = {"history": h, "_where": "f:1"}
    kept, dropped = gen.truncated(row, REC, "streaming")
    assert kept == h[-4:] and dropped == 5
    assert gen.truncated(row, SEL, "streaming") == (h, 0)  # selection sets: never cut in streaming
    assert gen.truncated(row, SEL, "full")[1] > 0  # full mode cuts every set
