#!/usr/bin/env bash
# The trained actor -> a plain Hugging Face folder (verl's model merger) that eval/ loads.
#
#   bash verl/merge.sh                                      # latest checkpoint -> checkpoints/rl/merged
#   STEP=30 OUT=checkpoints/rl/merged_step30 bash verl/merge.sh
#
# Knobs: CKPT (the run's OUTPUT / trainer.default_local_dir), STEP (latest or a number), OUT, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-checkpoints/rl}
STEP=${STEP:-latest}
OUT=${OUT:-checkpoints/rl/merged}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.rl.merge --ckpt-dir "$CKPT" --step "$STEP" --out "$OUT" "$@"
