"""vLLM's offline engine: the GPU path for evaluation (tensor parallel, continuous batching).

``vllm`` is imported only when this backend is built, so CPU installs never need it. Prompts
are rendered with the model's own chat template by *our* code (the same function the ``hf``
backend uses) and handed to the engine as token ids, so the three backends see identical
inputs. Written against vLLM 0.24.0 (the verl 0.9.1 pin); only stable public names are used:
``LLM``, ``SamplingParams``, ``LLM.generate`` with ``{"prompt_token_ids": ...}`` prompts, and
``CompletionOutput.logprobs[0]`` as a token-id -> ``Logprob`` mapping.

Judge read-out, one code path for vLLM 0.24.0 (GPU pin) and 0.32.0 (the CPU build the tests
run): the engine is built with ``logprobs_mode="processed_logprobs"`` and each judge request
carries ``allowed_token_ids=[' A', ' B']``, so the returned log-probabilities are taken after
that mask: a log-softmax over exactly the two letters, i.e. P(A) = p(' A') / (p(' A') + p(' B')),
the same quantity the hf backend computes — for any judge, even one whose letters fall outside
a top-k list (newer vLLMs also have ``logprob_token_ids``; 0.24 does not). The raw letter mass
is not observable this way (``letter_mass`` is None). Generation requests ask for no
log-probabilities, so the mode does not affect them.

Sampled judge protocol: per chunk of items, one ``LLM.generate`` call for the teacher-forced
read-outs above, then one for the sampled answers (``SamplingParams(temperature=0.6,
top_k=20, top_p=0.95, max_tokens=16, seed=<item seed>)`` on the bare judge prompt, thinking
off). The engine is built with ``enable_prefix_caching=True``, so the second call finds the
judge prompt in the prefix cache: one prefill per item. Per-request seeds make every answer
independent of batching.
"""
from __future__ import annotations

from typing import Sequence

from ..history import MAX_MODEL_LEN
from ..prompts import Message
from .base import (
    Generated,
    JudgeSampling,
    JudgeScore,
    SampledJudgment,
    SamplingConfig,
    count_tokens,
    item_seeds,
    letter_token_ids,
    render_generation_prompt,
    render_judge_prompt,
)



# Log-probs after the allowed_token_ids mask (see the module docstring); judge servers
# should be started with `--logprobs-mode` set to the same value.
LOGPROBS_MODE = "processed_logprobs"
# Items per (read-out call, sampled call) pair of the sampled protocol: small enough that a
# chunk's judge prompts stay in the prefix cache between the two calls, large enough to batch.
PREFIX_CHUNK = 512


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        max_model_len: int = MAX_MODEL_LEN,
        gpu_memory_utilization: float = 0.9,
        dtype: str = "auto",
        seed: int = SamplingConfig.seed,
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
            logprobs_mode=LOGPROBS_MODE,
            enable_prefix_caching=True,  # the sampled judge protocol's two requests share a prompt
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = max_model_len
        self.progress = progress
        self._letters = letter_token_ids(self.tokenizer)

    def _prompts(self, texts: list[str]) -> list[dict]:
        return [{"prompt_token_ids": self.tokenizer(t, add_special_tokens=False)["input_ids"]} for t in texts]

    def _run(self, prompts: list[dict], params) -> list:
        """``LLM.generate`` over the prompts that fit the context; a longer one (the authors'
        streaming selection sets and direct selection baseline are not truncated) would make
        the engine reject the whole call, so it comes back as an error string instead."""
        params = params if isinstance(params, list) else [params] * len(prompts)
        fits = [i for i, p in enumerate(prompts) if len(p["prompt_token_ids"]) < self.max_model_len]
        out: list = [
            f"prompt of {len(p['prompt_token_ids'])} tokens does not fit max_model_len {self.max_model_len}" for p in prompts
        ]
        if fits:
            done = self.llm.generate([prompts[i] for i in fits], [params[i] for i in fits], use_tqdm=self.progress)
            for i, o in zip(fits, done):
                out[i] = o
        return out

    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
        )
        texts = [render_generation_prompt(self.tokenizer, m, enable_thinking=enable_thinking) for m in conversations]
        outputs = self._run(self._prompts(texts), params)
        return [Generated(None, o) if isinstance(o, str) else Generated(o.outputs[0].text) for o in outputs]

    def _forced_params(self):
        from vllm import SamplingParams

        letters = [self._letters["A"], self._letters["B"]]
        return SamplingParams(temperature=0.0, max_tokens=1, logprobs=2, allowed_token_ids=letters)

    def _score(self, output) -> JudgeScore:
        if isinstance(output, str):
            return JudgeScore.failed(output)
        top = output.outputs[0].logprobs[0]  # token id -> Logprob at the decision position
        a, b = top.get(self._letters["A"]), top.get(self._letters["B"])
        score = JudgeScore.from_logprobs(a.logprob if a else None, b.logprob if b else None)
        score.letter_mass = None  # processed log-probs are renormalised over {A, B}
        return score

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        texts = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        outputs = self._run(self._prompts(texts), self._forced_params())
        return [self._score(o) for o in outputs]

    def judge_sampled(
        self, conversations: Sequence[Sequence[Message]], sampling: JudgeSampling, seeds: Sequence[int] | None = None
    ) -> list[SampledJudgment]:
        from vllm import SamplingParams

        seeds = item_seeds(sampling, len(conversations), seeds)
        forced = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        bare = [render_generation_prompt(self.tokenizer, m, enable_thinking=False) for m in conversations]
        forced_params = self._forced_params()
        sampled_params = [
            SamplingParams(
                temperature=sampling.temperature,
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                seed=seed,
            )
            for seed in seeds
        ]
        forced_prompts, bare_prompts = self._prompts(forced), self._prompts(bare)
        judged = []
        # Read-outs first, then the sampled answers, a chunk at a time: the second call finds
        # each judge prompt's KV blocks in the prefix cache (one prefill per item). Two
        # requests for the same prompt in one engine step would both be prefilled.
        for start in range(0, len(conversations), PREFIX_CHUNK):
            part = slice(start, start + PREFIX_CHUNK)
            forced_out = self._run(forced_prompts[part], forced_params)
            sampled_out = self._run(bare_prompts[part], sampled_params[part])
            for f_out, s_out in zip(forced_out, sampled_out):
                score = self._score(f_out)
                if isinstance(s_out, str) or not score.ok:
                    judged.append(SampledJudgment(None, score, s_out if isinstance(s_out, str) else score.error))
                else:
                    judged.append(SampledJudgment(s_out.outputs[0].text, score))
        return judged

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        return count_tokens(self.tokenizer, messages, enable_thinking=enable_thinking)

    def close(self) -> None:
        self.llm = None
