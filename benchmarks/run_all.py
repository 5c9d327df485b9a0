"""Run every benchmark script (``make bench``): lcpanel's in ``benchmarks/`` and each
contrib plugin's in ``plugins_contrib/*/benchmarks/``, one after another, each printing
its own figures and ratios against its baseline.

    .venv/bin/python benchmarks/run_all.py [--only search tap ...] [--quick]

The first run builds the cached catalogs under ``benchmarks/out/`` (the 1e7-object
all-sky basedir takes ~7 GB and ~10 minutes on 2 cores); later runs reuse them.
``--quick`` keeps to 1e6 objects and fewer repeats. ``--smoke`` runs each benchmark with
tiny sizes and 1-2 repeats in temporary directories (seconds each; its figures mean
nothing): the test suite does this so that no benchmark can stop working unnoticed. Every
benchmark script takes ``--smoke`` (``common.add_smoke_option``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from common import ROOT

QUICK = {
    "ingest": ["--sizes", "1e5"],
    "search": ["--sizes", "1e6", "--repeat", "50"],
    "skyindex": ["--sizes", "1e6"],
    "tap": ["--repeat", "50"],
    "products": ["--repeat", "5"],
    "ratelimit": ["--seconds", "4"],
    "load": ["--heavy", "2", "--probes", "20"],
    "auth": ["--smoke"],
    "security_headers": ["--repeat", "500", "--http", "20"],
    "reviews": ["--objects", "3", "--repeat", "20"],
    "hats": ["--sizes", "1e6"],
    "idsearch": ["--sizes", "1e6", "--repeat", "100", "--baseline-repeat", "2"],
}


def scripts() -> dict[str, object]:
    found = {p.stem.removeprefix("bench_"): p for p in sorted((ROOT / "benchmarks").glob("bench_*.py"))}
    for p in sorted(ROOT.glob("plugins_contrib/*/benchmarks/bench_*.py")):
        found[p.stem.removeprefix("bench_")] = p
    return found


def main() -> int:
    found = scripts()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(found), help="run just these")
    parser.add_argument("--quick", action="store_true", help="1e6 objects and fewer repeats")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves every benchmark runs")
    args = parser.parse_args()
    failed = []
    for name, path in found.items():
        if args.only and name not in args.only:
            continue
        extra = ["--smoke"] if args.smoke else QUICK.get(name, []) if args.quick else []
        print(f"\n===== {name}: {path.relative_to(ROOT)} {' '.join(extra)}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, str(path), *extra], cwd=path.parent)
        print(f"===== {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.monotonic() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
