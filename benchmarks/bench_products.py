"""Benchmark: dataset creation and light-curve product (zip) throughput.

1. Dataset creation latency for 10, 1e3 and 1e5 rows. A basedir holds one plain all-sky
   catalog of --catalog-size objects (examples/make_collection.py catalog-only mode,
   ingested at the start). For each size N it times, separately (p50 over --repeat
   runs; 3 for 1e5 rows):

   - ``run_search`` of a column filter that matches every object, with ``limit`` N;
   - ``DatasetStore.create(result, owner)`` (columnar copy, pickle, fsync, rename,
     SQLite index row), and the dataset pickle's size;
   - ``DatasetStore.get`` (read and unpickle);
   - baseline, measured in the same run: ``pickle.dump`` of the result's row dicts to a
     plain file (no fsync, no index) and ``pickle.load`` of it back.

2. Light-curve zip throughput for 1,000 light curves, ``original`` and ``csv`` formats.
   The example astrobase collection (/tmp/demo300 or demo/collection when present, else
   a freshly built one of --nobjects objects) has too few objects, so it is ingested
   several times under different collection ids (ingest only indexes: the light-curve
   files are the same ones, read in place) and a dataset of the first 1,000 objects is
   made from a search over all copies; every zip member has its own name
   (``lightcurves/<collection>/<file>``). A second dataset (the same search sorted the
   other way) gives a second, different 1,000-light-curve product. Rows:

   - ``zipfile`` baseline: one process writes the 1,000 original files with
     ``ZIP_DEFLATED`` (level 6), nothing else. The ratio column is the row's throughput
     in light curves per second divided by the baseline's (> 1: faster than the
     baseline). The same with ``ZIP_STORED`` is
     shown for reference, since lcpanel stores already-compressed members (.gz) as is;
   - ``build_product`` called in this process: the build itself (reading, converting,
     zipping, SHA256 manifest, progress updates, fsync and rename), no pool;
   - what a user sees: ``ProductStore.request(..., wait=True)`` on a store with
     ``max_workers`` 1 or 2, from the request (plan, content key, record) until the
     zip is in place; the worker pool is warmed up first (its one-off start-up, process
     spawn plus imports, is reported separately). One product is built by one worker,
     so a second worker cannot make a single product faster; it lets two products build
     at once. "2 at once" rows request both products from two threads (as two server
     requests would) and report the wall time until both are done and the aggregate
     throughput.

   Input MB: the source light-curve files read; members MB: the bytes put in the zip
   (converted, uncompressed); output MB: the zip written. Every product is rebuilt for
   each run (its zip is removed first, so the content-addressed reuse does not apply).
   CPU s: CPU time of this process plus the pool's workers (read from /proc); cores =
   CPU s / wall s. The load average and the CPU pressure (Linux PSI) are printed with
   each section: on a machine shared with other work, throughput figures, the 2-worker
   rows most of all, are lower bounds.

    .venv/bin/python benchmarks/bench_products.py [--catalog-size 1e5] [--repeat 20]
        [--zip-repeat 3] [--csv-repeat 3] [--nlc 1000] [--workdir DIR]

3. Light-curve zip per format (``--formats-nlc`` light curves of distinct objects), each
   built by ``build_product`` in a fresh worker process: LC/s and LC/CPU-s of every
   format, uncached and from the light-curve cache, against the floors measured in the
   same run: a raw read of the files, the collection's reader alone, the ``original``
   copy, and per format a ``floor`` row, what a cached build does but converting (the
   cache read, deflate, CRC and SHA-256 of the same member bytes). The issue 18 target
   "within 3x of copying the originals" is read in the "CPU vs original" column; the floor
   rows show how much of it the zip's compression alone takes.

4. The real HATNet light curve of tests/realdata: reading it (astrobase's reader against
   lcpanel's) and writing it per format (astropy writers against the fast ones); and the
   real TESS CDIPS light curve: reading it (astropy against lcpanel's fits-table reader).

With --workdir the work directory is kept (and reused for the example collection);
otherwise a temporary one is removed at the end.

Targets: creating a dataset of 1e3 rows well under 100 ms (interactive: every search
becomes a dataset) and of 1e5 rows (the search limit) within a few seconds; zipping
original light curves at disk/zipfile speed (ratio >= ~1 against the zipfile
baseline), i.e. 1,000 light curves in well under 2 s, and 2 workers giving ~2x the
aggregate throughput of 1 worker when two products are requested at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict
from functools import partial
from pathlib import Path

from common import ROOT, add_smoke_option, load_generator, parse_args, peak_rss_mb, settle  # noqa: E402
DEMO_CANDIDATES = (Path("/tmp/demo300"), ROOT / "demo" / "collection")
OWNER = "cli:bench"


def p50(values) -> float:
    return statistics.median(values)


def mb(nbytes: float) -> float:
    return nbytes / 1e6


# --- 1. dataset creation -------------------------------------------------------------------


def bench_datasets(workdir: Path, catalog_size: int, repeat: int) -> None:
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.core.search import run_search

    path = workdir / "basedir-datasets"
    catalog = workdir / f"allsky_{catalog_size}.parquet"
    t0 = time.perf_counter()
    if not catalog.exists():
        load_generator().make_plain_catalog(catalog, catalog_size, seed=1, allsky=True)
    made = time.perf_counter() - t0
    if path.exists():
        shutil.rmtree(path)
    base = Basedir.init(path)
    t0 = time.perf_counter()
    add_catalog_collection(App(path), base, catalog, collection_id="allsky", show_progress=False)
    ingested = time.perf_counter() - t0
    app = App(path)
    store = app.datasets
    print(f"\n## 1. dataset creation ({catalog_size:,} objects, all sky; catalog made in {made:.1f} s, "
          f"ingested in {ingested:.1f} s; {machine_load()})")
    print("   filter 'ndet >= 0' (every object matches) with limit N; p50 in ms; "
          "baseline = pickle.dump / pickle.load of the result's row dicts, plain file")
    print(f"   {'rows':>7} {'runs':>4} {'run_search':>11} {'create':>9} {'baseline':>9} {'ratio':>6} "
          f"{'get':>9} {'baseline':>9} {'ratio':>6} {'pickle':>10} {'bytes/row':>9} {'search+create':>13}")
    run_search(app, {"type": "filter", "params": {"where": "ndet >= 0"}, "limit": 10})  # open the catalog
    base_file = workdir / "baseline-rows.pkl"
    for n in (10, 1_000, 100_000):
        n = min(n, catalog_size)
        runs = repeat if n <= 1_000 else 3
        spec = {"type": "filter", "params": {"where": "ndet >= 0"}, "limit": n}
        search_s, create_s, get_s, dump_s, load_s, sizes = [], [], [], [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            result = run_search(app, spec)
            t1 = time.perf_counter()
            ds = store.create(result, OWNER)
            t2 = time.perf_counter()
            store.get(ds.dataset_id, store_viewer())
            t3 = time.perf_counter()
            with open(base_file, "wb") as fh:
                pickle.dump(result.rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
            t4 = time.perf_counter()
            with open(base_file, "rb") as fh:
                pickle.load(fh)
            t5 = time.perf_counter()
            assert result.nreturned == n, (result.nreturned, n)
            search_s.append(t1 - t0)
            create_s.append(t2 - t1)
            get_s.append(t3 - t2)
            dump_s.append(t4 - t3)
            load_s.append(t5 - t4)
            sizes.append(store.path(ds.dataset_id).stat().st_size)
        s, c, g, d, lo = (p50(x) * 1e3 for x in (search_s, create_s, get_s, dump_s, load_s))
        size = sizes[-1]
        print(f"   {n:>7,} {runs:>4} {s:>11.2f} {c:>9.2f} {d:>9.2f} {c / d:>5.1f}x "
              f"{g:>9.2f} {lo:>9.2f} {g / lo:>5.1f}x {mb(size):>7.2f} MB {size / n:>9.0f} "
              f"{p50([a + b for a, b in zip(search_s, create_s)]) * 1e3:>10.2f} ms")
    print("   ratio = lcpanel time / baseline time (lower is better); size of the last dataset pickle")
    base_file.unlink(missing_ok=True)


def store_viewer():
    from lcpanel.core.datasets import Principal

    return Principal(OWNER)


# --- 2. light-curve zips ---------------------------------------------------------------------


def find_demo(workdir: Path, nobjects: int, smoke: bool = False, example: Path | None = None) -> Path:
    """The example collection to use: ``example`` (``--example``) when given, else outside
    smoke mode an existing one of DEMO_CANDIDATES, else one of ``nobjects`` objects built
    in ``workdir`` (once)."""
    if example is not None:
        if not (example / "collection.json").exists():
            raise SystemExit(f"--example {example}: no collection.json there (examples/make_collection.py makes one)")
        return example.resolve()
    for cand in () if smoke else DEMO_CANDIDATES:
        if (cand / "lclist-catalog.pkl").exists() and (cand / "collection.json").exists():
            return cand
    demo = workdir / "example"
    if not (demo / "collection.json").exists():
        t0 = time.perf_counter()
        load_generator().make_collection(demo, nobjects=nobjects, seed=42, workers=2, progress=False)
        print(f"# built an example collection of {nobjects} objects in {time.perf_counter() - t0:.1f} s")
    return demo


class ZipBench:
    def __init__(self, workdir: Path, demo: Path, nlc: int):
        from lcpanel.app import App
        from lcpanel.core.catalogs.basedir import Basedir
        from lcpanel.core.catalogs.ingest import add_astrobase_collection
        from lcpanel.core.search import run_search

        self.nlc = nlc
        self.path = workdir / "basedir-products"
        if self.path.exists():
            shutil.rmtree(self.path)
        base = Basedir.init(self.path)
        app = App(self.path)
        t0 = time.perf_counter()
        n0 = None
        copies = 1
        i = 0
        while True:
            info = add_astrobase_collection(app, base, demo, collection_id=f"demo{i:02d}", show_progress=False)
            n0 = n0 or info.nobjects
            i += 1
            if i * n0 >= nlc:
                copies = i
                break
        self.ingest_s = time.perf_counter() - t0
        self.copies, self.per_copy = copies, n0
        self.app = App(self.path)
        where = {"type": "filter", "params": {"where": "ndet >= 0"}, "limit": nlc}
        self.ds = {
            "A": self.app.datasets.create(run_search(self.app, {**where, "sort": "vmag, objectid"}), OWNER),
            "B": self.app.datasets.create(run_search(self.app, {**where, "sort": "-vmag, -objectid"}), OWNER),
        }
        for ds in self.ds.values():
            assert ds.nobjects == nlc, ds.nobjects
        self.builder = self.app.product_builders.get("lightcurves")

    # the product's plan, zip path and input size, as ProductStore.request will compute them
    def plan(self, store, which: str, fmt: str, objects=None):
        from lcpanel.core.products import content_key

        ds = self.ds[which]
        options = self.builder.validate_options({"format": fmt})
        if objects is None:
            rows = list(range(ds.nobjects))
        else:
            index = {k: i for i, k in enumerate(ds.keys())}
            rows = sorted(index[k] for k in objects)
        entries = self.builder().plan(self.app, ds, rows, options)
        target = store.file_path(content_key(self.builder.name, options, entries), self.builder.name)
        return entries, target

    def input_bytes(self, entries) -> int:
        # a copied file is its source; a converted light curve is a call reading its inputs
        return sum(os.stat(p).st_size for e in entries for p in ((e.source,) if e.source else e.inputs))

    def request(self, store, which: str, fmt: str, objects=None) -> dict:
        status = store.request(self.app, self.ds[which], self.builder.name, {"format": fmt}, objects, wait=True)
        if status["status"] != "done":
            raise RuntimeError(f"product failed: {status}")
        return status

    def fresh_request(self, store, which: str, fmt: str, objects=None) -> dict:
        """Request a product that must be built now (its zip removed first)."""
        _, target = self.plan(store, which, fmt, objects)
        target.unlink(missing_ok=True)
        return self.request(store, which, fmt, objects)

    def members_bytes(self, store, key: str) -> int:
        import json
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(store.index_path, timeout=30)) as conn:  # our own: store.connect() is kept open
            manifest = conn.execute("SELECT manifest FROM products WHERE key = ?", (key,)).fetchone()[0]
        return sum(m["size"] for m in json.loads(manifest) if m["name"] != "SHA256SUMS")

    def warm(self, store, workers: int) -> float:
        """Run small csv products on every worker (spawn, imports, format cache); return
        the wall time of the first one, i.e. the pool's cold start."""
        keys = self.ds["A"].keys()
        step = max(1, min(20, len(keys) // (workers + 1)))
        t0 = time.perf_counter()
        self.fresh_request(store, "A", "csv", keys[:step])
        cold = time.perf_counter() - t0
        errors: list = []

        def request(part) -> None:
            try:
                self.fresh_request(store, "A", "csv", part)
            except Exception as exc:  # noqa: BLE001 -- re-raised in the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=request, args=(keys[step * i:step * i + step],))
                   for i in range(1, workers + 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return cold


def cpu_seconds(store=None) -> float:
    """CPU time (user + system) so far of this process and of ``store``'s pool workers
    (read from /proc: a worker's CPU time is not reported to us until it exits)."""
    total = time.process_time()
    pool = getattr(store, "_pool", None)
    for pid in list(getattr(pool, "_processes", None) or ()):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(fn, runs: int, store=None) -> tuple[float, float]:
    """p50 wall seconds and p50 CPU seconds of ``fn()`` over ``runs`` runs."""
    walls, cpus = [], []
    for _ in range(runs):
        c0, t0 = cpu_seconds(store), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(store) - c0)
    return p50(walls), p50(cpus)


def time_products(zb: ZipBench, store, fmt: str, which: tuple[str, ...]) -> tuple[float, float, dict]:
    """Wall and CPU seconds of requesting the ``which`` products at once (one thread each,
    as concurrent server requests), each removed first so that it is built; and their statuses."""
    for w in which:
        zb.plan(store, w, fmt)[1].unlink(missing_ok=True)  # not timed
    status: dict = {}
    errors: list = []

    def request(w: str) -> None:
        try:
            status[w] = zb.request(store, w, fmt)
        except Exception as exc:  # noqa: BLE001 -- re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(w,)) for w in which]
    c0, t0 = cpu_seconds(store), time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs, cpu = time.perf_counter() - t0, cpu_seconds(store) - c0
    if errors:
        raise errors[0]
    return secs, cpu, status


def bench_zips(workdir: Path, nobjects: int, nlc: int, zip_repeat: int, csv_repeat: int, smoke: bool = False,
               example: Path | None = None) -> None:
    from lcpanel.core.products import ProductStore, build_product

    demo = find_demo(workdir, nobjects, smoke, example)
    zb = ZipBench(workdir, demo, nlc)
    print(f"\n## 2. light-curve zips: {nlc:,} light curves per product ({demo}, {zb.per_copy} objects, "
          f"ingested {zb.copies}x in {zb.ingest_s:.1f} s; {machine_load()})")
    scratch = workdir / "zips"
    scratch.mkdir(exist_ok=True)
    kernel_store = ProductStore(zb.path, max_workers=1)  # only its paths are used (no pool)
    index_path = str(kernel_store.index_path)
    header = (f"   {'format':<8} {'configuration':<40} {'runs':>4} {'LCs':>5} {'in MB':>6} {'memb MB':>7} "
              f"{'out MB':>6} {'wall s':>7} {'CPU s':>6} {'cores':>5} {'LCs/s':>6} {'in MB/s':>7} "
              f"{'out MB/s':>8} {'vs zipfile':>10}")
    rows_out: list[str] = []
    notes: list[str] = []
    base_s = None

    def line(fmt, label, runs, nlcs, in_b, mem_b, out_b, secs, cpu):
        # per light curve, so "2 at once" rows compare like with like
        ratio = f"{(base_s / nlc) / (secs / nlcs):9.2f}x"
        rows_out.append(f"   {fmt:<8} {label:<40} {runs:>4} {nlcs:>5} {mb(in_b):>6.2f} {mb(mem_b):>7.2f} "
                        f"{mb(out_b):>6.2f} {secs:>7.3f} {cpu:>6.2f} {cpu / secs:>5.2f} {nlcs / secs:>6.0f} "
                        f"{mb(in_b) / secs:>7.2f} {mb(out_b) / secs:>8.2f} {ratio}")

    # baselines: plain zipfile over the same original files, one process
    entries_a, _ = zb.plan(kernel_store, "A", "original")
    in_a = zb.input_bytes(entries_a)
    base = {}
    for label, method, level in (("DEFLATED", zipfile.ZIP_DEFLATED, 6), ("STORED", zipfile.ZIP_STORED, None)):
        target = scratch / f"baseline-{label}.zip"

        def run(target=target, method=method, level=level):
            with zipfile.ZipFile(target, "w", compression=method, compresslevel=level) as zf:
                for e in entries_a:
                    zf.write(e.source, e.arcname)

        base[label] = (*measure(run, zip_repeat), target.stat().st_size)
    base_s = base["DEFLATED"][0]
    for label in ("DEFLATED", "STORED"):
        secs, cpu, size = base[label]
        line("original", f"baseline: zipfile ZIP_{label}, 1 process", zip_repeat, nlc, in_a, in_a, size, secs, cpu)

    for fmt in ("original", "csv"):
        runs = zip_repeat if fmt == "original" else csv_repeat
        if fmt == "csv":
            rows_out.append("")
        entries, _ = zb.plan(kernel_store, "A", fmt)
        in_a = zb.input_bytes(entries)
        in_b = zb.input_bytes(zb.plan(kernel_store, "B", fmt)[0])
        plan_s, _ = measure(partial(zb.plan, kernel_store, "A", fmt), runs)
        notes.append(f"{fmt}: planning the product (ProductBuilder.plan + content key over {nlc} files), "
                     f"part of every ProductStore.request: {plan_s * 1e3:.1f} ms")
        dicts = [asdict(e) for e in entries]
        target = scratch / f"kernel-{fmt}.zip"
        # warm this process's light-curve format cache (as a worker's first build does)
        build_product(index_path, "bench-warm", dicts[:5], str(scratch / "warm.zip"))
        kernel_s, kernel_cpu = measure(partial(build_product, index_path, "bench-kernel", dicts, str(target)), runs)
        if not target.exists():
            raise RuntimeError(f"build_product wrote no {target} (see the log)")
        members = None
        for workers in (1, 2):
            store = ProductStore(zb.path, max_workers=workers)
            try:
                cold = zb.warm(store, workers)
                notes.append(f"new pool, max_workers={workers} (before the {fmt} rows): its first request "
                             f"(10 csv LCs: spawn, imports, format set-up) took {cold:.2f} s")
                timings = [time_products(zb, store, fmt, ("A",)) for _ in range(runs)]
                one_s, one_cpu, status = p50([t[0] for t in timings]), p50([t[1] for t in timings]), timings[-1][2]
                if members is None:
                    members = zb.members_bytes(store, status["A"]["key"])
                    line(fmt, "build_product in this process (no pool)", runs, nlc, in_a, members,
                         target.stat().st_size, kernel_s, kernel_cpu)
                line(fmt, f"ProductStore max_workers={workers}: 1 product", runs, nlc, in_a, members,
                     status["A"]["size"], one_s, one_cpu)
                timings = [time_products(zb, store, fmt, ("A", "B")) for _ in range(runs)]
                two_s, two_cpu, status = p50([t[0] for t in timings]), p50([t[1] for t in timings]), timings[-1][2]
                line(fmt, f"ProductStore max_workers={workers}: 2 at once", runs, 2 * nlc, in_a + in_b,
                     members + zb.members_bytes(store, status["B"]["key"]),
                     status["A"]["size"] + status["B"]["size"], two_s, two_cpu)
            finally:
                store.shutdown()

    print("   vs zipfile = LCs/s of this row / LCs/s of the zipfile ZIP_DEFLATED baseline (> 1: faster);")
    print("   '2 at once': wall time until both products are done, throughput summed over both;")
    print("   CPU s: this process + the pool's workers; cores = CPU s / wall s (2 workers building at once on")
    print("   an otherwise idle machine: ~2; much less means the cores were busy with something else)")
    print(header)
    for r in rows_out:
        print(r)
    for n in notes:
        print(f"   note: {n}")


# --- 3. conversion throughput per format ------------------------------------------------------

def _zlib_level6_add(zf, arcname: str, data: bytes) -> None:
    """How main added a member before this work: zipfile's zlib deflate at level 6."""
    import zipfile

    from lcpanel.core import products

    info = products._info(arcname)
    info.compress_level = None if info.compress_type == zipfile.ZIP_STORED else 6
    zf.writestr(info, data)


def _build_in_child(index_path: str, dicts: list, target: str, slow: bool) -> dict:
    """build_product in a fresh process; its CPU s, wall s and peak RSS."""

    from lcpanel.core.objects import lcexport
    from lcpanel.core.products import build_product

    if slow:  # main before this work: the astropy writers, zip members deflated at level 6
        from lcpanel.core import products

        lcexport._WRITERS.update(lcexport.SLOW_WRITERS)
        products._add = _zlib_level6_add
    # warm the imports and the format cache on a few members (not timed)
    build_product(index_path, "bench-warm", dicts[:3], target + ".warm.zip")
    settle()
    c0, t0 = time.process_time(), time.perf_counter()
    build_product(index_path, "bench-formats", dicts, target)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not os.path.exists(target):
        raise RuntimeError(f"build_product wrote no {target} (see the log)")
    return {"wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb(),
            "size": os.path.getsize(target)}


#: distinct objects written at most for the per-format section (then cycled)
DISTINCT_MAX = 2000


def distinct_files(demo: Path, files: list[str], n: int, out: Path) -> list[str]:
    """``n`` light-curve files of ``n`` distinct objects: the collection's own and, past
    them, copies written by the collection's format module (``write_lightcurve``) under
    new object ids, with every float of the object's catalog values moved a little. In a
    real bulk export each object's header values are new, so no writer's cache may hold
    them; cycling through the same few hundred files would let it. Past
    :data:`DISTINCT_MAX` objects the copies are cycled: an LRU cache read in a cycle longer
    than it holds (the largest, FITS cards, holds ~500 objects' cards) never hits."""
    import importlib.util

    if n <= len(files):
        return files[:n]
    if n > DISTINCT_MAX:
        distinct = distinct_files(demo, files, max(DISTINCT_MAX, len(files)), out)
        return [distinct[i % len(distinct)] for i in range(n)]
    module_file = next(iter(sorted((demo / "lcformat").glob("*.py"))), None)
    module = None
    if module_file is not None:
        spec = importlib.util.spec_from_file_location("bench_products_lcformat", module_file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    if module is None or not hasattr(module, "write_lightcurve"):
        print(f"# {demo} has no format module that writes light curves: its files are repeated")
        return [files[i % len(files)] for i in range(n)]
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(5)
    paths = list(files)
    for i in range(len(files), n):
        source = files[i % len(files)]
        target = out / f"v{i:06d}-{Path(source).name}"
        if not target.exists():
            lcdict = module.read_lightcurve(source, mask_flagged=False)
            objectid = f"{lcdict['objectid']}-v{i}"
            info = {k: v + rng.gauss(0, 0.01) if type(v) is float else v for k, v in lcdict["objectinfo"].items()}
            info["objectid"] = objectid
            module.write_lightcurve(target, info, {name: lcdict[name] for name, *_ in module.COLUMNS})
        paths.append(str(target))
    return paths


def _read_in_child(spec: dict, base: str, paths: list[str]) -> dict:
    """The collection's reader alone on ``paths`` in a fresh process (what every converted
    format pays before lcpanel writes a byte); its CPU s and wall s."""
    from lcpanel.core.objects.lcrequest import read_lightcurve
    from lcpanel.plugins.lcformats import AstrobaseFormat

    reader = AstrobaseFormat.from_spec(spec, Path(base))
    for path in paths[:3]:  # warm the imports and the format (not timed)
        read_lightcurve(reader, spec, path)
    settle()
    c0, t0 = time.process_time(), time.perf_counter()
    for path in paths:
        read_lightcurve(reader, spec, path)
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def _cache_in_child(spec: dict, base: str, root: str, paths: list[str]) -> dict:
    """Fill a light-curve cache at ``root`` with ``paths`` (what ``lcpanel cache-lightcurves``
    does), then read them all back from it, each timed, in a fresh process."""
    from lcpanel.core.objects.lccache import LCCache, _fill, reader_token
    from lcpanel.plugins.lcformats import AstrobaseFormat

    settle()
    c0, t0 = time.process_time(), time.perf_counter()
    counts = _fill("lcpanel.plugins.lcformats:AstrobaseFormat", spec, base, root, paths)
    fill = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0, **counts}
    cache, token = LCCache(root), reader_token(AstrobaseFormat.from_spec(spec, Path(base)), spec)
    settle()
    c0, t0 = time.process_time(), time.perf_counter()
    for path in paths:
        cache.load(path, token)
    return {"fill": fill, "read": {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}}


def _floor_in_child(spec: dict, base: str, root: str, paths: list[str], fmt: str) -> dict:
    """Everything a ``cached`` build of ``fmt`` does per member but the conversion, in a
    fresh process: load the light curve from the cache, then compress (the zip's deflate,
    or for csv.gz the writer's gzip of the CSV text), CRC and SHA-256 the bytes ``fmt``
    makes of it (made beforehand, not timed)."""
    import hashlib

    from isal.isal_zlib import crc32

    from lcpanel.core import products
    from lcpanel.core.objects.lccache import LCCache, reader_token
    from lcpanel.core.objects.lcexport import EXPORT_FORMATS, export_lightcurve
    from lcpanel.core.objects.lcfast import gzipped
    from lcpanel.plugins.lcformats import AstrobaseFormat

    cache, token = LCCache(root), reader_token(AstrobaseFormat.from_spec(spec, Path(base)), spec)
    members = [export_lightcurve(cache.load(path, token), fmt) for path in paths]
    if fmt == "csv.gz":  # its compression is the writer's gzip of the CSV text, then stored
        texts = [export_lightcurve(cache.load(path, token), "csv") for path in paths]
        squeeze = gzipped
    else:
        texts = members
        stored = products._info(f"x{EXPORT_FORMATS[fmt].suffix}").compress_type == zipfile.ZIP_STORED
        squeeze = None if stored else products.deflated
    settle()
    c0, t0 = time.process_time(), time.perf_counter()
    for path, text, data in zip(paths, texts, members):
        cache.load(path, token)
        if squeeze is not None:
            squeeze(text)
        crc32(data)
        hashlib.sha256(data).hexdigest()
    return {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def bench_formats(workdir: Path, nobjects: int, nlc: int, smoke: bool, formats: list[str],
                  before: bool = True, example: Path | None = None) -> None:
    """LC/s of a light-curve zip per format, each built by ``build_product`` (read, convert,
    zip, SHA256 manifest, progress) in its own fresh worker process, against three floors
    measured in the same run: a raw read of the original files, the collection's reader
    alone on them (which every converted format runs first) and the ``original``
    product (copying them into the zip). ``before`` rows use the astropy writers
    (lcexport.SLOW_WRITERS: the path of main before the fast writers)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.objects.lcexport import EXPORT_FORMATS
    from lcpanel.core.products import ProductStore

    demo = find_demo(workdir, nobjects, smoke, example)
    import json as _json

    spec = _json.loads((demo / "collection.json").read_text())["lcformat"]
    files = sorted(str(p) for p in (demo / "lightcurves").iterdir())
    path = workdir / "basedir-formats"
    if not (path / "basedir.json").exists() and not path.exists():
        Basedir.init(path)
    store = ProductStore(path, max_workers=1)
    index_path = str(store.index_path)
    scratch = workdir / "formats"
    scratch.mkdir(exist_ok=True)
    # nlc distinct objects (the demo's and copies of them), under as many collection ids
    # as there are passes over the demo's files
    distinct = distinct_files(demo, files, nlc, workdir / "distinct-lightcurves")
    picks = [(f"demo{i // len(files):04d}", distinct[i]) for i in range(nlc)]
    npoints = None
    try:
        from lcpanel.plugins.lcformats import AstrobaseFormat
        from lcpanel.core.objects.lcrequest import read_lightcurve

        npoints = statistics.mean(len(read_lightcurve(AstrobaseFormat.from_spec(spec, demo), spec, f))
                                  for f in files[:20])
    except Exception:  # noqa: BLE001 -- only for the header line
        pass
    in_bytes = sum(os.path.getsize(f) for _, f in picks)
    t0, c0 = time.perf_counter(), time.process_time()
    for _, f in picks:
        with open(f, "rb") as fh:
            fh.read()
    raw_s, raw_cpu = time.perf_counter() - t0, time.process_time() - c0
    ndistinct = len(set(distinct))
    print(f"\n## 3. light-curve zip per format: {nlc:,} light curves of {ndistinct:,} objects "
          f"({demo}: {len(files)} files and {max(0, ndistinct - len(files)):,} copies under new ids and catalog values, "
          f"~{npoints or 0:.0f} points each, {mb(in_bytes):.1f} MB); each build in a fresh worker process, "
          f"one core; {machine_load()}")
    print(f"   {'format':<9} {'path':<7} {'wall s':>8} {'CPU s':>8} {'LC/s':>7} {'LC/CPU-s':>9} "
          f"{'zip MB':>8} {'peak RSS MB':>11} {'CPU vs original':>15}")
    print(f"   {'raw read':<9} {'floor':<7} {raw_s:>8.3f} {raw_cpu:>8.3f} {nlc / raw_s:>7.0f} "
          f"{nlc / max(raw_cpu, 1e-9):>9.0f} {'':>8} {'':>11} {'':>15}")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        r = pool.submit(_read_in_child, spec, str(demo), [f for _, f in picks]).result()
    print(f"   {'reader':<9} {'floor':<7} {r['wall']:>8.3f} {r['cpu']:>8.3f} {nlc / r['wall']:>7.0f} "
          f"{nlc / max(r['cpu'], 1e-9):>9.0f} {'':>8} {'':>11} {'':>15}")
    cache_root = scratch / "lccache"
    shutil.rmtree(cache_root, ignore_errors=True)
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        r = pool.submit(_cache_in_child, spec, str(demo), str(cache_root), [f for _, f in picks]).result()
    cache_mb = mb(sum(f.stat().st_size for f in cache_root.glob("*/*.lcb")))
    for label, row in (("fill", r["fill"]), ("read", r["read"])):
        print(f"   {'cache':<9} {label:<7} {row['wall']:>8.3f} {row['cpu']:>8.3f} {nlc / row['wall']:>7.0f} "
              f"{nlc / max(row['cpu'], 1e-9):>9.0f} {f'{cache_mb:.1f}' if label == 'fill' else '':>8} {'':>11} {'':>15}")
    runs = []
    for fmt in formats:
        if fmt == "original":
            runs.append((fmt, "copy", False))
        elif fmt == "parquet":
            runs += [(fmt, "fast", False), (fmt, "cached", False)]
        else:
            runs += [(fmt, "before", True)] * before + [(fmt, "fast", False), (fmt, "cached", False)]
    base_cpu = None
    for fmt, label, slow in runs:
        # as the builder plans it: every collection names its cache directory, built or not
        cached = {"cache": str(cache_root if label == "cached" else scratch / "no-lccache")}
        if fmt == "original":
            dicts = [{"arcname": f"lightcurves/{cid}/{Path(f).name}", "kind": "file", "source": f}
                     for cid, f in picks]
        elif fmt == "parquet":
            dicts = [{"arcname": "lightcurves.parquet", "kind": "stream",  # as the builder plans it
                      "func": "lcpanel.core.objects.lcparquet:dataset_parquet",
                      "args": {"objects": [[cid, f"{Path(f).name.split('-lc')[0]}", f] for cid, f in picks],
                               "collections": {cid: {"lcformat": spec, "base": str(demo),
                                                     "reader": "lcpanel.plugins.lcformats:AstrobaseFormat",
                                                     **cached}
                                               for cid in dict.fromkeys(c for c, _ in picks)}}}]
        else:
            suffix = EXPORT_FORMATS[fmt].suffix
            reader = "lcpanel.plugins.lcformats:AstrobaseFormat"  # what the lightcurves builder plans
            dicts = [{"arcname": f"lightcurves/{cid}/{Path(f).name.split('-lc')[0]}{suffix}", "kind": "call",
                      "func": "lcpanel.plugins.products:converted_lightcurve",
                      "args": {"lcformat": reader, "spec": spec, "base": str(demo), "path": f, "fmt": fmt,
                               **cached},
                      "inputs": [f]} for cid, f in picks]
        target = scratch / f"{fmt}-{label}.zip"
        target.unlink(missing_ok=True)
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            r = pool.submit(_build_in_child, index_path, dicts, str(target), slow).result()
        if fmt == "original":
            base_cpu = r["cpu"]
        ratio = f"{r['cpu'] / base_cpu:14.1f}x" if base_cpu else f"{'':>15}"
        print(f"   {fmt:<9} {label:<7} {r['wall']:>8.3f} {r['cpu']:>8.3f} {nlc / r['wall']:>7.0f} "
              f"{nlc / max(r['cpu'], 1e-9):>9.0f} {mb(r['size']):>8.1f} {r['rss_mb']:>11.0f} {ratio}")
        target.unlink(missing_ok=True)
        if label == "cached" and fmt != "parquet":
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                f = pool.submit(_floor_in_child, spec, str(demo), str(cache_root), [p for _, p in picks], fmt).result()
            ratio = f"{f['cpu'] / base_cpu:14.1f}x" if base_cpu else f"{'':>15}"
            print(f"   {fmt:<9} {'floor':<7} {f['wall']:>8.3f} {f['cpu']:>8.3f} {nlc / f['wall']:>7.0f} "
                  f"{nlc / max(f['cpu'], 1e-9):>9.0f} {'':>8} {'':>11} {ratio}")
    print("   LC/s = light curves / wall s; LC/CPU-s = per core of CPU actually given to the worker (the figure")
    print("   to read on a loaded machine); 'before' = main before this work (astropy writers, deflate level 6);")
    print("   reader = the collection's own reader alone on the same files (no conversion, no zip): the floor of")
    print("   every converted format; cache fill = `lcpanel cache-lightcurves` on these files (one process),")
    print("   cache read = loading them back from it; 'cached' rows convert from the cache (zip MB of 'fill': the")
    print("   cache's size on disk)")
    print("   floor = what a 'cached' build does per member but converting: the cache read, then compressing")
    print("   (the zip's deflate, libdeflate; for csv.gz, its gzip of the CSV text), CRC-32 and SHA-256 of the")
    print("   same member bytes: no faster writer can bring a converted format's CPU below its floor")
    print("   CPU vs original = CPU s / CPU s of the original copy; peak RSS of the building worker process;")
    print("   each child times its work once its process is idle (common.settle: OpenBLAS spins ~0.1 s after")
    print("   numpy loads, and a process's CPU time counts every thread)")
    store.shutdown()


def bench_real(repeat: int) -> None:
    """The real HATNet light curve of tests/realdata (hat-csv, 10,564 points, 34 columns,
    6 of them text): ms to read it with astrobase's ``hatlc.read_csvlc`` (baseline) and
    with lcpanel's reader (:mod:`lcpanel.core.objects.hatcsv`, the one the collection
    uses), then with that reader against lcpanel's light-curve cache, and ms to write it in each text and table format with the astropy writers
    (baseline, ``lcexport.SLOW_WRITERS``) and with the fast ones; best of ``repeat``."""
    from lcpanel.core.objects.lccache import LCCache, reader_token
    from lcpanel.core.objects.lcexport import EXPORT_FORMATS, SLOW_WRITERS, export_lightcurve
    from lcpanel.core.objects.lcrequest import read_lightcurve
    from lcpanel.plugins.lcformats import AstrobaseFormat

    hat = ROOT / "tests" / "realdata" / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"
    if not hat.exists():
        print(f"\n## 4. real light curve: {hat} is missing; skipped")
        return
    from astrobase.hatsurveys import hatlc

    def best(fn) -> float:
        if repeat > 1:  # a warm-up run (smoke mode runs each step once)
            fn()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) * 1e3

    spec = {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}
    fmt = AstrobaseFormat.from_spec(spec, Path("."))
    lc = read_lightcurve(fmt, spec, hat)
    print(f"\n## 4. the real HATNet light curve ({hat.name}: {len(lc):,} points, {len(lc.columns)} columns); "
          f"best of {repeat}; {machine_load()}")
    print(f"   {'step':<34} {'baseline ms':>12} {'lcpanel ms':>11} {'ratio':>7}")
    base = best(lambda: hatlc.read_csvlc(str(hat)))
    ours = best(lambda: read_lightcurve(fmt, spec, hat))
    print(f"   {'read (astrobase read_csvlc)':<34} {base:>12.1f} {ours:>11.1f} {base / ours:>6.1f}x")
    with tempfile.TemporaryDirectory() as tmp:
        cache, token = LCCache(tmp), reader_token(fmt, spec)
        st = hat.stat()
        if cache.store(hat, token, lc, (st.st_size, st.st_mtime_ns)):
            cached = best(lambda: cache.load(hat, token))
            print(f"   {'read (lcpanel reader; its cache)':<34} {ours:>12.1f} {cached:>11.1f} {ours / cached:>6.1f}x")
    for name in ("csv", "ecsv", "votable", "fits"):
        if name not in EXPORT_FORMATS:
            continue
        base = best(lambda: SLOW_WRITERS[name](lc))
        ours = best(lambda: export_lightcurve(lc, name))
        print(f"   {'write ' + name + ' (astropy writers)':<34} {base:>12.1f} {ours:>11.1f} {base / ours:>6.1f}x")
    bench_real_cdips(best)
    print("   ratio = baseline ms / lcpanel ms (> 1: lcpanel faster)")


def bench_real_cdips(best) -> None:
    """The TESS CDIPS light curve of tests/realdata (the fits-table format): ms to read it
    with astropy (``Table.read``, and the open, ``data`` and columns of ``astropy.io.fits``
    the fits-table reader used before it read plain tables itself) and with lcpanel's
    reader, the collection's own description applied; best of the section's repeats."""
    import importlib.util

    from astropy.table import Table

    from lcpanel.core.objects.fitsread import _astropy_columns
    from lcpanel.core.objects.lcrequest import read_lightcurve
    from lcpanel.plugins.lcformats import FitsTableFormat

    paths = sorted((ROOT / "tests" / "realdata").glob("hlsp_cdips_*_llc.fits"))
    if not paths:
        print("   (no CDIPS light curve in tests/realdata: skipped)")
        return
    example = importlib.util.spec_from_file_location("cdips_example", ROOT / "examples" / "cdips_collection.py")
    module = importlib.util.module_from_spec(example)
    example.loader.exec_module(module)
    spec = module.CDIPS_JSON["lcformat"]
    fmt = FitsTableFormat.from_spec(spec, ROOT)
    lc = read_lightcurve(fmt, spec, paths[0])

    def with_astropy_io():
        from astropy.io import fits

        with fits.open(paths[0], memmap=False) as hdul:
            return _astropy_columns(hdul[1])

    print(f"   the TESS CDIPS light curve ({paths[0].name}: {len(lc):,} points, {len(lc.columns)} columns)")
    ours = best(lambda: read_lightcurve(fmt, spec, paths[0]))
    for label, fn in (("read (astropy Table.read)", lambda: Table.read(paths[0], hdu=1)),
                      ("read (astropy.io.fits columns)", with_astropy_io)):
        base = best(fn)
        print(f"   {label:<34} {base:>12.1f} {ours:>11.1f} {base / ours:>6.1f}x")


def machine_load() -> str:
    """Load average, and the Linux CPU pressure (share of time some runnable task waited)."""
    out = f"load average {os.getloadavg()[0]:.2f}"
    try:
        with open("/proc/pressure/cpu") as fh:
            some = dict(kv.split("=") for kv in fh.readline().split()[1:])
        out += f", CPU pressure {float(some['avg60']):.0f}% (1 min)"
    except (OSError, KeyError, ValueError):
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog-size", default="1e5", help="objects in the plain catalog (>= 1e5)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per dataset size (3 for 1e5 rows)")
    parser.add_argument("--zip-repeat", type=int, default=3, help="runs per original-format zip measurement")
    parser.add_argument("--csv-repeat", type=int, default=3, help="runs per csv-format zip measurement")
    parser.add_argument("--nlc", type=int, default=1000, help="light curves per product")
    parser.add_argument("--nobjects", type=int, default=60,
                        help="size of the example collection if none is present")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the work files here")
    parser.add_argument("--skip", choices=("datasets", "zips", "formats", "real"), action="append", default=[])
    parser.add_argument("--real-repeat", type=int, default=5, help="runs per step on the real light curve")
    parser.add_argument("--formats-nlc", type=int, default=1000,
                        help="light curves (of as many objects) per product in the per-format section (100000: "
                             "the no-size-wall run; past the demo's files, up to 2,000 objects' copies of ~40 kB each "
                             "are written into the work directory first)")
    parser.add_argument("--no-before", action="store_true",
                        help="only the current writers (the 'before' rows take ~5x as long; for the 100000 run)")
    parser.add_argument("--formats", default="original,csv,csv.gz,fits,ecsv,votable,parquet",
                        help="formats of the per-format section, comma-separated")
    add_smoke_option(parser, catalog_size="2e3", repeat=2, zip_repeat=1, csv_repeat=1, nlc=12, nobjects=4,
                     formats_nlc=12, formats="original,csv.gz,parquet", real_repeat=1)
    args = parse_args(parser)
    logging.getLogger("astrobase").setLevel(logging.WARNING)
    from astropy import log as astropy_log

    astropy_log.setLevel("ERROR")  # parquet string-length notes during ingest
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lcpanel-bench-products-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"# products benchmark (work dir {workdir}; {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"{machine_load()})")
    try:
        if "datasets" not in args.skip:
            bench_datasets(workdir, int(float(args.catalog_size)), args.repeat)
        if "zips" not in args.skip:
            bench_zips(workdir, args.nobjects, args.nlc, args.zip_repeat, args.csv_repeat, args.smoke, args.example)
        if "formats" not in args.skip:
            bench_formats(workdir, args.nobjects, args.formats_nlc, args.smoke, args.formats.split(","),
                          before=not args.no_before, example=args.example)
        if "real" not in args.skip:
            bench_real(args.real_repeat)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n# total {time.perf_counter() - started:.1f} s ({machine_load()} at the end, this benchmark included)")


if __name__ == "__main__":
    main()
