#!/usr/bin/env bash
# SFT data synthesis, last step: two SFT rows per user kept by both stages, in the SFT stage's
# input format (then: DATA=$OUT bash sft/prepare.sh).
#
#   bash sft/synth_postprocess.sh                       # data/synth/stage2.jsonl -> data/sft/sft.jsonl
#
# Knobs (environment, with defaults): WORK_DIR, OUT, PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK_DIR=${WORK_DIR:-data/synth}
OUT=${OUT:-data/sft/sft.jsonl}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.data.synth postprocess --work-dir "$WORK_DIR" --out "$OUT" "$@"
