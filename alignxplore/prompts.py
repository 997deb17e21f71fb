"""The one place where prompts are rendered.

The released AlignXplore+ model was trained on these exact strings, so they are kept
byte for byte (including the original spelling "prefernce" and the single space before
each query). ``tests/test_prompts.py`` checks them against ``tests/fixtures/golden_prompts.json``.
"""
from __future__ import annotations

import json
import re
from typing import Iterable, Mapping, Sequence

NO_PAST_SUMMARY = "Not Provided."

PREFERENCE_SYSTEM = (
    "You are an expert User Preference Analyst. Your sole task is to analyze a user's past "
    "preference summary (possibly not provided) and new interaction history and summarize the "
    "user preferences.\n\nThe user's history will be provided as a sequence of triples, where "
    "each triple is `(QUERY, CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`.\n\nDo not "
    "include any introductory phrases, greetings, or any other text outside of this specified "
    "structure."
)

PREFERENCE_USER = (
    "Analyze the past preference summary and the following user interaction history to "
    "summarize the comprehensive user preferences in concise language. If past preferences are "
    "provided, adjust the preferences by combining past preferences with those reflected in "
    "current behavior, removing conflicting parts, and integrating new insights. If no past "
    "preferences are provided, derive the final preferences solely from user behavior. The "
    "user's history will be provided as a sequence of triples, where each triple is `(QUERY, "
    "CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`.\n=====Past Preference Summary=====\n\n"
    "{past}\n\n=====Interaction History=====\n{triples}\n\n=====END=====\n\nNow, given the above "
    "user's past prefernce summary and the interaction history, summarize the user preferences."
)

TRIPLE_BLOCK = (
    "=====Triple {i}=====\n\n*QUERY:*\n {query}\n*****\n*CHOSEN ITEM BY THE USER:*\n{chosen}"
    "\n*****\n*REJECTED ITEM BY THE USER:*\n{rejected}"
)

JUDGE_SYSTEM = "Generate a task-specific response."

JUDGE_USER = (
    "Determine which response the user prefers based on the user's preferences. Please output "
    'your selection below in a json format by filling in the placeholders in []:{{"selection": '
    '"[Item A / Item B]"}}\n<Prompt>\n{query}\n</Prompt>\n\n<Preference>\n{summary}</Preference>'
    "\n\n<Item A>\n{item_a}\n</Item A>\n\n<Item B>\n{item_b}\n</Item B>\n\nNow, ONLY output your "
    "selection without any other text outside of this specified structure."
)

# Teacher-forced start of the judge's answer. No trailing space: with the Qwen3 tokenizer
# the letter then comes as the single token ' A' or ' B' (see JUDGE_LETTER_TOKENS), which is
# exactly how a judge that follows the JSON instruction writes it.
JUDGE_ANSWER_PREFIX = '{"selection": "Item'
JUDGE_LETTER_TOKENS = {"A": " A", "B": " B"}

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

Message = Mapping[str, str]


def render_triples(triples: Sequence[Mapping[str, str]]) -> str:
    """Render behaviours as numbered triple blocks (1-based), joined by a blank line."""
    return "\n\n".join(
        TRIPLE_BLOCK.format(i=i, query=t["query"], chosen=t["chosen"], rejected=t["rejected"])
        for i, t in enumerate(triples, start=1)
    )


def preference_messages(triples: Sequence[Mapping[str, str]], past: str | None = None) -> list[dict]:
    """Chat messages asking the policy for a preference summary.

    ``past`` is the previous summary in streaming mode; ``None`` or empty renders the literal
    ``Not Provided.`` as in the original prompts.
    """
    user = PREFERENCE_USER.format(past=past if past else NO_PAST_SUMMARY, triples=render_triples(triples))
    return [{"role": "system", "content": PREFERENCE_SYSTEM}, {"role": "user", "content": user}]


def judge_messages(query: str, summary: str, item_a: str, item_b: str) -> list[dict]:
    """Chat messages asking the downstream judge to pick Item A or Item B."""
    user = JUDGE_USER.format(query=query, summary=summary, item_a=item_a, item_b=item_b)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def with_answer_prefix(messages: Sequence[Message]) -> list[dict]:
    """Judge messages plus the teacher-forced start of the assistant's answer."""
    return [dict(m) for m in messages] + [{"role": "assistant", "content": JUDGE_ANSWER_PREFIX}]


def sft_completion(reasoning: str, preference: str) -> str:
    """The assistant turn of an SFT row: ``<think>\\n{reasoning}\\n</think>\\n\\n{preference}``."""
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{preference}"


def extract_summary(response: str) -> str:
    """The preference summary: the text after the last ``</think>``, stripped.

    A response without ``</think>`` is returned whole (stripped), as the original
    ``split("</think>")[-1]`` did; :func:`is_well_formed` is the strict check.
    """
    return response.split(THINK_CLOSE)[-1].strip()


def is_well_formed(response: str) -> bool:
    """The RL reward's format gate: exactly one ``<think>``, one ``</think>`` after it,
    and non-empty text after ``</think>``."""
    if response.count(THINK_OPEN) != 1 or response.count(THINK_CLOSE) != 1:
        return False
    if response.index(THINK_OPEN) > response.index(THINK_CLOSE):
        return False
    return bool(extract_summary(response))


_SELECTION_RE = re.compile(r'"selection"\s*:\s*"\s*(?:\[)?\s*Item\s+([AB])\b')


def parse_selection(text: str) -> str | None:
    """The letter a judge selected in a free-form answer (``{"selection": "Item A"}``), or None."""
    try:
        value = json.loads(text.strip()).get("selection", "")
        m = re.fullmatch(r"\s*Item\s+([AB])\s*", str(value))
        if m:
            return m.group(1)
    except (ValueError, AttributeError):
        pass
    m = _SELECTION_RE.search(text)
    return m.group(1) if m else None


def history_as_summary(triples: Iterable[Mapping[str, str]]) -> str:
    """The "direct" baselines put the rendered raw history where the summary would go."""
    return render_triples(list(triples))
