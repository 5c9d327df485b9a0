"""Benchmark: the search types end to end, in process and through the JSON API.

All-sky plain catalogs of 1e6 and 1e7 objects (examples/make_collection.py catalog-only
mode) are ingested once into benchmarks/out/ (kept between runs; the 1e7 one takes a
few minutes and ~6 GB). For each size it prints p50/p95 of:

- cone search at r = 1', 10', 1 deg: the sky-index kernel, ``run_search`` in process,
  ``run_search`` plus saving its dataset in process (what the API does besides HTTP),
  ``POST /api/search`` against ``lcpanel serve`` on 127.0.0.1, and the baselines
  measured in the same run: numpy brute force over every row and astropy
  ``SkyCoord.separation`` brute force;
- cross-match of 1e3 and 1e5 positions (kernel) against astropy ``match_to_catalog_sky``;
- full-text id look-up and a very common word; object-id look-up;
- column filters;
- the JSON API again once the key's owner already holds ``--history`` saved datasets (a
  script that has been searching for a while): saving a search checks the owner's disk
  quota, and that check must not grow with what they hold.

The basedir's saved datasets and usage ledger are emptied at the start of each run, so
runs start alike.

    .venv/bin/python benchmarks/bench_search.py [--sizes 1e6 1e7] [--repeat 200]

Targets (issue 3): cone p50 <= 0.5 ms at 1e6 and <= 2 ms at 1e7 (r = 1 deg, in process);
cross-match 1e5 vs 1e7 <= 0.5 s; FTS id look-up <= 1 ms at 1e6; the JSON API cone within
1 ms of the in-process figure.
"""

from __future__ import annotations

import argparse
from collections import Counter
import http.client
import json
import os
import time
from pathlib import Path

import numpy as np

from common import (add_smoke_option, bare_tornado, load_generator, out_dir, parse_args, start_server,  # noqa: E402
                    stop_server)
OUT = out_dir(False)


def basedir_for(n: int, out: Path = OUT) -> Path:
    """A basedir holding one all-sky catalog of n objects, built once under ``out``."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    path = out / f"search-{n:.0e}"
    if (path / "collections" / "allsky").is_dir():
        return path
    out.mkdir(parents=True, exist_ok=True)
    catalog = out / f"allsky-{n:.0e}.parquet"
    if not catalog.exists():
        load_generator().make_plain_catalog(catalog, n, seed=1, allsky=True)
    if path.exists():
        import shutil

        shutil.rmtree(path)
    base = Basedir.init(path)
    t0 = time.perf_counter()
    add_catalog_collection(App(path), base, catalog, collection_id="allsky", show_progress=True)
    print(f"# ingested {n:.0e} objects in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def timed(fn, repeat: int) -> np.ndarray:
    out = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - t0
    return out * 1e3


def row(label: str, ms: np.ndarray, base_ms: float | None = None, note: str = "") -> None:
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    ratio = f"{base_ms / p50:9.1f}x" if base_ms else " " * 10
    print(f"  {label:<44} p50 {p50:9.3f} ms  p95 {p95:9.3f} ms  {ratio}  {note}", flush=True)


class Server:
    """``lcpanel serve`` on a free 127.0.0.1 port, with one keep-alive HTTP connection.

    Requests carry a staff API key and the rate limiter is on (counting every request,
    with a budget no benchmark reaches): the real path of a script using the API.
    ``auth=False`` sends anonymous requests instead."""

    def __init__(self, basedir: Path, auth: bool = True):
        from lcpanel.core.access.users import UserStore

        self.headers = {"Content-Type": "application/json"}
        if auth:
            (basedir / "lcpanel.toml").write_text("[limits]\nstaff_requests_per_minute = 1000000000\n")
            users = UserStore(basedir)
            try:
                if users.find_user("bench") is None:
                    users.add_user("bench", None, role="staff")
                token, _ = users.issue_key("user:bench", "staff", label="benchmark", days=1)
            finally:
                users.close()
            self.headers["Authorization"] = f"Bearer {token}"
        self.proc, url = start_server(basedir, timeout=120)
        self.port = int(url.rsplit(":", 1)[1])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def search(self, spec: dict) -> bytes:
        """The response body of POST /api/search (the client's JSON parsing is not timed)."""
        self.conn.request("POST", "/api/search", body=json.dumps(spec), headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(body)
        return body

    def close(self) -> None:
        stop_server(self.proc)


class Floor(Server):
    """The API's floor: a bare Tornado server (:func:`common.bare_tornado`) answering every
    search with ``answer`` (what lcpanel answered to one of them), asked as :class:`Server`
    is, with the same headers, over one keep-alive connection."""

    def __init__(self, answer: bytes, headers: dict):
        self.headers = dict(headers)
        self.proc, self.port = bare_tornado(answer)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def _forget_saved(path: Path) -> None:
    """Remove the datasets and the usage ledger earlier runs saved in this (benchmark-owned) basedir."""
    import shutil

    shutil.rmtree(path / "datasets", ignore_errors=True)
    for name in ("usage.sqlite", "usage.sqlite-wal", "usage.sqlite-shm"):
        (path / name).unlink(missing_ok=True)


def _give_history(path: Path, owner: str, count: int) -> None:
    """``count`` more rows of saved datasets owned by ``owner`` in the usage ledger."""
    from lcpanel.core.access.quotas import Ledger

    book = Ledger(path)
    try:
        for i in range(count):
            book.record("dataset", f"history-{i:08d}", owner, 5000)
    finally:
        book.close()


def timed_pair(fa, fb, repeat: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``fa(i)`` and ``fb(i)`` timed alternately (which goes first alternates too), so a
    drift of the machine's speed during the run falls on both alike; also this process's
    mean CPU time per ``fb`` call (for an HTTP request: the client's own share)."""
    a, b = np.empty(repeat), np.empty(repeat)
    cpu_b = 0.0
    for i in range(repeat):
        for fn, out in (((fa, a), (fb, b)) if i % 2 else ((fb, b), (fa, a))):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(i)
            out[i] = time.perf_counter() - t0
            if out is b:
                cpu_b += time.process_time() - c0
    return a * 1e3, b * 1e3, cpu_b / repeat * 1e3


def api_rows(saved_ms: np.ndarray, api_ms: np.ndarray, client_cpu_ms: float, floor_ms: np.ndarray) -> None:
    """The in-process and API rows of one search, and their difference (of which the
    benchmark's own HTTP client, ``http.client``, spends ``client_cpu_ms``, and a bare
    Tornado server's round trip with the same request and answer takes ``floor_ms``)."""
    over = np.median(api_ms) - np.median(saved_ms)
    row("  run_search + dataset in process", saved_ms)
    row("  POST /api/search (until the body is received)", api_ms, None,
        f"API - same work in process = {over:+.3f} ms (the client's own CPU: {client_cpu_ms:.3f} ms)")
    row("  bare Tornado, same request and answer (floor)", floor_ms, None,
        f"API - in process - floor = {over - np.median(floor_ms):+.3f} ms (lcpanel's own HTTP share)")


def floor_ms(server: Server, spec, repeat: int) -> np.ndarray:
    """The floor (:class:`Floor`) of the searches ``spec(i)``: answering lcpanel's answer to ``spec(0)``."""
    floor = Floor(server.search(spec(0)), server.headers)
    try:
        for i in range(min(repeat, 20)):  # warm the connection like the API's
            floor.search(spec(i))
        return timed(lambda i: floor.search(spec(i)), repeat)
    finally:
        floor.close()


def bench_size(n: int, repeat: int, out: Path = OUT, history: int = 10_000) -> None:
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    from lcpanel.app import App
    from lcpanel.core.search import run_search

    path = basedir_for(n, out)
    app = App(path)
    cat = app.catalogs.get("allsky")
    index = cat.skyindex
    xyz = np.ascontiguousarray(index.xyz)
    # positions from the sky index (reading 1e7 rows through the guarded SQL would hit its time limit)
    ra_all = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec_all = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))
    sky = SkyCoord(ra_all * u.deg, dec_all * u.deg)
    rng = np.random.default_rng(5)
    centres_ra = rng.uniform(0, 360, max(repeat, 20))
    centres_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, max(repeat, 20))))
    print(f"\n## {n:.0e} objects, all sky ({repeat} random centres; ratio = baseline p50 / this p50)")
    _forget_saved(path)

    def save(result):
        return app.datasets.create(result, "anon:bench") if result.rows else None

    def cone(i, r_arcmin):
        return {"type": "cone", "params": {"ra": float(centres_ra[i]), "dec": float(centres_dec[i]),
                                           "radius_arcmin": r_arcmin}, "limit": 100000}

    server = Server(path)
    try:
        for r_arcmin in (1.0, 10.0, 60.0):
            r_deg = r_arcmin / 60
            cos_r = np.cos(np.radians(r_deg))

            def brute(i):
                c = np.array([np.cos(np.radians(centres_dec[i])) * np.cos(np.radians(centres_ra[i])),
                              np.cos(np.radians(centres_dec[i])) * np.sin(np.radians(centres_ra[i])),
                              np.sin(np.radians(centres_dec[i]))])
                return np.flatnonzero(xyz @ c >= cos_r)

            brute_ms = timed(brute, max(5, repeat // 20))
            astro_ms = timed(lambda i: np.flatnonzero(
                sky.separation(SkyCoord(centres_ra[i] * u.deg, centres_dec[i] * u.deg)).deg <= r_deg), 3)
            kernel_ms = timed(lambda i: index.cone(centres_ra[i], centres_dec[i], r_deg), repeat)
            spec = lambda i: cone(i, r_arcmin)
            run_ms = timed(lambda i: run_search(app, spec(i)), repeat)
            # what POST /api/search does besides HTTP: the search and its dataset
            # (a search that matched nothing saves no dataset, in the API as here)
            saved_ms, api_ms, client_ms = timed_pair(lambda i: save(run_search(app, spec(i))),
                                          lambda i: server.search(spec(i)), repeat)
            base_ms = floor_ms(server, spec, repeat)
            nres = np.mean([len(index.cone(centres_ra[i], centres_dec[i], r_deg)[0]) for i in range(20)])
            label = f"cone r={r_arcmin:g}'"
            print(f"  {label}: ~{nres:.0f} rows per cone")
            row("  numpy brute force (baseline)", brute_ms)
            row("  astropy SkyCoord.separation (baseline)", astro_ms)
            row("  sky-index kernel", kernel_ms, np.median(brute_ms), "vs numpy brute force")
            row("  run_search in process", run_ms, np.median(astro_ms), "vs astropy")
            api_rows(saved_ms, api_ms, client_ms, base_ms)
        if history:
            _give_history(path, "user:bench", history)
            saved_ms, api_ms, client_ms = timed_pair(lambda i: save(run_search(app, cone(i, 10.0))),
                                          lambda i: server.search(cone(i, 10.0)), repeat)
            print(f"  cone r=10', the key's owner already holding {history:,} saved datasets:")
            api_rows(saved_ms, api_ms, client_ms, floor_ms(server, lambda i: cone(i, 10.0), repeat))
        for m in (1_000, 100_000):
            pick = rng.integers(0, n, m)
            qra = (ra_all[pick] + rng.normal(0, 1 / 3600, m)) % 360
            qdec = np.clip(dec_all[pick] + rng.normal(0, 1 / 3600, m), -90, 90)
            kernel = timed(lambda i: index.crossmatch(qra, qdec, 5.0, nearest=True), 5)
            q = SkyCoord(qra * u.deg, qdec * u.deg)
            astro = timed(lambda i: q.match_to_catalog_sky(sky), 1)
            row(f"cross-match {m:.0e} positions, r=5\" (kernel)", kernel, np.median(astro),
                f"vs astropy match_to_catalog_sky {np.median(astro):.0f} ms (incl. its tree build)")
        sample = json.dumps(rng.choice(n, 200, replace=False).tolist())
        ids = cat.query("SELECT objectid, twomassid FROM object_catalog WHERE row_id IN (SELECT value FROM json_each(?))",
                        (sample,))
        row("full text: an object id", timed(lambda i: run_search(app, {
            "type": "fulltext", "params": {"query": ids[i % len(ids)][0]}}), repeat))
        row("full text: a 2MASS id", timed(lambda i: run_search(app, {
            "type": "fulltext", "params": {"query": ids[i % len(ids)][1]}}), repeat))
        common = timed(lambda i: run_search(app, {"type": "fulltext", "params": {"query": "faint"}, "limit": 100}),
                       max(5, repeat // 10))
        res = run_search(app, {"type": "fulltext", "params": {"query": "faint"}, "limit": 100})
        row("full text: a very common word ('faint')", common, None, res.summary())
        row("object id (exact, with aliases)", timed(lambda i: run_search(app, {
            "type": "objectid", "params": {"ids": [ids[i % len(ids)][0]]}}), repeat))
        # filters few objects pass (vmag < 6, < 9) are answered from their index; until then
        # SQLite walked the table in row order looking for 100 matches
        for where, sort in (("vmag < 6", ""), ("vmag < 9", ""), ("vmag < 9", "-ndet"), ("vmag < 12", ""),
                            ("vmag between 12 and 12.01 and ndet > 1000", ""), ("objecttags like '%blue%'", "")):
            spec = {"type": "filter", "params": {"where": where}, "sort": sort, "limit": 100}
            res = run_search(app, spec)
            row(f"filter: {where}" + (f" (sort {sort})" if sort else ""),
                timed(lambda i: run_search(app, spec), max(5, repeat // 10)), None, res.summary())
        # alias ids have no B-tree of their own: an equality on one is found through the id index
        row("filter: twomassid = <an object's 2MASS id>", timed(lambda i: run_search(app, {
            "type": "filter", "params": {"where": f"twomassid = '{ids[i % len(ids)][1]}'"}, "limit": 100}), repeat))
        row("ADQL: SELECT objectid ... WHERE twomassid = <an object's>", timed(lambda i: run_search(app, {
            "type": "adql", "params": {"query": "SELECT objectid FROM lcpanel.allsky WHERE twomassid = "
                                                f"'{ids[i % len(ids)][1]}'"}}), repeat))
    finally:
        server.close()


def _group_rss_mb(leader: int) -> dict[int, tuple[float, float, float]]:
    """(VmRSS, RssAnon, RssFile + RssShmem) in MB of every process in ``leader``'s process
    group (the server and, with ``--num-procs``, its serving children). RssAnon is the
    process's own memory; the file-backed part is page cache of mapped files (the sky
    index, libraries), shared between the processes and given back under pressure."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != leader:
                continue
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines()
                  if line.startswith(("VmRSS:", "RssAnon:", "RssFile:", "RssShmem:"))}
        out[int(entry.name)] = (fields["VmRSS"], fields["RssAnon"], fields["RssFile"] + fields["RssShmem"])
    return out


XMATCH_LINES = 5000  # the default [search] xmatch_max_lines


def bench_serving_rss(n: int, searches: int, out: Path = OUT, num_procs: int = 2) -> None:
    """RSS of each ``lcpanel serve --num-procs 2`` process, idle after start and after
    ``searches`` mixed JSON API searches (cones of 1-60', object ids, full text, column
    filters; 100 rows each at most), sent over 4 keep-alive connections; and again after 4
    cross-matches of uploaded lists as long as a list may be."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    from lcpanel.app import App

    path = basedir_for(n, out)
    rng = np.random.default_rng(8)
    sample = json.dumps(rng.choice(n, min(n, 250), replace=False).tolist())
    ids = [r[0] for r in App(path).catalogs.get("allsky").query(
        "SELECT objectid FROM object_catalog WHERE row_id IN (SELECT value FROM json_each(?))", (sample,))]
    (path / "lcpanel.toml").write_text("[limits]\nanonymous_requests_per_minute = 0\n"
                                       "[quotas]\nanonymous_disk_mb = 0.0\n")
    proc, url = start_server(path, "--num-procs", str(num_procs), timeout=180)
    try:
        time.sleep(2)
        idle = _group_rss_mb(proc.pid)
        port = int(url.rsplit(":", 1)[1])
        specs = []
        for i in range(searches):
            kind = i % 4
            if kind == 0:
                specs.append({"type": "cone", "params": {"ra": float(rng.uniform(0, 360)),
                                                         "dec": float(np.degrees(np.arcsin(rng.uniform(-1, 1)))),
                                                         "radius_arcmin": float(rng.choice([1, 10, 60]))}})
            elif kind == 1:
                specs.append({"type": "objectid", "params": {"ids": [ids[i % len(ids)]]}})
            elif kind == 2:
                specs.append({"type": "fulltext", "params": {"query": str(rng.choice(["faint", "blue", "red"]))}})
            else:
                low = float(rng.uniform(8, 15))
                specs.append({"type": "filter", "params": {"where": f"vmag between {low:.3f} and {low + 0.01:.3f}"}})
            specs[-1]["limit"] = 100
        statuses: list[int] = []

        def worker(chunk):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for spec in chunk:
                conn.request("POST", "/api/search", body=json.dumps(spec), headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, [specs[i::4] for i in range(4)]))
        wall = time.perf_counter() - t0
        after = _group_rss_mb(proc.pid)
        # then cross-matches, which the mix above does not send: uploaded lists of the most
        # positions a list may hold, one over each of 4 connections
        xra, xdec = rng.uniform(0, 360, XMATCH_LINES), np.degrees(np.arcsin(rng.uniform(-1, 1, XMATCH_LINES)))
        targets = "\n".join(f"t{i} {a:.6f} {d:.6f}" for i, (a, d) in enumerate(zip(xra, xdec)))
        xspec = {"type": "xmatch", "params": {"targets": targets, "radius_arcsec": 2.0}, "limit": 100}
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(worker, [[xspec]] * 4))
        after_xmatch = _group_rss_mb(proc.pid)
    finally:
        stop_server(proc)
    print(f"\n## serving RSS, {n:.0e} objects, lcpanel serve --num-procs {num_procs}: {searches} mixed searches "
          f"in {wall:.1f} s (statuses: {dict(sorted(Counter(statuses[:searches]).items()))})")
    nan = (float("nan"),) * 3
    for pid in sorted(after):
        role = "parent" if pid == proc.pid else "process"
        (rss0, anon0, file0), (rss1, anon1, file1) = idle.get(pid, nan), after[pid]
        print(f"  {role} {pid}: idle {rss0:5.0f} MB (own {anon0:4.0f} + shared file pages {file0:4.0f}), "
              f"after {rss1:5.0f} MB (own {anon1:4.0f} + shared file pages {file1:4.0f})")
    print(f"  then 4 cross-matches of {XMATCH_LINES:,} positions (statuses: {dict(sorted(Counter(statuses[searches:]).items()))}; "
          "a cross-match maps the sky index while it runs):")
    for pid in sorted(after_xmatch):
        rss2, anon2, file2 = after_xmatch[pid]
        print(f"  {'parent' if pid == proc.pid else 'process'} {pid}: {rss2:5.0f} MB (own {anon2:4.0f} "
              f"+ shared file pages {file2:4.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1e6", "1e7"])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rss-searches", type=int, default=1000,
                        help="mixed searches before the serving processes' RSS is read (0: skip)")
    parser.add_argument("--rss-only", action="store_true", help="only the serving RSS section")
    parser.add_argument("--history", type=int, default=10_000,
                        help="saved datasets the API key's owner holds in the last API section (0: skip)")
    add_smoke_option(parser, sizes=["2e4"], repeat=3, rss_searches=20, history=50)
    args = parse_args(parser)
    print("# search benchmark" + (" (smoke mode: figures mean nothing)" if args.smoke else ""))
    out = out_dir(args.smoke)
    for size in args.sizes:
        if not args.rss_only:
            bench_size(int(float(size)), args.repeat, out, args.history)
        if args.rss_searches:
            bench_serving_rss(int(float(size)), args.rss_searches, out)


if __name__ == "__main__":
    main()
