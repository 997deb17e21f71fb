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
# (docs/formats.md §2): "eval" (evaluation and SFT) and "rl" (both RL stages; its triple blocks are
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

# The behaviour scorer's text (docs/formats.md §7): a header, then one segment per behaviour. The
# authors' training script said "preference histories" and their scoring script "preference
# records"; this project uses the scoring wording for both, so the scorer is scored on the
# text it was trained on.
SCORER_HEADER = (
    "Given a sequence of user preference records, each containing:\n- A prompt text enclosed in "
    "<prompt> tags (may be empty)\n- Two options marked with <option_A> and <option_B> tags\n- "
    "User's preference (A or B) enclosed in <preference> tags\n\nYour task is to predict each "
    "preference by analyzing patterns from all previous records in the sequence."
)
# Split around the letter: the letter's token is " A" / " B" (the space before it merges in).
SCORER_SEGMENT_HEAD = "<prompt>{query}</prompt><option_A>{a}</option_A><option_B>{b}</option_B><preference> "
SCORER_SEGMENT_TAIL = " </preference>|SEP|"

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
    and the SFT rows (docs/formats.md §1)."""
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
    ``style`` is ``selection`` or ``recommendation`` (docs/formats.md §2)."""
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


# The RL reward's format gate, exactly as the authors' reward function (docs/formats.md §4): the
# response starts with <think>, the thinking is non-empty, and at least one character
# (whitespace counts) follows </think>.
_WELL_FORMED_RE = re.compile(r"^<think>.+</think>.+$", re.DOTALL)


def is_well_formed(response: str) -> bool:
    """The RL reward's format gate: exactly one ``<think>`` and one ``</think>``, and the
    whole response matches ``^<think>.+</think>.+$`` (DOTALL)."""
    if response.count(THINK_OPEN) != 1 or response.count(THINK_CLOSE) != 1:
        return False
    return _WELL_FORMED_RE.match(response) is not None


# The judge's sampled answer, parsed by the authors' rule (docs/formats.md §4).
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


# ==========================================================================================
# SFT DATA SYNTHESIS PROMPTS (issue 10) — teacher, filtering judge, merge.
# Byte for byte as the authors' sft/stage1.py and sft/stage2.py rendered them, quirks kept:
# "====Past Preference Summary=====" (four "=" on the left), the past slot in double quotes
# (stage 1: "Not Provided."), the filtering judge ending after "</Item B>\n\n" (no "Now,
# ONLY output..." sentence), the merge prompt's "Preferenc Summary" and its indented system
# text. Checked by tests/test_synth_prompts.py against tests/fixtures/synth_prompts.json.
# Everything in this section is used only by alignxplore/data/synth*.py.
# ==========================================================================================

SYNTH_TEACHER_USER = (
    "Analyze the past preference summary, the following user interaction history, and the provided target "
    "triple to summarize the comprehensive user preferences in concise language. If past preferences are "
    "provided, adjust the preferences by combining past preferences with those reflected in current behavior, "
    "removing conflicting parts, and integrating new insights. If no past preferences are provided, derive the "
    "final preferences solely from user behavior.\nThe user's history will be provided as a sequence of "
    "triples, where each triple is `(QUERY, CHOSEN ITEM BY THE USER, REJECTED ITEM BY THE USER)`. When "
    "resolving conflicts between chosen and rejected items in the interaction history, always give priority to "
    "the preference associated with chosen items.\nThe target triple is a test triple in the format `(QUERY, "
    "ITEM A, ITEM B)`. Use the target triple as a guiding example to ensure the summarized preferences are "
    "aligned with distinguishing characteristics relevant to the target triple, but do not directly predict "
    "positive or negative samples to ensure generalizability.\n====Past Preference Summary=====\n\"{past}\"\n\n"
    "=====Interaction History=====\n{triples}\n\n=====Target Triple=====\n*QUERY:*\n {tquery}\n*****\n"
    "*ITEM A:*\n{item_a}\n*****\n*ITEM B:*\n{item_b}\n\n=====END=====\n\nNow, given the above user's past "
    "preference summary, the interaction history, and the target triple, summarize the user preferences and DO "
    "NOT make any prediction or classification about which item in the Target Triple is positive or negative "
    "during the preference summarization."
)

# The filtering judge: the downstream judge's prompt minus its last sentence.
SYNTH_JUDGE_USER = (
    "Determine which response the user prefers based on the user's preferences. Please output "
    'your selection below in a json format by filling in the placeholders in []:{{"selection": '
    '"[Item A / Item B]"}}\n<Prompt>\n{query}\n</Prompt>\n\n<Preference>\n{preference}</Preference>'
    "\n\n<Item A>\n{item_a}\n</Item A>\n\n<Item B>\n{item_b}\n</Item B>\n\n"
)

SYNTH_MERGE_SYSTEM = (
    "You are an expert information synthesizer. Your task is to merge multiple \"Reasoning-Preference\" pairs "
    "(separated by `|PreferenceSEP|`), which were all generated from the same source data, into one "
    "comprehensive, non-redundant pair, while faithfully preserving the narrative style of the original "
    "reasoning and preference.\n\n    **Final Output Format:**\n    The output MUST include two parts "
    "separated by `|PreferenceSEP|`.\n    1.  **Merged Reasoning Process**: The merged, comprehensive, "
    "non-redundant reasoning process.\n    2.  **Merged Preference Summary**: The merged, comprehensive, "
    "non-redundant preference summary.\n\n    Your merging principle is **informational set union**. Think of "
    "it this way:\n    - **Completeness is your top priority.** You MUST preserve every unique detail, reason, "
    "and preference from ALL inputs. The final merged reasoning process or preference should be **more "
    "comprehensive and information-rich** than any single input it was created from. No unique information "
    "should be lost.\n    - **Deduplication is mandatory.** If the exact same point or idea or dimension is "
    "mentioned in multiple inputs (even with slightly different wording), it must appear only **once** in the "
    "final output. Eliminate all redundancy.\n\n    Follow these strict rules:\n    1.  **Merge, Don't "
    "Summarize**: Your goal is to create a complete union of information, not a high-level summary. Retain "
    "specific examples and nuances.\n    2.  **No Invention**: Do not add any information or make any "
    "assumptions that are not explicitly stated in the provided inputs.\n    3. Do not include any headers, "
    "introductory phrases, or explanations in your response."
)

SYNTH_MERGE_USER = (
    "Your task is to merge multiple \"Reasoning-Preference\" pairs (separated by `|PreferenceSEP|`), which were "
    "all generated from the same source data, into one comprehensive, non-redundant pair, while faithfully "
    "preserving the **narrative style** of the original reasoning and preference.\n\nHere are {n} "
    "\"Reasoning-Preference\" pairs generated from the same user history.\n\n=====Reasoning and Preference "
    "List=====\n{pairs}\n=====END=====\n\nNow, apply the **informational set union** principle to merge these "
    "pairs. Your final output must be a single, maximally detailed, and non-redundant \"Reasoning-Preference\" "
    "pair, following the specified format."
)
SYNTH_MERGE_PAIR = "**Reasoning process and Preferenc Summary {i}:**\n{pair}"
PREFERENCE_SEP = "|PreferenceSEP|"


def synth_teacher_messages(triples: Sequence[Mapping[str, str]], target_query: str, item_a: str, item_b: str,
                           past: str | None = None) -> list[dict]:
    """Teacher prompt (thinking on): history blocks, the target as a guiding triple with its two
    items as ITEM A / ITEM B (the caller decides the order), the past slot quoted (``None``:
    ``"Not Provided."``, stage 1; stage 2: the stage-1 merged summary)."""
    user = SYNTH_TEACHER_USER.format(
        past=NO_PAST_SUMMARY if past is None else past, triples=render_triples(triples),
        tquery=target_query, item_a=item_a, item_b=item_b,
    )
    return [{"role": "system", "content": PREFERENCE_SYSTEM}, {"role": "user", "content": user}]


def synth_judge_messages(query: str, preference: str, item_a: str, item_b: str) -> list[dict]:
    """Filtering judge prompt (thinking off): does ``preference`` pick the right item?"""
    user = SYNTH_JUDGE_USER.format(query=query, preference=preference, item_a=item_a, item_b=item_b)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def synth_pair(reasoning: str, preference: str) -> str:
    """One kept teacher answer as the merge prompt lists it (the authors' ``raw`` field)."""
    return f"{reasoning}\n{PREFERENCE_SEP}\n\n{preference}"


def synth_merge_messages(pairs: Sequence[str]) -> list[dict]:
    """Merge prompt (thinking off) over the kept pairs (:func:`synth_pair`), numbered from 1."""
    listed = "\n\n".join(SYNTH_MERGE_PAIR.format(i=i, pair=p) for i, p in enumerate(pairs, start=1))
    user = SYNTH_MERGE_USER.format(n=len(pairs), pairs=listed)
    return [{"role": "system", "content": SYNTH_MERGE_SYSTEM}, {"role": "user", "content": user}]


def extract_reasoning(response: str) -> str | None:
    """The teacher's reasoning: the text between ``<think>`` and the first ``</think>`` after
    it, stripped (the authors' ``strip("<think>")`` removed a character set, eating letters).
    None when the response has no complete think block."""
    start = response.find(THINK_OPEN)
    if start < 0:
        return None
    end = response.find(THINK_CLOSE, start + len(THINK_OPEN))
    return None if end < 0 else response[start + len(THINK_OPEN):end].strip()


def split_merge_output(text: str) -> tuple[str, str] | None:
    """(merged reasoning, merged summary) from a merge answer, or None when malformed: the
    answer must hold exactly one ``|PreferenceSEP|`` with non-empty text on both sides. A
    leading think block (a server that ignored ``enable_thinking=False``) is dropped first."""
    if THINK_CLOSE in text:
        text = text.split(THINK_CLOSE)[-1]
    parts = text.split(PREFERENCE_SEP)
    if len(parts) != 2:
        return None
    reasoning, summary = parts[0].strip(), parts[1].strip()
    return (reasoning, summary) if reasoning and summary else None
# ==================================== END SFT DATA SYNTHESIS PROMPTS =======================


# Personalization (the "universal interface"): an inferred summary placed in any chat model's
# system prompt. New text of this project (the paper hands summaries to downstream models but
# released no such prompt); kept short and model-agnostic, and it asks the model not to recite
# the summary back to the user.
PERSONALIZE_SYSTEM = (
    "You are a helpful assistant. Below is a summary of this user's preferences, inferred from "
    "their past behaviour.\n\n=====User Preference Summary=====\n{summary}\n=====END=====\n\n"
    "Tailor your response to these preferences wherever they apply to the user's request. Do not "
    "mention the summary or that it was inferred."
)


def personalize_messages(summary: str, query: str) -> list[dict]:
    """Chat messages for a downstream model: the user's summary in the system prompt, the
    query as the user turn."""
    return [{"role": "system", "content": PERSONALIZE_SYSTEM.format(summary=summary.strip())}, {"role": "user", "content": query}]
