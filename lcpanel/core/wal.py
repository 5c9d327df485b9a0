"""Opening the SQLite databases that several processes share (dataset and product
indexes, accounts, rate-limit counters) in WAL mode.

Switching a new database to WAL, or rebuilding the WAL index after the last connection
closed, can answer "database is locked" at once, without waiting in SQLite's busy
handler; :func:`connect_wal` retries that step until its timeout, like any other wait.
"""

from __future__ import annotations

import sqlite3
import time


def connect_wal(path, *, timeout: float = 30.0, synchronous: str = "NORMAL", **kwargs) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode; ``kwargs`` go to :func:`sqlite3.connect`."""
    conn = sqlite3.connect(path, timeout=timeout, **kwargs)
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.01)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn
