#!/usr/bin/env bash
# Scoring: logprob1 (and, with WEAK_MODEL, logprob2 and signal) for each user's last 100
# behaviours, one forward pass per user (alignxplore/data/scoring.py). Data parallel: one
# process per GPU, each writes OUT.rank{r}; rerunning the same command resumes.
#
#   USERS=data/users/movielens_train.jsonl MODEL=checkpoints/scorer/final OUT=data/scores/movielens.jsonl bash pruning/score.sh
#   WEAK_MODEL=Qwen/Qwen3-1.7B GPUS=8 bash pruning/score.sh --batch-size 2
#
# Knobs (environment, with defaults): USERS, MODEL, WEAK_MODEL (empty: none), OUT, GPUS,
# PYTHON. Extra arguments go to the module (--last, --max-length, --batch-size, --seed ...).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-data/users/train.jsonl}
MODEL=${MODEL:-checkpoints/scorer/final}
WEAK_MODEL=${WEAK_MODEL:-}
OUT=${OUT:-data/scores/scores.jsonl}
GPUS=${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l | awk '{print ($1 > 0) ? $1 : 1}')}
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$GPUS" \
  -m alignxplore.data.scoring --users "$USERS" --model "$MODEL" --out "$OUT" ${WEAK_MODEL:+--weak-model "$WEAK_MODEL"} "$@"
