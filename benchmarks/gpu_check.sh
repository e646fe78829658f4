#!/usr/bin/env bash
# The GPU check: one table of what one accelerator does with the paper's workloads (benchmarks/gpu_check.py).
#
#   benchmarks/gpu_check.sh                 # on the CUDA GPU, about 5 minutes on one H100/H200 (limit 8)
#   benchmarks/gpu_check.sh --smoke --device cpu   # every row on tiny sizes (the test suite runs this)
#
# Rows are printed as they are measured, so a run stopped by the time limit still shows what it reached.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
exec timeout "${GPU_CHECK_LIMIT_S:-480}" "$PYTHON" benchmarks/gpu_check.py "$@"
