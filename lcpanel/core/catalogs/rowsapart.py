"""The insert of a catalog's rows, and the second half of a large catalog's rows written
by a second process.

Every row goes into ``object_catalog`` once, in sky order, by ``executemany`` of Python
values made from the staged Arrow batches (:mod:`lcpanel.core.catalogs.skyorder`). Making
and binding those values holds the GIL: at 1e7 rows of the benchmark's all-sky catalog they
are ~25 s of one core, SQLite's own work ~4 s (an ``INSERT ... SELECT`` of the same rows),
and the other core idles. A second thread gains nothing; a second process does. So for a
catalog of :data:`SPLIT_MIN_ROWS` rows or more, on two cores or more, :class:`RowsApart`
writes the later half of the sky-order buckets into a file of its own, in a process of its own,
while the ingest writes the first half into the catalog; that half is then appended to the
catalog (SQLite's transfer optimisation: the records are copied, not re-encoded, ~0.3 s per
million rows). The catalog file is the same page for page as one process writes it, but
for the header's commit counters (tests/test_rows_apart.py).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path

import pyarrow as pa

from ...errors import IngestError
from .ahead import ahead
from .apart import PRAGMAS
from .skyorder import bucket_batches
from .timeline import Step, Timeline

#: the fewest rows worth a second process (starting one costs ~0.5 s; a million rows take
#: ~2.5 s to write)
SPLIT_MIN_ROWS = 500_000
TABLE = "object_catalog"


def second_writer_from(nrows: int, nbuckets: int) -> int | None:
    """The first bucket a second process writes, or None when one process writes them all
    (a small catalog, one bucket, one core, or no Python executable to start)."""
    if nrows < SPLIT_MIN_ROWS or nbuckets < 2 or (os.cpu_count() or 1) < 2 or not sys.executable:
        return None
    return (nbuckets + 1) // 2


def python_rows(batch: pa.RecordBatch) -> list[tuple]:
    """The batch's rows as tuples of Python values, for ``executemany``."""
    return list(zip(*(column.to_pylist() for column in batch.columns)))


def insert_rows(conn: sqlite3.Connection, insert: str, batches: Iterable[pa.RecordBatch], first_row_id: int,
                written: Callable[[int], object]) -> None:
    """Insert the rows of ``batches`` (``insert`` binds each row's columns, not its row id)
    numbered from ``first_row_id``, calling ``written`` with each batch's number of rows;
    commits."""
    # SQLite numbers a new row from the largest row id + 1
    conn.execute(f"INSERT INTO {TABLE} (row_id) VALUES (?)", (first_row_id - 1,))
    with closing(ahead(batches, python_rows)) as rows:
        for batch in rows:
            conn.executemany(insert, batch)
            written(len(batch))
    conn.execute(f"DELETE FROM {TABLE} WHERE row_id = ?", (first_row_id - 1,))
    conn.commit()


class RowsApart:
    """Write the rows of the staged ``buckets`` (numbers and paths, of ``bucket_rows`` ranks
    each), numbered from ``first_row_id``, into a new ``object_catalog`` (``create``) in
    ``path``, ``batch_rows`` at a time, in a process started at once.

    The process runs this module (``python -m``), told what to do on its standard input,
    and reports on its standard output: not :mod:`multiprocessing`, whose spawned process
    runs the caller's main script again (a script calling the ingest at its top level would
    ingest again, or fail)."""

    def __init__(self, path: Path, buckets: list[tuple[int, Path]], bucket_rows: int, batch_rows: int,
                 create: str, insert: str, first_row_id: int):
        self.path = path
        #: the peak RSS of the writing process, in MB (once :meth:`append_to` ran)
        self.peak_rss_mb = 0.0
        #: rows written so far by the process
        self.rows_written = 0
        self._outcome: list | None = None
        # this process's import path, and not the working directory's packages (-P)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._process = subprocess.Popen([sys.executable, "-P", "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
        self._reader = threading.Thread(target=self._read, name="rows-apart-reader", daemon=True)
        self._reader.start()
        order = {"path": str(path), "buckets": [(k, str(p)) for k, p in buckets], "bucket_rows": bucket_rows,
                 "batch_rows": batch_rows, "create": create, "insert": insert, "first_row_id": first_row_id}
        try:
            self._process.stdin.write(json.dumps(order).encode())
            self._process.stdin.close()
        except OSError:  # it ended already: append_to says so
            pass

    def _read(self) -> None:
        for line in self._process.stdout:
            kind, _, rest = line.decode().partition(" ")
            if kind == "written":
                self.rows_written = int(rest)
            elif kind in ("done", "failed"):
                self._outcome = [kind, json.loads(rest)]
        self._process.stdout.close()

    def append_to(self, conn: sqlite3.Connection, timeline: Timeline, progress: Callable[[], object]) -> None:
        """Wait for the rows (calling ``progress`` meanwhile), then append them to ``conn``'s
        ``object_catalog``; raises :class:`IngestError` if their process failed or died."""
        while self._reader.is_alive():
            self._reader.join(0.25)
            progress()
        code = self._process.wait()
        if self._outcome is None:
            raise IngestError(f"the process writing the catalog's second half of the rows ended (exit code "
                              f"{code}) before it was done")
        kind, result = self._outcome
        if kind != "done":
            raise IngestError(f"writing the catalog's second half of the rows failed: {result}")
        start, end, self.peak_rss_mb = result
        timeline.steps.append(Step("write rows apart", "rows-apart (process)", start - timeline.origin,
                                   end - timeline.origin))
        conn.commit()  # SQLite attaches no database inside a transaction
        conn.execute("ATTACH DATABASE ? AS apart", (str(self.path),))
        try:
            with timeline.step("append the rows written apart"):
                conn.execute(f"INSERT INTO main.{TABLE} SELECT * FROM apart.{TABLE}")
                conn.commit()
        finally:
            conn.rollback()
            conn.execute("DETACH DATABASE apart")

    def close(self) -> None:
        """Stop the process if it still runs, and delete its file."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join()
        self.path.unlink(missing_ok=True)


def _write_apart(order: dict, report: Callable[[str], object]) -> None:
    """The second process's work: ``order`` as :class:`RowsApart` sends it; ``report``
    sends a line back."""
    start = time.perf_counter()
    try:
        path = Path(order["path"])
        path.unlink(missing_ok=True)
        with closing(sqlite3.connect(path)) as conn:
            for pragma in PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            conn.execute(order["create"])
            written = 0

            def count(n: int) -> None:
                nonlocal written
                written += n
                report(f"written {written}")

            batches = bucket_batches([(k, Path(p)) for k, p in order["buckets"]], order["bucket_rows"],
                                     order["batch_rows"])
            insert_rows(conn, order["insert"], batches, order["first_row_id"], count)
        report("done " + json.dumps([start, time.perf_counter(), _peak_rss_mb()]))
    except Exception as exc:  # reported to the ingest, which refuses the catalog
        report("failed " + json.dumps(f"{type(exc).__name__}: {exc}"))


def _peak_rss_mb() -> float:
    """``VmHWM`` (0 where there is no ``/proc``)."""
    try:
        with open("/proc/self/status") as fh:
            return next((int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:")), 0.0)
    except OSError:
        return 0.0


def _main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the ingest stops this process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but reports on the pipe

    def report(line: str) -> None:
        out.write(line.encode() + b"\n")
        out.flush()

    _write_apart(json.loads(sys.stdin.buffer.read()), report)


if __name__ == "__main__":
    _main()
