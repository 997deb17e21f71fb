"""The small interface every engine implements, and the helpers they share.

Summary generation and judging are the only model calls in this project; hiding the engine
behind :class:`Backend` lets evaluation, the RL reward and data synthesis run unchanged on
``hf`` (CPU or GPU), ``vllm`` (offline, tensor parallel) or ``openai`` (any OpenAI-compatible
server).

Two judge protocols, both on every backend:

* ``judge`` (teacher-forced read-out; also the RL reward's): the assistant turn is
  teacher-forced with ``{"selection": "Item`` (thinking off) and the next-token probabilities
  of ``' A'`` and ``' B'`` are read at that position.
* ``judge_sampled`` (the published table's protocol, docs/formats.md §4): the answer is *sampled*
  (thinking off, temperature 0.6, top-k 20, top-p 0.95, 16 new tokens, seeded) and returned
  as text for :func:`alignxplore.prompts.parse_selection`; the same item's teacher-forced
  P(A), P(B) come with it, from one prefill of the prompt per item (hf: one forward whose
  cache the sampler continues; vllm / a vLLM server: both requests share the prompt through
  automatic prefix caching).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

from ..prompts import JUDGE_LETTER_TOKENS, Message, with_answer_prefix


class BackendSetupError(RuntimeError):
    """A backend that cannot work as configured (a missing endpoint or file the user must
    supply): the entry points report it in one line, without a traceback."""


@dataclass(frozen=True)
class SamplingConfig:
    """Summary-generation sampling (docs/formats.md §4 defaults)."""

    temperature: float = 0.6
    top_k: int = 20
    top_p: float = 0.95
    max_new_tokens: int = 4096
    seed: int = 42

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Generated:
    """One generated text, or why there is none (only the HTTP backend can fail per item)."""

    text: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class JudgeScore:
    """The judge's probabilities of Item A and Item B at the decision position.

    ``p_a + p_b == 1``: both letters seen -> renormalised over {A, B}; only one seen (an
    HTTP top-k list) -> the other is ``1 - p`` (docs/formats.md §4). ``letter_mass`` is the raw
    probability of the two letter tokens over the whole vocabulary: a judge that follows
    the JSON instruction puts nearly all its mass there, so a low value flags a bad judge.
    """

    p_a: float | None
    p_b: float | None
    letter_mass: float | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, error: str) -> "JudgeScore":
        return cls(None, None, None, error)

    @classmethod
    def from_logprobs(cls, logprob_a: float | None, logprob_b: float | None) -> "JudgeScore":
        if logprob_a is None and logprob_b is None:
            return cls.failed("neither ' A' nor ' B' among the judge's top log-probabilities")
        if logprob_a is not None and logprob_b is not None:
            pa, pb = math.exp(logprob_a), math.exp(logprob_b)
            return cls(pa / (pa + pb), pb / (pa + pb), pa + pb)
        if logprob_a is not None:
            pa = math.exp(logprob_a)
            return cls(pa, 1.0 - pa, pa)
        pb = math.exp(logprob_b)
        return cls(1.0 - pb, pb, pb)


@dataclass(frozen=True)
class JudgeSampling:
    """The sampled judge answer of the published table (docs/formats.md §4)."""

    temperature: float = 0.6
    top_k: int = 20
    top_p: float = 0.95
    max_new_tokens: int = 16
    seed: int = 42

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SampledJudgment:
    """One judge item under the sampled protocol: the sampled answer text and the
    teacher-forced :class:`JudgeScore` of the same prompt. ``error`` is set (and ``text`` is
    None) when the request failed; a parse failure is *not* an error, it is a wrong answer."""

    text: str | None
    score: JudgeScore
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.score.ok

    @classmethod
    def failed(cls, error: str) -> "SampledJudgment":
        return cls(None, JudgeScore.failed(error), error)


def item_seeds(sampling: JudgeSampling, n: int, seeds: Sequence[int] | None) -> list[int]:
    """Per-item sampling seeds: the caller's (stable item indices, so a resumed run samples
    the same answers) or ``seed + i``."""
    if seeds is None:
        return [sampling.seed + i for i in range(n)]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} conversations")
    return list(seeds)


class Backend(Protocol):
    """What evaluation, the reward and data synthesis need from a model engine."""

    name: str

    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        """One completion per conversation (chat-templated by the model's template)."""

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        """P(Item A), P(Item B) for each judge conversation (thinking off)."""

    def judge_sampled(
        self, conversations: Sequence[Sequence[Message]], sampling: JudgeSampling, seeds: Sequence[int] | None = None
    ) -> list[SampledJudgment]:
        """The sampled answer (thinking off) plus the teacher-forced P(A), P(B), per item."""

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        """Tokens of the rendered generation prompt, for the history budget."""

    def close(self) -> None: ...


def render_generation_prompt(tokenizer, messages: Sequence[Message], *, enable_thinking: bool = True) -> str:
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=True, enable_thinking=enable_thinking
    )


def render_judge_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """Judge prompt text ending in the teacher-forced answer prefix, thinking off.

    Rendered as a continued final assistant message: with the Qwen3 template this is the
    generation prompt with thinking off (``...<think>\\n\\n</think>\\n\\n``) followed by the
    prefix, which is also what ``vllm serve`` renders for ``continue_final_message``.
    """
    return tokenizer.apply_chat_template(
        with_answer_prefix(messages), tokenize=False, continue_final_message=True, enable_thinking=False
    )


def letter_token_ids(tokenizer) -> dict[str, int]:
    """Token ids of ``' A'`` and ``' B'``; each must be one token for the read-out to be exact."""
    ids = {}
    for letter, text in JUDGE_LETTER_TOKENS.items():
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"judge tokenizer splits {text!r} into {len(enc)} tokens; the A/B read-out needs one")
        ids[letter] = enc[0]
    return ids


def count_tokens(tokenizer, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
    text = render_generation_prompt(tokenizer, messages, enable_thinking=enable_thinking)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
