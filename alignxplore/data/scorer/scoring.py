"""Scoring: ``logprob1`` of every one of a user's last 100 behaviours, one forward pass per user.

    # one GPU (or CPU)
    python -m alignxplore.data.scorer.scoring --users 'data/users/*_train.jsonl' \\
        --model checkpoints/scorer/final --out data/scored/users_scored.jsonl
    # 8 GPUs, data parallel: one process per GPU, each scores users i with i % 8 == rank and
    # writes OUT.rank{r}; pruning/score.sh then concatenates the shards into OUT
    torchrun --nproc_per_node 8 -m alignxplore.data.scorer.scoring --users ... --model ... --out ...
    # or: USERS=... MODEL=... OUT=... bash pruning/score.sh [--weak-model Qwen/Qwen3-1.7B]

The user's text (``scorer_text``) holds every behaviour with its letter; with a causal model
the logits at the token before each letter are exactly what a separate pass over the prefix
would give, so one pass per user yields all ``logprob1 = log P(letter | everything before)``.
Only the logits at those positions are computed (``logits_to_keep``), not the whole
sequence × vocabulary.

``--weak-model`` scores the same texts with a second model for ``logprob2`` and stores
``signal = logprob1 − logprob2``. That definition is an inference: the authors used these
fields but did not release the code that computed them.

Output (one line per user, appended after each batch and fsynced; rerunning the same command
skips the users already written): ``uid``, ``behaviors`` = the rendered last-N behaviours,
each scored one with ``answer`` (its letter), ``logprob1`` and, with a weak model,
``logprob2`` and ``signal`` added in place (those whose letter lies beyond ``--max-length``
stay plain), and ``cut_off`` (how many). This is the scored-user-row format the SFT synthesis
(``alignxplore.data.synth.users``) and the pruning read. Users with no behaviours are skipped
and counted.
"""
from __future__ import annotations

import argparse
import logging
import os

from ...cli import run_main
from ...formats import DataError, ResumableJsonl, expand_globs, read_jsonl
from .text import LAST_BEHAVIOURS, SCORING_MAX_LENGTH, SEED, EncodedUser, encode_user, letter_token_ids, read_user_row

log = logging.getLogger("alignxplore.data.scorer.scoring")


def load_model(path: str, device: str, dtype: str = "auto", attn_implementation: str = "sdpa"):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as err:
        raise DataError(path, "model", f"cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    torch_dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32, "bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn_implementation).to(device).eval()
    return model, tokenizer


def user_logprobs(model, users: list[EncodedUser], letter_ids: dict[str, int], pad_id: int) -> list[list[float]]:
    """One forward pass for a batch of users (right-padded); per user, log P(letter) at each of
    its letter tokens, read from the logits at the position before it."""
    import torch

    device = next(model.parameters()).device
    width = max(len(u.input_ids) for u in users)
    ids = torch.full((len(users), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(users), width), dtype=torch.long)
    for b, u in enumerate(users):
        ids[b, : len(u.input_ids)] = torch.tensor(u.input_ids)
        mask[b, : len(u.input_ids)] = 1
    positions = sorted({t - 1 for u in users for t in u.letter_tokens})
    if not positions:
        return [[] for _ in users]
    column = {p: k for k, p in enumerate(positions)}
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=torch.tensor(positions, device=device)).logits
    out = []
    for b, u in enumerate(users):
        cols = torch.tensor([column[t - 1] for t in u.letter_tokens], device=device, dtype=torch.long)
        targets = torch.tensor([letter_ids[u.letters[k]] for k in u.behaviour_index], device=device)
        logp = torch.log_softmax(logits[b, cols].float(), dim=-1)
        out.append(logp.gather(1, targets[:, None])[:, 0].tolist())
    return out


def reference_logprobs(model, user: EncodedUser, letter_ids: dict[str, int]) -> list[float]:
    """The slow reference: one forward pass per behaviour over the prefix before its letter."""
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for t, k in zip(user.letter_tokens, user.behaviour_index):
            logits = model(input_ids=torch.tensor([user.input_ids[:t]], device=device), logits_to_keep=1).logits
            out.append(torch.log_softmax(logits[0, -1].float(), dim=-1)[letter_ids[user.letters[k]]].item())
    return out


def batches(users: list[EncodedUser], batch_size: int, max_batch_tokens: int):
    """Longest users first (an out-of-memory batch shows up at once), at most ``batch_size``
    users and ``max_batch_tokens`` padded tokens per batch."""
    order = sorted(users, key=lambda u: len(u.input_ids), reverse=True)
    batch: list[EncodedUser] = []
    for u in order:
        if batch and (len(batch) == batch_size or len(batch[0].input_ids) * (len(batch) + 1) > max_batch_tokens):
            yield batch
            batch = []
        batch.append(u)
    if batch:
        yield batch


def score_batch(models, batch: list[EncodedUser], by_uid: dict, letter_ids: dict, pads: dict) -> list[dict]:
    """Output records for one batch: each scored behaviour gets ``answer`` and ``logprob1`` and,
    with a weak model, ``logprob2`` and ``signal``; behaviours cut off by ``--max-length`` stay plain."""
    values = {name: user_logprobs(model, [by_uid[name][u.uid] for u in batch], letter_ids[name], pads[name]) for name, model, _ in models}
    records = []
    for b, u in enumerate(batch):
        weak = dict(zip(by_uid["logprob2"][u.uid].behaviour_index, values["logprob2"][b])) if "logprob2" in values else {}
        behaviors = [dict(x) for x in u.behaviors]
        for k, lp in zip(u.behaviour_index, values["logprob1"][b]):
            behaviors[k].update(answer=u.letters[k], logprob1=lp)
            if k in weak:
                behaviors[k].update(logprob2=weak[k], signal=lp - weak[k])
        records.append({"uid": u.uid, "behaviors": behaviors, "cut_off": u.cut_off})
    return records


def shard_path(out: str, rank: int, world: int) -> str:
    return out if world == 1 else f"{out}.rank{rank}"


def score(args) -> dict:
    import torch
    from tqdm import tqdm

    rank, world = int(os.environ.get("RANK", args.rank)), int(os.environ.get("WORLD_SIZE", args.world_size))
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = args.device or (f"cuda:{local % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    out = ResumableJsonl(shard_path(args.out, rank, world), key=lambda r: str(r["uid"]))
    all_rows = [r for path in expand_globs(args.users) for r in read_jsonl(path, read_user_row, keep_where=True)]
    first_seen: dict[str, str] = {}
    for r in all_rows:  # every rank checks the whole file, so a duplicate split across shards is caught too
        if str(r["uid"]) in first_seen:
            raise DataError(r["_where"], "uid", f"{r['uid']!r} already at {first_seen[str(r['uid'])]}")
        first_seen[str(r["uid"])] = r["_where"]
    rows = all_rows[rank::world]
    empty = sum(1 for r in rows if not r["behaviors"])
    todo = [r for r in rows if r["behaviors"] and str(r["uid"]) not in out]
    log.info("rank %d/%d on %s: %d users, %d already scored, %d without behaviours (skipped)", rank, world, device, len(rows), len(rows) - len(todo) - empty, empty)
    models = [("logprob1", *load_model(args.model, device, args.dtype, args.attn_implementation))]
    if args.weak_model:
        models.append(("logprob2", *load_model(args.weak_model, device, args.dtype, args.attn_implementation)))
    letter_ids = {name: letter_token_ids(tok) for name, _, tok in models}
    pads = {name: tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id for name, _, tok in models}
    n_behaviours = 0
    progress = tqdm(total=len(todo), desc=f"scoring users (rank {rank})", disable=rank != 0)
    # Tokenise a chunk of users at a time (token lists of a whole dataset would not fit in
    # host memory), then batch the chunk longest first.
    for start in range(0, len(todo), args.chunk_users):
        chunk = todo[start : start + args.chunk_users]
        by_uid = {name: {u.uid: u for u in (encode_user(r, tok, max_length=args.max_length, last=args.last, seed=args.seed, where=r["_where"]) for r in chunk)} for name, _, tok in models}
        for batch in batches(list(by_uid["logprob1"].values()), args.batch_size, args.max_batch_tokens):
            records = score_batch(models, batch, by_uid, letter_ids, pads)
            n_behaviours += sum("logprob1" in x for r in records for x in r["behaviors"])
            out.append(records)
            progress.update(len(batch))
    progress.close()
    return {"rank": rank, "users_scored": len(todo), "users_skipped_empty": empty, "behaviours_scored": n_behaviours, "out": str(out.path)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.scorer.scoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", nargs="+", required=True, help="user rows JSONL file(s) or quoted glob(s) ({uid, behaviors}) from the converters")
    ap.add_argument("--model", required=True, help="the trained scorer (HF checkpoint)")
    ap.add_argument("--weak-model", default=None, help="a weaker model for logprob2 and signal = logprob1 - logprob2")
    ap.add_argument("--out", required=True, help="output JSONL (OUT.rank{r} per process when WORLD_SIZE > 1)")
    ap.add_argument("--last", type=int, default=LAST_BEHAVIOURS, help="score each user's last N behaviours")
    ap.add_argument("--max-length", type=int, default=SCORING_MAX_LENGTH, help="tokens per user text (the rest is cut)")
    ap.add_argument("--seed", type=int, default=SEED, help="A/B order seed (must match the scorer's training data)")
    ap.add_argument("--batch-size", type=int, default=4, help="users per forward pass")
    ap.add_argument("--max-batch-tokens", type=int, default=65536, help="padded tokens per forward pass")
    ap.add_argument("--chunk-users", type=int, default=1024, help="users tokenised at a time")
    ap.add_argument("--dtype", choices=("auto", "bf16", "fp16", "fp32"), default="auto", help="auto: bf16 on GPU, fp32 on CPU")
    ap.add_argument("--attn-implementation", default="sdpa", help="sdpa, or flash_attention_2 where installed (right padding is fine for both)")
    ap.add_argument("--device", default=None, help="default: cuda:LOCAL_RANK when CUDA is available, else cpu")
    ap.add_argument("--rank", type=int, default=0, help="this process's shard (default $RANK, set by torchrun)")
    ap.add_argument("--world-size", type=int, default=1, help="number of shards (default $WORLD_SIZE)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(score(args))
    return 0


if __name__ == "__main__":
    run_main(main)
