"""Stage-2 records -> ``sft.jsonl``: two rows per user kept by both synthesis stages.

    python -m alignxplore.data.synth postprocess --work-dir data/synth [--out data/sft/sft.jsonl]

Rows are exactly the SFT stage's input (docs/formats.md §1), rendered with the evaluation/SFT
wording (:func:`alignxplore.prompts.streaming_messages`):

1. prompt = first third, no past; completion = ``<think>\\n{thinking_1}\\n</think>\\n\\n{preference_1}``
2. prompt = second third, past = ``preference_1``; completion from ``thinking_2`` / ``preference_2``

Users are written in input order (their row number in the user file), so the file does not
depend on how many runs or retries the stages took. Every row is checked with
:func:`alignxplore.formats.validate_sft_row` before the file is (atomically) written.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ...formats import DataError, read_jsonl, validate_sft_row, write_jsonl
from ...prompts import sft_completion, streaming_messages

log = logging.getLogger("alignxplore.synth")


def sft_rows(record: dict) -> list[dict]:
    """The two SFT rows of one user kept by stage 2."""
    first, second = record["thirds"][0], record["thirds"][1]
    rows = []
    for triples, past, s in ((first, None, 1), (second, record["preference_1"], 2)):
        completion = sft_completion(record[f"thinking_{s}"], record[f"preference_{s}"])
        rows.append({"prompt": streaming_messages(triples, past), "completion": [{"role": "assistant", "content": completion}]})
    return rows


def postprocess(work_dir: str | Path, out: str | Path | None = None) -> dict:
    work = Path(work_dir)
    src = work / "stage2.jsonl"
    out = Path(out) if out else work / "sft.jsonl"
    records = list(read_jsonl(src))
    kept = sorted((r for r in records if r.get("status") == "kept"), key=lambda r: r["index"])
    rows = []
    for r in kept:
        where = f"{src}: user {r.get('uid')!r}"
        for key in ("thirds", "thinking_1", "preference_1", "thinking_2", "preference_2"):
            if key not in r:
                raise DataError(where, key, "missing: not a stage-2 record of this tool")
        for row in sft_rows(r):
            rows.append(validate_sft_row(row, where))
    write_jsonl(out, rows)
    summary = {"input": str(src), "output": str(out), "users_in": len(kept), "stage2_records": len(records), "rows_out": len(rows)}
    (work / "postprocess.summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log.info("postprocess: %d users -> %d SFT rows in %s", len(kept), len(rows), out)
    return summary
