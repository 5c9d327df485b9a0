"""The catalog's full-text index, built on a second core while the first builds the rest.

One connection at a time may write a SQLite file, and each index build is one thread, so
an ingest used one of the machine's cores for its index builds. The FTS5 index needs only
the rows' text, which the ingest's staging file (rows in input order, with ``hpx29``)
already holds. :class:`FTSApart` builds it in a thread, into a file of its own, as a
contentless FTS5 table fed in row-id order (row ids are the rows' rank by ``hpx29``, then
input order, as the builder numbers ``object_catalog``); :meth:`FTSApart.copy_into` then
copies its shadow tables into the catalog's external-content table ``object_fts``.

FTS5 writes the same index for the same rows fed in the same order, whichever the content
option, so the copy equals a ``'rebuild'`` then ``'optimize'`` of ``object_fts`` byte for byte
(tests/test_fts_apart.py).

The rows go in with FTS5's incremental merging off (``automerge`` 0) and a merge forced only
when 64 segments pile up at one level (``crisismerge``; 16 by default); one ``'optimize'`` at
the end merges everything into a single segment, and the settings are taken out again, so
the catalog's table has FTS5's defaults. With the default merging (groups of 4), each id,
a term of its own, was rewritten at every level: 1e7 catalog rows took 55 s alone, and now
29 + 8 s; lookups in the one segment are faster too (1e6 rows: an id 22 -> 10 us, an id
prefix 40 -> 24 us).
Python's sqlite3 releases the GIL while a statement runs, so the thread runs beside the
main thread's ``CREATE INDEX`` without slowing it but for the shared cores.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing
from pathlib import Path

from .fts import FTS_TOKENIZER
from .timeline import Timeline

TABLE = "object_fts"
#: FTS5's shadow tables of an external-content or contentless table (no ``_content``)
SHADOW_TABLES = ("data", "idx", "docsize", "config")
#: FTS5 settings while the index is built (see the module docstring)
BUILD_SETTINGS = (("automerge", 0), ("crisismerge", 64))


def fts_ddl(columns: list[str], content: str = "content='object_catalog', content_rowid='row_id'") -> str:
    """``CREATE VIRTUAL TABLE object_fts``: the catalog's (external content, the default)
    or, with ``content="content=''"``, the contentless one built apart."""
    return (f'CREATE VIRTUAL TABLE {TABLE} USING fts5({_names(columns)}, {content}, '
            f'tokenize="{FTS_TOKENIZER}", prefix=\'3\')')


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class FTSApart:
    """Build the full-text index of ``columns`` of the rows in ``staging`` (table
    ``rows``) into ``path``, in a thread started at once."""

    def __init__(self, path: Path, staging: Path, columns: list[str], timeline: Timeline | None = None):
        self.path = path
        self.timeline = timeline or Timeline()
        self.columns = list(columns)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cancelled = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fts-apart")
        self._future = self._pool.submit(self._build, staging)
        self._pool.shutdown(wait=False)

    def _build(self, staging: Path) -> None:
        self.path.unlink(missing_ok=True)
        with closing(sqlite3.connect(self.path)) as conn:
            with self._lock:
                if self._cancelled:
                    return
                self._conn = conn
            try:
                for pragma in ("journal_mode=OFF", "synchronous=OFF", "page_size=8192"):
                    conn.execute(f"PRAGMA {pragma}")
                conn.execute("ATTACH DATABASE ? AS staging", (str(staging),))
                conn.execute(fts_ddl(self.columns, content="content=''"))
                conn.executemany(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES (?, ?)", BUILD_SETTINGS)
                names = _names(self.columns)
                with self.timeline.step("full text, built apart"):
                    conn.execute(f"INSERT INTO {TABLE}(rowid, {names}) "
                                 f"SELECT row_number() OVER (ORDER BY hpx29, rowid) - 1, {names} "
                                 "FROM staging.rows ORDER BY hpx29, rowid")
                    conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')")
                    conn.execute(f"DELETE FROM {TABLE}_config WHERE k IN ({', '.join('?' * len(BUILD_SETTINGS))})",
                                 [k for k, _ in BUILD_SETTINGS])
                    conn.commit()
            finally:
                with self._lock:
                    self._conn = None

    def wait(self) -> None:
        """Block until the build has ended, whether or not it succeeded (for work that
        should then use the core it frees; :meth:`copy_into` reports its outcome)."""
        wait([self._future])

    def copy_into(self, conn: sqlite3.Connection) -> None:
        """Wait for the build, then create the catalog's ``object_fts`` in ``conn``'s main
        database and fill it with the index built apart. Commits ``conn``'s open
        transaction first (SQLite attaches no database inside one)."""
        self._future.result()
        conn.execute(fts_ddl(self.columns))
        conn.commit()
        conn.execute("ATTACH DATABASE ? AS fts_apart", (str(self.path),))
        try:
            with self.timeline.step("copy of the full text"):
                for name in SHADOW_TABLES:
                    conn.execute(f"DELETE FROM main.{TABLE}_{name}")
                    conn.execute(f"INSERT INTO main.{TABLE}_{name} SELECT * FROM fts_apart.{TABLE}_{name}")
                conn.commit()
        finally:
            conn.rollback()
            conn.execute("DETACH DATABASE fts_apart")

    def close(self) -> None:
        """Stop the build if it is still running, wait for its thread and delete its file."""
        with self._lock:
            self._cancelled = True
            if self._conn is not None:
                self._conn.interrupt()
        try:
            self._future.result()
        except Exception:
            # interrupted, or failed: copy_into raised it already, or the caller is
            # raising its own error, which this one must not hide
            pass
        finally:
            self.path.unlink(missing_ok=True)
