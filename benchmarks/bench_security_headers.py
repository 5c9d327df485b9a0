"""What the security headers cost (lcpanel/security_headers.py): the output transform on a
real Panel page (nonce on its inline scripts, CSP) and on a JSON answer, in process,
against passing the same answer through untouched (the baseline), in the same run; and
the latency of ``GET /api/collections`` and ``GET /`` from ``lcpanel serve`` with the
transform against the same server with it taken out.

    .venv/bin/python benchmarks/bench_security_headers.py [--repeat 2000] [--http 40] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import add_smoke_option, catalog_basedir, parse_args, start_server, stop_server


def make_basedir(root: Path) -> Path:
    return catalog_basedir(root, 2000, seed=1, center=(10.0, 20.0), collection_id="bench")


SERVE = """import runpy, sys
if {off}:
    import lcpanel.security_headers as s
    s.install = lambda app: None
sys.argv = ["lcpanel", "serve", {basedir!r}, "--port", "{port}"]
runpy.run_module("lcpanel", run_name="__main__")
"""


def serve(basedir: Path, off: bool):
    """(process, url) of a server with the headers, or without them (``off``)."""
    return start_server(basedir, command=lambda port: [sys.executable, "-c", SERVE.format(
        off=off, basedir=str(basedir), port=port)])


def timed_gets(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def in_process(page: bytes, json_body: bytes, repeat: int) -> None:
    from tornado.httputil import HTTPHeaders

    from lcpanel.security_headers import SecurityHeaders

    for label, body, ctype in (("page", page, "text/html; charset=UTF-8"), ("json", json_body, "application/json")):
        def run(transform: bool) -> float:
            t0 = time.perf_counter()
            for _ in range(repeat):
                headers = HTTPHeaders({"Content-Type": ctype, "Content-Length": str(len(body))})
                if transform:
                    SecurityHeaders(None).transform_first_chunk(200, headers, body, True)
            return (time.perf_counter() - t0) / repeat * 1e6

        base, with_t = min(run(False) for _ in range(3)), min(run(True) for _ in range(3))
        print(f"transform, {label} of {len(body) / 1024:.0f} KiB: {with_t:.1f} µs per answer "
              f"(baseline {base:.1f} µs; +{with_t - base:.1f} µs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000, help="transform calls per measurement")
    parser.add_argument("--http", type=int, default=40, help="requests per route and server")
    add_smoke_option(parser, repeat=20, http=2)
    args = parse_args(parser)
    with tempfile.TemporaryDirectory() as tmp:
        basedir = make_basedir(Path(tmp))
        results = {(off, route): [] for off in (True, False) for route in ("/api/collections", "/")}
        servers = {off: serve(basedir, off) for off in (True, False)}  # True: without the headers (baseline)
        try:
            page = urllib.request.urlopen(servers[False][1] + "/", timeout=60).read()
            json_body = urllib.request.urlopen(servers[False][1] + "/api/collections", timeout=60).read()
            for route in ("/api/collections", "/"):
                for off in (True, False):
                    timed_gets(servers[off][1] + route, 3)  # warm up
                for _ in range(args.http):  # interleaved, so both see the same machine load
                    for off in (True, False):
                        results[(off, route)] += timed_gets(servers[off][1] + route, 1)
        finally:
            for proc, _url in servers.values():
                stop_server(proc)
        in_process(page, json_body, args.repeat)
        for route in ("/api/collections", "/"):
            base = statistics.median(results[(True, route)])
            with_t = statistics.median(results[(False, route)])
            print(f"GET {route}: median {with_t:.2f} ms with the headers, {base:.2f} ms without "
                  f"(ratio {with_t / base:.2f}, {args.http} requests each)")


if __name__ == "__main__":
    main()
