"""The fake OpenAI server with a script: a teacher, judge and merger for SFT-synthesis tests.

Answers are decided by markers in the item texts, so a test states its expectations in the
data (``tests/fixtures/synth_users.jsonl``):

* an item whose text contains ``(+)`` is the one the user chose (the scripted teacher "knows");
* teacher (system = the preference analyst, a ``=====Target Triple=====`` section): answers
  ``<think>\\nThe user chose X over Y.\\n</think>\\n\\nThe user likes X.`` with X the chosen
  target item; a target query containing ``#mislead`` makes it name the rejected item, and
  ``#nothink`` makes it answer without a think block (malformed);
* judge (system ``Generate a task-specific response.``): picks the item whose text appears in
  the ``<Preference>`` (teacher-forced read-out: P = 0.9 / 0.1; neither or both: 0.5 / 0.5, a
  tie); asked to generate (the authors' sampled judge) it writes ``{"selection": "Item A"}``,
  or an unparseable sentence for a tie;
* merge (system = the information synthesizer): ``reasoning |PreferenceSEP| The user likes X1;
  X2; ...`` over the listed pairs; ``#mergebad`` anywhere in the prompt gives an answer without
  the separator, ``#forget`` a merged summary that keeps only the first pair's item;
* ``fail_markers``: a request containing any of these strings gets an HTTP 500 on every
  attempt (the handler raises; aiohttp answers 500), to test the retry by the next run;
  the base class's ``fault_plan`` still injects transient faults per attempt.

Every request is logged in ``calls`` as ``(kind, messages)`` (``judge_readouts`` counts the
teacher-forced ones); ``on_request(kind, messages)``
(optional) runs first, e.g. to kill a client process at a chosen moment.
"""
from __future__ import annotations

import math
import re
from typing import Callable

from ..prompts import JUDGE_LETTER_TOKENS, JUDGE_SYSTEM, PREFERENCE_SEP, PREFERENCE_SYSTEM, SYNTH_MERGE_SYSTEM
from .fake_openai import FakeOpenAIServer

CHOSEN_TAG = "(+)"
_TARGET_RE = re.compile(r"=====Target Triple=====\n\*QUERY:\*\n (.*?)\n\*\*\*\*\*\n\*ITEM A:\*\n(.*?)\n\*\*\*\*\*\n\*ITEM B:\*\n(.*?)\n\n=====END=====", re.S)
_JUDGE_RE = re.compile(r"<Preference>\n(.*?)</Preference>\n\n<Item A>\n(.*?)\n</Item A>\n\n<Item B>\n(.*?)\n</Item B>", re.S)
_LIKES_RE = re.compile(r"The user likes (.*?)\.$", re.M)


class ScriptedFailure(RuntimeError):
    """Raised inside the handler on purpose: the client sees an HTTP 500."""


def _kind(messages: list[dict]) -> str:
    system = messages[0].get("content", "") if messages else ""
    if system == PREFERENCE_SYSTEM:
        return "teacher"
    if system == SYNTH_MERGE_SYSTEM:
        return "merge"
    if system == JUDGE_SYSTEM:
        return "judge"
    return "other"


def judge_pick(user_text: str) -> str | None:
    """The letter whose item the preference names, None for neither/both."""
    m = _JUDGE_RE.search(user_text)
    if not m:
        return None
    pref, a, b = m.groups()
    in_a, in_b = a in pref, b in pref
    return "A" if in_a and not in_b else "B" if in_b and not in_a else None


class ScriptedOpenAIServer(FakeOpenAIServer):
    def __init__(self, *, fail_markers: set[str] | None = None,
                 on_request: Callable[[str, list[dict]], None] | None = None, **kw):
        super().__init__(**kw)
        self.fail_markers = set(fail_markers or ())
        self.on_request = on_request
        self.calls: list[tuple[str, list[dict]]] = []
        self.judge_readouts = 0  # teacher-forced (logprobs) requests; the rest were generations

    def _enter(self, body: dict) -> tuple[str, list[dict]]:
        messages = [m for m in body["messages"] if m.get("role") != "assistant"]
        kind = _kind(messages)
        if self.on_request:
            self.on_request(kind, messages)
        self.calls.append((kind, messages))
        text = "\n".join(m.get("content", "") for m in messages)
        for marker in self.fail_markers:
            if marker in text:
                raise ScriptedFailure(f"scripted HTTP 500 for marker {marker!r}")
        return kind, messages

    def _judge_answer(self, body: dict) -> dict:
        kind, messages = self._enter(body)
        self.judge_readouts += 1
        letter = judge_pick(messages[-1]["content"]) if kind == "judge" else None
        p_a = 0.5 if letter is None else 0.9 if letter == "A" else 0.1
        top = [{"token": JUDGE_LETTER_TOKENS["A"], "logprob": math.log(p_a)},
               {"token": JUDGE_LETTER_TOKENS["B"], "logprob": math.log(1 - p_a)}]
        top.sort(key=lambda e: -e["logprob"])
        choice = {"index": 0, "message": {"role": "assistant", "content": top[0]["token"]},
                  "logprobs": {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]},
                  "finish_reason": "length"}
        return {"id": "scripted", "object": "chat.completion", "model": body.get("model"), "choices": [choice]}

    def _generation_answer(self, body: dict) -> dict:
        kind, messages = self._enter(body)
        user = messages[-1]["content"]
        if kind == "teacher":
            text = self._teacher(user)
        elif kind == "merge":
            text = self._merge(user)
        elif kind == "judge":
            letter = judge_pick(user)
            text = f'{{"selection": "Item {letter}"}}' if letter else "Both items fit this user equally well."
        else:
            return super()._generation_answer(body)
        return {"id": "scripted", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    @staticmethod
    def _teacher(user: str) -> str:
        m = _TARGET_RE.search(user)
        if not m:
            return "<think>\nno target triple found\n</think>\n\nThe user likes nothing."
        query, a, b = m.groups()
        chosen, other = (a, b) if CHOSEN_TAG in a else (b, a)
        named = other if "#mislead" in query else chosen
        if "#nothink" in query:
            return f"The user likes {named}."
        return f"<think>\nThe user chose {chosen} over {other}.\n</think>\n\nThe user likes {named}."

    @staticmethod
    def _merge(user: str) -> str:
        liked = _LIKES_RE.findall(user)
        reasons = re.findall(r"^(The user chose .*? over .*?\.)$", user, re.M)
        if "#mergebad" in user:
            return "Merged: " + " ".join(reasons)
        if "#forget" in user:
            liked = liked[:1]
        return " ".join(reasons) + f"\n{PREFERENCE_SEP}\nThe user likes " + "; ".join(liked) + "."
