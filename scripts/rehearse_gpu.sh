#!/usr/bin/env bash
# Rehearse the GPU call here, as the GPU machine will see it (docs/gpu.md):
# - its Python 3.12 with its pinned packages (torch 2.11.0, torchvision 0.26.0, timm 1.0.29, numpy 2.5.2,
#   scikit-learn 1.9.1, scikit-image 0.26.0, huggingface_hub 1.33.0), none of gradio, optuna, trackio,
#   pillow-heif or dask, in a virtual environment outside the repository ($FMNIST_GPU_ENV);
# - a private mount namespace in which Debian's data folder and the user's cache are hidden, and no network,
#   so the data set can only come from the carried folder .gpu/data (python -m fmnist.gpu data);
# - a copy of exactly what the call sends (tracked files plus the carried paths), not this working tree.
# Then: bash scripts/gpu_train.sh --smoke --pack $OUT in that copy. Downloads a few GB once: a script, not a test.
#
#   bash scripts/rehearse_gpu.sh              # build the environment if needed, then rehearse
#   bash scripts/rehearse_gpu.sh --env-only   # build the environment only
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_DIR=${FMNIST_GPU_ENV:-$HOME/.cache/fmnist-gpu-env}
OUT_DIR=${REHEARSAL_OUT:-/tmp/fmnist-rehearsal}
PINS=(torch==2.11.0 torchvision==0.26.0 timm==1.0.29 numpy==2.5.2 scikit-learn==1.9.1 scikit-image==0.26.0
      huggingface_hub==1.33.0 safetensors==0.8.0 opencv-python-headless matplotlib pillow tqdm)

if [ ! -x "$ENV_DIR/bin/python" ] || ! "$ENV_DIR/bin/python" -c 'import torch, timm' 2>/dev/null; then
  PY312=$(PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12 || true)
  [ -n "$PY312" ] || { echo "error: python3.12 not found (pyenv install 3.12, or apt-get install python3.12)" >&2; exit 2; }
  "$PY312" -m venv "$ENV_DIR"
  "$ENV_DIR/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}"
fi
for absent in gradio optuna trackio pillow_heif dask; do
  if "$ENV_DIR/bin/python" -c "import $absent" 2>/dev/null; then
    echo "error: $absent is importable in $ENV_DIR; the GPU machine has none of it" >&2; exit 2
  fi
done
"$ENV_DIR/bin/python" -c 'import sys, torch, torchvision, timm; print("rehearsal env:", sys.version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__, "timm", timm.__version__)'
[ "${1:-}" = "--env-only" ] && exit 0

# what the call sends, copied: tracked and untracked-not-ignored files, plus the carried paths
CARRY=(.gpu)
PY=${PYTHON_HERE:-python3}; [ -x .venv/bin/python ] && PY=.venv/bin/python
"$PY" -m fmnist.gpu size --carry "${CARRY[@]}"
COPY=$(mktemp -d /tmp/fmnist-call.XXXXXX)
{ git ls-files -co --exclude-standard -z; for c in "${CARRY[@]}"; do find "$c" -type f -print0; done; } \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$COPY"
rm -rf "$OUT_DIR"; mkdir -p "$OUT_DIR"
echo "rehearsing in $COPY (Debian's data and the cache hidden, no network)"
start=$(date +%s)
set +e
unshare -m -n --propagation private env -i PATH="$ENV_DIR/bin:/usr/bin:/bin" HOME="$COPY/.home" \
  PYTHON="$ENV_DIR/bin/python" OUT="$OUT_DIR" bash -c '
    mount -t tmpfs tmpfs /usr/share/datasets 2>/dev/null || true
    cd "'"$COPY"'" && bash scripts/gpu_train.sh --smoke --pack "$OUT"'
rc=$?
set -e
seconds=$(( $(date +%s) - start ))
echo "rehearsal: exit $rc in $seconds s; packed files in $OUT_DIR:"; ls -la "$OUT_DIR"
rm -rf "$COPY"
# what came back loads here, as after a real call; then the record
[ $rc -eq 0 ] && "$PY" -m fmnist.gpu unpack "$OUT_DIR" --into "$OUT_DIR.unpacked"
"$PY" - "$OUT_DIR" "$rc" "$seconds" <<'PY'
import json, subprocess, sys, time
from pathlib import Path
out, rc, seconds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
plan = json.loads((out / "plan.json").read_text()) if (out / "plan.json").is_file() else {}
sends = subprocess.run([sys.executable, "-m", "fmnist.gpu.local", "size"], capture_output=True, text=True).stdout
record = {"command": "bash scripts/rehearse_gpu.sh", "date": time.strftime("%Y-%m-%d"), "exit": rc,
          "seconds": seconds, "sends": sends.strip().splitlines(), "machine": plan.get("machine"),
          "speedrun": plan.get("speedrun_state"), "jobs": {j["name"]: j["state"] for j in plan.get("jobs", [])},
          "failures": plan.get("failures"), "returned": sorted(p.name for p in out.iterdir())}
Path("benchmarks/results/gpu-rehearsal.json").write_text(json.dumps(record, indent=1) + "\n")
print("recorded in benchmarks/results/gpu-rehearsal.json")
PY
exit $rc
