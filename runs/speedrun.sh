#!/usr/bin/env bash
# The whole GPU pipeline, in order, one launcher call per step, on the default layout (README
# "Layout of data, checkpoints and outputs"): each step's default output is the next one's input.
#
#   DRY_RUN=1 bash runs/speedrun.sh        # print the commands, run nothing
#   A=0.5 B=0.3 C=0.6 JUDGE_URL=http://judge-host:8000/v1 bash runs/speedrun.sh
#
# Run it on the head node of the training cluster, in the project venv (README "Install on a GPU
# cluster"); multi-node steps also need their launcher on every node (docs/sft.md, docs/rl.md). Every
# launcher resumes, so rerunning this after a crash redoes only what is missing.
# Hardware and times are estimates from the sizes (Qwen3-8B policy, Qwen3-32B teacher, the
# authors' 8 nodes x 8 GPUs for RL), not measurements of this script.
#
# Needed before it starts:
# * the raw datasets in data/raw/<name>/ (file names: `python -m alignxplore.data.converters NAME --help`);
# * the three hub-only benchmarks (concise_detail, friendly_unfriendly, student_phd _upi.jsonl from
#   VanillaH1/AlignXplorePlus-Benchmark) in data/benchmark/;
# * the pruning thresholds A, B, C (never released: docs/data.md "Choosing the pruning thresholds");
# * a judge server for RL on GPUs of its own (JUDGE_URL; START_JUDGE=1 starts it here instead).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
DRY_RUN=${DRY_RUN:-0}

run() {  # print the command; run it unless DRY_RUN=1
  echo "+ $*"
  [ "$DRY_RUN" = 1 ] || "$@"
}

if [ "$DRY_RUN" = 1 ]; then  # placeholders, so the dry run prints the real command lines
  A=${A:-0.5} B=${B:-0.3} C=${C:-0.6} JUDGE_URL=${JUDGE_URL:-http://judge-host:8000/v1}
fi
: "${A:?set A, B, C (pruning thresholds, never released; see docs/data.md)}" "${B:?set B}" "${C:?set C}"

# 1. raw data -> user rows data/users/<name>_train.jsonl + benchmarks data/benchmark/<name>_upi.jsonl
#    CPU, minutes each (Amazon Books, the largest, longer)
for name in mind amazon movielens alignx personamem hicupid; do
  run "$PYTHON" -m alignxplore.data.converters "$name"
done

# 2. behaviour-scorer data -> data/scorer/prepared                      CPU, ~10 min
run bash pruning/prepare_scorer.sh
# 3. scorer training (Qwen3-1.7B) -> checkpoints/scorer/final           1 node x 8 GPUs, ~1-2 h
run bash pruning/train_scorer.sh
# 4. scoring, logprob1 + logprob2 (weak model) -> data/scored/users_scored.jsonl   8 GPUs, ~1 h
run bash pruning/score.sh
# 5. pruning -> RL rows data/rl/rl.jsonl                                 CPU, minutes
run env A="$A" B="$B" C="$C" bash pruning/prune.sh

# 6. SFT data synthesis, Qwen3-32B teacher (vLLM, TP 8) -> data/synth/ -> data/sft/sft.jsonl
run bash sft/synth_stage1.sh         #                                   1 node x 8 GPUs, several h
run bash sft/synth_stage2.sh         #                                   1 node x 8 GPUs, several h
run bash sft/synth_postprocess.sh    #                                   CPU, seconds
# 7. SFT tokenisation -> data/sft/prepared                               CPU, minutes
run bash sft/prepare.sh
# 8. SFT of Qwen3-8B (ZeRO-3, 4 epochs) -> checkpoints/sft/final         1+ node x 8 GPUs, hours
run bash sft/sft.sh

# 9. RL: the judge (Qwen3-8B, vLLM) on GPUs of its own                   1 GPU, stays up during RL
if [ "${START_JUDGE:-0}" = 1 ] || [ "$DRY_RUN" = 1 ]; then
  echo "+ bash verl/serve_judge.sh &"
  if [ "$DRY_RUN" != 1 ]; then
    mkdir -p outputs && bash verl/serve_judge.sh > outputs/judge.log 2>&1 &
    JUDGE_PID=$!
  fi
  JUDGE_URL=${JUDGE_URL:-http://127.0.0.1:8000/v1}
else
  : "${JUDGE_URL:?set JUDGE_URL to a judge started with bash verl/serve_judge.sh on GPUs of its own (or START_JUDGE=1)}"
  echo "# judge: $JUDGE_URL (started there with bash verl/serve_judge.sh)"
fi
# 10. RL rows -> data/rl/train.parquet                                   CPU, minutes
run bash verl/preprocess.sh
# 11. streaming GRPO (verl) -> checkpoints/rl/global_step_N              8 nodes x 8 GPUs (the authors'), ~1 day
run env JUDGE_URL="$JUDGE_URL" bash verl/run_streaming_8p.sh
# 12. latest actor -> HF folder checkpoints/rl/merged                    CPU, minutes
run bash verl/merge.sh
[ -z "${JUDGE_PID:-}" ] || kill "$JUDGE_PID"  # frees its GPU for the evaluation's own judge

# 13. preference summaries -> outputs/summaries/alignxplore-plus/{full,streaming}/   1 GPU (vLLM), ~1 h each
run bash eval/generate_preference.sh
run bash eval/streaming_gen_preference.sh
# 14. judge every benchmark and mode, then the table and figure -> outputs/results/, outputs/figures/
#     1 GPU (vLLM judge), ~1 h
run bash eval/evaluation.sh
