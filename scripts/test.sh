#!/usr/bin/env bash
# The README's test command: set up (venv, Chromium, STILTS) and run the whole test suite.
# Extra arguments go to pytest. Screenshots from browser tests land in artifacts/screenshots/.
# LCPANEL_TEST_WORKERS=N (N > 1) spreads the suite over N pytest-xdist workers: each test
# file is one unit of work, the browser tests are one (tests/conftest.py). One process is the
# default: with two workers on a 2-core machine, tests that time a server's limits (login
# budgets, browser waits) can miss them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser --taplint
mkdir -p artifacts/screenshots
workers="${LCPANEL_TEST_WORKERS:-1}"
case "$workers" in
  ''|*[!0-9]*) echo "scripts/test.sh: LCPANEL_TEST_WORKERS must be a whole number, not '$workers'" >&2; exit 2 ;;
esac
if [ "$workers" -gt 1 ]; then
  exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
fi
exec .venv/bin/python -m pytest "$@"
