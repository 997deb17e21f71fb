#!/usr/bin/env bash
# Scorer training data: user rows -> prepared dataset (alignxplore/data/scorer/prepare.py).
#
#   USERS='data/users/*_train.jsonl' bash pruning/prepare_scorer.sh
#
# Knobs (environment, with defaults): USERS (file or quoted glob), MODEL, OUT, PYTHON.
# Extra arguments go to the module (--max-length, --last, --seed).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-data/users/*_train.jsonl}
MODEL=${MODEL:-Qwen/Qwen3-1.7B}
OUT=${OUT:-data/scorer/prepared}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.data.scorer.prepare --users "$USERS" --model "$MODEL" --out "$OUT" "$@"
