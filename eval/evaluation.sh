#!/usr/bin/env bash
# Judge every benchmark in every mode with one judge load, then render the main table.
#
#   bash eval/evaluation.sh                      # outputs/summaries/alignxplore-plus -> outputs/results/alignxplore-plus
#   RUN_NAME=released bash eval/evaluation.sh
#
# Knobs (environment, with defaults): JUDGE_MODEL (Qwen/Qwen3-8B), JUDGE_BACKEND (vllm|hf|openai),
# JUDGE_TP, JUDGE_BASE_URL, DATA_DIR (a folder, or the hub dataset VanillaH1/AlignXplorePlus-Benchmark), RUN_NAME, SUMMARIES_DIR, RESULTS_DIR, MODES
# (direct,full,streaming), BENCHMARKS, FIGURES_DIR (outputs/figures), PYTHON. Extra arguments go to
# `python -m alignxplore.eval.evaluate` (e.g. --judge-protocol teacher-forced; the default is the
# published sampled answer). Resumable: rerun the same command.
set -euo pipefail
cd "$(dirname "$0")/.."

JUDGE_MODEL=${JUDGE_MODEL:-Qwen/Qwen3-8B}
JUDGE_BACKEND=${JUDGE_BACKEND:-vllm}
JUDGE_TP=${JUDGE_TP:-1}
JUDGE_BASE_URL=${JUDGE_BASE_URL:-http://127.0.0.1:8000/v1}
DATA_DIR=${DATA_DIR:-data/benchmark}
RUN_NAME=${RUN_NAME:-$(basename "${SUMMARIES_DIR:-alignxplore-plus}")}
SUMMARIES_DIR=${SUMMARIES_DIR:-outputs/summaries/$RUN_NAME}
RESULTS_DIR=${RESULTS_DIR:-outputs/results}
MODES=${MODES:-direct,full,streaming}
BENCHMARKS=${BENCHMARKS:-all}
FIGURES_DIR=${FIGURES_DIR:-outputs/figures}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one

"$PYTHON" -m alignxplore.eval.evaluate \
  --judge-backend "$JUDGE_BACKEND" --judge-model "$JUDGE_MODEL" --judge-tensor-parallel-size "$JUDGE_TP" \
  --judge-base-url "$JUDGE_BASE_URL" --data-dir "$DATA_DIR" --summaries-dir "$SUMMARIES_DIR" \
  --results-dir "$RESULTS_DIR" --run-name "$RUN_NAME" --modes "$MODES" --benchmarks "$BENCHMARKS" "$@"

# the table of this judge's published rows (Qwen3-8B: the main table -> table.{md,html};
# Qwen2.5-7B-Instruct / GPT-OSS-20B: their cross-model transfer tables -> table_<judge>.{md,html})
"$PYTHON" -m alignxplore.eval.table --results-dir "$RESULTS_DIR" --judge "$JUDGE_MODEL"
# the paper's figures (figures/, one script each) over every result so far, beside the published values
for fig in main_results model_transfer task_transfer; do
  "$PYTHON" "figures/$fig.py" --results-dir "$RESULTS_DIR" --out "$FIGURES_DIR/$fig.png"
done
"$PYTHON" figures/pipeline.py --out "$FIGURES_DIR/pipeline.png"
