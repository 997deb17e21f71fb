"""Scorer training data: user rows -> the prepared dataset the SFT trainer reads.

    python -m alignxplore.data.scorer.prepare --users data/users/*_train.jsonl \\
        --model Qwen/Qwen3-1.7B --out data/scorer/prepared
    python -m alignxplore.sft.train --config pruning/configs/scorer.yaml     # or bash pruning/train_scorer.sh

One row per user: the scorer text of the user's last 100 behaviours (``scorer_text``: header,
then ``<prompt>…</prompt><option_A>…</option_A><option_B>…</option_B><preference> {A|B} </preference>|SEP|``,
A/B seeded per user), tokenised and cut at 8,192 tokens, written with ``save_to_disk`` in the
same columns ``alignxplore.sft.prepare`` writes: ``input_ids`` and ``completion_mask``, where
the mask is 1 exactly on the ``' A'`` / ``' B'`` letter tokens. The SFT trainer turns every
mask-0 token into label -100, so the loss is the scorer's prediction of each letter from
everything before it (the authors' "loss only on the letter tokens").

Users with no behaviours, or whose first letter lies beyond ``--max-length``, are skipped and
counted; bad rows stop with ``file:line: field: problem``. A ``summary.json`` is written beside
the dataset (users read/kept/skipped, letters kept/cut, token counts).
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
from pathlib import Path

from ...cli import run_main
from ...formats import DataError, iter_jsonl
from .text import LAST_BEHAVIOURS, SEED, TRAINING_MAX_LENGTH, encode_user, read_user_row

log = logging.getLogger("alignxplore.data.scorer.prepare")


def scorer_example(row: dict, tokenizer, *, max_length: int, last: int, seed: int, where: str) -> tuple[dict | None, int]:
    """``({input_ids, completion_mask}, letters cut off)``; None when the row trains nothing."""
    enc = encode_user(row, tokenizer, max_length=max_length, last=last, seed=seed, where=where)
    if not enc.letter_tokens:
        return None, enc.cut_off
    mask = [0] * len(enc.input_ids)
    for t in enc.letter_tokens:
        mask[t] = 1
    return {"input_ids": enc.input_ids, "completion_mask": mask}, enc.cut_off


def prepare(user_files: list[str], model: str, out: Path, *, max_length: int = TRAINING_MAX_LENGTH, last: int = LAST_BEHAVIOURS, seed: int = SEED) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except OSError as err:
        raise DataError(str(model), "model", f"cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    paths = [p for pattern in user_files for p in (sorted(glob.glob(pattern)) or [pattern])]
    examples, stats = [], {"users_read": 0, "users_empty": 0, "users_all_cut": 0, "letters_kept": 0, "letters_cut": 0}
    for path in paths:
        for row in iter_jsonl(path, read_user_row, keep_where=True):
            stats["users_read"] += 1
            if not row["behaviors"]:
                stats["users_empty"] += 1
                continue
            ex, cut = scorer_example(row, tokenizer, max_length=max_length, last=last, seed=seed, where=row["_where"])
            stats["letters_cut"] += cut
            if ex is None:
                stats["users_all_cut"] += 1
                continue
            stats["letters_kept"] += sum(ex["completion_mask"])
            examples.append(ex)
    if not examples:
        raise DataError(",".join(paths), None, "no user with a behaviour to train on")
    ds = Dataset.from_dict({"input_ids": [e["input_ids"] for e in examples], "completion_mask": [e["completion_mask"] for e in examples]})
    out = Path(out)
    ds.save_to_disk(str(out))
    lengths = [len(e["input_ids"]) for e in examples]
    summary = {"sources": paths, "tokenizer": model, "max_length": max_length, "last": last, "seed": seed, **stats,
               "rows": len(examples), "tokens": sum(lengths), "max_tokens": max(lengths)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.scorer.prepare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", nargs="+", required=True, help="user rows JSONL file(s) or glob(s) ({uid, behaviors})")
    ap.add_argument("--model", required=True, help="the scorer's base model or tokenizer path")
    ap.add_argument("--out", required=True, help="output folder (datasets.save_to_disk)")
    ap.add_argument("--max-length", type=int, default=TRAINING_MAX_LENGTH, help="tokens per user text (the authors' 8,192)")
    ap.add_argument("--last", type=int, default=LAST_BEHAVIOURS, help="each user's last N behaviours")
    ap.add_argument("--seed", type=int, default=SEED, help="A/B order seed")
    args = ap.parse_args(argv)
    print(json.dumps(prepare(args.users, args.model, Path(args.out), max_length=args.max_length, last=args.last, seed=args.seed), indent=1))
    return 0


if __name__ == "__main__":
    run_main(main)
