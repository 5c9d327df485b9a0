"""Benchmark: cone search and cross-match through LSDB (synchronous scheduler and a
LocalCluster) against lcpanel's SQLite backend, on the all-sky 1e6 / 1e7 catalogs.

It reuses the SQLite basedirs that ``benchmarks/bench_search.py`` caches in
``benchmarks/out/search-<n>`` (building them if missing), exports each to
``benchmarks/out/hats-<n>`` once (``hats-export``), and registers the export in a
basedir of its own, ``benchmarks/out/hats-basedir-<n>`` (the cached search basedirs are
left as they are). Every figure is ``run_search`` end to end (search, filter, row fetch),
the path the JSON API and the web forms take; p50 over the repeats, ratio = LSDB / SQLite.

    .venv/bin/python plugins_contrib/lcpanel-hats/benchmarks/bench_hats.py [--sizes 1e6 1e7] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import add_smoke_option, out_dir, parse_args  # noqa: E402

OUT = out_dir(False)


def sqlite_basedir(n: int) -> Path:
    from bench_search import basedir_for

    return basedir_for(n, OUT)


def hats_basedir(n: int, source: Path) -> Path:
    from lcpanel.plugin_api import App, Basedir
    from lcpanel_hats.export import export_collection
    from lcpanel_hats.register import add_hats_collection

    hats = OUT / f"hats-{n:.0e}"
    if not (hats / "collection.properties").exists():
        t0 = time.perf_counter()
        export_collection(source, "allsky", hats, workers=2)
        print(f"# exported {n:.0e} objects to HATS in {time.perf_counter() - t0:.1f} s", flush=True)
    base_path = OUT / f"hats-basedir-{n:.0e}"
    if not (base_path / "collections" / "allsky_hats").is_dir():
        base = Basedir(base_path) if (base_path / "lcc-collections.sqlite").exists() else Basedir.init(base_path)
        add_hats_collection(App(base_path), base, hats, collection_id="allsky_hats")
    return base_path


def app_for(basedir: Path, scheduler: str | None, workers: int):
    from lcpanel.plugin_api import App, Config

    data = {"search": {"xmatch_max_lines": 200_000, "max_upload_bytes": 20_000_000, "max_limit": 500_000}}
    if scheduler:
        data["plugin"] = {"hats": {"scheduler": scheduler, "workers": workers}}
    return App(basedir, config=Config.from_dict(data))


def p50(fn, repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def targets(basedir: Path, n: int, seed: int) -> str:
    """n positions near catalog objects (0.5" jitter per axis): nearly all match at r = 2"."""
    import sqlite3

    rng = np.random.default_rng(seed)
    db = basedir / "collections" / "allsky" / "catalog-objectinfo.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM object_catalog").fetchone()[0]
        ids = sorted(rng.choice(total, min(n, total), replace=False).tolist())  # smoke catalogs are small
        rows = []
        for i in range(0, len(ids), 20_000):
            chunk = ids[i:i + 20_000]
            rows += conn.execute(f"SELECT ra, decl FROM object_catalog WHERE row_id IN ({','.join(map(str, chunk))})"
                                 ).fetchall()
    pos = np.array(rows)
    jitter = rng.normal(0, 0.5 / 3600, pos.shape)  # 0.03% fall beyond 2"
    return "\n".join(f"t{i} {(r + dr) % 360:.7f} {np.clip(d + dd, -90, 90):.7f}"
                     for i, ((r, d), (dr, dd)) in enumerate(zip(pos, jitter)))


def bench(n: int, workers: int, cone_repeat: int, xmatch_repeat: int, xmatch_sizes: list[int]) -> None:
    from lcpanel.plugin_api import run_search

    source = sqlite_basedir(n)
    hats = hats_basedir(n, source)
    engines = {
        "sqlite": (app_for(source, None, workers), "allsky"),
        "lsdb-sync": (app_for(hats, "synchronous", workers), "allsky_hats"),
        f"lsdb-local{workers}": (app_for(hats, "local", workers), "allsky_hats"),
    }
    rng = np.random.default_rng(5)
    centres = [(rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))) for _ in range(max(cone_repeat, 1))]
    lists = {size: targets(source, size, seed=size) for size in xmatch_sizes}
    cases = [("cone r=1'", "cone", 1.0), ("cone r=10'", "cone", 10.0), ("cone r=1 deg", "cone", 60.0)]
    cases += [(f"xmatch {size:,} r=2\"", "xmatch", size) for size in xmatch_sizes]
    print(f"\n## {n:.0e} objects, all sky (p50 ms, run_search end to end; ratio = engine / sqlite)", flush=True)
    print(f"  {'case':<18}" + "".join(f"{name:>22}" for name in engines), flush=True)
    for label, kind, arg in cases:
        figures = {}
        for name, (app, cid) in engines.items():
            if kind == "cone":
                def run(i, app=app, cid=cid, r=arg):
                    ra, dec = centres[i % len(centres)]
                    run_search(app, {"type": "cone", "params": {"ra": ra, "dec": dec, "radius_arcmin": r},
                                     "collections": [cid], "limit": 500_000})
                repeat = cone_repeat
            else:
                def run(i, app=app, cid=cid, text=lists[arg]):
                    result = run_search(app, {"type": "xmatch", "params": {"targets": text, "radius_arcsec": 2.0},
                                              "collections": [cid], "limit": 500_000})
                    assert result.nmatched >= 0.99 * text.count("\n") + 1, result.nmatched
                repeat = xmatch_repeat
            run(0)  # warm up: open catalogs, start the LocalCluster, JIT
            figures[name] = p50(run, repeat)
        base = figures["sqlite"]
        cells = "".join(f"{ms:>12.1f}" + (f" ({ms / base:>6.0f}x)" if name != "sqlite" else " " * 10)
                        for name, ms in figures.items())
        print(f"  {label:<18}{cells}", flush=True)
    for app, _ in engines.values():
        app.start()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cone-repeat", type=int, default=15)
    parser.add_argument("--xmatch-repeat", type=int, default=3)
    parser.add_argument("--xmatch-sizes", nargs="+", type=int, default=[1_000, 100_000], help="target list lengths")
    add_smoke_option(parser, sizes=[2e4], cone_repeat=2, xmatch_repeat=1, xmatch_sizes=[100])
    args = parse_args(parser)
    global OUT
    OUT = out_dir(args.smoke)
    for n in args.sizes:
        bench(int(n), args.workers, args.cone_repeat, args.xmatch_repeat, args.xmatch_sizes)


if __name__ == "__main__":
    main()
