# Shared set-up, sourced by app.sh and test.sh: Debian packages (as root or through sudo), then a
# virtual environment in .venv with the given requirements file. Safe to run again: it only adds.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@";
  else echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi
}

apt_install() {  # apt_install PKG...: install the Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
}

make_venv() {  # make_venv REQUIREMENTS_FILE
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; rm -rf .venv; python3 -m venv .venv; }
  fi
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$1"
}
