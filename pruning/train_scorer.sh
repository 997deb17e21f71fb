#!/usr/bin/env bash
# Scorer training on the SFT stage's trainer (TRL + DeepSpeed ZeRO-3), one or many nodes.
#
#   bash pruning/train_scorer.sh                                           # one node, all GPUs
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash pruning/train_scorer.sh    # on each node
#   bash pruning/train_scorer.sh --learning_rate 5e-5                      # overrides
#
# Knobs (environment, with defaults): NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT,
# GPUS_PER_NODE, CONFIG, PYTHON. Extra arguments override CONFIG's keys. Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29501}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l | awk '{print ($1 > 0) ? $1 : 1}')}
CONFIG=${CONFIG:-pruning/configs/scorer.yaml}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
exec "$PYTHON" -m torch.distributed.run \
  --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS_PER_NODE" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" \
  -m alignxplore.sft.train --config "$CONFIG" "$@"
