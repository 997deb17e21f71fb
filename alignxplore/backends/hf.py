"""transformers in-process: the CPU path for tests and the demo, and a simple GPU path.

Batches are formed from length-sorted prompts (less padding), left-padded, and results are
returned in input order. Judging is one forward pass per batch: the log-softmax at the last
position (right after the teacher-forced ``{"selection": "Item``) read at ``' A'`` / ``' B'``.

The sampled judge protocol costs one prefill per item too: the teacher-forced prompt (judge
prompt + answer prefix) is run once with the KV cache on, P(A)/P(B) are read at its end, the
cache is cropped back to the bare judge prompt (the prefix is the same few tokens for every
row, so with left padding that is one crop for the batch) and the sampler continues from it.
Sampling is seeded per batch (``torch.manual_seed`` with the batch's first item seed): the
same items with the same batch size give the same answers.
"""
from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

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


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        generation_batch_size: int = 8,
        judge_batch_size: int = 16,
        attn_implementation: str | None = None,
        progress: bool = True,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.device = device
        self.model_path = model
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        kwargs = {"dtype": getattr(torch, dtype)}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        self.model = AutoModelForCausalLM.from_pretrained(model, **kwargs).to(device).eval()
        self.generation_batch_size = generation_batch_size
        self.judge_batch_size = judge_batch_size
        self.progress = progress
        self._letters = letter_token_ids(self.tokenizer)
        self._stop_ids = sorted({self.tokenizer.convert_tokens_to_ids("<|im_end|>"), self.tokenizer.eos_token_id} - {None})

    # -- helpers ---------------------------------------------------------------------
    def _batches(self, texts: list[str], batch_size: int, desc: str):
        """Yield (indices, encoded batch) over length-sorted texts."""
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        bar = tqdm(total=len(texts), desc=desc, disable=not self.progress, leave=False)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            yield idx, enc.to(self.device)
            bar.update(len(idx))
        bar.close()

    # -- Backend ---------------------------------------------------------------------
    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        import torch

        texts = [render_generation_prompt(self.tokenizer, m, enable_thinking=enable_thinking) for m in conversations]
        out: list[Generated | None] = [None] * len(texts)
        torch.manual_seed(sampling.seed)
        for idx, enc in self._batches(texts, self.generation_batch_size, "generate"):
            with torch.no_grad():
                seqs = self.model.generate(
                    **enc,
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else None,
                    top_k=sampling.top_k if sampling.temperature > 0 else None,
                    top_p=sampling.top_p if sampling.temperature > 0 else None,
                    max_new_tokens=sampling.max_new_tokens,
                    eos_token_id=self._stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = seqs[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new):
                out[i] = Generated(self.tokenizer.decode(row, skip_special_tokens=True))
        return out  # type: ignore[return-value]

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        import torch

        texts = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        out: list[JudgeScore | None] = [None] * len(texts)
        ids = [self._letters["A"], self._letters["B"]]
        for idx, enc in self._batches(texts, self.judge_batch_size, "judge"):
            with torch.no_grad():
                # Left padding puts every prompt's last token at position -1.
                logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)[:, ids].tolist()
            for i, (la, lb) in zip(idx, logprobs):
                out[i] = JudgeScore.from_logprobs(la, lb)
        return out  # type: ignore[return-value]

    def judge_sampled(
        self, conversations: Sequence[Sequence[Message]], sampling: JudgeSampling, seeds: Sequence[int] | None = None
    ) -> list[SampledJudgment]:
        import torch

        seeds = item_seeds(sampling, len(conversations), seeds)
        forced = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        bare = [render_generation_prompt(self.tokenizer, m, enable_thinking=False) for m in conversations]
        n_prefix = []
        for f, b in zip(forced, bare):
            f_ids = self.tokenizer(f, add_special_tokens=False)["input_ids"]
            b_ids = self.tokenizer(b, add_special_tokens=False)["input_ids"]
            # The cache can be reused only if the bare prompt's tokens start the forced prompt's.
            n_prefix.append(len(f_ids) - len(b_ids) if f_ids[: len(b_ids)] == b_ids else None)
        out: list[SampledJudgment | None] = [None] * len(conversations)
        ids = [self._letters["A"], self._letters["B"]]
        for idx, enc in self._batches(forced, self.judge_batch_size, "judge (sampled)"):
            cut = {n_prefix[i] for i in idx}
            with torch.no_grad():
                # Positions from the attention mask, as generate() computes them, so the
                # cached keys match what the sampler would have computed itself.
                pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                fwd = self.model(**enc, position_ids=pos, use_cache=True, logits_to_keep=1)
                logprobs = torch.log_softmax(fwd.logits[:, -1, :].float(), dim=-1)[:, ids].tolist()
                if len(cut) == 1 and None not in cut:
                    keep = enc["input_ids"].shape[1] - cut.pop()
                    cache = fwd.past_key_values
                    cache.crop(keep - 1)  # generate() feeds the last prompt token itself
                    prompt_ids, mask = enc["input_ids"][:, :keep], enc["attention_mask"][:, :keep]
                else:  # tokenisation did not split at the prefix: prefill the bare prompt again
                    cache = None
                    benc = self.tokenizer([bare[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
                    prompt_ids, mask = benc["input_ids"], benc["attention_mask"]
                torch.manual_seed(seeds[idx[0]])
                sample = sampling.temperature > 0
                seqs = self.model.generate(
                    input_ids=prompt_ids,
                    attention_mask=mask,
                    past_key_values=cache,
                    do_sample=sample,
                    temperature=sampling.temperature if sample else None,
                    top_k=sampling.top_k if sample else None,
                    top_p=sampling.top_p if sample else None,
                    max_new_tokens=sampling.max_new_tokens,
                    eos_token_id=self._stop_ids,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = seqs[:, prompt_ids.shape[1] :]
            for i, row, (la, lb) in zip(idx, new, logprobs):
                out[i] = SampledJudgment(self.tokenizer.decode(row, skip_special_tokens=True), JudgeScore.from_logprobs(la, lb))
        return out  # type: ignore[return-value]

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        return count_tokens(self.tokenizer, messages, enable_thinking=enable_thinking)

    def close(self) -> None:
        self.model = None
