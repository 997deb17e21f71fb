#!/usr/bin/env bash
# Scoring: logprob1 (and, with WEAK_MODEL, logprob2 and signal) for each user's last 100
# behaviours, one forward pass per user (alignxplore/data/scorer/scoring.py). Data parallel: one
# process per GPU, each writes OUT.rank{r}; rerunning the same command resumes.
#
#   bash pruning/score.sh                            # data/users/*_train.jsonl -> data/scored/users_scored.jsonl
#   USERS=data/users/movielens_train.jsonl OUT=data/scored/movielens.jsonl bash pruning/score.sh
#   WEAK_MODEL= GPUS=8 bash pruning/score.sh --batch-size 2       # logprob1 only (then prune --signal-key logprob1)
#
# With GPUS > 1 the shards are then concatenated into OUT (the synthesis and pruning input).
# Knobs (environment, with defaults): USERS (file or quoted glob), MODEL, WEAK_MODEL (the scorer's
# untrained base, for the signal pruning ranks by; empty: none), OUT, GPUS,
# PYTHON. Extra arguments go to the module (--last, --max-length, --batch-size, --seed ...).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-data/users/*_train.jsonl}
MODEL=${MODEL:-checkpoints/scorer/final}
WEAK_MODEL=${WEAK_MODEL-Qwen/Qwen3-1.7B}
OUT=${OUT:-data/scored/users_scored.jsonl}
GPUS=${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l | awk '{print ($1 > 0) ? $1 : 1}')}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$GPUS" \
  -m alignxplore.data.scorer.scoring --users "$USERS" --model "$MODEL" --out "$OUT" ${WEAK_MODEL:+--weak-model "$WEAK_MODEL"} "$@"
if [ "$GPUS" -gt 1 ]; then  # rank r scored users r, r+GPUS, ...: disjoint shards, so concatenation is the whole set
  cat "$OUT".rank* > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
fi
