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


def test_a_benchmark_measures_the_checkout_it_is_in(tmp_path):
    """Run from another checkout (a worktree of older code, to compare), a benchmark and the
    servers and processes it starts import that checkout's lcpanel, not the installed one:
    an old-versus-new comparison once measured the new code twice."""
    other = tmp_path / "checkout"
    (other / "benchmarks").mkdir(parents=True)
    (other / "lcpanel").mkdir()
    (other / "lcpanel" / "__init__.py").write_text("")
    (other / "benchmarks" / "common.py").write_text((ROOT / "benchmarks" / "common.py").read_text())
    (other / "benchmarks" / "bench_where.py").write_text(
        "import subprocess, sys\n"
        "import common  # noqa: F401\n"
        "import lcpanel\n"
        "print(lcpanel.__file__)\n"
        "print(subprocess.run([sys.executable, '-c', 'import lcpanel; print(lcpanel.__file__)'],\n"
        "                     capture_output=True, text=True, check=True).stdout.strip())\n")
    out = subprocess.run([sys.executable, str(other / "benchmarks" / "bench_where.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(other / "lcpanel" / "__init__.py")] * 2



def test_settle_waits_while_the_process_works_and_stops_when_it_is_idle():
    """A benchmark process that has just loaded numpy has OpenBLAS's worker spinning for
    ~0.1 s, counted in the process's CPU time: timed in that window, the copy of 1,000 light
    curves once cost twice its CPU, and every ratio against it was off. ``common.settle()``
    waits window after window while the process uses CPU, returns after the first quiet
    window, and gives up at its timeout (a process that never idles). Run on a process
    of simulated clocks: how much CPU each window costs is set, not measured."""
    from common import settle

    class Process:
        def __init__(self, busy_windows: int):
            self.now = self.used = 0.0
            self.busy_windows = busy_windows

        def sleep(self, seconds):
            self.now += seconds
            if self.busy_windows:  # another thread spins through this window
                self.used += seconds
                self.busy_windows -= 1

    window = 1 / 16  # exact in binary: the simulated clock adds up without rounding
    for busy, waited in ((0, window), (1, 2 * window), (4, 5 * window), (10_000, 3.0)):
        proc = Process(busy)
        got = settle(window, 3.0, cpu=lambda: proc.used, sleep=proc.sleep, clock=lambda: proc.now)
        assert got == pytest.approx(waited), busy
    assert proc.busy_windows > 0  # the busy process was still busy when settle gave up
