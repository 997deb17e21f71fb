#!/usr/bin/env bash
# What `make demo` runs: the pipeline in miniature on CPU, every code path the GPU one.
#   1. SFT: tokenise the fixture SFT rows and train a tiny random Qwen3 (real tokenizer)
#      for a few steps with the real trainer;
#   2. evaluation: the SFT'd model writes full-history and streaming summaries for the
#      3-user fixture benchmarks, the base tiny model judges them (direct baseline too),
#      and the table + figure are rendered beside the paper's rows.
# The numbers are chance level by design (a random model); the point is that it all runs.
# Output: runs/demo/ (delete it to start afresh; every step resumes otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-runs/demo}
DATA=tests/fixtures/benchmarks
BASE=$OUT/tiny-qwen3

"$PYTHON" -m alignxplore.tiny "$BASE"

# -- stage 1: SFT -----------------------------------------------------------------------
DATA=tests/fixtures/sft.jsonl MODEL=$BASE OUT=$OUT/sft/prepared MAX_LENGTH=1024 NUM_PROC=1 PYTHON=$PYTHON \
  bash sft/prepare.sh
"$PYTHON" -m alignxplore.sft.train --model_name_or_path "$BASE" --dataset_path "$OUT/sft/prepared" \
  --output_dir "$OUT/sft/run" --max_steps 6 --per_device_train_batch_size 2 --learning_rate 1e-3 \
  --logging_steps 1 --save_steps 3 --report_to none --dataloader_num_workers 0
SFT_MODEL=$OUT/sft/run/final

# -- stage 3: evaluation ------------------------------------------------------------------
for mode in full streaming; do
  MODE=$mode MODEL=$SFT_MODEL BACKEND=hf DATA_DIR=$DATA OUT_DIR=$OUT/summaries/tiny-sft PYTHON=$PYTHON \
    bash eval/generate_preference.sh --max-new-tokens 48
done
JUDGE_MODEL=$BASE JUDGE_BACKEND=hf DATA_DIR=$DATA SUMMARIES_DIR=$OUT/summaries/tiny-sft RESULTS_DIR=$OUT/results \
  FIGURE=$OUT/results.png PYTHON=$PYTHON bash eval/evaluation.sh
echo "demo done: $OUT/results/table.md, $OUT/results/table.html, $OUT/results.png"
