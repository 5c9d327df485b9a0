"""Test servers: ``lcpanel serve`` started as users run it, the one loop that waits for
``/liveness``, and the one way to stop it.

Every test that starts ``lcpanel serve`` goes through :func:`spawn_server` (or
:func:`running_server`, which also waits and stops it) and waits through
:func:`wait_live` (or :func:`wait_output` for a line it prints), which fails at once, with
the server's output, if the process exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_live(url: str, proc: subprocess.Popen | None, log: str | Path | None = None,
              timeout: float = 90.0) -> None:
    """Return once ``url + "/liveness"`` answers 200; raise with the tail of ``log`` (the
    server's output file) if ``proc`` (None: a server in this process) exits first, or
    TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = Path(log).read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"lcpanel serve exited with {proc.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url + "/liveness", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"lcpanel serve did not become live in {timeout:.0f} s")


def spawn_server(basedir, port: int, *extra: str, log: str | Path | None = None,
                 cwd: str | Path | None = None) -> subprocess.Popen:
    """``lcpanel serve`` in its own process group, its output appended to ``log`` (a new
    temporary file if None), whose path is ``proc.log_path``. Never a pipe: a server blocks
    once nobody reads 64 KB of its request log."""
    if log is None:
        fd, log = tempfile.mkstemp(prefix="lcpanel-serve-", suffix=".log")
        os.close(fd)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lcpanel", "serve", str(basedir), "--port", str(port), *extra],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    proc.log_path = str(log)
    return proc


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send ``sig`` to the server's whole process group; SIGKILL it if it is not gone
    after ``timeout`` s."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def running_server(basedir, *extra: str, log: str | Path | None = None, cwd: str | Path | None = None,
                   timeout: float = 60.0):
    """``lcpanel serve`` on ``basedir`` (see :func:`spawn_server`), live; yields
    (url, proc) and stops the whole process group afterwards."""
    port = free_port()
    proc = spawn_server(basedir, port, *extra, log=log, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, proc, proc.log_path, timeout=timeout)
        yield url, proc
    finally:
        stop_server(proc)


def wait_output(proc: subprocess.Popen, text: str, timeout: float = 90.0, every: float = 0.005) -> str:
    """The server's output (:func:`server_log`) once it holds ``text``, looked at every
    ``every`` s; raise with the output if ``proc`` exits first, or TimeoutError after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while text not in (output := server_log(proc)):
        if proc.poll() is not None:
            raise RuntimeError(f"lcpanel serve exited with {proc.returncode}:\n{output[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"lcpanel serve did not print {text!r} in {timeout:.0f} s:\n{output[-3000:]}")
        time.sleep(every)
    return output


def server_log(proc) -> str:
    """Everything the server has written so far."""
    path = getattr(proc, "log_path", None)
    if path:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    return proc.stderr.read().decode() if proc.stderr else ""


@contextlib.contextmanager
def server_in_thread(app, timeout: float = 90.0):
    """``lcpanel.server.make_server`` for ``app`` on a thread of this process (so that a
    test can watch what the server's code does); yields its URL."""
    import asyncio
    import threading

    from lcpanel.server import make_server

    port = free_port()
    servers = []

    def serve():
        asyncio.set_event_loop(asyncio.new_event_loop())
        servers.append(make_server(app, port=port))
        servers[0].start()
        servers[0].io_loop.start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, None, timeout=timeout)
        yield url
    finally:
        if servers:
            loop = servers[0].io_loop
            loop.add_callback(servers[0].stop)
            loop.add_callback(loop.stop)
        thread.join(timeout=30)
