"""Golden tests for the SFT-synthesis prompts (teacher, filtering judge, merge) and the parsing
of teacher and merge answers. The fixture holds the authors' rendered examples (strings:
docs/formats.md §2), placeholders kept as literal ``{name}`` strings."""
import json

import pytest

from alignxplore import prompts as P

ONE_TRIPLE = [{"query": "{query}", "chosen": "{chosen}", "rejected": "{rejected}"}]


@pytest.fixture(scope="module")
def golden(fixtures_dir):
    return json.loads((fixtures_dir / "synth_prompts.json").read_text())


def test_teacher_stage1_prompt_is_byte_exact(golden):
    msgs = P.synth_teacher_messages(ONE_TRIPLE, "{tquery}", "{tchosen}", "{trejected}")
    assert msgs == golden["teacher_stage1"]["messages"]
    user = msgs[1]["content"]
    # the quirks that are part of the method
    assert '\n====Past Preference Summary=====\n"Not Provided."\n\n' in user
    assert "\n*QUERY:*\n {tquery}\n*****\n*ITEM A:*\n{tchosen}" in user


def test_teacher_stage2_prompt_quotes_the_past_summary(golden):
    msgs = P.synth_teacher_messages(ONE_TRIPLE, "{tquery}", "{tchosen}", "{trejected}", past="{past}")
    assert msgs == golden["teacher_stage2"]["messages"]
    assert '=====\n"{past}"\n\n=====Interaction History' in msgs[1]["content"]


def test_filtering_judge_prompt_is_byte_exact_and_differs_from_eval_judge(golden):
    msgs = P.synth_judge_messages("{prompt}", "{preference}", "{item_a}", "{item_b}")
    assert msgs == golden["filter_judge"]["messages"]
    assert msgs[1]["content"].endswith("</Item B>\n\n")
    # the evaluation judge has the extra last sentence; the filtering judge does not
    assert P.judge_messages("{prompt}", "{preference}", "{item_a}", "{item_b}")[1]["content"].startswith(msgs[1]["content"])


def test_merge_prompt_is_byte_exact_and_counts_pairs(golden):
    msgs = P.synth_merge_messages(["{pair1}", "{pair2}"])
    assert msgs == golden["merge"]["messages"]
    three = P.synth_merge_messages(["r1\n|PreferenceSEP|\n\np1", "x", "y"])[1]["content"]
    assert "Here are 3 \"Reasoning-Preference\" pairs" in three
    assert "**Reasoning process and Preferenc Summary 3:**\ny\n=====END=====" in three
    assert three.count("Preferenc Summary") == 3


def test_pair_format_is_the_authors_raw_field():
    assert P.synth_pair("why", "what") == "why\n|PreferenceSEP|\n\nwhat"


def test_reasoning_is_the_think_block_not_a_character_strip():
    text = "<think>\nthinking hard about <kin>\n</think>\n\nThe user likes tea."
    assert P.extract_reasoning(text) == "thinking hard about <kin>"
    # the authors' strip("<think>") removes a character set: without the newlines it eats letters
    tight = "<think>think it through</think>The user likes tea."
    assert tight.split("</think>")[0].strip("<think>").strip() == "it throug"
    assert P.extract_reasoning(tight) == "think it through"
    assert P.extract_summary(text) == "The user likes tea."
    assert P.extract_reasoning("no think block") is None
    assert P.extract_reasoning("<think>\nunfinished") is None


@pytest.mark.parametrize("text,expected", [
    ("why\n|PreferenceSEP|\nwhat", ("why", "what")),
    ("  why \n|PreferenceSEP|\n\n what \n", ("why", "what")),
    ("<think>\n\n</think>\n\nwhy|PreferenceSEP|what", ("why", "what")),
    ("no separator at all", None),
    ("a|PreferenceSEP|b|PreferenceSEP|c", None),
    ("|PreferenceSEP| only a summary", None),
    ("only reasoning |PreferenceSEP|  ", None),
])
def test_merge_output_split(text, expected):
    assert P.split_merge_output(text) == expected
