"""The one place where prompts are rendered.

The released AlignXplore+ model was trained on these exact strings, so they are kept
byte for byte (including the original spelling "prefernce" and the single space before
each query). ``tests/test_prompts.py`` checks them against ``tests/fixtures/golden_prompts.json``.
"""
from __future__ import annotations

import json
import re
from typing import Mapping, Sequence

# The past-summary slot when there is none. Full-history evaluation (the authors'
# gen_preference.py) wrote it with the double quotes; streaming, SFT and RL without them.
NO_PAST_SUMMARY = "Not Provided."
NO_PAST_SUMMARY_QUOTED = '"Not Provided."'

PREFERENCE_SYSTEM = (
    "You are an expert User Preference Analyst. Your sole task is to analyze a user's past "
    "preference summary (possibly not provided) and new interaction history and summarize the "
    "user preferences.\n\nThe user's history will be provided as a sequence of triples, where "
    "each triple is `(QUERY, CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`.\n\nDo not "
    "include any introductory phrases, greetings, or any other text outside of this specified "
    "structure."
)

PREFERENCE_USER_TEMPLATE = (
    "Analyze the past preference summary and the following user interaction history {task}. "
    "If past preferences are "
    "provided, adjust the preferences by combining past preferences with those reflected in "
    "current behavior, removing conflicting parts, and integrating new insights. If no past "
    "preferences are provided, derive the final preferences solely from user behavior. The "
    "user's history will be provided as a sequence of triples, where each triple is `(QUERY, "
    "CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`.\n=====Past Preference Summary=====\n\n"
    "{past}\n\n=====Interaction History=====\n{triples}\n\n=====END=====\n\nNow, given the above "
    "user's past prefernce summary and the interaction history, summarize the user preferences."
)

# Two wordings of the user message exist, each used by a stage of the original release
# (FORMATS.md §2): "eval" (evaluation and SFT) and "rl" (both RL stages; its triple blocks are
# titled "Tripe", sic). Each wording = (task phrase, triple-block title).
WORDINGS = {
    "eval": ("to summarize the comprehensive user preferences in concise language", "Triple"),
    "rl": ("to summarize the user preferences in as concise language", "Tripe"),
}

TRIPLE_BLOCK = (
    "====={title} {i}=====\n\n*QUERY:*\n {query}\n*****\n*CHOSEN ITEM BY THE USER:*\n{chosen}"
    "\n*****\n*REJECTED ITEM BY THE USER:*\n{rejected}"
)

# Direct baselines put the raw history, wrapped, in the judge's summary slot. The wrapper
# says "history" for the response-selection sets (with "Tripe" blocks) and "prefernce"
# (sic) for the recommendation sets (with "Triple" blocks), as the authors' two scripts did.
DIRECT_BASELINE_WRAPPER = (
    "The user's {noun} will be provided as a sequence of triples, where each triple is `(QUERY, "
    "CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`.\n\n=====Interaction History=====\n"
    "{triples}\n\n=====END====="
)
DIRECT_BASELINE_STYLES = {"selection": ("history", "Tripe"), "recommendation": ("prefernce", "Triple")}

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


def render_triples(triples: Sequence[Mapping[str, str]], title: str = "Triple") -> str:
    """Render behaviours as numbered triple blocks (1-based), joined by a blank line."""
    return "\n\n".join(
        TRIPLE_BLOCK.format(title=title, i=i, query=t["query"], chosen=t["chosen"], rejected=t["rejected"])
        for i, t in enumerate(triples, start=1)
    )


def preference_messages(triples: Sequence[Mapping[str, str]], past: str | None = None, *, wording: str = "eval") -> list[dict]:
    """Chat messages asking the policy for a preference summary.

    ``past`` fills the past-summary slot verbatim; ``None`` renders ``Not Provided.``. An empty
    string stays empty: the authors' streaming pass 2 passed an empty pass-1 summary through
    as is. Prefer the named renderings below, one per stage.
    """
    if wording not in WORDINGS:
        raise ValueError(f"unknown prompt wording {wording!r}; expected one of {sorted(WORDINGS)}")
    task, title = WORDINGS[wording]
    user = PREFERENCE_USER_TEMPLATE.format(
        task=task, past=NO_PAST_SUMMARY if past is None else past, triples=render_triples(triples, title)
    )
    return [{"role": "system", "content": PREFERENCE_SYSTEM}, {"role": "user", "content": user}]


def full_history_messages(triples: Sequence[Mapping[str, str]]) -> list[dict]:
    """Full-history evaluation: one pass, past slot ``"Not Provided."`` with the quotes."""
    return preference_messages(triples, NO_PAST_SUMMARY_QUOTED)


def streaming_messages(triples: Sequence[Mapping[str, str]], past: str | None = None) -> list[dict]:
    """Streaming evaluation (pass 1: ``past=None``; pass 2: pass 1's summary, even if empty)
    and the SFT rows (FORMATS.md §1)."""
    return preference_messages(triples, past)


def rl_messages(triples: Sequence[Mapping[str, str]], past: str | None = None) -> list[dict]:
    """RL prompts, both stages: stage 1 ``past=None``; stage 2 the picked stage-1 summary.

    The summary goes into the past slot only. (The authors built stage 2 with
    ``str.replace("Not Provided.", summary)`` on the whole prompt, which also rewrote any
    behaviour containing that text; rendering the slot avoids that.)
    """
    return preference_messages(triples, past, wording="rl")


def direct_baseline_summary(triples: Sequence[Mapping[str, str]], style: str) -> str:
    """What the direct baselines put in the judge's summary slot: the raw history, wrapped.
    ``style`` is ``selection`` or ``recommendation`` (FORMATS.md §2)."""
    if style not in DIRECT_BASELINE_STYLES:
        raise ValueError(f"unknown direct-baseline style {style!r}; expected one of {sorted(DIRECT_BASELINE_STYLES)}")
    noun, title = DIRECT_BASELINE_STYLES[style]
    return DIRECT_BASELINE_WRAPPER.format(noun=noun, triples=render_triples(triples, title))


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


# The RL reward's format gate, exactly as the authors' reward function (FORMATS.md §4): the
# response starts with <think>, the thinking is non-empty, and at least one character
# (whitespace counts) follows </think>.
_WELL_FORMED_RE = re.compile(r"^<think>.+</think>.+$", re.DOTALL)


def is_well_formed(response: str) -> bool:
    """The RL reward's format gate: exactly one ``<think>`` and one ``</think>``, and the
    whole response matches ``^<think>.+</think>.+$`` (DOTALL)."""
    if response.count(THINK_OPEN) != 1 or response.count(THINK_CLOSE) != 1:
        return False
    return _WELL_FORMED_RE.match(response) is not None


# The judge's sampled answer, parsed by the authors' rule (FORMATS.md §4).
_FIRST_JSON_OBJECT_RE = re.compile(r"\{.*\}")  # no DOTALL: the match cannot span a newline
JUDGE_SELECTIONS = {"Item A": "A", "Item B": "B"}


def parse_selection(text: str) -> str | None:
    """The letter a judge selected in its answer, by the authors' rule, or None (unparseable).

    Take the text after the last ``</think>``; ``json.loads`` it, else ``json.loads`` the first
    ``\{.*\}`` match (greedy, single line); the ``selection`` value must equal exactly
    ``"Item A"`` or ``"Item B"``. Anything else (no JSON, not an object, ``"[Item A]"``,
    ``"item a"``) is unparseable and, in the published protocol, counts as wrong.
    """
    body = text.split(THINK_CLOSE)[-1]
    try:
        parsed = json.loads(body)
    except ValueError:
        m = _FIRST_JSON_OBJECT_RE.search(body)
        if m is None:
            return None
        try:
            parsed = json.loads(m.group())
        except ValueError:
            return None
    if not isinstance(parsed, dict):
        return None
    value = parsed.get("selection")
    return JUDGE_SELECTIONS.get(value) if isinstance(value, str) else None
