#!/usr/bin/env bash
# Tokenise the SFT JSONL once (chat template, completion mask, length policy).
#
#   DATA=data/sft/sft.jsonl MODEL=Qwen/Qwen3-8B OUT=data/sft/prepared bash sft/prepare.sh
#
# Knobs: DATA, MODEL (its tokenizer/chat template), OUT, MAX_LENGTH (default: the paper's 16,384), OVERLONG
# (drop|truncate), NUM_PROC (CPU cores), PYTHON. Extra arguments go to
# `python -m alignxplore.sft.prepare` (e.g. --skip-bad-rows).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/sft/sft.jsonl}
MODEL=${MODEL:-Qwen/Qwen3-8B}
OUT=${OUT:-data/sft/prepared}
OVERLONG=${OVERLONG:-drop}
NUM_PROC=${NUM_PROC:-$(nproc)}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.sft.prepare --data "$DATA" --model "$MODEL" --out "$OUT" \
  ${MAX_LENGTH:+--max-length "$MAX_LENGTH"} --overlong "$OVERLONG" --num-proc "$NUM_PROC" "$@"
