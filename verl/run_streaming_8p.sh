#!/usr/bin/env bash
# Streaming two-stage GRPO (verl 0.9.1) on a Ray cluster of NNODES x GPUS_PER_NODE GPUs.
# Start Ray first (docs/rl.md "Run it"): `ray start --head` on the head node, `ray start
# --address=<head>:6379` on the others; start the judge (verl/serve_judge.sh) on GPUs of its
# own; then run this on the head node. Start-up checks (paths, one full batch, every judge URL
# answers) end the run in seconds with one line, before Ray starts.
#
#   bash verl/run_streaming_8p.sh                                    # PRESET=node_1x8: 1 node x 8 GPUs
#   PRESET=cluster_8x8 JUDGE_URL=http://judge-host:8000/v1 bash verl/run_streaming_8p.sh
#   JUDGE_URL=http://judge-a:8000/v1,http://judge-b:8000/v1 bash verl/run_streaming_8p.sh   # judge replicas
#   bash verl/run_streaming_8p.sh trainer.save_freq=10 streaming.coupling_lambda=0.5   # Hydra overrides
#
# Knobs: PRESET (verl/config/preset/: node_1x8 | cluster_8x8, each with its per-GPU memory
# arithmetic), NNODES and GPUS_PER_NODE (override the preset's), MODEL (the SFT checkpoint),
# DATA (parquet from preprocess.sh), JUDGE_URL (one URL or several comma-separated), JUDGE_NAME
# (the judge's served model name), OUTPUT (checkpoint folder), PYTHON.
# Config: verl/config/streaming_grpo.yaml. Rerunning the same command resumes from OUTPUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-node_1x8}
NNODES=${NNODES:-}
GPUS_PER_NODE=${GPUS_PER_NODE:-}
MODEL=${MODEL:-checkpoints/sft/final}
DATA=${DATA:-data/rl/train.parquet}
JUDGE_URL=${JUDGE_URL:-http://127.0.0.1:8000/v1}
JUDGE_NAME=${JUDGE_NAME:-judge}
OUTPUT=${OUTPUT:-checkpoints/rl}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m alignxplore.rl.main preset="$PRESET" \
  ${NNODES:+trainer.nnodes="$NNODES"} ${GPUS_PER_NODE:+trainer.n_gpus_per_node="$GPUS_PER_NODE"} \
  actor_rollout_ref.model.path="$MODEL" data.train_files="$DATA" \
  reward.custom_reward_function.reward_kwargs.base_url="'$JUDGE_URL'" \
  reward.custom_reward_function.reward_kwargs.model="$JUDGE_NAME" \
  trainer.default_local_dir="$OUTPUT" "$@"
