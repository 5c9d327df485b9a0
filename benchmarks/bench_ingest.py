"""Benchmark: collection ingest time and file sizes.

Plain catalogs of 1e5 and 1e6 objects (made by examples/make_collection.py's catalog-only
mode, all sky) and the example astrobase collection (``demo/collection`` when it exists,
else a freshly built one of --nobjects objects). Baseline, measured in the same run:
reading the same catalog with pyarrow and writing it to SQLite with ``executemany`` in
chunks, with no indexes, FTS or sky index, i.e. the floor any ingest pays. (Until the
streaming ingest it read with astropy, as ingest then did: 8.0 s instead of ~6 s at 1e6.)

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 1e5 1e6] [--nobjects 60]

Each ingest runs in a fresh process: its peak RSS (and the growth over its RSS before the
ingest) is printed, and that of the process writing half the rows of a large catalog
(:mod:`lcpanel.core.catalogs.rowsapart`), with the bytes per object on disk and their
breakdown per part (the columns' table, the column indexes, the id index, FTS, the sky
index, the kd-tree; SQLite parts measured with its dbstat table).

Targets (issue 2): 1e6 objects ingested in under 60 s on 2 cores; (issue 18) 1e7 in
<= 120 s, peak RSS <= 2 GB, <= 250 bytes per object on disk.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

from common import ROOT, add_smoke_option, load_generator, parse_args, peak_rss_mb  # noqa: E402


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def baseline_seconds(catalog: Path, workdir: Path) -> float:
    """Read with pyarrow and insert every column into a bare SQLite table, in chunks."""
    import pyarrow.parquet as pq

    (workdir / "baseline.sqlite").unlink(missing_ok=True)
    start = time.perf_counter()
    table = pq.read_table(catalog)
    with closing(sqlite3.connect(workdir / "baseline.sqlite")) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(f"CREATE TABLE t ({', '.join(table.column_names)})")
        for batch in table.to_batches(50_000):
            cols = [c.to_pylist() for c in batch.columns]
            conn.executemany(f"INSERT INTO t VALUES ({','.join('?' * len(cols))})", zip(*cols))
        conn.commit()
    return time.perf_counter() - start


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def _ingest_child(source: str, workdir: str, name: str) -> tuple[float, str, float, tuple, list]:

    import logging

    import astropy.table  # noqa: F401 -- imported before the 'before' figure, as any ingest would
    import scipy.spatial  # noqa: F401

    steps, apart_rss = [], []

    class Steps(logging.Handler):
        def emit(self, record):
            steps.extend(getattr(record, "steps", ()))
            apart_rss.append(getattr(record, "rows_apart_peak_rss_mb", 0.0))

    logger = logging.getLogger("lcpanel.core.catalogs.build")
    logger.addHandler(Steps())
    logger.setLevel(logging.DEBUG)
    before = _rss_mb()
    secs, cdir = ingest(Path(source), Path(workdir), name)
    return secs, str(cdir), before, (peak_rss_mb(), max(apart_rss, default=0.0)), steps


def ingest_in_child(source: Path, workdir: Path, name: str) -> tuple[float, Path, float, tuple, list]:
    """``ingest`` in a fresh process: seconds, catalog dir, RSS before (MB), peak RSS (MB)
    of that process and of the one writing half the rows (0 if none ran,
    :mod:`lcpanel.core.catalogs.rowsapart`), and the build's steps
    (:class:`lcpanel.core.catalogs.timeline.Step`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        secs, cdir, before, peak, steps = pool.submit(_ingest_child, str(source), str(workdir), name).result()
    return secs, Path(cdir), before, peak, steps


def print_steps(steps: list) -> None:
    """The build's timeline: each step's start and end (s from the build's start), by thread;
    and how long each thread was busy (a core idle at the end is time to win back)."""
    if not steps:
        return
    threads = list(dict.fromkeys(s.thread for s in sorted(steps, key=lambda s: s.start_s)))
    end = max(s.end_s for s in steps)
    print(f"    timeline ({len(threads)} threads; {end:.1f} s):")
    for s in sorted(steps, key=lambda s: s.start_s):
        print(f"      {s.thread:<14} {s.name:<24} {s.start_s:7.1f} -> {s.end_s:7.1f}  ({s.seconds:6.1f} s)")
    for t in threads:
        busy = sum(s.seconds for s in steps if s.thread == t)
        print(f"      {t:<14} busy {busy:6.1f} s of {end:.1f} s")


def disk_parts(cdir: Path) -> dict[str, int]:
    """Bytes of a catalog directory per part (SQLite parts from its dbstat table)."""
    parts = {"columns (table)": 0, "column indexes": 0, "id index": 0, "FTS": 0, "sqlite other": 0}
    with closing(sqlite3.connect(f"file:{cdir / 'catalog-objectinfo.sqlite'}?mode=ro", uri=True)) as conn:
        try:
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # SQLite built without dbstat
            rows = [("(sqlite)", (cdir / "catalog-objectinfo.sqlite").stat().st_size)]
    for name, size in rows:
        part = ("columns (table)" if name == "object_catalog" else "column indexes"
                if name.startswith("object_catalog_") else "id index" if name in ("object_ids", "object_id_columns")
                else "FTS" if name.startswith("object_fts") else "sqlite other")
        parts[part] += size
    for path in sorted(cdir.iterdir()):
        if path.suffix != ".sqlite":
            parts[path.name] = path.stat().st_size
    return parts


def ingest(source: Path, workdir: Path, name: str) -> tuple[float, Path]:
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection

    shutil.rmtree(workdir / f"basedir-{name}", ignore_errors=True)
    base = Basedir.init(workdir / f"basedir-{name}")
    app = App(base.path)
    start = time.perf_counter()
    if source.is_dir():
        info = add_astrobase_collection(app, base, source, collection_id=name, show_progress=False)
    else:
        info = add_catalog_collection(app, base, source, collection_id=name, show_progress=False)
    return time.perf_counter() - start, Path(info.catalog_dir)


def _size(path: Path) -> str:
    return human(path.stat().st_size) if path.exists() else f"{'none':>11}"


def human(nbytes: int) -> str:
    return f"{nbytes / 1e6:8.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1e5", "1e6"])
    parser.add_argument("--nobjects", type=int, default=60, help="size of the example collection if demo/ is absent")
    parser.add_argument("--workdir", type=Path, default=None)
    add_smoke_option(parser, sizes=["2e3"], nobjects=4)
    args = parse_args(parser)
    gen = load_generator()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lcpanel-bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# ingest benchmark (work dir {workdir})")
    print(f"{'input':<28} {'objects':>9} {'ingest s':>9} {'baseline s':>10} {'ratio':>6} "
          f"{'sqlite':>11} {'skyindex':>11} {'kdtree':>11} {'peak RSS':>9} {'growth':>7} {'B/obj':>6}")
    try:
        for size in args.sizes:
            n = int(float(size))
            catalog = workdir / f"allsky_{n}.parquet"
            t0 = time.perf_counter()
            if not catalog.exists():  # the same catalog every time (seed 1): kept in a --workdir
                gen.make_plain_catalog(catalog, n, seed=1, allsky=True)
            made = time.perf_counter() - t0
            base_s = baseline_seconds(catalog, workdir)
            secs, cdir, before, (peak, apart_peak), steps = ingest_in_child(catalog, workdir, f"allsky_{n}")
            parts = disk_parts(cdir)
            print(f"{'catalog ' + f'{n:.0e}':<28} {n:>9} {secs:>9.2f} {base_s:>10.2f} {secs / base_s:>6.2f} "
                  f"{human((cdir / 'catalog-objectinfo.sqlite').stat().st_size):>11} "
                  f"{human((cdir / 'catalog-skyindex.npy').stat().st_size):>11} "
                  f"{_size(cdir / 'catalog-kdtree.pkl'):>11} {peak:>6.0f} MB {peak - before:>4.0f} MB "
                  f"{sum(parts.values()) / n:>6.0f}   (catalog made in {made:.1f} s)")
            print("    bytes per object: " + ", ".join(f"{k} {v / n:.0f}" for k, v in parts.items()))
            if apart_peak:
                print(f"    peak RSS of the process writing half the rows: {apart_peak:.0f} MB "
                      f"(both processes at most {peak + apart_peak:.0f} MB)")
            print_steps(steps)
        demo = args.example or ROOT / "demo" / "collection"
        if not args.example and (args.smoke or not (demo / "lclist-catalog.pkl").exists()):
            demo = workdir / "example"
            t0 = time.perf_counter()
            gen.make_collection(demo, nobjects=args.nobjects, seed=42, workers=2)
            print(f"# built an example collection of {args.nobjects} objects in {time.perf_counter() - t0:.1f} s")
        secs, cdir, _, _, _ = ingest_in_child(demo, workdir, "example")
        from lcpanel.core.catalogs.basedir import Basedir

        n = Basedir(workdir / "basedir-example").collection("example").nobjects
        print(f"{'example collection':<28} {n:>9} {secs:>9.2f} {'':>10} {'':>6} "
              f"{human((cdir / 'catalog-objectinfo.sqlite').stat().st_size):>11} "
              f"{human((cdir / 'catalog-skyindex.npy').stat().st_size):>11} "
              f"{_size(cdir / 'catalog-kdtree.pkl'):>11}   "
              f"(source {human(dir_size(demo)).strip()})")
        print("peak RSS: of the ingesting process; growth: over its RSS before the ingest (imports done); "
              "B/obj: the catalog directory's bytes per object")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
