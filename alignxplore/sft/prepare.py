"""Tokenise the SFT chat rows once, into ``input_ids`` + ``completion_mask``, for TRL.

    python -m alignxplore.sft.prepare --data data/sft/sft.jsonl --model Qwen/Qwen3-8B \\
        --out data/sft/prepared --max-length 16384 --num-proc 16

Why we tokenise ourselves: with trl 0.27.0 and transformers 5, SFTTrainer's own handling of
conversational prompt/completion rows computes the prompt length from a ``BatchEncoding``
and silently trains on nearly the whole prompt. Here each row is rendered with the model's
chat template — the prompt with the generation prompt (``<|im_start|>assistant\\n``), and
prompt + completion — the prompt tokens are checked to be a prefix of the full sequence, and
the mask is 1 exactly on the assistant turn: ``<think>\\n…\\n</think>\\n\\n{summary}<|im_end|>``
(the newline the template adds after ``<|im_end|>`` is dropped: the model never generates it).

Policies (decided here, documented in docs/sft.md):
* a row that fails validation (missing completion, wrong roles, bad JSON) is fatal by
  default, with ``file:line: field`` in the message; ``--skip-bad-rows`` reports, counts and
  drops such rows instead;
* a row the chat template cannot render, or whose prompt is not a token prefix of the full
  sequence, is always fatal (it means a template/tokenizer mismatch, not a bad row);
* over-long rows (> ``--max-length`` tokens) are dropped by default (``--overlong drop``);
  ``--overlong truncate`` keeps their first ``max-length`` tokens instead, which cuts the
  end of the completion (and its ``<|im_end|>``).

Writes a ``datasets`` dataset (``save_to_disk``) plus ``summary.json`` (rows kept/dropped,
token counts, a length histogram).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from ..cli import run_main
from ..formats import BadLines, DataError, iter_jsonl, validate_sft_row
from ..preflight import check_model, check_output_dir
from ..history import MAX_MODEL_LEN

log = logging.getLogger("alignxplore.sft.prepare")
OVERLONG_POLICIES = ("drop", "truncate")
IM_END = "<|im_end|>"


def render_row(row: dict, tokenizer) -> tuple[str, str] | dict:
    """(prompt text, prompt+completion text ending at ``<|im_end|>``), or a failure record."""
    where = row.get("_where", "<row>")
    try:
        prompt_text = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        full_text = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    except Exception as err:  # jinja errors and the like: name the row, not the template internals
        return _failed(where, "completion", f"the chat template cannot render this row ({type(err).__name__}: {err})")
    end = full_text.rfind(IM_END)
    if end < len(prompt_text) or not full_text.startswith(prompt_text):
        return _failed(where, "completion", "the rendered conversation does not extend the prompt with an assistant turn")
    return prompt_text, full_text[: end + len(IM_END)]


def _prompt_length(prompt_text: str, ids: list[int], enc, k: int, tokenizer) -> int | None:
    """Number of prompt tokens at the start of ``ids`` (row ``k`` of the batch encoding
    ``enc``), or None if the prompt's tokens are not a prefix of the full sequence.

    Fast path: a token starts exactly at the end of the prompt text, the token before it
    ends there, and it is an added token (Qwen3's completion starts with ``<think>``); added
    tokens are split off before BPE, so the prompt alone tokenises to exactly the tokens
    before it. The character/token lookups run in the Rust tokenizer. Otherwise the prompt
    is tokenised on its own and compared, which is exact for any tokenizer.
    """
    cut = len(prompt_text)
    n = enc.char_to_token(k, cut) if cut < enc.token_to_chars(k, len(ids) - 1).end else None
    if n and enc.token_to_chars(k, n).start == cut and enc.token_to_chars(k, n - 1).end == cut:
        if tokenizer.convert_ids_to_tokens(ids[n]) in tokenizer.added_tokens_encoder:
            return n
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    return len(prompt_ids) if ids[: len(prompt_ids)] == prompt_ids else None


def tokenize_batch(batch: dict, tokenizer, max_length: int, overlong: str) -> dict:
    """Batched ``datasets.map`` function: one fast-tokenizer call for the whole batch.

    Per row: ``input_ids``, ``completion_mask`` (1 exactly on the assistant turn),
    ``n_prompt``, ``n_completion`` and ``status`` (``ok``, ``overlong`` (dropped), ``truncated``
    or ``error<TAB>where<TAB>field<TAB>problem``).
    """
    rows = [{"prompt": p, "completion": c, "_where": w} for p, c, w in zip(batch["prompt"], batch["completion"], batch["_where"])]
    rendered = [render_row(r, tokenizer) for r in rows]
    texts = [r[1] for r in rendered if isinstance(r, tuple)]
    enc = tokenizer(texts, add_special_tokens=False) if texts else None
    out: dict[str, list] = {k: [] for k in ("input_ids", "completion_mask", "n_prompt", "n_completion", "status")}
    k = 0
    for row, r in zip(rows, rendered):
        if isinstance(r, dict):
            rec = r
        else:
            ids = enc["input_ids"][k]
            n_prompt = _prompt_length(r[0], ids, enc, k, tokenizer)
            k += 1
            if n_prompt is None:
                rec = _failed(row["_where"], "prompt", "its tokens are not a prefix of prompt+completion (template/tokenizer mismatch)")
            else:
                rec = _finish(ids, n_prompt, max_length, overlong)
        for key in out:
            out[key].append(rec[key])
    return out


def _finish(ids: list[int], n_prompt: int, max_length: int, overlong: str) -> dict:
    n_completion = len(ids) - n_prompt
    mask = [0] * n_prompt + [1] * n_completion
    status = "ok"
    if len(ids) > max_length:
        if overlong == "drop":
            return {"input_ids": [], "completion_mask": [], "n_prompt": n_prompt, "n_completion": n_completion, "status": "overlong"}
        ids, mask, status = ids[:max_length], mask[:max_length], "truncated"
    return {"input_ids": ids, "completion_mask": mask, "n_prompt": n_prompt, "n_completion": n_completion, "status": status}


def tokenize_row(row: dict, tokenizer, max_length: int, overlong: str) -> dict:
    """:func:`tokenize_batch` for a single row (tests, debugging)."""
    batch = {"prompt": [row["prompt"]], "completion": [row["completion"]], "_where": [row.get("_where", "<row>")]}
    return {k: v[0] for k, v in tokenize_batch(batch, tokenizer, max_length, overlong).items()}


def _failed(where: str, field: str, problem: str) -> dict:
    # A tab-separated status keeps the dataset's columns uniform across rows.
    return {"input_ids": [], "completion_mask": [], "n_prompt": 0, "n_completion": 0, "status": f"error\t{where}\t{field}\t{problem}"}


def read_sft_rows(path: Path, skip_bad_rows: bool) -> tuple[list[dict], list[str]]:
    """Validated rows (with ``_where``) and the problems of the bad ones. Every bad line is
    reported (capped); without ``skip_bad_rows`` one error then names the first and the count."""
    bad = BadLines(lambda msg: log.warning("%s", msg), skip=skip_bad_rows)
    rows = list(iter_jsonl(path, validate_sft_row, keep_where=True, on_bad=bad))
    bad.finish()  # stop: one error naming the first bad line and the count; skip: the count is logged
    return rows, [str(e) for e in bad.errors]


def length_histogram(lengths: list[int], max_length: int, n_bins: int = 8) -> list[dict]:
    """Counts of sequence lengths in ``n_bins`` equal bins over ``[0, max_length]`` (+ overflow)."""
    width = max(1, math.ceil(max_length / n_bins))
    bins = [{"from": i * width, "to": (i + 1) * width, "count": 0} for i in range(n_bins)]
    over = {"from": max_length + 1, "to": None, "count": 0}
    for n in lengths:
        if n > max_length:
            over["count"] += 1
        else:
            bins[min(n // width, n_bins - 1)]["count"] += 1
    return bins + ([over] if over["count"] else [])


def prepare(data: Path, model: str, out: Path, *, max_length: int = MAX_MODEL_LEN, overlong: str = "drop", num_proc: int = 1, skip_bad_rows: bool = False) -> dict:
    from datasets import Dataset
    from transformers import AutoTokenizer

    if overlong not in OVERLONG_POLICIES:
        raise ValueError(f"overlong must be one of {OVERLONG_POLICIES}")
    check_output_dir(out, "--out")
    check_model(model, "--model", weights=False)
    rows, bad = read_sft_rows(Path(data), skip_bad_rows)
    if not rows:
        raise DataError(str(data), None, "no usable SFT rows")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except OSError as err:  # a wrong path or hub id: one line, not a hub traceback
        raise DataError(str(model), "model", f"cannot load a tokenizer ({str(err).splitlines()[0]})") from None
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"], "_where": r["_where"]} for r in rows])
    ds = ds.map(
        tokenize_batch,
        batched=True,
        batch_size=256,
        fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "overlong": overlong},
        remove_columns=["prompt", "completion"],
        num_proc=num_proc if num_proc > 1 else None,
        desc="tokenising SFT rows",
    )
    errors = [s.split("\t") for s in ds["status"] if s.startswith("error\t")]
    if errors:
        _, where, field, problem = errors[0]
        raise DataError(where, field, problem + (f" (and {len(errors) - 1} more row(s))" if len(errors) > 1 else ""))
    statuses = ds["status"]
    full_lengths = [p + c for p, c in zip(ds["n_prompt"], ds["n_completion"])]
    kept = ds.filter(lambda s: s != "overlong", input_columns="status").select_columns(["input_ids", "completion_mask"])
    if len(kept) == 0:
        raise DataError(str(data), None, f"all {len(ds)} rows are longer than --max-length {max_length} (longest {max(p + c for p, c in zip(ds['n_prompt'], ds['n_completion']))})")
    out = Path(out)
    kept.save_to_disk(str(out))
    kept_lengths = [len(x) for x in kept["input_ids"]]
    summary = {
        "source": str(data),
        "tokenizer": model,
        "max_length": max_length,
        "overlong_policy": overlong,
        "rows_read": len(rows) + len(bad),
        "rows_bad_skipped": len(bad),
        "rows_kept": len(kept),
        "rows_dropped_overlong": statuses.count("overlong"),
        "rows_truncated": statuses.count("truncated"),
        "tokens_kept": sum(kept_lengths),
        "completion_tokens_kept": sum(sum(m) for m in kept["completion_mask"]),
        "max_tokens_seen": max(full_lengths),
        "length_histogram": length_histogram(full_lengths, max_length),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.sft.prepare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="SFT JSONL (prompt/completion chat rows)")
    ap.add_argument("--model", required=True, help="model or tokenizer path whose chat template to use")
    ap.add_argument("--out", required=True, help="output folder (datasets.save_to_disk)")
    ap.add_argument("--max-length", type=int, default=MAX_MODEL_LEN, help="tokens per row (the paper's context length by default)")
    ap.add_argument("--overlong", choices=OVERLONG_POLICIES, default="drop")
    ap.add_argument("--num-proc", type=int, default=1, help="tokenising processes")
    ap.add_argument("--skip-bad-rows", action="store_true", help="report, count and drop invalid rows instead of stopping")
    args = ap.parse_args(argv)
    summary = prepare(Path(args.data), args.model, Path(args.out), max_length=args.max_length, overlong=args.overlong, num_proc=args.num_proc, skip_bad_rows=args.skip_bad_rows)
    print(json.dumps({k: v for k, v in summary.items() if k != "length_histogram"}, indent=1))
    return 0


if __name__ == "__main__":
    run_main(main)
