#!/usr/bin/env bash
# Judge every benchmark in every mode with one judge load, then render the main table.
#
#   SUMMARIES_DIR=outputs/AlignXplore-Plus bash eval/evaluation.sh
#
# Knobs (environment, with defaults): JUDGE_MODEL (Qwen/Qwen3-8B), JUDGE_BACKEND (vllm|hf|openai),
# JUDGE_TP, JUDGE_BASE_URL, DATA_DIR (a folder, or the hub dataset VanillaH1/AlignXplorePlus-Benchmark), SUMMARIES_DIR, RESULTS_DIR, RUN_NAME, MODES
# (direct,full,streaming), BENCHMARKS, FIGURE, PYTHON. Extra arguments go to
# `python -m alignxplore.eval.evaluate` (e.g. --judge-protocol teacher-forced; the default is the
# published sampled answer). Resumable: rerun the same command.
set -euo pipefail
cd "$(dirname "$0")/.."

JUDGE_MODEL=${JUDGE_MODEL:-Qwen/Qwen3-8B}
JUDGE_BACKEND=${JUDGE_BACKEND:-vllm}
JUDGE_TP=${JUDGE_TP:-1}
JUDGE_BASE_URL=${JUDGE_BASE_URL:-http://127.0.0.1:8000/v1}
DATA_DIR=${DATA_DIR:-data/benchmark}
SUMMARIES_DIR=${SUMMARIES_DIR:-outputs/AlignXplore-Plus}
RESULTS_DIR=${RESULTS_DIR:-results}
RUN_NAME=${RUN_NAME:-$(basename "$SUMMARIES_DIR")}
MODES=${MODES:-direct,full,streaming}
BENCHMARKS=${BENCHMARKS:-all}
FIGURE=${FIGURE:-figures/results.png}
PYTHON=${PYTHON:-python}

"$PYTHON" -m alignxplore.eval.evaluate \
  --judge-backend "$JUDGE_BACKEND" --judge-model "$JUDGE_MODEL" --judge-tensor-parallel-size "$JUDGE_TP" \
  --judge-base-url "$JUDGE_BASE_URL" --data-dir "$DATA_DIR" --summaries-dir "$SUMMARIES_DIR" \
  --results-dir "$RESULTS_DIR" --run-name "$RUN_NAME" --modes "$MODES" --benchmarks "$BENCHMARKS" "$@"

"$PYTHON" -m alignxplore.eval.table --results-dir "$RESULTS_DIR" --out "$RESULTS_DIR/table" --figure "$FIGURE"
