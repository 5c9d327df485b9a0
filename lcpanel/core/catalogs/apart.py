"""Parts of a catalog built on a second core while the first builds the rest.

One connection at a time may write a SQLite file, and each index build is one thread, so
an ingest's index builds used one of the machine's cores. Parts that need only the rows,
not the catalog's other indexes, are built by an :class:`Apart` in a thread of its own,
into a file of its own, from a copy of the catalog file made once ``object_catalog`` is
written (a reader of the catalog itself would block its writer), and then copied into
the catalog: the full-text index (:mod:`lcpanel.core.catalogs.ftsapart`) and the id index
(:mod:`lcpanel.core.catalogs.idapart`).

Python's sqlite3 releases the GIL while a statement runs, so such a thread runs beside the
main thread's ``CREATE INDEX`` without slowing it but for the shared cores. A copy into an
empty table of the same schema is SQLite's transfer optimisation: records are copied, not
re-encoded, and the B-tree is appended in key order.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing
from pathlib import Path

from .timeline import Timeline

#: the settings of every connection writing a catalog file or a part of one: nothing to
#: recover from (a failed ingest leaves no catalog), so no journal and no syncs
PRAGMAS = ("journal_mode=OFF", "synchronous=OFF", "page_size=8192")


class Apart:
    """Build a part of ``columns`` into ``path`` from the rows of a copy of the catalog,
    ``catalog`` (its ``object_catalog`` complete, attached as ``catalog``), in a thread
    started at once; subclasses say how (:meth:`build`), what the catalog needs first (:meth:`create`)
    and which tables are copied (``tables``)."""

    #: the tables copied into the catalog, in this order
    tables: tuple[str, ...] = ()
    #: the name of the copy's step in the timeline
    copy_step = "copy"
    #: the prefix of the build's thread's name
    thread_name = "apart"

    def __init__(self, path: Path, catalog: Path, columns: list[str], timeline: Timeline | None = None):
        self.path = path
        self.columns = list(columns)
        self.timeline = timeline or Timeline()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._cancelled = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=self.thread_name)
        self._future = self._pool.submit(self._run, catalog)
        self._pool.shutdown(wait=False)

    def build(self, conn: sqlite3.Connection) -> None:
        """Write the part's tables in ``conn`` (its own file; the catalog's copy attached
        as ``catalog``); the caller commits."""
        raise NotImplementedError

    def create(self, conn: sqlite3.Connection) -> None:
        """Create the part's (empty) tables in the catalog ``conn``."""
        raise NotImplementedError

    def _run(self, catalog: Path) -> None:
        self.path.unlink(missing_ok=True)
        with closing(sqlite3.connect(self.path)) as conn:
            with self._lock:
                if self._cancelled:
                    return
                self._conn = conn
            try:
                for pragma in PRAGMAS:
                    conn.execute(f"PRAGMA {pragma}")
                conn.execute("ATTACH DATABASE ? AS catalog", (str(catalog),))
                self.build(conn)
                conn.commit()
            finally:
                with self._lock:
                    self._conn = None

    def wait(self) -> None:
        """Block until the build has ended, whether or not it succeeded (for work that
        should then use the core it frees; :meth:`copy_into` reports its outcome)."""
        wait([self._future])

    def copy_into(self, conn: sqlite3.Connection) -> None:
        """Wait for the build, then create the part in ``conn``'s main database and fill
        it with what was built apart. Commits ``conn``'s open transaction first (SQLite
        attaches no database inside one)."""
        self._future.result()
        self.create(conn)
        conn.commit()
        conn.execute("ATTACH DATABASE ? AS apart", (str(self.path),))
        try:
            with self.timeline.step(self.copy_step):
                for name in self.tables:
                    conn.execute(f"DELETE FROM main.{name}")
                    conn.execute(f"INSERT INTO main.{name} SELECT * FROM apart.{name}")
                conn.commit()
        finally:
            conn.rollback()
            conn.execute("DETACH DATABASE apart")

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
