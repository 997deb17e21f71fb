#!/usr/bin/env bash
# The RL reward's judge (Qwen3-8B, thinking off) as an OpenAI-compatible vLLM server, on its
# own GPUs (not the training nodes'). The reward reads P(' A'), P(' B') from its log-probs;
# --logprobs-mode processed_logprobs makes them exact after the reward's letter restriction.
#
#   bash verl/serve_judge.sh                                   # GPUs 0,1 of this node, port 8000
#   CUDA_VISIBLE_DEVICES=4,5,6,7 TP=4 PORT=8001 bash verl/serve_judge.sh
#
# Knobs: JUDGE_MODEL, SERVED_NAME (= reward_kwargs.model), PORT, TP, GPU_MEMORY, MAX_MODEL_LEN,
# VLLM. Extra arguments go to `vllm serve`. Point the trainer at it with
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
