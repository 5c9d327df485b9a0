"""Fair share under load (issue 15): how long a trivial request waits while heavy queries
run, and while a large dataset is read (its URL manifest, a page of its rows, its
products: issue 18), how much the server grows for a memory-bomb query and for the widest
cross join the time limit allows, and what moving work off the event loop costs per request.

    .venv/bin/python benchmarks/bench_load.py [--heavy 4] [--probes 40] [--compare DIR] [--smoke]

Against a real single-process ``lcpanel serve`` (the test basedir of 3 small catalogs,
query time limit 3 s). The baseline is the same server idle, in the same run; with
``--compare DIR`` (a checkout of an older lcpanel, e.g. ``git worktree add /tmp/old
main``) every figure is measured on a server run from DIR too ("before") and printed
beside the current tree's ("after"). ``--bomb-terms`` sets the size of the memory bomb
(990 in the issue; an old server without the limits holds gigabytes for it, so the
comparison run uses ``--compare-bomb-terms``, 250 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from common import ROOT, add_smoke_option, parse_args, start_server, stop_server

sys.path.insert(0, str(ROOT / "tests"))

TIMEOUT_S = 3.0
#: the issue's case: an ADQL search (JSON API) over a cross join, until the time limit
HEAVY = {"type": "adql", "params": {"query": (
    "SELECT * FROM lcpanel.field WHERE objectid IN (SELECT a.objectid FROM lcpanel.field AS a, lcpanel.field AS b, "
    "lcpanel.field AS c WHERE a.vmag + b.vmag + c.vmag < 0)")}}
WIDEST_JOIN = "SELECT TOP 100000 a.*, b.* FROM lcpanel.field AS a, lcpanel.field AS b"


def bomb(terms: int) -> str:
    return (f"WITH t AS (SELECT TOP 1 '{'x' * 40_000}' AS s FROM lcpanel.field) SELECT TOP 10 "
            + "||".join(["t.s"] * terms) + " AS big FROM t, lcpanel.field AS a, lcpanel.field AS b")


def get(url: str, data: bytes | None = None, timeout: float = 120.0, ctype: str = "application/x-www-form-urlencoded"
        ) -> tuple[int, bytes, float]:
    headers = {"Content-Type": ctype} if data else {}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=timeout) as r:
            return r.status, r.read(), time.perf_counter() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), time.perf_counter() - started


def tap(url: str, query: str, maxrec: int | None = None) -> tuple[int, bytes, float]:
    form = {"QUERY": query, **({"MAXREC": str(maxrec)} if maxrec else {})}
    return get(url + "/tap/sync", urllib.parse.urlencode(form).encode())


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``lcpanel serve`` on a basedir, run from ``source`` (None: the installed lcpanel)."""

    def __init__(self, basedir: Path, source: Path | None):
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = str(source) + os.pathsep + env.get("PYTHONPATH", "")
        self.log = tempfile.TemporaryFile()
        self.proc, self.url = start_server(basedir, env=env, cwd=str(source) if source is not None else None,
                                           log=self.log)

    def stop(self) -> None:
        stop_server(self.proc)


def probes(url: str, n: int, stop: threading.Event | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if stop is not None and stop.is_set():
            break
        status, _body, took = get(url + "/api/search/types")
        assert status == 200, status
        out.append(took * 1000)
    return out


def under_load(url: str, heavy: int, nprobes: int) -> tuple[list[float], list[int], float]:
    """Probe latencies (ms) while ``heavy`` heavy TAP queries run; their statuses; wall time."""
    statuses, done = [], threading.Event()

    def one():
        statuses.append(get(url + "/api/search", json.dumps(HEAVY).encode(), ctype="application/json")[0])

    threads = [threading.Thread(target=one) for _ in range(heavy)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(0.2)
    lat = []
    while any(t.is_alive() for t in threads) and len(lat) < nprobes:
        lat += probes(url, 1)
    for t in threads:
        t.join()
    done.set()
    return lat, statuses, time.perf_counter() - started


def under_dataset_requests(url: str, dataset_id: str) -> tuple[list[float], list[float]]:
    """Probe latencies (ms) while a large dataset's manifest, a page of its rows and its
    products are asked for twice in turn; those requests' own times (ms)."""
    took, done = [], threading.Event()

    def run():
        for part in ("/urls", "", "/products") * 2:
            status, _body, secs = get(f"{url}/api/datasets/{dataset_id}{part}")
            assert status == 200, status
            took.append(secs * 1000)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    lat = probes(url, 10_000, stop=done)
    thread.join()
    return lat, took


def memory(server: Server, query: str, maxrec: int | None = None) -> tuple[int, float, float, float]:
    """(status, seconds, RSS growth at peak MiB, RSS growth held afterwards MiB)."""
    pid = server.proc.pid
    before = rss_mib(pid)
    peak, stop = [before], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    status, _body, took = tap(server.url, query, maxrec)
    stop.set()
    watcher.join()
    time.sleep(0.5)
    return status, took, peak[0] - before, rss_mib(pid) - before


def stats(lat: list[float]) -> str:
    if not lat:
        return "no probe finished"
    return (f"n={len(lat)} median {statistics.median(lat):7.1f} ms  max {max(lat):7.1f} ms")


def hop_cost(calls: int) -> tuple[float, float]:
    """µs per call: a trivial function called directly vs through the offloader."""
    from lcpanel.core.offload import Offloader

    off = Offloader(workers=4, max_heavy=64)

    def work():
        return 1

    async def through():
        for _ in range(calls):
            await off.run(work)

    started = time.perf_counter()
    for _ in range(calls):
        work()
    direct = (time.perf_counter() - started) / calls * 1e6
    asyncio.run(through())  # warm the pool
    started = time.perf_counter()
    asyncio.run(through())
    hopped = (time.perf_counter() - started) / calls * 1e6
    off.shutdown()
    return direct, hopped


def measure(label: str, basedir: Path, source: Path | None, args, bomb_sizes: list[int], dataset_id: str) -> dict:
    server = Server(basedir, source)
    try:
        idle = probes(server.url, args.probes)
        loaded, statuses, wall = under_load(server.url, args.heavy, args.probes)
        with_dataset, dataset_took = under_dataset_requests(server.url, dataset_id)
        bombs = {terms: memory(server, bomb(terms)) for terms in bomb_sizes}
        join_out = memory(server, WIDEST_JOIN, maxrec=100_000)
        tracebacks = 0
        server.log.seek(0)
        tracebacks = server.log.read().count(b"Traceback")
    finally:
        server.stop()
    print(f"\n--- {label} ({'this tree' if source is None else source})")
    print(f"probe idle (baseline):          {stats(idle)}")
    print(f"probe with {args.heavy} heavy searches:   {stats(loaded)}  (heavy answers {sorted(statuses)}, "
          f"{wall:.1f} s)")
    if idle and loaded:
        print(f"  ratio loaded/idle median:     {statistics.median(loaded) / statistics.median(idle):7.1f} x")
    print(f"probe while a {args.dataset_rows:,}-object dataset is read: {stats(with_dataset)}  (manifest, page, "
          f"products, twice: {', '.join(f'{t:.0f}' for t in dataset_took)} ms)")
    for terms, bomb_out in bombs.items():
        print(f"memory bomb ({terms} x 40,000 chars): HTTP {bomb_out[0]} in {bomb_out[1]:.1f} s, "
              f"RSS +{bomb_out[2]:.0f} MiB at peak, +{bomb_out[3]:.0f} MiB held after")
    print(f"widest join (TOP 100000 a.*, b.*): HTTP {join_out[0]} in {join_out[1]:.1f} s, RSS +{join_out[2]:.0f} MiB"
          f" at peak, +{join_out[3]:.0f} MiB held after")
    print(f"tracebacks in the server log:   {tracebacks}")
    return {"idle": idle, "loaded": loaded, "dataset": with_dataset, "bombs": bombs, "join": join_out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heavy", type=int, default=4, help="heavy queries at once")
    parser.add_argument("--probes", type=int, default=40, help="probe requests per phase (at most)")
    parser.add_argument("--bomb-terms", type=int, default=990)
    parser.add_argument("--compare", type=Path, help="an older lcpanel source tree to measure first ('before')")
    parser.add_argument("--compare-bomb-terms", type=int, default=250)
    parser.add_argument("--hop-calls", type=int, default=5000)
    parser.add_argument("--dataset-rows", type=int, default=100_000, help="objects in the large dataset")
    add_smoke_option(parser, heavy=1, probes=3, hop_calls=200, bomb_terms=120, compare_bomb_terms=50,
                     dataset_rows=2000)
    args = parse_args(parser)

    from support.data import set_config
    from support.vo_data import add_large_dataset, build_basedir

    with tempfile.TemporaryDirectory() as tmp:
        basedir, _cols = build_basedir(Path(tmp))
        set_config(basedir, f"[limits]\nanonymous_requests_per_minute = 0\n[search]\nquery_timeout_s = {TIMEOUT_S}\n")
        dataset_id = add_large_dataset(basedir, args.dataset_rows)
        before = (measure("before", basedir, args.compare, args, [args.compare_bomb_terms], dataset_id)
                  if args.compare else None)
        after = measure("after", basedir, None, args, sorted({args.compare_bomb_terms, args.bomb_terms}), dataset_id)
    direct, hopped = hop_cost(args.hop_calls)
    print(f"\nexecutor hop: direct call {direct:.2f} µs, through the offloader {hopped:.1f} µs "
          f"(+{hopped - direct:.1f} µs per offloaded request)")
    if before and before["loaded"] and after["loaded"]:
        b, a = statistics.median(before["loaded"]), statistics.median(after["loaded"])
        print(f"probe median under load: before {b:.1f} ms, after {a:.1f} ms (before/after {b / a:.1f})")
        print(f"probe max under load:    before {max(before['loaded']):.1f} ms, after {max(after['loaded']):.1f} ms")
    elif before:
        print("before: no probe finished while the heavy queries ran (each waited for all of them)")
    if before and before["dataset"] and after["dataset"]:
        print(f"probe max while the dataset is read: before {max(before['dataset']):.1f} ms, "
              f"after {max(after['dataset']):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
