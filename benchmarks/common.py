"""What the benchmark scripts share: the repository root, the example generator, the
``--smoke`` option, a basedir holding one random catalog, and ``lcpanel serve`` started,
waited for and stopped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A benchmark measures the checkout it is in, not the lcpanel installed in the environment
# (an editable install of another checkout, when an older worktree is measured to compare):
# here, and in the servers and processes it starts.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


def load_generator():
    """examples/make_collection.py, installed as the module ``make_collection`` (``pip
    install -e examples``, done by scripts/bootstrap.sh)."""
    import make_collection

    return make_collection


def status_mb(field: str) -> float:
    """One ``kB`` field of this process's ``/proc/self/status`` (``VmHWM``, ``RssFile``...) in
    MB; nan where the system has no such file."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB: ``VmHWM``, the high-water mark of its
    own memory map. (``getrusage().ru_maxrss`` is not: Linux carries the parent's figure
    into a child started by fork + exec, so a benchmark child spawned by a parent holding
    3 GB reported a 3 GB peak of its own.)"""
    return status_mb("VmHWM")


def settle(window: float = 0.05, timeout: float = 3.0, *, cpu=time.process_time, sleep=time.sleep,
           clock=time.perf_counter) -> float:
    """Wait until this process is idle: at most 5 % of a core used over ``window`` seconds
    (or ``timeout`` passed); the seconds waited. Call it before timing the CPU of a process
    that has just started: the helper threads of what it loaded keep running for a while
    (OpenBLAS's workers spin ~0.1 s after numpy loads, on another core), and
    ``time.process_time()`` counts every thread of the process. (``cpu``, ``sleep`` and
    ``clock`` are the process's own; a test passes its own.)"""
    start = clock()
    while clock() - start < timeout:
        c0 = cpu()
        sleep(window)
        if cpu() - c0 < 0.05 * window:
            break
    return clock() - start


def add_smoke_option(parser, **tiny) -> None:
    """Give a benchmark ``--smoke``: the given tiny values replace the options' defaults
    (sizes, repeats) and work files go to a temporary directory, so CI can run every
    benchmark in seconds and notice when one stops working. Smoke figures mean nothing."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and 1-2 repeats: proves the benchmark runs; its figures mean nothing")
    parser.add_argument("--example", type=Path, default=None,
                        help="an example collection already built by examples/make_collection.py (the test "
                             "suite passes its own) instead of building one; read, never written (benchmarks "
                             "that use no example collection ignore it)")
    parser.set_defaults(smoke_values=tiny)


def parse_args(parser, argv=None):
    """``parser.parse_args`` with ``--smoke`` applied (see ``add_smoke_option``)."""
    args = parser.parse_args(argv)
    if args.smoke:
        for name, value in args.smoke_values.items():
            setattr(args, name, value)
    return args


def out_dir(smoke: bool) -> Path:
    """Where cached catalogs and basedirs live: ``benchmarks/out`` (kept between runs), or
    a fresh temporary directory in smoke mode (removed at exit)."""
    if not smoke:
        return ROOT / "benchmarks" / "out"
    import atexit
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="lcpanel-bench-smoke-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# --- a catalog basedir and a server ------------------------------------------------------------


def catalog_basedir(root: Path, n: int, seed: int, center=(290.0, 45.0), radius_deg: float = 1.0, **add) -> Path:
    """The path of a new basedir under ``root`` holding one random catalog of ``n`` objects
    (the tests' :func:`support.data.catalog_basedir`, which says what the arguments mean)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.data import catalog_basedir as make

    return make(root, n, seed, center, radius_deg, **add)[0].path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(basedir: Path, *extra: str, command=None, timeout: float = 90.0, env=None, cwd=None,
                 log=None):
    """``lcpanel serve basedir --port P *extra`` in a process group of its own (``command``:
    a function of the port giving another command line), its output to ``log`` (an open
    file; None: discarded); returns (process, url) once ``/liveness`` answers, or raises
    after ``timeout`` s."""
    import subprocess
    import time
    import urllib.request

    port = free_port()
    argv = command(port) if command else [sys.executable, "-m", "lcpanel", "serve", str(basedir), "--port",
                                          str(port), *extra]
    proc = subprocess.Popen(argv, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/liveness", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                raise RuntimeError(f"lcpanel serve did not start (exit code {proc.returncode})") from None
            time.sleep(0.2)


def stop_server(proc) -> None:
    """Stop the server's whole process group (SIGTERM, then SIGKILL after 30 s)."""
    import signal
    import subprocess

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


_BARE_TORNADO = r"""
import asyncio, json, sys
import tornado.web

answer = open(sys.argv[2], "rb").read()

class Echo(tornado.web.RequestHandler):
    def post(self):
        json.loads(self.request.body)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(answer)

async def main():
    tornado.web.Application([(r"/api/search", Echo)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()

asyncio.run(main())
"""


def bare_tornado(answer: bytes):
    """A floor for the JSON API: a bare Tornado server (no Bokeh, no lcpanel) whose
    ``POST /api/search`` parses the JSON body and sends ``answer``; returns (process,
    port) once it accepts connections. Stop it with :func:`stop_server`."""
    import socket
    import subprocess
    import tempfile
    import time

    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="lcpanel-bench-answer-", delete=False) as fh:
        fh.write(answer)
    proc = subprocess.Popen([sys.executable, "-c", _BARE_TORNADO, str(port), fh.name], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            Path(fh.name).unlink(missing_ok=True)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                raise RuntimeError("the bare Tornado server did not start") from None
            time.sleep(0.1)
