"""RL JSONL -> the parquet file verl reads (``data.train_files``).

    python -m alignxplore.rl.data --input data/rl/rl.jsonl --output data/rl/train.parquet
    python -m alignxplore.rl.data --input rl.jsonl --output train.parquet --skip-bad-rows

One parquet row per RL user (docs/formats.md §1, §3):

* ``prompt``: the stage-1 chat messages, RL wording, ``history[:mid]``, past slot
  ``Not Provided.`` (``prompts.rl_messages``); verl's dataset hands it on as ``raw_prompt``;
* ``stage2_history``: ``history[mid:-1]`` as a JSON string (the trainer renders the stage-2
  prompt from it once the stage-1 summary exists; a string keeps the parquet schema flat);
* ``data_source``: ``alignxplore_rl``;
* ``reward_model``: ``{"style": "judge", "ground_truth": {"target1": history[mid],
  "target2": history[-1]}}``; the reward picks the target by ``extra_info.stage``;
* ``extra_info``: ``{"stage": 1, "index": row number, "userid": uid, "mid_position": mid}``.

Validation: bad JSON, a missing field or ``mid_position`` outside ``[1, L-3]`` (docs/formats.md §3:
stage 2 then sees at least two behaviours) or a non-UTF-8 line is one ``file:line: field:
problem`` line. Every bad line is reported (up to 20 listed, then counted); by default the run
then stops and nothing is written; ``--skip-bad-rows`` reports each, counts and drops them.
The output path is checked before the input is read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm.auto import tqdm

from ..cli import run_main
from ..formats import BadLines, DataError, iter_jsonl, validate_rl_row
from ..preflight import check_output_file
from ..prompts import rl_messages

DATA_SOURCE = "alignxplore_rl"
TRIPLE_KEYS = ("query", "chosen", "rejected")


def _triple(t: dict) -> dict:
    # Only the three fields the prompts read: a fixed struct keeps the parquet schema uniform.
    return {k: t[k] for k in TRIPLE_KEYS}


def rl_row_to_record(row: dict, index: int) -> dict:
    """The parquet record of one validated RL row (see the module docstring)."""
    history, mid = row["history"], row["mid_position"]
    return {
        "data_source": DATA_SOURCE,
        "prompt": rl_messages([_triple(t) for t in history[:mid]]),
        "stage2_history": json.dumps([_triple(t) for t in history[mid:-1]], ensure_ascii=False),
        "reward_model": {
            "style": "judge",
            "ground_truth": {"target1": _triple(history[mid]), "target2": _triple(history[-1])},
        },
        "extra_info": {"stage": 1, "index": index, "userid": str(row["uid"]), "mid_position": mid},
    }


def convert(input_path: str | Path, output_path: str | Path, *, skip_bad_rows: bool = False, progress: bool = True) -> dict:
    """Validate ``input_path`` and write ``output_path``; returns the row-count summary.

    Raises :class:`DataError` on the first bad row unless ``skip_bad_rows``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    input_path, output_path = Path(input_path), Path(output_path)
    check_output_file(output_path, "--output")
    bad = BadLines(skip=skip_bad_rows)
    records = []
    rows = iter_jsonl(input_path, validate_rl_row, on_bad=bad)  # the RL split rule 1 <= mid <= L-3 (docs/formats.md §3)
    for row in tqdm(rows, desc="rl rows", disable=not progress, unit="row"):
        records.append(rl_row_to_record(row, len(records)))
    bad.finish()  # default mode: every bad line reported, then one error; nothing written
    if not records:
        raise DataError(str(input_path), None, "no valid RL rows")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_suffix(output_path.suffix + ".tmp")
    try:
        pq.write_table(pa.Table.from_pylist(records), tmp)
        tmp.replace(output_path)
    finally:
        tmp.unlink(missing_ok=True)  # no partial file left behind, whatever failed
    summary = {"input": str(input_path), "output": str(output_path), "rows_written": len(records), "rows_skipped": len(bad)}
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.rl.data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="RL JSONL (uid, history, mid_position)")
    ap.add_argument("--output", required=True, help="parquet file to write (e.g. data/rl/train.parquet)")
    ap.add_argument("--skip-bad-rows", action="store_true", help="report, count and drop bad rows instead of stopping")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    summary = convert(args.input, args.output, skip_bad_rows=args.skip_bad_rows, progress=not args.no_progress)
    print(f"wrote {summary['rows_written']} rows to {summary['output']} ({summary['rows_skipped']} bad rows skipped)")
    return 0


if __name__ == "__main__":
    run_main(main)
