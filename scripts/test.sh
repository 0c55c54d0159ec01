#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: the real data set and Chromium from Debian, the
# Python packages in .venv, then ruff and pytest. Extra arguments go to pytest.
cd "$(dirname "$0")/.."
source scripts/_setup.sh
command -v python3 >/dev/null || apt_install python3 python3-venv
apt_install dataset-fashion-mnist chromium
make_venv requirements-dev.txt
# lint and formatting first (pyproject.toml's [tool.ruff]): seconds, and a failure names the file and line
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
