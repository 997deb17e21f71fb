"""Prompts are rendered byte for byte as the released model was trained on them."""
import json

import pytest

from alignxplore.backends.base import letter_token_ids, render_generation_prompt, render_judge_prompt
from alignxplore.formats import NO_NEGATIVE_SAMPLE, DataError, chat_to_triples
from alignxplore.prompts import (
    JUDGE_ANSWER_PREFIX,
    direct_baseline_summary,
    extract_summary,
    full_history_messages,
    is_well_formed,
    judge_messages,
    parse_selection,
    preference_messages,
    rl_messages,
    sft_completion,
    streaming_messages,
)

NEWS = "Please recommend some news to me."
T1 = {"query": NEWS, "chosen": "Title: Jazz festival returns", "rejected": "Title: Stock markets fall"}
T2 = {"query": NEWS, "chosen": "Title: New album from a sax legend", "rejected": "Title: Election polls tighten"}


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return json.loads((fixtures_dir / "golden_prompts.json").read_text())


def test_preference_prompt_without_past_matches_golden(golden):
    assert preference_messages([T1, T2]) == golden["preference_inference_messages_no_past"]
    assert streaming_messages([T1, T2]) == golden["preference_inference_messages_no_past"]


def test_full_history_prompt_quotes_the_empty_past_slot(golden):
    assert full_history_messages([T1, T2]) == golden["preference_inference_messages_full_history_eval"]
    assert '\n\n"Not Provided."\n\n' in full_history_messages([T1])[1]["content"]


def test_rl_prompt_matches_golden(golden):
    assert rl_messages([T1, T2]) == golden["preference_inference_messages_rl_no_past"]


def test_rl_stage2_fills_only_the_past_slot():
    # A behaviour that itself contains "Not Provided." must survive: the authors' str.replace
    # on the whole prompt rewrote it too.
    tricky = {"query": "q", "chosen": "Price: Not Provided.", "rejected": "r"}
    user = rl_messages([tricky], past="Likes jazz.")[1]["content"]
    assert "=====Past Preference Summary=====\n\nLikes jazz.\n\n" in user
    assert "*CHOSEN ITEM BY THE USER:*\nPrice: Not Provided.\n" in user
    assert user.count("Not Provided.") == 1


def test_empty_pass1_summary_renders_as_empty_string():
    user = streaming_messages([T2], past="")[1]["content"]
    assert "=====Past Preference Summary=====\n\n\n\n=====Interaction History=====" in user


def test_direct_baseline_wrappers_match_golden(golden):
    assert direct_baseline_summary([T1, T2], "selection") == golden["direct_baseline_summary_selection"]
    assert direct_baseline_summary([T1, T2], "recommendation") == golden["direct_baseline_summary_recommendation"]
    with pytest.raises(ValueError, match="style"):
        direct_baseline_summary([T1], "generation")


def test_chat_history_renders_as_triples_with_filler():
    msgs = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "I love hiking."},
        {"role": "assistant", "content": "Nice!"},
        {"role": "user", "content": "Any trail tips?"},
        {"role": "assistant", "content": "Start early."},
        {"role": "assistant", "content": "Bring water."},
        {"role": "user", "content": "unanswered"},
    ]
    assert chat_to_triples(msgs, "f:1") == [
        {"query": "Hi\nI love hiking.", "chosen": "Nice!", "rejected": NO_NEGATIVE_SAMPLE},
        {"query": "Any trail tips?", "chosen": "Start early.\nBring water.", "rejected": NO_NEGATIVE_SAMPLE},
    ]
    with pytest.raises(DataError, match=r"f:1: history\[0\]\.role"):
        chat_to_triples([{"role": "tool", "content": "x"}], "f:1")


def test_preference_prompt_with_past_matches_golden(golden):
    assert preference_messages([T2], past="The user enjoys jazz news.") == golden["preference_inference_messages_with_past"]


def test_judge_prompt_matches_golden(golden):
    msgs = judge_messages(NEWS, "The user enjoys jazz news.", T1["chosen"], T1["rejected"])
    assert msgs == golden["judge_messages"]


def test_sft_completion_matches_golden(golden):
    expected = golden["sft_completion_example"][0]["content"]
    assert sft_completion("The chosen items are all about jazz.", "The user enjoys jazz news.") == expected


def test_chat_template_renders_preference_prompt_with_thinking(tokenizer):
    text = render_generation_prompt(tokenizer, preference_messages([T1]))
    assert text.startswith("<|im_start|>system\nYou are an expert User Preference Analyst.")
    assert "*QUERY:*\n Please recommend some news to me.\n*****" in text
    # Thinking on: the assistant turn is left open for the model's <think> block.
    assert text.endswith("<|im_start|>assistant\n")


def test_judge_prompt_is_generation_prompt_with_thinking_off_plus_prefix(tokenizer):
    msgs = judge_messages(NEWS, "likes jazz", "a", "b")
    generation = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert generation.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert render_judge_prompt(tokenizer, msgs) == generation + JUDGE_ANSWER_PREFIX


def test_letters_are_single_tokens_following_the_prefix(tokenizer):
    ids = letter_token_ids(tokenizer)
    full = tokenizer.encode('{"selection": "Item A"}', add_special_tokens=False)
    prefix = tokenizer.encode(JUDGE_ANSWER_PREFIX, add_special_tokens=False)
    assert full[: len(prefix)] == prefix and full[len(prefix)] == ids["A"]
    assert ids["A"] != ids["B"]


def test_extract_summary_takes_text_after_last_think_close():
    assert extract_summary("<think>\nx\n</think>\n\n Likes jazz. ") == "Likes jazz."
    assert extract_summary("<think>a</think>b</think> final") == "final"
    assert extract_summary("no think block") == "no think block"


@pytest.mark.parametrize(
    "text,ok",
    [
        ("<think>\nr\n</think>\n\nsummary", True),
        ("<think>\nr\n</think>\n\n   ", True),  # whitespace after </think> counts (the authors' regex)
        ("<think>r</think>", False),  # nothing after </think>
        ("<think></think>summary", False),  # empty thinking
        ("Sure! <think>r</think>s", False),  # leading text
        ("r\n</think>\n\nsummary", False),  # no <think>
        ("<think>a</think><think>b</think>s", False),  # two blocks
        ("</think><think>s", False),  # wrong order
    ],
)
def test_format_check(text, ok):
    """docs/formats.md §4: one <think>, one </think>, and ``^<think>.+</think>.+$`` (DOTALL)."""
    assert is_well_formed(text) is ok


@pytest.mark.parametrize(
    "answer,letter",
    [
        ('{"selection": "Item B"}', "B"),
        ('{"selection": "Item A"}\n', "A"),
        ('```json\n{"selection": "Item A"}\n```', "A"),  # first {...} on one line
        ('<think>\nhmm {"selection": "Item B"}\n</think>\n\n{"selection": "Item A"}', "A"),  # after the last </think>
        ('Sure: {"selection": "Item B"} done', "B"),
        ('{"selection": "Item B"} or {"selection": "Item A"}', None),  # greedy match spans both: not JSON
        ('{\n"selection": "Item A"\n}\n```', None),  # the regex has no DOTALL: no match across lines
        ('{"selection": "[Item A / Item B]"}', None),  # the placeholder echoed back
        ('{"selection": "Item A."}', None),
        ('{"selection": "item a"}', None),
        ('{"selection": "A"}', None),
        ('{"choice": "Item A"}', None),
        ('["Item A"]', None),
        ('{"selection": "Item', None),  # cut at 16 tokens
        ("I like B", None),
        ("", None),
    ],
)
def test_parse_selection_is_the_authors_rule(answer, letter):
    assert parse_selection(answer) == letter


def test_direct_baseline_puts_wrapped_history_in_summary_slot():
    msgs = judge_messages(NEWS, direct_baseline_summary([T1], "recommendation"), "a", "b")
    assert "<Preference>\nThe user's prefernce will be provided" in msgs[1]["content"]
    assert "=====Triple 1=====\n\n*QUERY:*\n Please" in msgs[1]["content"]


def test_history_as_summary_is_gone():
    import alignxplore.prompts as prompts

    assert not hasattr(prompts, "history_as_summary")
