"""Request budgets per client, shared by every server process of a basedir.

A generic cell rate algorithm (GCRA, the token bucket in one number per client): a
client with ``rpm`` requests per minute may make ``burst`` requests at once and then one
every ``60/rpm`` seconds. The state is one row per client in a small SQLite file (WAL,
no fsync) in the host's runtime directory (``$XDG_RUNTIME_DIR`` or ``/dev/shm``), one per
basedir: ``--num-procs`` workers share one budget instead of each granting the full rate,
and the basedir itself holds only data (counters are not worth keeping across reboots).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from .private import private_file
from ...errors import TooManyRequests
from ..wal import connect_wal

log = logging.getLogger(__name__)

DB_NAME = "ratelimit.sqlite"
FORGET_AFTER_S = 3600


@contextlib.contextmanager
def _flocked(fh):
    fcntl.flock(fh, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)


def runtime_dir(basedir: str | Path) -> Path:
    """Where a basedir's server processes keep shared, disposable state on this host."""
    root = os.environ.get("XDG_RUNTIME_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    key = hashlib.sha256(str(Path(basedir).resolve()).encode()).hexdigest()[:16]
    return Path(root) / f"lcpanel-{key}"


class RateLimiter:
    def __init__(self, basedir: str | Path, limits):
        self.path = runtime_dir(basedir) / DB_NAME
        self.limits = limits
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            private_file(self.path)
            conn = connect_wal(self.path, timeout=2, synchronous="OFF", isolation_level=None)
            conn.execute("CREATE TABLE IF NOT EXISTS buckets (client TEXT PRIMARY KEY, tat REAL NOT NULL)")
            # SQLite's busy handler sleeps in steps of milliseconds when another process
            # holds the write lock; an flock queue hands the lock over at once instead
            lock = open(private_file(self.path.with_suffix(".lock")), "a+b")
            self._local.conn, self._local.lock, self._local.pid = conn, lock, os.getpid()
        return conn

    def check(self, client: str, role: str) -> float:
        """Take one request from ``client``'s budget for ``role``: 0 if allowed, else the
        seconds to wait before the next request is allowed."""
        return self.take(client, self.limits.requests_per_minute(role), self.limits.burst)

    def spend(self, viewer, remote_ip: str | None) -> None:
        """Take one request from the budget of whoever asks, for an HTTP request and a
        page's websocket action (save, search, build) alike: anonymous visitors per client
        address, everyone else per identity. :class:`TooManyRequests` when it is spent."""
        client = f"ip:{remote_ip}" if viewer.role == "anonymous" else viewer.identity
        wait = self.check(client, viewer.role)
        if wait > 0:
            rpm = self.limits.requests_per_minute(viewer.role)
            raise TooManyRequests(f"too many requests: {viewer.role} clients may make {rpm} per minute; "
                                  f"retry in {math.ceil(wait)} s" + ("" if viewer.role != "anonymous" else
                                                                      " (log in or use an API key for more)"),
                                  retry_after=wait)

    def take(self, client: str, rpm: float, burst: int) -> float:
        """Like :meth:`check` with an explicit budget (e.g. for login attempts)."""
        if rpm <= 0:
            return 0.0
        interval = 60.0 / rpm
        tolerance = max(0, burst - 1) * interval
        try:
            conn = self._connect()
            with _flocked(self._local.lock):
                return self._take(conn, client, interval, tolerance)
        except sqlite3.OperationalError as exc:
            # counters must never take the service down: a jammed counter file lets requests through
            log.warning("rate limiter unavailable (%s); request allowed", exc)
            return 0.0

    @staticmethod
    def _take(conn, client: str, interval: float, tolerance: float) -> float:
        # one statement, its own transaction: the bucket is moved on only when the
        # request is allowed (tat - tolerance <= now); a refused one reads the wait. The
        # clock is read holding the flock: a request that waited for it must not be
        # compared with a time from before another process's update.
        now = time.time()
        # (fetchall: the statement runs to its end, so its transaction is committed here)
        if not conn.execute(
                "INSERT INTO buckets VALUES (?1, ?2 + ?3) ON CONFLICT(client) DO UPDATE "
                "SET tat = max(tat, ?2) + ?3 WHERE max(tat, ?2) - ?4 <= ?2 RETURNING 1",
                (client, now, interval, tolerance)).fetchall():
            (tat,) = conn.execute("SELECT tat FROM buckets WHERE client = ?", (client,)).fetchone()
            return max(tat, now) - tolerance - now
        if random.random() < 0.001:
            conn.execute("DELETE FROM buckets WHERE tat < ?", (now - FORGET_AFTER_S,))
        return 0.0
