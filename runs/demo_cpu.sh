#!/usr/bin/env bash
# The CPU miniature of the whole evaluation stage (what `make demo` runs): a tiny random
# Qwen3 (real tokenizer) writes full-history and streaming summaries for the 3-user fixture
# benchmarks, the same tiny model judges them (direct baseline too), and the table + figure
# are rendered. Every code path is the one used on GPUs; only the model and data are small,
# so the numbers are chance-level by design. Output: runs/demo/ (delete it to start afresh).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/demo}
DATA=tests/fixtures/benchmarks
MODEL=$OUT/tiny-qwen3

"$PYTHON" -m alignxplore.tiny "$MODEL"
for mode in full streaming; do
  MODE=$mode MODEL=$MODEL BACKEND=hf DATA_DIR=$DATA OUT_DIR=$OUT/summaries PYTHON=$PYTHON \
    bash eval/generate_preference.sh --max-new-tokens 48
done
JUDGE_MODEL=$MODEL JUDGE_BACKEND=hf DATA_DIR=$DATA SUMMARIES_DIR=$OUT/summaries RESULTS_DIR=$OUT/results \
  RUN_NAME=tiny-demo FIGURE=$OUT/results.png PYTHON=$PYTHON bash eval/evaluation.sh
echo "demo done: $OUT/results/table.md, $OUT/results/table.html, $OUT/results.png"
