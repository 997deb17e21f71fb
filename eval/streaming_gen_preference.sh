#!/usr/bin/env bash
# Streaming summaries: pass 1 on the first part of each history, pass 2 on the next part with
# pass 1's summary as the past preference (alignxplore/history.py has the split rules).
# Same knobs as generate_preference.sh.
set -euo pipefail
MODE=streaming exec bash "$(dirname "$0")/generate_preference.sh" "$@"
