#!/usr/bin/env bash
# The README's test command: set up (venv, Chromium, STILTS) and run the whole test suite.
# Extra arguments go to pytest. Screenshots from browser tests land in artifacts/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser --taplint
mkdir -p artifacts/screenshots
exec .venv/bin/python -m pytest "$@"
