"""What the shared rate limiter costs: one budget check in process, and requests per
second held by ``lcpanel serve --num-procs 2`` with the limiter counting every request
(a budget nobody reaches) against the same server with limits off (the baseline), in the
same run.

    .venv/bin/python benchmarks/bench_ratelimit.py [--seconds 8] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from common import add_smoke_option, catalog_basedir, parse_args, start_server, stop_server


def make_basedir(root: Path) -> Path:
    return catalog_basedir(root, 20000, seed=4, meta={"name": "Field"})


def in_process(basedir: Path, n: int = 20000) -> float:
    from lcpanel.config import LimitSettings
    from lcpanel.core.access.ratelimit import RateLimiter

    limiter = RateLimiter(basedir, LimitSettings(anonymous_requests_per_minute=10**9))
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        limiter.check(f"ip:10.0.{i % 50}.1", "anonymous")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def load(basedir: Path, seconds: float, clients: int) -> tuple[float, int]:
    proc, url = start_server(basedir, "--num-procs", "2")
    try:
        counts, refused = [0] * clients, [0] * clients
        stop = time.monotonic() + seconds

        def worker(k):
            body = json.dumps({"type": "cone", "params": {"coords": f"290.{k} 45 5"}, "limit": 20}).encode()
            i = 0
            while time.monotonic() < stop:
                i += 1
                req = urllib.request.Request(url + ("/api/search" if i % 2 else "/api/collections"),
                                             data=body if i % 2 else None)
                try:
                    urllib.request.urlopen(req, timeout=30).read()
                    counts[k] += 1
                except urllib.error.HTTPError as exc:
                    refused[k] += exc.code == 429
        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / (time.monotonic() - t0), sum(refused)
    finally:
        stop_server(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    add_smoke_option(parser, seconds=1.0, clients=2)
    args = parse_args(parser)
    with tempfile.TemporaryDirectory() as tmp:
        basedir = make_basedir(Path(tmp))
        print(f"budget check in process (SQLite, shared file): p50 {in_process(basedir):.0f} µs")
        config = basedir / "lcpanel.toml"
        results = {}
        for label, text in (("limits off (baseline)", "[limits]\nanonymous_requests_per_minute = 0\n"),
                            ("limiter counting every request", "[limits]\nanonymous_requests_per_minute = 1000000000\n"),
                            ("limits off again", "[limits]\nanonymous_requests_per_minute = 0\n")):
            config.write_text(text)
            results[label] = load(basedir, args.seconds, args.clients)
            rate, refused = results[label]
            print(f"{label:32s} {rate:7.1f} requests/s ({args.clients} clients, --num-procs 2), 429s: {refused}")
        base = (results["limits off (baseline)"][0] + results["limits off again"][0]) / 2
        print(f"limiter / baseline: {results['limiter counting every request'][0] / base:.2f}")


if __name__ == "__main__":
    main()
