#!/usr/bin/env bash
# The main job: set up, then run the default sparse-double-descent experiment (table + figure.html).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sddlab run --preset digits "$@"
