#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what the app needs, then serve it on the bundled
# checkpoints at http://127.0.0.1:7860 (set FMNIST_HUB_REPO to pull weights from the Hub instead).
cd "$(dirname "$0")/.."
source scripts/_setup.sh
command -v python3 >/dev/null || apt_install python3 python3-venv
make_venv requirements.txt
exec .venv/bin/python app.py "$@"
