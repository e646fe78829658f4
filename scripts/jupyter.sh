#!/usr/bin/env bash
# Set up, register the project's environment as a Jupyter kernel, and open JupyterLab on notebooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ipykernel install --user --name sddlab --display-name "Python (sddlab)" >/dev/null
exec .venv/bin/jupyter lab notebooks/ "$@"
