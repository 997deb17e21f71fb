"""Prompts are rendered byte for byte as the released model was trained on them."""
import json

import pytest

from alignxplore.backends.base import letter_token_ids, render_generation_prompt, render_judge_prompt
from alignxplore.prompts import (
    JUDGE_ANSWER_PREFIX,
    extract_summary,
    history_as_summary,
    is_well_formed,
    judge_messages,
    parse_selection,
    preference_messages,
    sft_completion,
)

NEWS = "Please recommend some news to me."
T1 = {"query": NEWS, "chosen": "Title: Jazz festival returns", "rejected": "Title: Stock markets fall"}
T2 = {"query": NEWS, "chosen": "Title: New album from a sax legend", "rejected": "Title: Election polls tighten"}


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return json.loads((fixtures_dir / "golden_prompts.json").read_text())


def test_preference_prompt_without_past_matches_golden(golden):
    assert preference_messages([T1, T2]) == golden["preference_inference_messages_no_past"]
    assert preference_messages([T1, T2], past="") == golden["preference_inference_messages_no_past"]


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
        ("<think>\nr\n</think>\n\n   ", False),  # nothing after </think>
        ("r\n</think>\n\nsummary", False),  # no <think>
        ("<think>a</think><think>b</think>s", False),  # two blocks
        ("</think><think>s", False),  # wrong order
    ],
)
def test_format_check(text, ok):
    assert is_well_formed(text) is ok


def test_parse_selection():
    assert parse_selection('{"selection": "Item B"}') == "B"
    assert parse_selection('```json\n{"selection": "Item A"}\n```') == "A"
    assert parse_selection("I like B") is None


def test_direct_baseline_puts_rendered_history_in_summary_slot():
    msgs = judge_messages(NEWS, history_as_summary([T1]), "a", "b")
    assert "<Preference>\n=====Triple 1=====\n\n*QUERY:*\n Please" in msgs[1]["content"]
