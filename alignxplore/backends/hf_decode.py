"""The hf backend's decoding loop: prefill (sharing a batch's common prompt prefix), then one
token per step from :class:`~alignxplore.backends.hf.TopKTopPSampler` (or greedy).

Why not ``model.generate``: with a sampler that only needs the ``top_k`` best logits, most of
what ``generate`` does per step is work over the whole vocabulary that the draw does not
need — a float32 copy of the logits, a logits processor that must return a full ``-inf``
score tensor, and a greedy ``argmax`` over it to recover the drawn token. On CPU with the
tiny Qwen3 (152k-token vocabulary, 16 rows) that was about a quarter of a batched call
(profile in benchmarks/RESULTS.md). This loop draws the token directly.

It computes exactly what ``generate`` computed: the same forward calls (positions from the
attention mask, a ``DynamicCache`` grown one token per step, ``logits_to_keep=1``), the same
draw (one ``torch.multinomial`` over every row each step, finished rows included, so the
random stream is consumed identically), a finished row's later tokens set to the pad token,
and a stop once every row has emitted a stop token or ``max_new_tokens`` is reached. A seeded
call therefore returns the same tokens as before (tests/test_hf_decode.py compares against
``generate`` with the old logits processor).

Prefix sharing: the rows of one batch usually start with the same instruction (the service's
prompts share their first ~220 of ~480 tokens). :func:`prefill` runs that common prefix once
(batch of one), repeats its cache for every row, and runs only the rows' suffixes — the
batch's prefill work no longer grows with rows x prefix length. Each row still attends to
the same tokens at the same positions, so the distribution is the same; the logits can
differ from an unshared prefill in the last bits (floating-point sums in another order, as
between any two batch shapes). A batch of one, or one whose common prefix is shorter than
:data:`MIN_SHARED_PREFIX`, is prefilled as before, in one pass.
"""
from __future__ import annotations

from typing import Sequence

# Below this many common tokens a second forward pass costs more than it saves.
MIN_SHARED_PREFIX = 32


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row starts with."""
    if not rows:
        return 0
    first, n = rows[0], min(len(r) for r in rows)
    for r in rows[1:]:
        i = 0
        while i < n and r[i] == first[i]:
            i += 1
        n = i
    return n


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids, mask


def positions(mask):
    """Position ids from a 2-D attention mask, as ``generate`` computes them (pads get 0)."""
    return (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)


def prefill(model, rows: Sequence[Sequence[int]], pad_id: int, device, *, share_prefix: bool = True):
    """Run the prompts ``rows`` (token ids, unpadded). Returns ``(last logits [B, V], cache,
    attention mask [B, T], last positions [B, 1])`` ready for :func:`sample`."""
    import torch
    from transformers import DynamicCache

    n = len(rows)
    shared = common_prefix_length(rows) if share_prefix and n > 1 else 0
    shared = min(shared, min(len(r) for r in rows) - 1)  # every row keeps a token to predict from
    cache = DynamicCache(config=model.config)
    if shared < MIN_SHARED_PREFIX:
        ids, mask = (t.to(device) for t in _left_pad(rows, pad_id))
        pos = positions(mask)
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1, :], out.past_key_values, mask, pos[:, -1:]
    prefix = torch.tensor([list(rows[0][:shared])], dtype=torch.long, device=device)
    # the decoder alone: the prefix's keys and values are all that is needed, not its logits
    model.base_model(input_ids=prefix, position_ids=torch.arange(shared, device=device)[None], past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(n)
    ids, tail_mask = (t.to(device) for t in _left_pad([r[shared:] for r in rows], pad_id))
    mask = torch.cat([tail_mask.new_ones((n, shared)), tail_mask], dim=-1)  # the padding sits between prefix and suffix
    pos = positions(tail_mask) + shared
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1, :], out.past_key_values, mask, pos[:, -1:]


def sample(model, logits, cache, mask, last_pos, *, draw, max_new_tokens: int, stop_ids: Sequence[int], pad_id: int):
    """New tokens ``[B, <= max_new_tokens]`` continuing from :func:`prefill`'s state.

    ``draw(logits [B, V] float32) -> token ids [B]`` picks each step's tokens. A row that has
    emitted a stop token gets ``pad_id`` afterwards; the loop ends when every row has stopped.
    """
    import torch

    stops = torch.tensor(list(stop_ids), dtype=torch.long, device=logits.device)
    unfinished = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
    new = []
    for step in range(max_new_tokens):
        if step:
            out = model(input_ids=new[-1][:, None], attention_mask=mask, position_ids=last_pos, past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
            logits, cache = out.logits[:, -1, :], out.past_key_values
        token = draw(logits.float())
        token = torch.where(unfinished, token, torch.full_like(token, pad_id))
        new.append(token)
        unfinished &= ~torch.isin(token, stops)
        if not bool(unfinished.any()):
            break
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        last_pos = last_pos + 1
    return torch.stack(new, dim=1)
