"""transformers in-process: the CPU path for tests and the demo, and a simple GPU path.

Batches are formed from length-sorted prompts (less padding) under a token budget, left-padded,
and results are returned in input order. The budget (``max_batch_tokens``, default
:data:`DEFAULT_BATCH_TOKENS`) bounds ``rows x (longest prompt + new tokens)`` of a batch, so a
long prompt runs alone or with few others while short ones fill ``batch_size`` rows. An item
that cannot run is failed with its reason and the others go on (as the vLLM backend does):

* a prompt whose tokens plus the new tokens exceed the context the model's config declares
  (``max_position_embeddings``) is refused before any compute — on CPU this is also the
  memory bound, since an allocation failure there may kill the process instead of raising;
* a batch that runs out of memory (``torch.OutOfMemoryError``, or a ``RuntimeError`` from the
  CPU allocator) is split in halves and retried; a single prompt that still does not fit is
  failed with "out of memory". Judging is one forward pass per batch: the log-softmax at the last
position (right after the teacher-forced ``{"selection": "Item``) read at ``' A'`` / ``' B'``.

The sampled judge protocol costs one prefill per item too: the teacher-forced prompt (judge
prompt + answer prefix) is run once with the KV cache on, P(A)/P(B) are read at its end, the
cache is cropped back to the bare judge prompt (the prefix is the same few tokens for every
row, so with left padding that is one crop for the batch) and the sampler continues from it.
Sampling is seeded per batch (``torch.manual_seed`` with the batch's first item seed): the
same items with the same batch size give the same answers.

Generation runs :mod:`.hf_decode`'s loop rather than ``model.generate``: the same forward
calls and draws (a seeded batch without a shared prefix gives the tokens ``generate`` gave),
without ``generate``'s per-step passes over the whole vocabulary, and with a batch's common
prompt prefix prefilled once for all its rows.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

from tqdm.auto import tqdm

from ..prompts import Message
from . import hf_decode
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


# Padded tokens per batch: 8 rows of 4k tokens, or one 32k prompt. Picked for a single GPU
# with an 8B model in bf16 (its KV cache for 32k tokens is ~4.6 GB); lower it for less memory.
DEFAULT_BATCH_TOKENS = 32768


def plan_batches(lengths: Sequence[int], batch_size: int, max_tokens: int, extra: int = 0) -> list[list[int]]:
    """Indices of ``lengths`` in batches: longest first, each batch at most ``batch_size`` rows
    and ``rows x (its longest + extra) <= max_tokens`` (a prompt over the budget runs alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        cur = batches[-1] if batches else None
        # Sorted longest first, so a batch's first item is its longest.
        if cur and len(cur) < batch_size and (len(cur) + 1) * (lengths[cur[0]] + extra) <= max_tokens:
            cur.append(i)
        else:
            batches.append([i])
    return batches


class TopKTopPSampler:
    """Draws the next token from temperature -> top-k -> top-p (transformers' order and top-p
    rule: keep the most probable tokens until their mass reaches ``top_p``, at least one),
    working on the ``top_k`` best logits only, and returns scores that make greedy decoding
    pick the drawn token.

    Why: transformers' sampler sorts, soft-maxes and draws over the whole vocabulary (152k for
    Qwen3) for every row and step; on CPU with a small model that was most of the time of a
    batched generate (measured: 16 rows x 16 steps, 79% in exponential_/sort/cumsum/softmax),
    so batching requests gained little. Here a step costs one top-k pass over the vocabulary.
    The distribution is the same; exactly ``top_k`` tokens survive when several tie at the
    k-th logit (transformers keeps every tie). Seeded by ``torch.manual_seed`` as before.
    """

    def __init__(self, temperature: float, top_k: int | None, top_p: float | None):
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def distribution(self, scores):
        """(token ids, unnormalised probabilities) of the tokens that can be drawn, per row."""
        import torch

        k = scores.shape[-1] if not self.top_k or self.top_k <= 0 else min(self.top_k, scores.shape[-1])
        values, index = scores.float().topk(k, dim=-1)  # sorted, most probable first
        probs = torch.softmax(values / self.temperature, dim=-1)
        if self.top_p is not None and self.top_p < 1.0:
            before = probs.cumsum(-1) - probs  # mass of the tokens more probable than this one
            probs = probs * (before < self.top_p)
        return index, probs

    def draw(self, scores):
        """One token id per row (what the backend's decoding loop uses)."""
        import torch

        index, probs = self.distribution(scores)
        return index.gather(-1, torch.multinomial(probs, 1))[:, 0]

    def __call__(self, input_ids, scores):
        """As a ``generate`` logits processor: ``-inf`` everywhere but the drawn token."""
        import torch

        token = self.draw(scores)[:, None]
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, token, 0.0)


def token_picker(temperature: float, top_k: int | None, top_p: float | None) -> Callable:
    """``logits [B, V] -> token ids [B]``: greedy for temperature 0, else :class:`TopKTopPSampler`."""
    if temperature <= 0:
        return lambda logits: logits.argmax(-1)
    return TopKTopPSampler(temperature, top_k, top_p).draw


def sampling_kwargs(temperature: float, top_k: int | None, top_p: float | None) -> dict:
    """``generate`` arguments: greedy for temperature 0, else :class:`TopKTopPSampler`."""
    if temperature <= 0:
        return {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
    from transformers import LogitsProcessorList

    return {"do_sample": False, "temperature": None, "top_k": None, "top_p": None,
            "logits_processor": LogitsProcessorList([TopKTopPSampler(temperature, top_k, top_p)])}


def is_out_of_memory(err: BaseException) -> bool:
    import torch

    if isinstance(err, torch.OutOfMemoryError):
        return True
    msg = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg or "DefaultCPUAllocator" in msg)


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
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
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
        self.max_batch_tokens = max_batch_tokens
        ctx = getattr(self.model.config, "max_position_embeddings", None)
        self.context_length = ctx if isinstance(ctx, int) and ctx > 0 else None
        self.progress = progress
        self._letters = letter_token_ids(self.tokenizer)
        self._stop_ids = sorted({self.tokenizer.convert_tokens_to_ids("<|im_end|>"), self.tokenizer.eos_token_id} - {None})

    # -- helpers ---------------------------------------------------------------------
    def _run_batched(self, texts: list[str], batch_size: int, extra: int, desc: str,
                     step: Callable, fail: Callable[[str], object], *, padded: bool = True) -> list:
        """``step(indices, encoded batch) -> results`` over token-budgeted batches (see the
        module docstring); items that cannot run get ``fail(reason)``. Input order is kept.
        With ``padded=False`` the batch is the rows' token id lists, unpadded."""
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        out: list = [None] * len(texts)
        fits = []
        for i, x in enumerate(ids):
            if self.context_length and len(x) + extra > self.context_length:
                out[i] = fail(f"prompt of {len(x)} tokens + {extra} new tokens does not fit the model's context of {self.context_length} tokens")
            else:
                fits.append(i)
        plan = plan_batches([len(ids[i]) for i in fits], batch_size, self.max_batch_tokens, extra)
        queue = deque([[fits[j] for j in batch] for batch in plan])
        bar = tqdm(total=len(fits), desc=desc, disable=not self.progress, leave=False)
        while queue:
            idx = queue.popleft()
            rows = [ids[i] for i in idx]
            enc = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt").to(self.device) if padded else rows
            try:
                results = step(idx, enc)
            except (RuntimeError, MemoryError) as err:
                if not (isinstance(err, MemoryError) or is_out_of_memory(err)):
                    raise
                del enc
                self._free_memory()
                if len(idx) > 1:  # retry in halves, longest half first
                    queue.appendleft(idx[len(idx) // 2 :])
                    queue.appendleft(idx[: len(idx) // 2])
                    continue
                results = [fail(f"out of memory for a prompt of {len(ids[idx[0]])} tokens + {extra} new tokens ({type(err).__name__})")]
            for i, r in zip(idx, results):
                out[i] = r
            bar.update(len(idx))
        bar.close()
        return out

    def _free_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- Backend ---------------------------------------------------------------------
    def generate(self, conversations: Sequence[Sequence[Message]], sampling: SamplingConfig, *, enable_thinking: bool = True) -> list[Generated]:
        import torch

        texts = [render_generation_prompt(self.tokenizer, m, enable_thinking=enable_thinking) for m in conversations]
        torch.manual_seed(sampling.seed)

        pick = token_picker(sampling.temperature, sampling.top_k, sampling.top_p)

        def step(idx, rows):  # unpadded: prefill shares the rows' common prefix (hf_decode)
            with torch.no_grad():
                state = hf_decode.prefill(self.model, rows, self.tokenizer.pad_token_id, self.device)
                new = hf_decode.sample(self.model, *state, draw=pick, max_new_tokens=sampling.max_new_tokens,
                                       stop_ids=self._stop_ids, pad_id=self.tokenizer.pad_token_id)
            return [Generated(self.tokenizer.decode(row, skip_special_tokens=True)) for row in new]

        return self._run_batched(texts, self.generation_batch_size, sampling.max_new_tokens, "generate", step, lambda why: Generated(None, why),
                                 padded=False)

    def judge(self, conversations: Sequence[Sequence[Message]]) -> list[JudgeScore]:
        import torch

        texts = [render_judge_prompt(self.tokenizer, m) for m in conversations]
        ids = [self._letters["A"], self._letters["B"]]

        def step(idx, enc):
            with torch.no_grad():
                # Left padding puts every prompt's last token at position -1.
                logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :].float()
            logprobs = torch.log_softmax(logits, dim=-1)[:, ids].tolist()
            return [JudgeScore.from_logprobs(la, lb) for la, lb in logprobs]

        return self._run_batched(texts, self.judge_batch_size, 1, "judge", step, JudgeScore.failed)

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
        ids = [self._letters["A"], self._letters["B"]]

        def step(idx, enc):
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
                    cache.crop(keep - 1)  # the last prompt token is fed below, as generate() did
                    prompt_ids, mask = enc["input_ids"][:, :keep], enc["attention_mask"][:, :keep]
                else:  # tokenisation did not split at the prefix: prefill the bare prompt again
                    cache = None
                    benc = self.tokenizer([bare[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
                    prompt_ids, mask = benc["input_ids"], benc["attention_mask"]
                torch.manual_seed(seeds[idx[0]])
                if cache is None:
                    state = hf_decode.prefill(self.model, [row[m.bool()].tolist() for row, m in zip(prompt_ids.cpu(), mask.cpu())],
                                              self.tokenizer.pad_token_id, self.device)
                else:  # the cache holds all but the last prompt token: feed it, as generate() did
                    pos = hf_decode.positions(mask)[:, -1:]
                    out = self.model(input_ids=prompt_ids[:, -1:], attention_mask=mask, position_ids=pos, past_key_values=cache,
                                     use_cache=True, logits_to_keep=1)
                    state = (out.logits[:, -1, :], out.past_key_values, mask, pos)
                new = hf_decode.sample(self.model, *state, draw=token_picker(sampling.temperature, sampling.top_k, sampling.top_p),
                                       max_new_tokens=sampling.max_new_tokens, stop_ids=self._stop_ids,
                                       pad_id=self.tokenizer.pad_token_id)
            return [SampledJudgment(self.tokenizer.decode(row, skip_special_tokens=True), JudgeScore.from_logprobs(la, lb))
                    for row, (la, lb) in zip(new, logprobs)]

        return self._run_batched(forced, self.judge_batch_size, sampling.max_new_tokens, "judge (sampled)", step, SampledJudgment.failed)

    def count_prompt_tokens(self, messages: Sequence[Message], *, enable_thinking: bool = True) -> int:
        return count_tokens(self.tokenizer, messages, enable_thinking=enable_thinking)

    def close(self) -> None:
        self.model = None
