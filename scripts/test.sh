#!/usr/bin/env bash
# The README's test command: set up (venv, Chromium, STILTS) and run the whole test suite.
# Extra arguments go to pytest. Screenshots from browser tests land in artifacts/screenshots/.
# pytest-xdist runs the suite on every core (at most LCPANEL_TEST_WORKERS, default 4): each
# test file is one unit of work and the browser tests are one (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser --taplint
mkdir -p artifacts/screenshots
exec .venv/bin/python -m pytest -n auto --maxprocesses "${LCPANEL_TEST_WORKERS:-4}" --dist loadfile "$@"
