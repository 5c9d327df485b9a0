"""Benchmark: bulk light-curve products at scale: the builder's memory for a dataset's
Parquet, and one product built across the worker cores.

1. Parquet peak RSS. The dataset's ``lightcurves.parquet`` for N and 4N demo light curves
   (the example collection's files under many collection ids), each built by
   ``build_product`` in a fresh worker process: ``memory`` = the Parquet made in memory
   and returned as bytes (a ``call`` entry: the path before the ``stream`` kind), against
   ``stream`` = written row group by row group straight into the zip member (the
   ``stream`` entry the builder plans now). Printed: the worker's RSS before the build
   (imports done), its peak RSS, the growth and the ratio of growths 4N / N (1 = memory
   does not grow with the dataset; ~4 = it grows with it).

2. One product across cores. The same N-light-curve ``csv.gz`` product built by a
   ``ProductStore`` with ``max_workers`` 1 (one worker writes the zip) and 2 (the members
   split in slices over both workers and joined in order: ``ProductStore._submit``);
   the pool is warmed first. Printed: wall s, LC/s and the speed-up of 2 workers over 1,
   with the machine's load: on a shared machine the 2-worker figure is a lower bound.

    .venv/bin/python benchmarks/bench_bulk.py [--nlc 1000] [--repeat 2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench_products import cpu_seconds, find_demo, machine_load, mb
from common import add_smoke_option, parse_args, peak_rss_mb

READER = "lcpanel.plugins.lcformats:AstrobaseFormat"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _parquet_in_child(index_path: str, dicts: list, target: str) -> dict:
    """build_product in a fresh process: its RSS before (imports done) and its peak."""

    import pyarrow.parquet  # noqa: F401 -- imported before the 'before' figure, as the build would
    from lcpanel.core.objects import lcparquet  # noqa: F401
    from lcpanel.core.products import build_product
    from lcpanel.plugins import lcformats  # noqa: F401

    before = _rss_mb()
    t0 = time.perf_counter()
    build_product(index_path, "bench-bulk", dicts, target)
    wall = time.perf_counter() - t0
    if not os.path.exists(target):
        raise RuntimeError(f"build_product wrote no {target} (see the log)")
    return {"before": before, "peak": peak_rss_mb(), "wall": wall,
            "size": os.path.getsize(target)}


def _warm_worker(index_path: str, dicts: list, target: str) -> None:
    """A small build (imports, format cache), then a pause so that each worker of the
    pool takes one of these (not timed)."""
    from lcpanel.core.products import build_product

    build_product(index_path, "warm", dicts, target)
    time.sleep(2)


def _picks(demo: Path, nlc: int) -> list[tuple[str, str]]:
    files = sorted(str(p) for p in (demo / "lightcurves").iterdir())
    return [(f"demo{i // len(files):04d}", files[i % len(files)]) for i in range(nlc)]


def bench_parquet_memory(workdir: Path, demo: Path, index_path: str, nlc: int) -> None:
    spec = json.loads((demo / "collection.json").read_text())["lcformat"]
    print(f"\n## 1. dataset Parquet: builder peak RSS for N and 4N demo light curves (fresh worker each; "
          f"{machine_load()})")
    print(f"   {'path':<8} {'LCs':>7} {'wall s':>8} {'LC/s':>7} {'Parquet MB':>10} {'RSS before MB':>13} "
          f"{'peak MB':>8} {'growth MB':>9} {'growth 4N/N':>11}")
    ctx = multiprocessing.get_context("spawn")
    for kind, label in (("call", "memory"), ("stream", "stream")):
        growth = {}
        for n in (nlc, 4 * nlc):
            picks = _picks(demo, n)
            dicts = [{"arcname": "lightcurves.parquet", "kind": kind,
                      "func": "lcpanel.core.objects.lcparquet:dataset_parquet",
                      "args": {"objects": [[cid, Path(f).name.split("-lc")[0], f] for cid, f in picks],
                               "collections": {cid: {"lcformat": spec, "base": str(demo), "reader": READER}
                                               for cid in dict.fromkeys(c for c, _ in picks)}}}]
            target = workdir / f"parquet-{label}-{n}.zip"
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                r = pool.submit(_parquet_in_child, index_path, dicts, str(target)).result()
            target.unlink(missing_ok=True)
            growth[n] = r["peak"] - r["before"]
            ratio = f"{growth[n] / max(growth[nlc], 1e-9):10.1f}x" if n != nlc else f"{'':>11}"
            print(f"   {label:<8} {n:>7,} {r['wall']:>8.2f} {n / r['wall']:>7.0f} {mb(r['size']):>10.1f} "
                  f"{r['before']:>13.0f} {r['peak']:>8.0f} {growth[n]:>9.0f} {ratio}")
    print("   memory = the Parquet built in a BytesIO and returned (the path before 'stream' entries);")
    print("   stream = written row group by row group into the zip member; growth = peak - RSS before the build")


def bench_split(workdir: Path, demo: Path, basedir: Path, nlc: int, repeat: int) -> None:
    from dataclasses import asdict

    from lcpanel.core.products import Entry, ProductStore

    spec = json.loads((demo / "collection.json").read_text())["lcformat"]
    entries = [Entry(arcname=f"lightcurves/{cid}/{Path(f).name.split('-lc')[0]}.csv.gz", kind="call",
                     func="lcpanel.plugins.products:converted_lightcurve",
                     args={"lcformat": READER, "spec": spec, "base": str(demo), "path": f, "fmt": "csv.gz"},
                     inputs=(f,)) for cid, f in _picks(demo, nlc)]
    print(f"\n## 2. one csv.gz product of {nlc:,} light curves, 1 vs 2 workers ({os.cpu_count()} cores; "
          f"{machine_load()})")
    print(f"   {'workers':<8} {'runs':>4} {'wall s':>8} {'LC/s':>7} {'CPU s':>7} {'cores':>6} {'LC/CPU-s':>9} "
          f"{'zip MB':>7} {'speed-up':>9}")
    base = None
    digests = set()
    for workers in (1, 2):
        store = ProductStore(basedir, max_workers=workers)
        try:
            warm = [asdict(e) for e in entries[:2]]
            for f in [store._executor().submit(_warm_worker, str(store.index_path), warm,
                                               str(workdir / f"warm{i}.zip")) for i in range(workers)]:
                f.result()
            walls, cpus = [], []
            for run in range(repeat):
                target = workdir / f"split-{workers}-{run}.zip"
                t0, c0 = time.perf_counter(), cpu_seconds(store)
                store._submit("bench-split", entries, target).result()
                walls.append(time.perf_counter() - t0)
                cpus.append(cpu_seconds(store) - c0)
                if not target.exists():
                    raise RuntimeError("the build wrote no zip (see the log)")
                size = target.stat().st_size
                import hashlib

                digests.add(hashlib.sha256(target.read_bytes()).hexdigest())
                target.unlink()
        finally:
            store.shutdown()
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        base = base or wall
        print(f"   {workers:<8} {repeat:>4} {wall:>8.2f} {nlc / wall:>7.0f} {cpu:>7.2f} {cpu / wall:>6.2f} "
              f"{nlc / max(cpu, 1e-9):>9.0f} {mb(size):>7.1f} {base / wall:>8.2f}x")
    print("   CPU s: this process and the pool's workers (from /proc); cores = CPU s / wall s. Where the kernel")
    print("   groups a session's processes for CPU fair share (sched_autogroup) on a busy machine, more workers")
    print("   get no more CPU: compare LC/CPU-s (the split's own cost) and read the speed-up on an idle machine.")
    print(f"   the zips of every run are {'identical' if len(digests) == 1 else 'DIFFERENT'} "
          f"({len(digests)} distinct SHA256); {machine_load()} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nlc", type=int, default=1000, help="N: light curves (Parquet: N and 4N)")
    parser.add_argument("--split-nlc", type=int, default=2000, help="light curves of the 1-vs-2-worker product")
    parser.add_argument("--repeat", type=int, default=2, help="runs per worker count (median)")
    parser.add_argument("--nobjects", type=int, default=60, help="size of the example collection if none is present")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the work files here")
    parser.add_argument("--skip", choices=("parquet", "split"), action="append", default=[])
    add_smoke_option(parser, nlc=6, split_nlc=240, repeat=1, nobjects=4)
    args = parse_args(parser)
    import logging

    logging.getLogger("astrobase").setLevel(logging.WARNING)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lcpanel-bench-bulk-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"# bulk products benchmark (work dir {workdir}; {os.cpu_count()} cores; {machine_load()})")
    try:
        from lcpanel.core.catalogs.basedir import Basedir
        from lcpanel.core.products import ProductStore

        demo = find_demo(workdir, args.nobjects, args.smoke, args.example)
        basedir = workdir / "basedir"
        if not basedir.exists():
            Basedir.init(basedir)
        if "parquet" not in args.skip:
            bench_parquet_memory(workdir, demo, str(ProductStore(basedir).index_path), args.nlc)
        if "split" not in args.skip:
            bench_split(workdir, demo, basedir, args.split_nlc, args.repeat)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n# total {time.perf_counter() - started:.1f} s ({machine_load()} at the end)")


if __name__ == "__main__":
    main()
