"""Per-model rules for summary models and downstream judges: one table, not name tests in code.

The main table's models answer in the Qwen3 / DeepSeek-R1 shape (``<think>…</think>`` then the
answer). Two models of the paper's transfer experiments do not:

* **GPT-OSS-20B** answers in its harmony format: an analysis channel, then the final channel
  (``<|start|>assistant<|channel|>final<|message|>…``; with special tokens skipped, as vLLM
  returns text, the markers collapse to ``analysis…assistantfinal…``). The authors gave it, as a
  judge, 2,048 new tokens (their ``"gpt" in model`` switch) and parsed the JSON after the last
  ``assistantfinal``; as a summary model its summary is the final channel. An answer without a
  final channel is unparseable (judge) / an empty summary (summary model): the model ran out of
  tokens while still analysing. Its chat template has no thinking switch (``reasoning_effort``
  instead; left at the template's default, as the authors did).
  **Teacher-forced read-out: unavailable.** Our read-out forces ``{"selection": "Item`` as the
  start of the answer; for GPT-OSS that skips the analysis the sampled protocol lets it write,
  so its P(A)/P(B) would not describe the sampled answer. Decision: the read-out is not used for
  this judge — ``argmax_accuracy``, ``expected_accuracy`` and the confidences are reported as
  ``null`` with ``readout_unavailable`` saying why, and the ``teacher-forced`` protocol refuses it.
* **Qwen2.5-7B-Instruct** has no thinking mode: its chat template ignores ``enable_thinking``
  (an unused Jinja variable), so the same calls work; nothing else changes (the authors' judge
  call was the same as for Qwen3-8B).

A model matches the first entry one of whose ``match`` strings is in its lower-cased name or path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .prompts import extract_summary, parse_selection

# The final channel's start: with special tokens kept, and as decoded text with them skipped.
HARMONY_FINAL_MARKERS = ("<|channel|>final<|message|>", "assistantfinal")
_HARMONY_END = re.compile(r"(<\|return\|>|<\|end\|>|<\|call\|>)\s*$")


@dataclass(frozen=True)
class ModelProtocol:
    name: str
    match: tuple[str, ...]
    output_format: str = "think"  # "think": text after the last </think>; "harmony": the final channel
    judge_max_new_tokens: int | None = None  # None: the run's setting (16, the published protocol)
    readout_available: bool = True
    note: str = ""

    def final_text(self, text: str) -> str | None:
        """The answer part of a response: after the last ``</think>`` (think), or the final
        channel (harmony; None when the response has none)."""
        if self.output_format == "think":
            return text
        found = [(text.rfind(m), m) for m in HARMONY_FINAL_MARKERS if m in text]
        if not found:
            return None
        at, marker = max(found)  # the last final channel
        return _HARMONY_END.sub("", text[at + len(marker):]).strip()

    def summary(self, text: str) -> str:
        """The preference summary of a summary model's response."""
        final = self.final_text(text)
        return "" if final is None else extract_summary(final)

    def selection(self, text: str) -> str | None:
        """The judge's letter by the authors' rule applied to the answer part; None = unparseable."""
        final = self.final_text(text)
        return None if final is None else parse_selection(final)

    def as_dict(self) -> dict:
        return {"name": self.name, "output_format": self.output_format, "judge_max_new_tokens": self.judge_max_new_tokens,
                "readout_available": self.readout_available}


MODEL_PROTOCOLS = (
    ModelProtocol("gpt-oss", ("gpt-oss",), output_format="harmony", judge_max_new_tokens=2048, readout_available=False,
                  note="harmony answer: the JSON after the final channel; teacher-forced read-out unavailable"),
    ModelProtocol("qwen2.5-instruct", ("qwen2.5",), note="no thinking switch: enable_thinking is ignored by its template"),
    ModelProtocol("default", ()),
)


def protocol_for(model: str) -> ModelProtocol:
    low = str(model).lower()
    return next(p for p in MODEL_PROTOCOLS if not p.match or any(m in low for m in p.match))
