"""SFT data preparation: throughput against the bare tokenizer, and padding per optimizer step.

    python benchmarks/sft_prepare_throughput.py [--users 400] [--behaviours 24] [--batch 8]

1. Tokens/s of ``alignxplore.sft.prepare.tokenize_batch`` (chat template twice, one batched
   fast-tokenizer call, the prompt-prefix check, the completion mask) relative
   to a bare batched ``tokenizer(texts)`` call on the same rendered texts, in the same run.
   Target: ratio >= 0.7.
2. The share of padding tokens per optimizer step (micro-batch ``--batch``, gradient
   accumulation 16, shuffled rows) with TRL's collator: padded, padding-free, and BFD packing.

Synthetic rows in the SFT format (real Qwen3 tokenizer), so it runs anywhere, offline.
"""
from __future__ import annotations

import argparse
import random
import time

from alignxplore.prompts import preference_messages, sft_completion
from alignxplore.sft.prepare import render_row, tokenize_batch
from alignxplore.demo.tiny import load_qwen3_tokenizer

WORDS = "jazz news market film hiking kitchen museum quiet loud detailed concise friendly formal science travel".split()


def synthetic_rows(n_users: int, behaviours: int, rng: random.Random) -> list[dict]:
    rows = []
    for u in range(n_users):
        n = rng.randint(max(2, behaviours // 4), behaviours)
        hist = [{"query": "Please recommend some news to me.",
                 "chosen": "Title: " + " ".join(rng.choices(WORDS, k=rng.randint(6, 30))),
                 "rejected": "Title: " + " ".join(rng.choices(WORDS, k=rng.randint(6, 30)))} for _ in range(n)]
        reasoning = " ".join(rng.choices(WORDS, k=rng.randint(100, 400)))
        summary = " ".join(rng.choices(WORDS, k=rng.randint(30, 120)))
        rows.append({"prompt": preference_messages(hist), "completion": [{"role": "assistant", "content": sft_completion(reasoning, summary)}], "_where": f"synthetic:{u + 1}"})
    return rows


def padding_shares(input_ids: list[list[int]], completion_mask: list[list[int]], batch: int, accum: int, max_length: int, rng: random.Random) -> dict[str, float]:
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    examples = [{"input_ids": i, "completion_mask": m} for i, m in zip(input_ids, completion_mask)]
    rng.shuffle(examples)
    packed = pack_dataset(Dataset.from_list(examples), seq_length=max_length, strategy="bfd").to_list()
    out = {}
    for name, data, padding_free in (("padded", examples, False), ("padding-free", examples, True), ("packed (bfd)", packed, True)):
        collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=padding_free)
        pad = total = 0
        step = batch * accum
        for s in range(0, len(data) - step + 1, step):  # whole optimizer steps only
            for b in range(s, s + step, batch):
                mb = collator([{k: v for k, v in ex.items() if k in ("input_ids", "completion_mask", "seq_lengths")} for ex in data[b : b + batch]])
                total += mb["input_ids"].numel()
                pad += int((mb["attention_mask"] == 0).sum()) if "attention_mask" in mb else 0
        out[name] = pad / total if total else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--behaviours", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8, help="micro-batch for the padding measurement")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(0)
    tok = load_qwen3_tokenizer()
    rows = synthetic_rows(args.users, args.behaviours, rng)
    texts = [render_row(r, tok)[1] for r in rows]
    batch = {k: [r[k] for r in rows] for k in ("prompt", "completion", "_where")}

    bare_best = prep_best = float("inf")
    for _ in range(args.repeats):  # interleaved, best of N: same machine state for both
        t0 = time.perf_counter()
        bare = tok(texts, add_special_tokens=False)
        bare_best = min(bare_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        prepped = {k: [] for k in ("input_ids", "completion_mask", "status")}
        for s in range(0, len(rows), 256):  # the batch size prepare() uses
            part = tokenize_batch({k: v[s : s + 256] for k, v in batch.items()}, tok, 1 << 30, "drop")
            for k in prepped:
                prepped[k] += part[k]
        prep_best = min(prep_best, time.perf_counter() - t0)
    n_tokens = sum(len(x) for x in bare["input_ids"])
    assert [len(x) for x in prepped["input_ids"]] == [len(x) for x in bare["input_ids"]], "prepared ids differ from the bare tokenizer's"
    ratio = bare_best / prep_best
    print(f"rows={len(rows)} tokens={n_tokens} (mean {n_tokens / len(rows):.0f}/row)")
    print(f"bare tokenizer(texts):   {n_tokens / bare_best:10.0f} tokens/s")
    print(f"prepare (tokenize_batch): {n_tokens / prep_best:10.0f} tokens/s")
    print(f"ratio prepare/bare: {ratio:.2f} (target >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'})")

    max_len = max(len(x) for x in prepped["input_ids"])
    shares = padding_shares(prepped["input_ids"], prepped["completion_mask"], args.batch, 16, max_len, rng)
    print(f"padding share per optimizer step (micro-batch {args.batch}, accumulation 16):")
    for name, share in shares.items():
        print(f"  {name:14s} {100 * share:5.1f}% padding")


if __name__ == "__main__":
    main()
