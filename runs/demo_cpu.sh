#!/usr/bin/env bash
# What `make demo` runs: the paper's three stages in miniature on CPU, through the same entry
# points a cluster user runs (alignxplore/demo/run.py lists them): a synthetic preference world,
# SFT of a tiny Qwen3 (real tokenizer), streaming GRPO on verl 0.9.1 (CPU plug-in), full and
# streaming summaries, a sentence-encoder stand-in judge, and the table + figure.
# Output: runs/demo/ (rerun to resume; delete it to start afresh). Extra arguments go to
# `python -m alignxplore.demo` (e.g. --sft-steps 300).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
OUT=${OUT:-runs/demo}
exec "$PYTHON" -m alignxplore.demo --out "$OUT" --python "$PYTHON" "$@"
