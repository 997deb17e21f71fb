#!/usr/bin/env bash
# SFT data synthesis, stage 1: teacher summaries of each user's first third with targets from
# the second third, judge-filtered, merged and re-verified (alignxplore/data/synth/run.py).
#
#   bash sft/synth_stage1.sh                                                      # vLLM, one node, TP 8
#   BACKEND=openai BASE_URL=http://host:8000/v1 USERS=... bash sft/synth_stage1.sh  # any OpenAI-compatible server
#   bash sft/synth_stage1.sh --unscored-as-candidates --judge-mode forced         # extra flags pass through
#
# Knobs (environment, with defaults): USERS (pruning/score.sh's output), WORK_DIR, BACKEND (vllm|openai|hf), MODEL (the
# authors' teacher), TP (vllm tensor parallel), BASE_URL and CONCURRENCY (openai), CHUNK_SIZE,
# PYTHON. Rerunning the same command resumes and retries users whose calls failed (exit code 3).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-data/scored/users_scored.jsonl}
WORK_DIR=${WORK_DIR:-data/synth}
BACKEND=${BACKEND:-vllm}
MODEL=${MODEL:-Qwen/Qwen3-32B}
TP=${TP:-8}
BASE_URL=${BASE_URL:-http://127.0.0.1:8000/v1}
CONCURRENCY=${CONCURRENCY:-64}
CHUNK_SIZE=${CHUNK_SIZE:-1000}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.data.synth stage1 --users "$USERS" --work-dir "$WORK_DIR" --chunk-size "$CHUNK_SIZE" \
  --backend "$BACKEND" --model "$MODEL" --tensor-parallel-size "$TP" --base-url "$BASE_URL" --concurrency "$CONCURRENCY" "$@"
