#!/usr/bin/env bash
# RL JSONL (uid, history, mid_position) -> the parquet file streaming GRPO reads.
#
#   bash verl/preprocess.sh
#   DATA=data/rl/rl.jsonl OUT=data/rl/train.parquet bash verl/preprocess.sh --skip-bad-rows
#
# Knobs: DATA, OUT, PYTHON. Extra arguments go to `python -m alignxplore.rl.data`.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/rl/rl.jsonl}
OUT=${OUT:-data/rl/train.parquet}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.rl.data --input "$DATA" --output "$OUT" "$@"
