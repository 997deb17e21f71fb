#!/usr/bin/env bash
# Streaming two-stage GRPO (verl 0.9.1) on a Ray cluster of NNODES x GPUS_PER_NODE GPUs.
# Start Ray first (README "RL"): `ray start --head` on the head node, `ray start
# --address=<head>:6379` on the others; then run this on the head node.
#
#   bash verl/run_streaming_8p.sh
#   NNODES=8 MODEL=runs/sft/final JUDGE_URL=http://judge-host:8000/v1 bash verl/run_streaming_8p.sh
#   bash verl/run_streaming_8p.sh trainer.save_freq=10 streaming.coupling_lambda=0.5   # Hydra overrides
#
# Knobs: NNODES, GPUS_PER_NODE, MODEL (the SFT checkpoint), DATA (parquet from preprocess.sh),
# JUDGE_URL, JUDGE_NAME (the judge's served model name), OUTPUT (checkpoint folder), PYTHON.
# Config: verl/config/streaming_grpo.yaml. Rerunning the same command resumes from OUTPUT.
set -euo pipefail
cd "$(dirname "$0")/.."
NNODES=${NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MODEL=${MODEL:-checkpoints/sft/final}
DATA=${DATA:-data/rl/train.parquet}
JUDGE_URL=${JUDGE_URL:-http://127.0.0.1:8000/v1}
JUDGE_NAME=${JUDGE_NAME:-judge}
OUTPUT=${OUTPUT:-checkpoints/rl}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.rl.main \
  trainer.nnodes="$NNODES" trainer.n_gpus_per_node="$GPUS_PER_NODE" \
  actor_rollout_ref.model.path="$MODEL" data.train_files="$DATA" \
  reward.custom_reward_function.reward_kwargs.base_url="$JUDGE_URL" \
  reward.custom_reward_function.reward_kwargs.model="$JUDGE_NAME" \
  trainer.default_local_dir="$OUTPUT" "$@"
