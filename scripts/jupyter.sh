#!/usr/bin/env bash
# Set up, register the project's environment as a Jupyter kernel, and open JupyterLab on notebooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -c "from sddlab.app.notebooks import register_kernel; register_kernel()"
exec .venv/bin/sddlab jupyter notebooks "$@"
