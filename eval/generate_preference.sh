#!/usr/bin/env bash
# Preference summaries for every benchmark in eval/benchmarks.yaml (full history, one pass).
#
#   bash eval/generate_preference.sh            # checkpoints/rl/merged -> outputs/summaries/alignxplore-plus
#   MODEL=VanillaH1/AlignXplore-Plus RUN_NAME=released bash eval/generate_preference.sh
#   BACKEND=openai BASE_URL=http://host:8000/v1 MODEL=served-name bash eval/generate_preference.sh
#
# Knobs (environment, with defaults): MODEL, BACKEND (vllm|hf|openai), TP, DATA_DIR, RUN_NAME, OUT_DIR,
# BENCHMARKS (all or a,b,c), MODE (full|streaming), BASE_URL, PYTHON. Extra arguments go to
# `python -m alignxplore.eval.generate` (see its --help). Rerun the same command to resume.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-checkpoints/rl/merged}
BACKEND=${BACKEND:-vllm}
TP=${TP:-1}
MODE=${MODE:-full}
DATA_DIR=${DATA_DIR:-data/benchmark}
RUN_NAME=${RUN_NAME:-alignxplore-plus}
OUT_DIR=${OUT_DIR:-outputs/summaries/$RUN_NAME}
BENCHMARKS=${BENCHMARKS:-all}
BASE_URL=${BASE_URL:-http://127.0.0.1:8000/v1}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one

exec "$PYTHON" -m alignxplore.eval.generate \
  --mode "$MODE" --backend "$BACKEND" --model "$MODEL" --tensor-parallel-size "$TP" \
  --base-url "$BASE_URL" --data-dir "$DATA_DIR" --out-dir "$OUT_DIR" --benchmarks "$BENCHMARKS" "$@"
