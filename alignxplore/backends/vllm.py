"""vLLM's offline engine: the GPU path for evaluation (tensor parallel, continuous batching).

``vllm`` is imported only when this backend is built, so CPU installs never need it. Prompts
are rendered with the model's own chat template by *our* code (the same function the ``hf``
backend uses) and handed to the engine as token ids, so the three backends see identical
inputs. Written against vLLM 0.24.0 (the verl 0.9.1 pin); only stable public names are used:
``LLM``, ``SamplingParams``, ``LLM.generate`` with ``{"prompt_token_ids": ...}`` prompts, and
``CompletionOutput.logprobs[0]`` as a token-id -> ``Logprob`` mapping. vLLM returns the raw
model log-probabilities (before temperature / top-k), which is what the judge read-out wants.
"""
from __future__ import annotations

from typing import Sequence

from ..prompts import Message
from .base import Generated, JudgeScore, SamplingConfig, count_tokens, letter_token_ids, render_generation_prompt, render_judge_prompt

# How many top log-probs the judge asks for: both letters are nearly always in the top 2;
# 20 is the OpenAI API's maximum and vLLM's default cap (max_logprobs).
JUDGE_TOP_LOGPROBS = 20


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        max_model_len: int = 16384,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        seed: int = 42,
        enforce_eager: bool = False,
        progress: bool = True,
    ):
        from vllm import LLM  # lazy: GPU stack only

        self.llm = LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.progress = progress
        self._letters = letter_token_ids(self.tokenizer)

    def _prompts(self, texts: list[str]) -> list[dict]:
        return [{"prompt_token_ids": self.tokenizer(t, add_special_tokens=False)["input_ids"]} for t in texts]

    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
        )
        texts = [render_generation_prompt(self.tokenizer, m, enable_thinking=enable_thinking) for m in conversations]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=self.progress)
        return [Generated(o.outputs[0].text) for o in outputs]

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=1, logprobs=JUDGE_TOP_LOGPROBS)
        texts = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        outputs = self.llm.generate(self._prompts(texts), params, use_tqdm=self.progress)
        scores = []
        for o in outputs:
            top = o.outputs[0].logprobs[0]  # token id -> Logprob at the decision position
            a, b = top.get(self._letters["A"]), top.get(self._letters["B"])
            scores.append(JudgeScore.from_logprobs(a.logprob if a else None, b.logprob if b else None))
        return scores

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        return count_tokens(self.tokenizer, messages, enable_thinking=enable_thinking)

    def close(self) -> None:
        self.llm = None
