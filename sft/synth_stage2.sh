#!/usr/bin/env bash
# SFT data synthesis, stage 2: the users stage 1 kept, history = second third, targets from the
# last third, past = the stage-1 merged summary (alignxplore/data/synth/run.py). Reads WORK_DIR/stage1.jsonl.
#
#   bash sft/synth_stage2.sh                                                   # vLLM, one node, TP 8
#   BACKEND=openai BASE_URL=http://host:8000/v1 bash sft/synth_stage2.sh
#
# Knobs (environment, with defaults): WORK_DIR, BACKEND (vllm|openai|hf), MODEL, TP, BASE_URL,
# CONCURRENCY, CHUNK_SIZE, PYTHON; extra flags pass through. Rerun to resume / retry (exit code 3).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK_DIR=${WORK_DIR:-data/synth}
BACKEND=${BACKEND:-vllm}
MODEL=${MODEL:-Qwen/Qwen3-32B}
TP=${TP:-8}
BASE_URL=${BASE_URL:-http://127.0.0.1:8000/v1}
CONCURRENCY=${CONCURRENCY:-64}
CHUNK_SIZE=${CHUNK_SIZE:-1000}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.data.synth stage2 --work-dir "$WORK_DIR" --chunk-size "$CHUNK_SIZE" \
  --backend "$BACKEND" --model "$MODEL" --tensor-parallel-size "$TP" --base-url "$BASE_URL" --concurrency "$CONCURRENCY" "$@"
