"""Fair share under load (issue 15): nothing slow runs on the event loop, no query eats the
server's memory, parsers answer bad input with a 4xx, bodies and slow connections are
bounded, and SIGTERM stops every process of ``lcpanel serve``. Against a real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from support.data import set_config
from support.procstatus import rss_kib
from support.servers import free_port, running_server, server_log, spawn_server, wait_live
from support.vo_data import build_basedir

TIMEOUT_S = 3.0
HEAVY_TAP = ("SELECT COUNT(*) AS n FROM lcpanel.field AS a, lcpanel.field AS b, lcpanel.field AS c, "
             "lcpanel.field AS d WHERE a.vmag + b.vmag + c.vmag + d.vmag < 0")
HEAVY_SEARCH = {"type": "adql", "params": {"query": (
    "SELECT * FROM lcpanel.field WHERE objectid IN (SELECT a.objectid FROM lcpanel.field AS a, lcpanel.field AS b, "
    "lcpanel.field AS c WHERE a.vmag + b.vmag + c.vmag < 0)")}}
CONFIG = f"""[limits]
anonymous_requests_per_minute = 0
[search]
query_timeout_s = {TIMEOUT_S}
[requests]
workers = 2
max_heavy = 3
idle_timeout_s = 2.0
max_body_bytes = 1048576
sqlite_heap_bytes = 268435456
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path, _cols = build_basedir(tmp_path_factory.mktemp("load"))
    set_config(path, CONFIG)
    with running_server(path) as (url, proc):
        yield url, proc


def request(url: str, body=None, raw: bytes | None = None, timeout: float = 60.0, form: dict | None = None):
    """(status, headers, body bytes, seconds taken); ``form``: a form-encoded POST."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    ctype = "application/json"
    if form is not None:
        data, ctype = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read(), time.monotonic() - started


def tap(url: str, query: str, **params):
    return request(url + "/tap/sync?" + urllib.parse.urlencode({"QUERY": query, **params}))


# --- 1. nothing slow on the event loop -----------------------------------------------------------


def test_probe_answers_while_heavy_queries_run(loaded):
    url, _proc = loaded
    finished = {}

    def heavy(name, fn):
        status, _h, body, _t = fn()
        finished[name] = (time.monotonic(), status, body)

    threads = [threading.Thread(target=heavy, args=("tap", lambda: tap(url, HEAVY_TAP))),
               threading.Thread(target=heavy, args=("search", lambda: request(url + "/api/search", HEAVY_SEARCH)))]
    for t in threads:
        t.start()
    time.sleep(0.3)  # let both reach the server
    probes = []
    while len(finished) < 2 and len(probes) < 200:
        status, _h, _b, took = request(url + "/api/search/types")
        assert status == 200
        probes.append((time.monotonic(), took))
    for t in threads:
        t.join()
    assert probes, "the heavy queries finished before any probe was sent"
    first_heavy_done = min(done for done, _s, _b in finished.values())
    assert probes[0][0] < first_heavy_done, "the probe waited for a heavy query"
    assert max(took for _at, took in probes) < TIMEOUT_S / 2, probes
    # both heavy requests ran to the time limit (translation included) and said so
    for name, (_done, status, body) in finished.items():
        assert status == 408, (name, status, body[:300])
        assert b"time limit" in body


def test_full_server_says_busy_with_retry_after(loaded):
    url, _proc = loaded
    answers = []
    lock = threading.Lock()

    def heavy():
        status, headers, body, _t = tap(url, HEAVY_TAP)
        with lock:
            answers.append((status, headers.get("Retry-After"), body))

    threads = [threading.Thread(target=heavy) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a[0] for a in answers)
    assert set(statuses) <= {408, 503} and 503 in statuses and 408 in statuses, statuses
    for status, retry, body in answers:
        if status == 503:
            assert retry and int(retry) >= 1
            assert b"busy" in body and b"QUERY_STATUS" in body


def test_offloader_admits_at_most_max_heavy():
    import asyncio

    from lcpanel.core.offload import Offloader, ServerBusy

    gate = threading.Event()
    off = Offloader(workers=2, max_heavy=2, retry_after_s=3)

    async def main():
        running = [asyncio.ensure_future(off.run(gate.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert off.active == 2
        with pytest.raises(ServerBusy) as busy:
            await off.run(lambda: None)
        assert busy.value.status == 503 and busy.value.retry_after == 3
        gate.set()
        assert await asyncio.gather(*running) == [True, True]
        assert off.active == 0
        assert await off.run(lambda x: x + 1, 1) == 2

    from support import aio

    aio.run(main)
    off.shutdown()


# --- 2. bounded queries ----------------------------------------------------------------------------


def _bomb(width: int = 40_000, terms: int = 990) -> str:
    return (f"WITH t AS (SELECT TOP 1 '{'x' * width}' AS s FROM lcpanel.field) SELECT TOP 10 "
            + "||".join(["t.s"] * terms) + " AS big FROM t, lcpanel.field AS a, lcpanel.field AS b")


def _wide(columns: int = 300) -> str:
    """One row of ``columns`` values of almost 4 MiB each (each under the value limit)."""
    build = "||".join(["t0.s"] * 95)
    return (f"WITH t0 AS (SELECT TOP 1 '{'y' * 40_000}' AS s FROM lcpanel.field), t AS (SELECT {build} AS s FROM t0) "
            "SELECT TOP 10 " + ", ".join(f"t.s AS c{i}" for i in range(columns)) + " FROM t, lcpanel.field AS a")


@pytest.mark.parametrize("query", [_bomb(), _bomb(terms=190), _wide()],
                         ids=["concatenation-bomb", "concatenation-190", "wide-rows"])
def test_memory_bomb_is_refused_quickly_with_bounded_memory(loaded, query):
    url, proc = loaded
    before = rss_kib(proc.pid)
    peak = [before]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proc.pid))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        status, _h, body, took = request(url + "/tap/sync", form={"QUERY": query})
    finally:
        done.set()
        watcher.join()
    growth_mib = (max(peak[0], rss_kib(proc.pid, "VmHWM") if status else 0) - before) / 1024
    # refused (too deep an expression, a value or the working memory over its limit) or cut
    assert status in (200, 400, 413) and took < 2 * TIMEOUT_S, (status, took, body[:300])
    if status == 200:
        assert b'value="OVERFLOW"' in body
    else:
        assert b"QUERY_STATUS" in body and any(w in body for w in (b"limit", b"memory", b"too large")), body[:500]
    # the SQLite heap cap (256 MiB here) plus the answer: never the gigabytes of the issue
    assert growth_mib < 400, f"server grew {growth_mib:.0f} MiB"


def test_byte_cap_cuts_a_tap_answer_with_overflow(tmp_path):
    """A per-role byte cap well under the answer: TAP cuts it with an OVERFLOW that says so,
    the JSON API refuses with a 413 naming the cap."""
    path, _cols = build_basedir(tmp_path)
    set_config(path, "[limits]\nanonymous_requests_per_minute = 0\n[requests]\nanonymous_max_result_bytes = 20000\n")
    with running_server(path) as (url, _proc):
        status, _h, body, _t = tap(url, "SELECT TOP 3000 objectid, objecttags, ra, decl FROM lcpanel.field",
                                   MAXREC="3000")
        assert status == 200
        from astropy.io.votable import parse_single_table

        rows = len(parse_single_table(__import__("io").BytesIO(body)).array)
        assert 0 < rows < 3000, rows
        assert b'value="OVERFLOW"' in body and b"size limit" in body
        status, _h, body, _t = request(url + "/api/search", {"type": "cone", "params": {"coords": "290 45 60"},
                                                             "limit": 3000})
        assert status == 413, body[:300]
        assert b"MiB" in body and b"anonymous" in body


def test_sqlsafe_byte_cap_counts_while_fetching(tmp_path):
    import sqlite3

    from lcpanel.core.catalogs.sqlsafe import SafeConnection

    raw = sqlite3.connect(tmp_path / "t.sqlite")
    raw.execute("CREATE TABLE t (s TEXT)")
    raw.executemany("INSERT INTO t VALUES (?)", [("z" * 1000,)] * 500)
    raw.commit()
    with SafeConnection(raw, allowed_tables={"t"}, timeout_s=5, max_rows=10_000) as conn:
        whole = conn.execute("SELECT s FROM t")
        assert len(whole.rows) == 500 and not whole.more and not whole.byte_capped
        cut = conn.execute("SELECT s FROM t", max_bytes=100_000)
        assert cut.more and cut.byte_capped
        # counted as the rows come in: stops within one fetch batch under the cap
        assert 100 - 64 <= len(cut.rows) <= 100, len(cut.rows)


# --- 3. parsers never 500 ------------------------------------------------------------------------------

CONE = "1=CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', 290, 45, {r}))"
BAD_ADQL = {
    "parentheses-100": "SELECT TOP 1 * FROM lcpanel.field WHERE " + "(" * 100 + "vmag < 12" + ")" * 100,
    "not-chain": "SELECT TOP 1 * FROM lcpanel.field WHERE " + "NOT " * 2000 + "vmag < 12",
    "nested-subqueries": "SELECT TOP 1 objectid FROM lcpanel.field WHERE objectid IN "
                         + "(SELECT objectid FROM lcpanel.field WHERE objectid IN " * 60 + "('x')" + ")" * 60,
    "1200-cones": "SELECT TOP 1 * FROM lcpanel.field WHERE "
                  + " AND ".join(CONE.format(r=1 + i * 1e-4) for i in range(1200)),
    "or-chain-4500": "SELECT TOP 1 * FROM lcpanel.field WHERE " + " OR ".join(f"vmag = {i}" for i in range(4500)),
    "nul": "SELECT TOP 1 * FROM lcpanel.field WHERE objectid = 'a\x00b'",
    "escape": "SELECT TOP 1 * FROM lcpanel.field\x1b WHERE vmag < 12",
}


@pytest.mark.parametrize("name", sorted(BAD_ADQL))
def test_bad_adql_is_a_clean_4xx(loaded, name):
    url, proc = loaded
    query = BAD_ADQL[name]
    status, _h, body, took = request(url + "/tap/sync", form={"QUERY": query})
    assert status == 400 and b"QUERY_STATUS" in body and b"ERROR" in body, (status, body[:300])
    assert took < TIMEOUT_S, took
    status, _h, body, _t = request(url + "/api/search", {"type": "adql", "params": {"query": query}})
    assert status == 400, body[:300]
    message = json.loads(body)["error"]
    assert any(word in message for word in ("deep", "limit", "control character")), message
    assert "Traceback" not in server_log(proc)


@pytest.mark.parametrize("flt", ["(" * 100 + "vmag < 12" + ")" * 100, "not " * 400 + "vmag < 12",
                                 " and ".join(["vmag < 12"] * 1200), "objectid = 'a\x00b'", "vmag < 12\x07"])
def test_bad_filters_are_a_clean_4xx(loaded, flt):
    url, proc = loaded
    status, _h, body, _t = request(url + "/api/search", {"type": "cone", "params": {"coords": "290 45 5"},
                                                         "filter": flt})
    assert status == 400 and json.loads(body)["error"], body[:300]
    assert "Traceback" not in server_log(proc)


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_json_bodies_are_a_clean_4xx(loaded, depth):
    url, proc = loaded
    for raw in ("[" * depth + "]" * depth, '{"type": "cone", "params": ' + '{"a":' * depth + "1" + "}" * depth + "}"):
        status, _h, body, _t = request(url + "/api/search", raw=raw.encode())
        assert status == 400, body[:300]
        assert "nests" in json.loads(body)["error"]
    assert "Traceback" not in server_log(proc)


def test_a_with_table_cannot_unlock_an_internal_table(tmp_path):
    """``WITH catalog_info AS (...)`` somewhere in the query must not make
    ``catalog_info`` elsewhere readable (it is an internal table of every collection file)."""
    from lcpanel.app import App
    from lcpanel.errors import UserError
    from lcpanel.plugins.vo.base import service

    path, _cols = build_basedir(tmp_path)
    engine = service(App(path).start()).engine
    sneaky = [
        "SELECT COUNT(*) AS n FROM catalog_info, lcpanel.field AS f WHERE f.objectid IN "
        "(SELECT x FROM (WITH catalog_info AS (SELECT 'a' AS x) SELECT x FROM catalog_info) AS s)",
        "SELECT TOP 1 (SELECT COUNT(*) FROM catalog_info) AS n FROM lcpanel.field AS f, "
        "(WITH catalog_info AS (SELECT 1 AS x) SELECT x FROM catalog_info) AS s",
        "WITH a AS (SELECT TOP 1 ra FROM lcpanel.field) SELECT COUNT(*) AS n FROM a, "
        "(WITH catalog_info AS (SELECT 1 AS x) SELECT x FROM catalog_info) AS s WHERE 0 < "
        "(SELECT COUNT(*) FROM catalog_info)",
    ]
    for query in sneaky:
        with pytest.raises(UserError, match="catalog_info"):
            engine.run(query, maxrec=10, timeout_s=5)
    # a WITH table used where it is defined still works
    out = engine.run("WITH mine AS (SELECT TOP 5 objectid FROM lcpanel.field) "
                     "SELECT COUNT(*) AS n FROM mine", maxrec=10, timeout_s=5)
    assert out.rows == [(5,)]


# --- 4. bodies and connections ---------------------------------------------------------------------------


def _raw_exchange(url: str, head: bytes, wait_s: float) -> tuple[bytes, float]:
    """Send ``head`` on a fresh connection; everything the server sends until it closes
    the connection (or ``wait_s`` passes), and when it closed it."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    started = time.monotonic()
    received = b""
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(head)
        sock.settimeout(0.5)
        while time.monotonic() - started < wait_s:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        else:
            return received, float("inf")  # still open after wait_s
    return received, time.monotonic() - started


def test_body_over_the_cap_is_refused_before_it_is_read(loaded):
    url, _proc = loaded
    head = (b"POST /api/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n")
    answer, closed_after = _raw_exchange(url, head, wait_s=10)
    # answered and closed without waiting for (or buffering) the 100 MB announced
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert closed_after < 5


def test_large_legitimate_upload_still_works(loaded):
    url, _proc = loaded
    lines = "\n".join(f"t{i} {290 + (i % 100) * 0.001:.4f} {45 + (i // 100) * 0.001:.4f}" for i in range(5000))
    spec = {"type": "xmatch", "params": {"targets": lines, "radius_arcsec": 3}, "limit": 100}
    assert len(json.dumps(spec)) > 100_000
    status, _h, body, _t = request(url + "/api/search", spec)
    assert status == 200, body[:300]
    assert json.loads(body)["dataset_id"]


def test_slow_headers_client_is_disconnected(loaded):
    url, _proc = loaded
    # an incomplete request head, then silence
    answer, closed_after = _raw_exchange(url, b"GET /api/search/types HTTP/1.1\r\nHost: 127.0.0.1\r\n", wait_s=15)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert closed_after < 10, "the server kept a connection whose headers never came"


# --- 5. clean shutdown ----------------------------------------------------------------------------------------


def _group(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[-1].split()
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.append(int(entry))
    return out


def test_sigterm_stops_every_process_of_a_multi_process_server(demo_app):
    port = free_port()
    proc = spawn_server(demo_app.basedir, port, "--num-procs", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, proc)
        status, _h, body, _t = request(url + "/api/search", {"type": "cone", "params": {"coords": "290 45 30"}})
        assert status == 200, body[:300]
        dataset = json.loads(body)["dataset_id"]
        status, _h, body, _t = request(url + f"/api/datasets/{dataset}/products", {"builder": "lightcurves"})
        assert status in (200, 202), body[:300]
        # parent, two serving children and at least one product worker
        assert len(_group(proc.pid)) >= 4, _group(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _group(proc.pid)
        assert not left, f"still running 10 s after SIGTERM: {left}"
        proc.wait(timeout=5)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))  # the port is free
    finally:
        if _group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_large_tap_answer_is_streamed_and_whole(loaded):
    """A TAP answer larger than one piece goes out in pieces (chunked, no Content-Length)
    and is still one well-formed VOTable with every row, read back by astropy."""
    import io

    from astropy.io.votable import parse_single_table

    url, _proc = loaded
    status, headers, body, _t = tap(url, "SELECT TOP 3000 objectid, ra, decl, vmag FROM lcpanel.field ORDER BY objectid",
                                    MAXREC="3000")
    assert status == 200
    assert headers.get("Transfer-Encoding") == "chunked" and headers.get("Content-Length") is None
    table = parse_single_table(io.BytesIO(body)).to_table()
    assert len(table) == 3000 and list(table["objectid"]) == sorted(table["objectid"])
    assert b'value="OVERFLOW"' not in body


def test_page_timers_leave_the_shared_busy_flag_alone():
    """Panel's busy flag is one per process: a timer started with
    ``pn.state.add_periodic_callback`` flips it (and with it every open page's busy
    indicator, one message per page) on each run, which with a few dozen logged-in pages
    open starved the event loop. lcpanel's page timers (:func:`lcpanel.views.periodic.every`)
    run without touching it, and no view starts a timer any other way."""
    import asyncio
    import re
    from pathlib import Path

    import panel as pn
    from support.aio import run

    import lcpanel
    from lcpanel.views.periodic import every

    def flips(start):
        seen, ran = [], []
        watcher = pn.state.param.watch(lambda e: seen.append(e.new), "busy")

        async def main():
            timer = start(lambda: ran.append(1))
            while len(ran) < 3:  # three runs, however long the machine takes
                await asyncio.sleep(0.01)
            timer.stop()

        try:
            run(main)
        finally:
            pn.state.param.unwatch(watcher)
        return seen

    assert flips(lambda cb: pn.state.add_periodic_callback(cb, period=50))  # the trap is real
    assert flips(lambda cb: every(cb, 50)) == []
    package = Path(lcpanel.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if re.search(r"add_periodic_callback\(", p.read_text())]
    assert offenders == []


def test_offloaded_calls_hand_back_results_errors_context_and_cancellation():
    """What an offloaded call gives its caller: the result, the exception raised (its own
    type), the caller's context variables; work the pool drops unstarted at shutdown
    cancels the wait instead of leaving it hanging, and work whose caller stopped waiting
    before it started does not run."""
    import asyncio
    import contextvars

    from lcpanel.core.offload import Offloader

    who = contextvars.ContextVar("who", default="nobody")
    off = Offloader(workers=1, max_heavy=4)
    gates = [threading.Event(), threading.Event()]
    started = [threading.Event(), threading.Event()]

    def blocked(k):
        started[k].set()
        gates[k].wait(10)
        return "blocked done"

    async def main():
        who.set("alice")
        assert await off.run(lambda: who.get()) == "alice"
        assert await off.run(sum, [1, 2, 3]) == 6
        with pytest.raises(KeyError, match="missing"):
            await off.run(lambda: {}["missing"])
        # a call whose caller stopped waiting before it started never runs
        ran = []
        first = asyncio.ensure_future(off.run(blocked, 0))
        while not started[0].is_set():
            await asyncio.sleep(0.01)
        abandoned = asyncio.ensure_future(off.run(lambda: ran.append("abandoned")))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        with pytest.raises(asyncio.CancelledError):  # the caller has stopped waiting...
            await abandoned
        gates[0].set()  # ...before the pool could start its work
        assert await asyncio.wait_for(first, 5) == "blocked done"
        assert await off.run(lambda: "after") == "after" and ran == []
        # calls the pool drops unstarted at shutdown cancel their callers' waits
        second = asyncio.ensure_future(off.run(blocked, 1))
        queued = asyncio.ensure_future(off.run(lambda: ran.append("queued")))
        while not started[1].is_set():
            await asyncio.sleep(0.01)
        off.shutdown()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(queued, 5)
        gates[1].set()
        assert await asyncio.wait_for(second, 5) == "blocked done"
        assert off.active == 0 and ran == []

    from support import aio

    aio.run(main)


def test_shutdown_with_wait_lets_running_calls_finish_and_stops_the_workers():
    """``lcpanel serve`` stops its offloader with ``wait=True``: a search or dataset write
    under way finishes (its caller gets the answer) before the process exits, and no
    worker thread is left."""
    import asyncio

    from lcpanel.core.offload import Offloader

    off = Offloader(workers=3, max_heavy=4)
    started, release, finished = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        release.wait(30)
        finished.append(True)
        return "written"

    async def main():
        before = set(threading.enumerate())  # other tests' offloaders may have workers too
        running = asyncio.ensure_future(off.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        workers = [t for t in threading.enumerate() if t not in before and t.name.startswith("lcpanel-work")]
        assert len(workers) == 3
        stopper = threading.Thread(target=off.shutdown, kwargs={"wait": True})
        stopper.start()
        while sum(t.is_alive() for t in workers) > 1:  # the idle workers take their stop signals
            await asyncio.sleep(0.01)
        assert stopper.is_alive() and finished == []  # shutdown waits for the call under way
        release.set()
        stopper.join(30)
        assert not stopper.is_alive()
        assert finished == [True] and not any(t.is_alive() for t in workers)
        assert await asyncio.wait_for(running, 5) == "written"
        assert await off.run(lambda: "a new pool after shutdown") == "a new pool after shutdown"
        off.shutdown(wait=True)

    from support import aio

    aio.run(main)


def test_an_idle_worker_keeps_no_answer_alive():
    """A worker that has handed back its call's answer holds nothing of it: a large answer
    is freed as soon as its caller lets go of it, even when the caller resumes before the
    worker's thread has run again (other threads busy, so the wake-up can hand the GIL to
    the loop at once; before the fix, ~1 in 6 answers was still held then)."""
    import asyncio
    import gc
    import threading
    import weakref

    from lcpanel.core.offload import Offloader

    class Answer:
        pass

    off = Offloader(workers=1, max_heavy=2)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            sum(range(1000))

    busy_threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    held = []

    async def main():
        for i in range(100):
            answer = await off.run(Answer)
            gone = weakref.ref(answer)
            del answer
            await asyncio.sleep(0)  # let go of the loop callback that resumed this coroutine (it holds the answer)
            # the youngest generation only: stricter than a full collection, which is long enough for the
            # worker to run again and drop the answer itself (the old code passed with it)
            gc.collect(0)
            if gone() is not None:
                held.append(i)

    from support import aio

    for thread in busy_threads:
        thread.start()
    try:
        aio.run(main)
    finally:
        stop.set()
        off.shutdown(wait=True)
    assert held == []


def test_a_search_from_the_web_form_counts_against_the_processs_cap(tmp_path, monkeypatch):
    """The home page's search form runs its search through the app's offloader: when the
    process already holds its cap of heavy requests, the form says the server is busy and
    runs and saves nothing; otherwise the search runs on the offloader's threads."""
    from support import aio
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.core.datasets import Principal
    from lcpanel.core.offload import offloader, shutdown
    from lcpanel.views import search_form as sf

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(50, seed=3, center=(20.0, -5.0), radius_deg=0.5),
                                                  tmp_path / "f.parquet"), collection_id="f", show_progress=False)
    viewer = Principal("anon:carol")
    monkeypatch.setattr(sf, "session_viewer", lambda _app: viewer)
    threads = []
    run = sf.SearchForm._run
    monkeypatch.setattr(sf.SearchForm, "_run", lambda self, *a: threads.append(
        __import__("threading").current_thread().name) or run(self, *a))
    backend = next(b for b in app.search_backends if b.name == "cone")
    form = sf.SearchForm(app=app, backend=backend, collections=[app.catalogs.get("f").info])
    form.fields["coords"].value = "20 -5 60"
    off = offloader(app)
    try:
        for _ in range(off.max_heavy):
            off.admit()
        assert aio.run(form.search) is None
        assert "busy" in form.message.object and form.message.alert_type == "danger"
        assert threads == [] and app.datasets.list(viewer, mine=True) == []
        for _ in range(off.max_heavy):
            off.release()
        ds = aio.run(form.search)
        assert ds is not None and ds.nobjects > 0
        assert len(threads) == 1 and threads[0].startswith("lcpanel-work_")
    finally:
        shutdown(app)
