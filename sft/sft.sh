#!/usr/bin/env bash
# Stage 1 SFT with DeepSpeed ZeRO-3, one or many nodes (torchrun; run this on every node).
#
#   bash sft/sft.sh                                                  # one node, 8 GPUs
#   NNODES=4 NODE_RANK=0 MASTER_ADDR=node0 bash sft/sft.sh           # on node 0 ...
#   NNODES=4 NODE_RANK=3 MASTER_ADDR=node0 bash sft/sft.sh           # ... and node 3
#   bash sft/sft.sh --learning_rate 1e-5 --output_dir checkpoints/x  # overrides
#
# Knobs (environment, with defaults): NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT,
# GPUS_PER_NODE, CONFIG, PYTHON. Extra arguments override CONFIG's keys. Rerunning the
# same command resumes from the last checkpoint in output_dir.
set -euo pipefail
cd "$(dirname "$0")/.."
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l | awk '{print ($1 > 0) ? $1 : 1}')}
CONFIG=${CONFIG:-sft/configs/qwen3_8b.yaml}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one

exec "$PYTHON" -m torch.distributed.run \
  --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS_PER_NODE" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
  -m alignxplore.sft.train --config "$CONFIG" "$@"
