#!/usr/bin/env bash
# The README's test command: set up (venv, Chromium, STILTS) and run the whole test suite.
# Extra arguments go to pytest. Screenshots from browser tests land in artifacts/screenshots/.
# The suite runs on LCPANEL_TEST_WORKERS pytest-xdist workers, 2 by default (each test file
# is one unit of work, the browser tests are one: tests/conftest.py); LCPANEL_TEST_WORKERS=1
# runs it in one process. On a slow 2-core machine two workers took 18-19 min, one 28-30.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser --taplint
mkdir -p artifacts/screenshots
workers="${LCPANEL_TEST_WORKERS:-2}"
case "$workers" in
  ''|*[!0-9]*) echo "scripts/test.sh: LCPANEL_TEST_WORKERS must be a whole number, not '$workers'" >&2; exit 2 ;;
esac
if [ "$workers" -gt 1 ]; then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
