#!/usr/bin/env bash
# Pruning: scored behaviours -> RL rows (alignxplore/data/scorer/pruning.py). a, b, c were never
# released: run once, read the printed distributions, then choose them (docs/data.md "Choosing the pruning thresholds a, b, c").
#
#   A=0.5 B=0.3 C=0.6 bash pruning/prune.sh
#   SCORES=data/scored/movielens.jsonl OUT=data/rl/movielens_rl.jsonl A=0.5 B=0.3 C=0.6 bash pruning/prune.sh --signal-key logprob1
#
# Knobs (environment, with defaults): SCORES (file or glob, quoted), OUT, A, B, C (required),
# PYTHON. Extra arguments go to the module.
set -euo pipefail
cd "$(dirname "$0")/.."
SCORES=${SCORES:-data/scored/users_scored.jsonl}
OUT=${OUT:-data/rl/rl.jsonl}
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}  # the project venv when there is one
: "${A:?set A (top fraction by signal)}" "${B:?set B (logprob1 >= log B)}" "${C:?set C (band [C-0.1, C))}"
exec "$PYTHON" -m alignxplore.data.scorer.pruning --scores "$SCORES" --out "$OUT" --a "$A" --b "$B" --c "$C" "$@"
