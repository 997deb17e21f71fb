#!/usr/bin/env bash
# The trained actor -> a plain Hugging Face folder (verl's model merger) that eval/ loads.
#
#   bash verl/merge.sh                                      # latest checkpoint -> runs/rl/final
#   STEP=30 OUT=runs/rl/step30 bash verl/merge.sh
#
# Knobs: CKPT (the run's OUTPUT / trainer.default_local_dir), STEP (latest or a number), OUT, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=${CKPT:-checkpoints/alignxplore_plus/streaming_grpo}
STEP=${STEP:-latest}
OUT=${OUT:-runs/rl/final}
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m alignxplore.rl.merge --ckpt-dir "$CKPT" --step "$STEP" --out "$OUT" "$@"
