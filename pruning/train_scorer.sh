#!/usr/bin/env bash
# Scorer training: the SFT launcher (sft/sft.sh: torchrun, TRL + DeepSpeed ZeRO-3, one or many
# nodes) with the scorer's config. Everything but these two defaults is sft/sft.sh's.
#
#   bash pruning/train_scorer.sh                                           # one node, all GPUs
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash pruning/train_scorer.sh    # on each node
#   bash pruning/train_scorer.sh --learning_rate 5e-5                      # overrides
#
# Knobs (environment, with defaults): CONFIG, MASTER_PORT here; NNODES, NODE_RANK, MASTER_ADDR,
# GPUS_PER_NODE, PYTHON as in sft/sft.sh. Extra arguments override CONFIG's keys. Rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-pruning/configs/scorer.yaml}
MASTER_PORT=${MASTER_PORT:-29501}  # not the SFT's 29500: a scorer and an SFT run can share a node
export CONFIG MASTER_PORT
exec bash sft/sft.sh "$@"
