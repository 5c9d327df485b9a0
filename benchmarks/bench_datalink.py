"""Benchmark: DataLink for a batch of IDs in one request (issue 17's target: 1,000 IDs in
<= 1 s), through ``lcpanel serve`` on 127.0.0.1.

The example astrobase collection (demo/collection or /tmp/demo300 when present, else a
freshly built one of --nobjects objects) is ingested --copies times under different
collection ids, so every object has a counterpart in every other copy (the costly part of
a links document: one sky-index cone per object and other collection). Rows, p50/p95
over --repeat requests:

- baseline, measured in the same run: ``POST /api/search`` object-id look-up of the same
  IDs (one request; the cheapest batch look-up the server offers);
- ``POST /datalink`` with all the IDs, counterparts included;
- the same with a single collection served (no counterparts);
- the same with series IDs (``<collection>/<objectid>/<magcol>``, the ObsCore DIDs of
  one magnitude column each), which also read the collection's ObsCore rows.

    .venv/bin/python benchmarks/bench_datalink.py [--ids 1000] [--copies 4] [--repeat 10]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

from bench_products import find_demo
from bench_search import Server, row
from common import add_smoke_option, parse_args


def make_basedir(workdir: Path, demo: Path, copies: int) -> tuple[Path, list[str]]:
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = Basedir.init(workdir / f"basedir-{copies}")
    app = App(base.path)
    ids = []
    for k in range(copies):
        info = add_astrobase_collection(app, base, demo, collection_id=f"c{k}", show_progress=False)
        ids += [f"c{k}/{oid}" for (oid,) in app.catalogs.get(info.collection_id).query(
            "SELECT objectid FROM object_catalog ORDER BY row_id")]
    (base.path / "lcpanel.toml").write_text("[limits]\nanonymous_requests_per_minute = 0\n"
                                            "anonymous_max_rows = 100000\n")
    return base.path, ids


def series_ids(basedir: Path, ids: list[str]) -> list[str]:
    """Every series of these objects as DataLink IDs ``<collection>/<objectid>/<magcol>``."""
    from lcpanel.app import App
    from lcpanel.core.vo.obscore import series_of

    catalogs = App(basedir).catalogs
    out = []
    for ident in ids:
        cid, oid = ident.split("/", 1)
        out += [f"{ident}/{m}" for m in (series_of(basedir, catalogs.get(cid).info, [oid]) or {}).get(oid, [])]
    return out


def repeated(ids: list[str], n: int) -> list[str]:
    return (ids * (n // max(len(ids), 1) + 1))[:n]


def post(server: Server, path: str, body: bytes, ctype: str) -> bytes:
    server.conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    resp = server.conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(data[-500:])
    return data


def timed(fn, repeat: int) -> np.ndarray:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return np.array(out) * 1e3


def bench(basedir: Path, ids: list[str], nids: int, repeat: int, label: str) -> None:
    picked = ids[:nids]
    links_body = urllib.parse.urlencode([("ID", i) for i in picked]).encode()
    by_collection: dict[str, list[str]] = {}
    for ident in picked:
        cid, oid = ident.split("/")[:2]
        by_collection.setdefault(cid, []).append(oid)
    server = Server(basedir, auth=False)
    try:
        def search():
            for cid, oids in by_collection.items():
                post(server, "/api/search", json.dumps({"type": "objectid", "params": {"ids": oids},
                                                        "collections": [cid], "limit": len(oids)}).encode(),
                     "application/json")

        def links():
            return post(server, "/datalink", links_body, "application/x-www-form-urlencoded")

        search()
        answer = links()
        from astropy.io.votable import parse_single_table

        nlinks = len(parse_single_table(io.BytesIO(answer)).array)
        base = timed(search, repeat)
        dl = timed(links, repeat)
        print(f"\n## {label}: {len(picked)} IDs in {len(by_collection)} collections, {nlinks} links "
              f"({len(answer) / 1e6:.1f} MB)")
        row(f"baseline: object-id search, {len(by_collection)} request(s)", base)
        row(f"POST /datalink, {len(picked)} IDs", dl, None,
            f"{len(picked) / (np.median(dl) / 1e3):.0f} IDs/s; datalink / baseline = "
            f"{np.median(dl) / np.median(base):.1f}")
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=1000)
    parser.add_argument("--copies", type=int, default=4, help="collections holding the same objects")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--nobjects", type=int, default=60, help="size of the example collection if none is present")
    add_smoke_option(parser, ids=8, copies=2, repeat=2, nobjects=4)
    args = parse_args(parser)
    workdir = Path(tempfile.mkdtemp(prefix="lcpanel-bench-datalink-"))
    try:
        demo = find_demo(workdir, args.nobjects, args.smoke, args.example)
        path, ids = make_basedir(workdir, demo, args.copies)
        print(f"# DataLink benchmark ({demo}; {len(ids)} objects in {args.copies} collections)")
        bench(path, repeated(ids, args.ids), args.ids, args.repeat,
              f"{args.copies} overlapping collections (IDs repeat when they hold fewer objects)")
        single, single_ids = make_basedir(workdir, demo, 1)
        bench(single, repeated(single_ids, args.ids), args.ids, args.repeat,
              "one collection (no counterparts; IDs repeat when it holds fewer objects)")
        bench(single, repeated(series_ids(single, single_ids), args.ids), args.ids, args.repeat,
              "one collection, series IDs (<collection>/<objectid>/<magcol>)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
