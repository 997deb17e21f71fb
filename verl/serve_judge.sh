#!/usr/bin/env bash
# The RL reward's judge (Qwen3-8B, thinking off) as an OpenAI-compatible vLLM server. The reward
# reads P(' A'), P(' B') from its log-probs; --logprobs-mode processed_logprobs makes them exact
# after the reward's letter restriction.
#
# Where it must run: on GPUs of its own, never the training GPUs (the rollout takes 0.6-0.8 of
# each training GPU and the actor the rest; this server takes GPU_MEMORY = 0.9 of its GPUs), on a
# host that EVERY training node reaches: verl runs reward workers on all nodes, so with more than
# one node JUDGE_URL must name this host's address, not 127.0.0.1 (the trainer refuses a loopback
# JUDGE_URL when trainer.nnodes > 1, and sends one scoring request to every URL before it starts).
# Typical: a 9th node, or spare GPUs of a node outside the training pool. Several replicas (one
# per GPU with TP=1, or per group of TP GPUs) go into JUDGE_URL comma-separated; the reward
# spreads requests over them.
#
#   bash verl/serve_judge.sh                                   # TP=1: one GPU (CUDA_VISIBLE_DEVICES picks it), port 8000
#   CUDA_VISIBLE_DEVICES=1 PORT=8001 bash verl/serve_judge.sh  # a second replica on the next GPU
#   CUDA_VISIBLE_DEVICES=4,5 TP=2 PORT=8002 bash verl/serve_judge.sh
#
# Knobs: JUDGE_MODEL, SERVED_NAME (= reward_kwargs.model, JUDGE_NAME), PORT, TP, GPU_MEMORY,
# MAX_MODEL_LEN, VLLM. Extra arguments go to `vllm serve`. Point the trainer at it with
# JUDGE_URL=http://<this host>:$PORT/v1 bash verl/run_streaming_8p.sh
set -euo pipefail
JUDGE_MODEL=${JUDGE_MODEL:-Qwen/Qwen3-8B}
SERVED_NAME=${SERVED_NAME:-judge}
PORT=${PORT:-8000}
TP=${TP:-1}
GPU_MEMORY=${GPU_MEMORY:-0.9}
MAX_MODEL_LEN=${MAX_MODEL_LEN:-16384}
VLLM=${VLLM:-$(v="$(dirname "$0")/../.venv/bin/vllm"; [ -x "$v" ] && echo "$v" || echo vllm)}  # the project venv when there is one
exec "$VLLM" serve "$JUDGE_MODEL" --served-model-name "$SERVED_NAME" --host 0.0.0.0 --port "$PORT" \
  --tensor-parallel-size "$TP" --gpu-memory-utilization "$GPU_MEMORY" --max-model-len "$MAX_MODEL_LEN" \
  --logprobs-mode processed_logprobs --max-logprobs 20 "$@"
