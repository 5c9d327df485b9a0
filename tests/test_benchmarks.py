"""Every benchmark runs in smoke mode (tiny sizes, 1-2 repeats) and exits cleanly, so
that none can stop working unnoticed (``bench_search.py`` once broke for months). Figures
are printed by the benchmarks, never asserted here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from support.data import snapshot

sys.path.insert(0, str(ROOT / "benchmarks"))
from run_all import scripts  # noqa: E402

BENCHMARKS = scripts()


def test_every_benchmark_is_found():
    assert {"ingest", "load", "products", "ratelimit", "search", "skyindex", "tap", "hats"} <= set(BENCHMARKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_in_smoke_mode(name, csv_collection):
    """Each benchmark's smoke run, on the suite's example collection (a benchmark builds
    its own only when run by hand), which it reads and leaves as it was."""
    path = BENCHMARKS[name]
    before = snapshot(csv_collection)
    out = subprocess.run([sys.executable, str(path), "--smoke", "--example", str(csv_collection)], cwd=path.parent,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{path.name} --smoke failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    assert "Traceback" not in out.stderr, out.stderr[-5000:]
    assert snapshot(csv_collection) == before, "the benchmark changed the example collection it was given"
