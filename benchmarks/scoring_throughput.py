"""Behaviours scored per second: one forward pass per user vs one per behaviour.

    PYTHONPATH=$PWD python benchmarks/scoring_throughput.py                 # tiny Qwen3, CPU
    python benchmarks/scoring_throughput.py --model Qwen/Qwen3-1.7B --device cuda --users 16

Both sides score the same users (``--behaviours`` each, synthetic items of realistic length)
with the same model, batch size and code path for tokenising (``scorer_text``):

* per user: ``alignxplore.data.scorer.scoring.user_logprobs`` — one pass over the whole user text,
  logits only at the positions before the letters;
* per behaviour: one pass over the prefix that ends before each letter (the way a
  "score this choice given its history" loop would do it), the same number of prefixes per
  batch as users per batch on the other side.

The two sides' log-probabilities are compared (they must agree), then the last line prints
``N.Nx`` = per-user throughput / per-behaviour throughput.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_users(n_users: int, n_behaviours: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = "movie drama comedy thriller classic director sequel soundtrack actor award story city night war love space".split()
    item = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize()  # noqa: E731
    return [{"uid": f"u{u}", "behaviors": [{"query": None, "chosen": item(), "rejected": item()} for _ in range(n_behaviours)]} for u in range(n_users)]


def per_behaviour_logprobs(model, users, letter_ids, pad_id, batch_size):
    """One forward pass per behaviour prefix, batched ``batch_size`` prefixes at a time."""
    import torch

    device = next(model.parameters()).device
    jobs = [(u, t, k) for u in users for t, k in zip(u.letter_tokens, u.behaviour_index)]
    out = []
    for s in range(0, len(jobs), batch_size):
        chunk = jobs[s : s + batch_size]
        width = max(t for _, t, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, (u, t, _) in enumerate(chunk):
            ids[b, :t] = torch.tensor(u.input_ids[:t])
            mask[b, :t] = 1
        last = sorted({t - 1 for _, t, _ in chunk})
        col = {p: i for i, p in enumerate(last)}
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=torch.tensor(last, device=device)).logits
        for b, (u, t, k) in enumerate(chunk):
            out.append(torch.log_softmax(logits[b, col[t - 1]].float(), -1)[letter_ids[u.letters[k]]].item())
    return out


def timed(fn, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="HF checkpoint (default: the tiny random Qwen3)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--behaviours", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()

    import torch

    from alignxplore.data.scorer.text import SCORING_MAX_LENGTH, encode_user, letter_token_ids
    from alignxplore.data.scorer.scoring import batches, load_model, user_logprobs

    torch.set_grad_enabled(False)
    model_dir = args.model
    if model_dir is None:
        from alignxplore.demo.tiny import save_tiny_model

        model_dir = save_tiny_model(Path(tempfile.mkdtemp()) / "tiny-qwen3")
    model, tok = load_model(model_dir, args.device)
    letter_ids = letter_token_ids(tok)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    users = [encode_user(r, tok, max_length=SCORING_MAX_LENGTH, last=args.behaviours) for r in synthetic_users(args.users, args.behaviours)]
    n = sum(len(u.letter_tokens) for u in users)
    tokens = sum(len(u.input_ids) for u in users)
    user_logprobs(model, users[:1], letter_ids, pad)  # warm-up

    per_user, t_user = timed(lambda: [x for b in batches(users, args.batch_size, 1 << 30) for x in sum(user_logprobs(model, b, letter_ids, pad), [])], args.device)
    per_beh, t_beh = timed(lambda: per_behaviour_logprobs(model, sorted(users, key=lambda u: len(u.input_ids), reverse=True), letter_ids, pad, args.batch_size), args.device)
    max_diff = max(abs(a - b) for a, b in zip(per_user, per_beh, strict=True))
    print(f"model {model_dir} on {args.device}; {args.users} users x {args.behaviours} behaviours ({n} scored, {tokens} tokens, {tokens / len(users):.0f} per user); batch {args.batch_size}")
    print(f"one pass per user:      {t_user:8.2f} s  {n / t_user:10.1f} behaviours/s")
    print(f"one pass per behaviour: {t_beh:8.2f} s  {n / t_beh:10.1f} behaviours/s")
    print(f"largest |logprob difference| between the two: {max_diff:.2e}")
    print(f"{t_beh / t_user:.1f}x")


if __name__ == "__main__":
    main()
