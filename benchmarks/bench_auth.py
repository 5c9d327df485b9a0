"""What identifying a visitor and checking writes costs per request: latency of one
``lcpanel serve`` process for a write made with a login cookie (JSON, same Origin: the
CSRF checks and the server-side login session lookup), the same write with an API key,
reads with a login cookie and with a key, against an anonymous read (the baseline,
measured in the same run). Requests are sequential from one client, so the figures are
latencies, not throughput.

    .venv/bin/python benchmarks/bench_auth.py [--requests 300] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from common import add_smoke_option, catalog_basedir, parse_args, start_server, stop_server

def make_basedir(root: Path) -> tuple[Path, str]:
    from lcpanel.core.access.users import UserStore

    path = catalog_basedir(root, 2000, seed=4, meta={"name": "Field"})
    (path / "lcpanel.toml").write_text("[limits]\nanonymous_requests_per_minute = 0\n"
                                            "user_requests_per_minute = 0\n")
    store = UserStore(path)
    store.add_user("bench", "pw-of-bench", "user")
    token, _ = store.issue_key("user:bench", "user")
    store.close()
    return path, token


def timed(opener, req, n: int) -> float:
    """Median milliseconds of ``n`` sends of ``req`` (after 10 warm-up sends)."""
    times = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        with opener.open(req, timeout=30) as resp:
            resp.read()
            assert resp.status == 200, resp.status
        if i >= 10:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def in_process(basedir: Path, n: int) -> None:
    """Median microseconds of the per-request work itself, free of HTTP and load noise:
    resolving a login cookie to its account and the cross-site write check."""
    from lcpanel.core.access.auth import LOGIN_COOKIE, Authenticator
    from lcpanel.core.access.identity import Signer, basedir_secret
    from lcpanel.core.access.users import UserStore

    store = UserStore(basedir)
    auth = Authenticator(Signer(basedir_secret(basedir)), store)
    cookie = auth.login_cookie(store.user("bench"))

    def median_us(fn) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    resolve = median_us(lambda: auth.resolve({LOGIN_COOKIE: cookie}))
    print(f"in process: login cookie -> account (resolve)  p50 {resolve:7.1f} µs")
    try:
        from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

        from lcpanel.csrf import refusal
    except ImportError:
        print("in process: cross-site write check            (none in this version)")
        return
    request = HTTPServerRequest(start_line=RequestStartLine("POST", "/api/datasets/x", "HTTP/1.1"), headers=HTTPHeaders(
        {"Host": "127.0.0.1:5006", "Origin": "http://127.0.0.1:5006", "Content-Type": "application/json"}))
    check = median_us(lambda: refusal(request, cookies=True, json=True))
    print(f"in process: cross-site write check            p50 {check:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="HTTP requests per kind")
    parser.add_argument("--calls", type=int, default=20000, help="in-process calls per step")
    add_smoke_option(parser, requests=50, calls=2000)
    args = parse_args(parser)
    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        basedir, token = make_basedir(Path(tmp))
        in_process(basedir, args.calls)
        proc, url = start_server(basedir)
        try:
            plain = urllib.request.build_opener()
            browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            page = {"Content-Type": "application/json", "Origin": url}
            browser.open(urllib.request.Request(url + "/api/login", json.dumps(
                {"username": "bench", "password": "pw-of-bench"}).encode(), page), timeout=30).read()
            made = json.loads(browser.open(urllib.request.Request(
                url + "/api/search?visibility=private", json.dumps({"type": "cone", "params": {
                    "coords": "290 45 5"}, "limit": 5}).encode(), page), timeout=30).read())
            ds = made["dataset_id"]
            key = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            rename = json.dumps({"description": "benchmark"}).encode()
            kinds = {
                "anonymous read (no cookie, baseline)": (plain, urllib.request.Request(url + "/api/whoami")),
                "login-cookie read": (browser, urllib.request.Request(url + "/api/whoami")),
                "API-key read": (plain, urllib.request.Request(url + "/api/whoami", headers=key)),
                "login-cookie write (JSON, Origin)": (browser, urllib.request.Request(
                    url + f"/api/datasets/{ds}", rename, page)),
                "API-key write": (plain, urllib.request.Request(url + f"/api/datasets/{ds}", rename, key)),
            }
            results = {}
            for label, (opener, req) in kinds.items():
                results[label] = timed(opener, req, n)
            base = results["anonymous read (no cookie, baseline)"]
            for label, ms in results.items():
                print(f"{label:36s} p50 {ms:6.2f} ms   x{ms / base:4.2f} of the anonymous read ({n} requests)")
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
