"""Benchmark: ADQL through TAP /sync against the JSON API's cone search, on 1e6 objects.

Uses the all-sky 1e6 basedir that bench_search.py builds in benchmarks/out/ (built here
too when missing). Against one ``lcpanel serve`` on 127.0.0.1 with a keep-alive
connection, it prints p50/p95 of:

- the baseline measured in the same run: ``POST /api/search`` cone (r = 1', 10', 60'),
  its answer saved as a dataset as the API always does;
- ``GET /tap/sync`` with the same cone in ADQL (``CONTAINS(POINT, CIRCLE) = 1``, rewritten
  to the sky index), VOTable and CSV, and the ``DISTANCE(...) < r`` form;
- an ADQL column query without a join (an indexed range on vmag, TOP 100, ORDER BY),
  against the JSON API's column filter with the same condition and limit;
- the same cone as Simple Cone Search (``/scs/allsky``).

    .venv/bin/python benchmarks/bench_tap.py [--repeat 200]

The ratio column is baseline p50 / this p50 (above 1: faster than the JSON API).
"""

from __future__ import annotations

import argparse
import shutil
import urllib.parse
from pathlib import Path

import numpy as np

from bench_search import Server, basedir_for, row, timed  # noqa: E402
from common import add_smoke_option, out_dir, parse_args  # noqa: E402


def tap_basedir(n: int, out: Path) -> Path:
    """A basedir sharing bench_search's catalog files (its registry copied, pointing at
    them) with its own lcpanel.toml: no request budget, so the benchmark measures queries."""
    src = basedir_for(n, out)
    path = out / f"tap-{n:.0e}"
    path.mkdir(parents=True, exist_ok=True)
    for sub in ("collections", "datasets", "products"):
        (path / sub).mkdir(exist_ok=True)
    shutil.copyfile(src / "lcc-collections.sqlite", path / "lcc-collections.sqlite")
    (path / "lcpanel.toml").write_text("[limits]\nanonymous_requests_per_minute = 0\n"
                                       "anonymous_max_rows = 100000\n")
    return path


def parse_votable(body: bytes):
    import io

    from astropy.io.votable import parse_single_table

    return parse_single_table(io.BytesIO(body)).array


def get(server: Server, path: str) -> bytes:
    server.conn.request("GET", path)
    resp = server.conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(body[:500])
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--size", default="1e6", help="objects in the all-sky catalog")
    add_smoke_option(parser, repeat=3, size="2e4")
    args = parse_args(parser)
    n = int(float(args.size))
    path = tap_basedir(n, out_dir(args.smoke))
    rng = np.random.default_rng(11)
    ra = rng.uniform(0, 360, max(args.repeat, 10))
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, max(args.repeat, 10))))
    server = Server(path, auth=False)
    print(f"# TAP benchmark: {n:.0e} objects all sky, {args.repeat} random centres, p50/p95 through HTTP "
          "on 127.0.0.1 (ratio = JSON API p50 / this p50)")
    try:
        def adql(i, r_deg, form="contains", fmt="votable"):
            if form == "contains":
                where = f"1 = CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', {ra[i]:.6f}, {dec[i]:.6f}, {r_deg}))"
            else:
                where = f"DISTANCE(POINT('ICRS', ra, decl), POINT('ICRS', {ra[i]:.6f}, {dec[i]:.6f})) < {r_deg}"
            q = f"SELECT objectid, ra, decl, vmag, ndet FROM lcpanel.allsky WHERE {where}"
            return get(server, "/tap/sync?" + urllib.parse.urlencode(
                {"LANG": "ADQL", "QUERY": q, "RESPONSEFORMAT": fmt, "MAXREC": 100000}))

        for r_arcmin in (1.0, 10.0, 60.0):
            r_deg = r_arcmin / 60.0
            spec = lambda i: {"type": "cone", "params": {"ra": float(ra[i]), "dec": float(dec[i]),
                                                         "radius_arcmin": r_arcmin}, "limit": 100000}
            for i in range(5):  # warm up both paths
                server.search(spec(i))
                adql(i, r_deg)
            api = timed(lambda i: server.search(spec(i)), args.repeat)
            base = float(np.median(api))
            def count(i):
                q = (f"SELECT COUNT(*) FROM lcpanel.allsky WHERE 1 = CONTAINS(POINT('ICRS', ra, decl), "
                     f"CIRCLE('ICRS', {ra[i]:.6f}, {dec[i]:.6f}, {r_deg}))")
                body = get(server, "/tap/sync?" + urllib.parse.urlencode(
                    {"LANG": "ADQL", "QUERY": q, "RESPONSEFORMAT": "csv"}))
                return int(body.split()[-1])

            nrows = np.mean([count(i) for i in range(10)])
            print(f"\ncone r={r_arcmin:g}' (~{nrows:.0f} rows)")
            row("POST /api/search cone (baseline)", api)
            row("TAP /sync ADQL CONTAINS, VOTable (BINARY2)", timed(lambda i: adql(i, r_deg), args.repeat), base)
            row("TAP /sync ADQL CONTAINS, VOTable TABLEDATA",
                timed(lambda i: adql(i, r_deg, fmt="votable/td"), args.repeat), base)
            row("TAP /sync ADQL CONTAINS, CSV", timed(lambda i: adql(i, r_deg, fmt="csv"), args.repeat), base)
            b2, td = adql(0, r_deg), adql(0, r_deg, fmt="votable/td")
            parse_b2 = timed(lambda i: parse_votable(b2), max(3, args.repeat // 10))
            parse_td = timed(lambda i: parse_votable(td), max(3, args.repeat // 10))
            row(f"  astropy parses BINARY2 ({len(b2) / 1e3:.0f} kB; TABLEDATA: baseline)", parse_b2,
                float(np.median(parse_td)), f"TABLEDATA {len(td) / 1e3:.0f} kB, parsed in "
                f"{np.median(parse_td):.2f} ms")
            row("TAP /sync ADQL DISTANCE < r, VOTable",
                timed(lambda i: adql(i, r_deg, form="distance"), args.repeat), base)
            row("SCS /scs/allsky VERB=2", timed(lambda i: get(server, "/scs/allsky?" + urllib.parse.urlencode(
                {"RA": ra[i], "DEC": dec[i], "SR": r_deg, "VERB": 2})), args.repeat), base)

        lows = rng.uniform(9, 16, max(args.repeat, 5))
        flt = lambda i: {"type": "filter", "params": {"where": f"vmag between {lows[i]:.3f} and {lows[i] + 0.01:.3f} "
                                                               "and ndet > 1000"}, "sort": "vmag", "limit": 100}
        col_q = lambda i: get(server, "/tap/sync?" + urllib.parse.urlencode({"LANG": "ADQL", "QUERY": (
            f"SELECT TOP 100 objectid, ra, decl, vmag, ndet FROM lcpanel.allsky WHERE vmag BETWEEN {lows[i]:.3f} "
            f"AND {lows[i] + 0.01:.3f} AND ndet > 1000 ORDER BY vmag")}))
        for i in range(5):
            server.search(flt(i))
            col_q(i)
        api = timed(lambda i: server.search(flt(i)), args.repeat)
        print("\ncolumn query: vmag in a 0.01 mag range and ndet > 1000, sorted, 100 rows (no join)")
        row("POST /api/search filter (baseline)", api)
        row("TAP /sync ADQL column query, VOTable", timed(col_q, args.repeat), float(np.median(api)))
    finally:
        server.close()


if __name__ == "__main__":
    main()
