#!/usr/bin/env bash
# Create .venv and install torch + sddlab with its extras, chromium (root + apt) and the notebook git filter;
# a second call installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${SDDLAB_EXTRAS:-dev,notebooks,ray,slurm,browser,voila,grading}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.sddlab-installed
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) extras=$EXTRAS"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setting up .venv (torch, then sddlab[$EXTRAS]) ..." >&2
    .venv/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
    .venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
    echo "$want" > "$stamp"
fi
# Chromium for the browser tests and static figure export (Debian's package; never `playwright install`).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (apt) ..." >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; then
        echo "chromium could not be installed: browser tests will be skipped" >&2
    fi
fi
# The whole Fashion-MNIST (60k/10k), read in place from Debian's package (offline; no copy, no download).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && [ "$(id -u)" = 0 ] \
        && command -v apt-get >/dev/null 2>&1; then
    echo "installing dataset-fashion-mnist (apt) ..." >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; } \
            >/dev/null 2>&1; then
        echo "dataset-fashion-mnist could not be installed: the Fashion-MNIST presets need data/fashion-mnist/" >&2
    fi
fi
# Notebooks stay output-free in git: nbstripout as the *.ipynb clean filter named in .gitattributes.
if [ -x .venv/bin/nbstripout ] && git rev-parse --git-dir >/dev/null 2>&1 \
        && ! git config --local --get filter.nbstripout.clean >/dev/null 2>&1; then
    git config --local filter.nbstripout.clean "\"$PWD/.venv/bin/python\" -m nbstripout --keep-id"
    git config --local filter.nbstripout.smudge cat
    git config --local diff.ipynb.textconv "\"$PWD/.venv/bin/python\" -m nbstripout --keep-id -t"
fi
