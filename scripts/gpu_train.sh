#!/usr/bin/env bash
# The one prepared command for a GPU machine: the speedrun, the best model for 3 seeds and every bundled model,
# packed into at most 8 files (fmnist/gpu/plan.py says what and how). It runs on the machine's own python3 and
# torch, with no package index: any small wheel carried in .whl/ (git-ignored) is installed first.
#
#   bash scripts/gpu_train.sh --pack "$OUT"            # on the GPU machine, carrying .gpu (the data set; docs/gpu.md)
#   bash scripts/gpu_train.sh --smoke --pack /tmp/pack # the same steps on this CPU, tiny, in about 2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps .whl/*.whl
fi
exec "$PY" -m fmnist.gpu run "$@"
