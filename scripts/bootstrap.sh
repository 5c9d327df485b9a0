#!/usr/bin/env bash
# Set up everything lcpanel needs on a fresh machine: a Python >= 3.12 venv in .venv with
# lcpanel installed (editable) and its test tools; with --browser also Debian's Chromium
# and xvfb (xvfb-run, for the desktop test),
# with --taplint also Debian's STILTS (its taplint validates the TAP service; pulls a JRE).
# Safe to run again: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
want_taplint=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --taplint) want_taplint=1 ;;
    *) echo "bootstrap.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

find_python() {
  local candidates=()
  [ -n "${LCPANEL_PYTHON:-}" ] && candidates+=("$LCPANEL_PYTHON")
  candidates+=(python3.13 python3.12)
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.(1[2-9])\.[0-9]+$' | sort -V -r); do
      candidates+=("$root/versions/$v/bin/python3")
    done
  fi
  candidates+=(python3)
  for py in "${candidates[@]}"; do
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
      echo "$py"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  if ! py=$(find_python); then
    echo "bootstrap.sh: lcpanel needs Python >= 3.12 (panel 1.10, bokeh 3.10); none found." >&2
    echo "  Install one (e.g. 'pyenv install 3.12') or set LCPANEL_PYTHON=/path/to/python3.12." >&2
    exit 1
  fi
  echo "bootstrap: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi

stamp=.venv/.lcpanel-installed
digest=$(sha256sum pyproject.toml scripts/bootstrap.sh scripts/constraints.txt plugins_contrib/*/pyproject.toml \
  examples/pyproject.toml \
  | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "bootstrap: installing lcpanel and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  # astrobase 0.5.3 and pyeebls declare numpy<2 in their metadata but work with numpy 2
  # (../shared/ASTROBASE.md); their real dependencies are in pyproject.toml.
  .venv/bin/python -m pip install --quiet --no-deps astrobase==0.5.3 pyeebls==0.2.0
  # contrib plugins come with their own dependencies (lsdb, dask...); the constraints
  # file keeps those from lifting lcpanel's pins (numpy<2.6)
  # the example collection generator, importable as make_collection (tests, benchmarks)
  .venv/bin/python -m pip install --quiet --no-deps -e examples
  for contrib in plugins_contrib/*/; do
    [ -f "$contrib/pyproject.toml" ] && .venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e "$contrib"
  done
  echo "$digest" > "$stamp"
fi

if [ "$want_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "bootstrap: installing Debian's chromium for browser tests"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi

if [ "$want_browser" = 1 ] && ! command -v xvfb-run >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's xvfb (the desktop test opens Chromium in an X display of its own)"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq xvfb xauth >/dev/null
fi

if [ "$want_taplint" = 1 ] && ! command -v stilts >/dev/null 2>&1; then
  echo "bootstrap: installing Debian's stilts for the TAP validator (taplint)"
  sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq stilts >/dev/null
fi
