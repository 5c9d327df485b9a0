"""Ids as people type them: lookups through the normalised id index (lcpanel.core.catalogs.idindex)
against the ways there were before it, measured in the same run on the same catalog.

A catalog of N objects with HATNet-style ids (``HAT-772-0554686``), 2MASS aliases (some
with a trailing space, as survey objectinfo has them) and TIC ids is written straight
into SQLite (table ``object_catalog``, its FTS5 table as ingest makes it, and the id
index), then queried as people type: an exact id in another case with spaces around it,
an id prefix (``hat-772``), a designation (``TIC 25155310``, ``2MASS J1437...``), and a
string that matches nothing (the nearest ids). Baselines:

- ``scan``: what a case-insensitive, trimmed match costs without an index made for it
  (``lower(trim(col)) LIKE 'p%'`` over objectid and the aliases);
- ``fts-prefix``: the catalog's FTS5 table with its prefix index (``"hat-772"*``), which
  finds id prefixes but not ``TIC 25155310`` or a trimmed 2MASS alias.

Also the id index's rebuild, with every text id checked for being plain (printable ASCII
without spaces, normalised by SQLite alone) and with the objectid column known to be, as
an ingest finds it while staging the rows.

    .venv/bin/python benchmarks/bench_idsearch.py [--sizes 1e6] [--repeat 200]
    .venv/bin/python benchmarks/bench_idsearch.py --smoke      # 1e4 objects, a few repeats
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from common import add_smoke_option, out_dir, parse_args
TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '-+_'"


def build(path: Path, n: int, seed: int = 1) -> dict:
    """The catalog and what to search for in it."""
    from lcpanel.core.catalogs.idindex import build_id_index

    rng = np.random.default_rng(seed)
    field = rng.integers(100, 1000, n)
    num = rng.permutation(n) + 1_000_000
    oid = np.char.add(np.char.add(np.char.add("HAT-", field.astype(str)), "-"), np.char.zfill(num.astype(str), 7))
    ra_h, dec_d = rng.integers(0, 24 * 3600 * 100, n), rng.integers(-90 * 36000, 90 * 36000, n)
    tmass = [f"{h // 360000:02d}{h // 6000 % 60:02d}{h // 100 % 60:02d}{h % 100:02d}"
             f"{'-' if d < 0 else '+'}{abs(d) // 36000:02d}{abs(d) // 600 % 60:02d}{abs(d) // 10 % 60:02d}{abs(d) % 10}"
             + (" " if i % 3 == 0 else "") for i, (h, d) in enumerate(zip(ra_h.tolist(), dec_d.tolist()))]
    tic = rng.integers(10**7, 10**9, n)
    if path.exists():
        path.unlink()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, twomassid TEXT, "
                     "ticid INTEGER)")
        conn.executemany("INSERT INTO object_catalog VALUES (?,?,?,?)",
                         zip(range(n), oid.tolist(), tmass, tic.tolist()))
        conn.execute("CREATE UNIQUE INDEX object_catalog_objectid ON object_catalog(objectid)")
        conn.execute(f"CREATE VIRTUAL TABLE object_fts USING fts5(objectid, twomassid, content='object_catalog', "
                     f"content_rowid='row_id', tokenize=\"{TOKENIZER}\", prefix='3')")
        conn.execute("INSERT INTO object_fts(object_fts) VALUES ('rebuild')")
        t0 = time.perf_counter()
        build_id_index(conn, ["objectid", "twomassid", "ticid"])
        conn.commit()
        index_s = time.perf_counter() - t0
    pick = rng.integers(0, n, 64)
    return {"index_s": index_s, "queries": {
        "exact id, other case, spaces": [f"  {oid[i].lower()} " for i in pick],
        "id prefix (hat-NNN)": [oid[i][:7].lower() for i in pick],
        "TIC designation": [f"TIC {tic[i]}" for i in pick],
        "2MASS J prefix": [f"2MASS J{tmass[i][:8]}" for i in pick],
        "no match (nearest ids)": [f"HAT-{field[i]}-9{num[i] % 1000:03d}x" for i in pick],
    }}


def rebuild_seconds(path: Path, repeat: int) -> tuple[float, float]:
    """Median seconds of rebuilding the id index (objectid, twomassid, ticid) with every
    text id checked for being plain, and with the objectid column known to be (as an
    ingest finds it while staging the rows; a third of the 2MASS ids here end in a space,
    so that column is checked either way), alternately."""
    from lcpanel.core.catalogs.idindex import build_id_index

    columns = ["objectid", "twomassid", "ticid"]
    times: dict[bool, list[float]] = {False: [], True: []}
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        for k in range(repeat):
            for known in ((False, True) if k % 2 else (True, False)):
                t0 = time.perf_counter()
                build_id_index(conn, columns, plain={"objectid"} if known else ())
                conn.commit()
                times[known].append(time.perf_counter() - t0)
    return statistics.median(times[False]), statistics.median(times[True])


def p50_ms(fn, queries, repeat: int) -> float:
    times = []
    for k in range(repeat):
        q = queries[k % len(queries)]
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def run(path: Path, queries: dict, repeat: int, baseline_repeat: int) -> None:
    from lcpanel.core.catalogs import idindex

    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        def indexed(q):
            if q.startswith("HAT-") and q.endswith("x"):
                return idindex.nearest(conn, q, 5)
            return idindex.exact(conn, q) or idindex.prefix(conn, q, 100)[0]

        def scan(q):
            key = q.strip().lower() + "%"
            return conn.execute("SELECT row_id FROM object_catalog WHERE lower(trim(objectid)) LIKE ? OR "
                                "lower(trim(twomassid)) LIKE ? OR CAST(ticid AS TEXT) LIKE ? LIMIT 100",
                                (key, key, key)).fetchall()

        def fts_prefix(q):
            term = '"' + q.strip().replace('"', '""') + '"*'
            return conn.execute("SELECT rowid FROM object_fts WHERE object_fts MATCH ? LIMIT 100", (term,)).fetchall()

        print(f"{'query':<32} {'index p50 ms':>13} {'scan p50 ms':>12} {'fts-prefix p50 ms':>18} {'scan/index':>11}")
        for name, qs in queries.items():
            a = p50_ms(indexed, qs, repeat)
            b = p50_ms(scan, qs, baseline_repeat)
            c = p50_ms(fts_prefix, qs, repeat)
            found = sum(bool(indexed(q)) for q in qs[:16])
            print(f"{name:<32} {a:>13.3f} {b:>12.2f} {c:>18.3f} {b / a:>10.0f}x   (found for {found}/16)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1e6"])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--baseline-repeat", type=int, default=5, help="runs of the full-scan baseline")
    parser.add_argument("--rebuild-repeat", type=int, default=3, help="rebuilds of the id index each way")
    add_smoke_option(parser, sizes=["1e4"], repeat=20, baseline_repeat=3, rebuild_repeat=1)
    args = parse_args(parser)
    sizes = [int(float(s)) for s in args.sizes]
    out = out_dir(args.smoke)
    out.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        path = out / f"idsearch-{n}.sqlite"
        t0 = time.perf_counter()
        spec = build(path, n)
        size_mb = path.stat().st_size / 1e6
        with closing(sqlite3.connect(path)) as conn:
            idx_mb = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'object_ids'").fetchone()[0] / 1e6 \
                if _has_dbstat(conn) else float("nan")
        print(f"\n{n:,} objects: built in {time.perf_counter() - t0:.1f} s (id index {spec['index_s']:.1f} s, "
              f"{idx_mb:.0f} MB of {size_mb:.0f} MB)")
        checked, known = rebuild_seconds(path, args.rebuild_repeat)
        print(f"id index rebuilt: every text id checked {checked:.2f} s; objectid known plain {known:.2f} s "
              f"({checked / known:.2f}x)")
        run(path, spec["queries"], args.repeat, args.baseline_repeat)
    return 0


def _has_dbstat(conn) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1")
        return True
    except sqlite3.Error:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
