"""An ingest's rows staged on disk in input order and read back in sky order.

A catalog's rows are stored sorted by ``hpx29`` (then input order), so a sky region is a
few contiguous row ranges; they arrive in whatever order the input file has, and a 1e7-row
catalog does not fit in memory as Python values. :class:`SkyOrderStaging` keeps them as
Arrow record batches (every column already as its SQL values: int64, float64 or string,
nulls for SQL NULL) and sorts them in two passes over files, in bounded memory:

1. :meth:`~SkyOrderStaging.add` appends each batch to one file, in input order.
2. :meth:`~SkyOrderStaging.sort` is given every row's rank in sky order (from the
   positions alone: :class:`numpy.argsort` of ``hpx29``, stable) and deals the rows into
   buckets of consecutive ranks (:data:`BUCKET_ROWS`, fewer for wide rows:
   :data:`BUCKET_BYTES`), one file each, with their ranks.
3. :meth:`~SkyOrderStaging.sorted_batches` reads one bucket at a time, puts its rows in
   rank order (the ranks of a bucket are a permutation of its range: no sort) and yields
   them in batches.

Memory is two input batches (one dealt while the other is written), then one bucket twice
(as read and as sorted): at most ~32 MB
of staged rows, ~22 MB (125,000 rows) of the benchmark's all-sky catalog; larger buckets
(500,000 rows, ~90 MB) made the 1e6 ingest's peak RSS 200 MB higher and no ingest faster.

It replaced staging the rows in a SQLite table and copying them out with ``ORDER BY
hpx29``: at 1e7 rows that was 41-65 s of the ingest's main thread, inserting every row
twice and sorting them on disk; now 7-10 s, and the one insert into the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pyarrow as pa

from .ahead import ahead

#: consecutive sky-order ranks per bucket file, at most; and at most about this many bytes
#: of staged rows (a catalog of wide rows gets smaller buckets)
BUCKET_ROWS = 125_000
BUCKET_BYTES = 32 << 20
#: bucket files open at once while rows are dealt, at most (larger buckets beyond that:
#: 1e9 rows of the benchmark's all-sky catalog)
MAX_BUCKETS = 1000
#: the Arrow type holding each SQL type's values
ARROW_TYPES = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}
RANK = "__rank"


class SkyOrderStaging:
    """Rows of ``schema`` staged in files named ``prefix*`` in ``directory``."""

    def __init__(self, directory: Path, prefix: str, schema: pa.Schema):
        self.directory, self.prefix, self.schema = directory, prefix, schema
        self.nrows = 0
        self._input = directory / f"{prefix}.arrows"
        self._sink = pa.OSFile(str(self._input), "wb")
        self._writer = pa.ipc.new_stream(self._sink, schema)
        self._buckets: list[Path] = []
        self.bucket_rows = BUCKET_ROWS
        #: the mean bytes of a staged row (once :meth:`sort` ran)
        self.row_bytes = 0.0

    def add(self, batch: pa.RecordBatch) -> None:
        """Append one batch (of ``schema``), in input order."""
        self._writer.write_batch(batch)
        self.nrows += batch.num_rows

    def sort(self, rank: np.ndarray) -> None:
        """Deal the staged rows into bucket files; ``rank[i]`` is the sky-order position
        (0 to nrows - 1, each once) of the i-th row added."""
        self._close_input()
        self.row_bytes = self._input.stat().st_size / max(1, self.nrows)
        self.bucket_rows = max(1, min(BUCKET_ROWS, int(BUCKET_BYTES / self.row_bytes)), -(-self.nrows // MAX_BUCKETS))
        nbuckets = max(1, -(-self.nrows // self.bucket_rows))
        self._buckets = [self.directory / f"{self.prefix}-{k:05d}.arrows" for k in range(nbuckets)]
        schema = self.schema.append(pa.field(RANK, pa.int64()))
        sinks = [pa.OSFile(str(p), "wb") for p in self._buckets]
        writers = [pa.ipc.new_stream(sink, schema) for sink in sinks]
        start = 0

        def deal(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray]:
            """The batch's rows by bucket, with their ranks; each row's bucket; where the buckets change."""
            nonlocal start
            ranks = rank[start:start + batch.num_rows]
            start += batch.num_rows
            buckets = ranks // self.bucket_rows
            by_bucket = np.argsort(buckets, kind="stable")
            buckets = buckets[by_bucket]
            dealt = pa.RecordBatch.from_arrays(
                batch.take(pa.array(by_bucket)).columns + [pa.array(ranks[by_bucket])], schema=schema)
            return dealt, buckets, np.flatnonzero(np.diff(buckets)) + 1

        try:
            # the next batch is read and dealt while this one is written (3.1e6 rows: 0.8 -> 0.4-0.6 s)
            with pa.OSFile(str(self._input), "rb") as fh, closing(ahead(pa.ipc.open_stream(fh), deal)) as batches:
                for dealt, buckets, cuts in batches:
                    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(buckets)]):
                        writers[int(buckets[lo])].write_batch(dealt.slice(lo, hi - lo))
        finally:
            for writer, sink in zip(writers, sinks):
                writer.close()
                sink.close()
        self._input.unlink()

    def sorted_batches(self, rows: int, first: int = 0, stop: int | None = None) -> Iterator[pa.RecordBatch]:
        """The staged rows in sky order, ``rows`` at a time (each bucket file is deleted
        once read); with ``first`` and ``stop``, only those of buckets ``first`` to ``stop - 1``."""
        return bucket_batches(self.buckets(first, stop), self.bucket_rows, rows)

    def buckets(self, first: int = 0, stop: int | None = None) -> list[tuple[int, Path]]:
        """The bucket files ``first`` to ``stop - 1`` (once :meth:`sort` ran), with their numbers."""
        return list(enumerate(self._buckets))[first:stop]

    def _close_input(self) -> None:
        if not self._sink.closed:
            self._writer.close()
            self._sink.close()

    def close(self) -> None:
        """Delete every file (whatever was read or not)."""
        self._close_input()
        for path in [self._input, *self._buckets]:
            path.unlink(missing_ok=True)


def bucket_batches(buckets: list[tuple[int, Path]], bucket_rows: int, rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of bucket files (:meth:`SkyOrderStaging.buckets`: numbers and paths, of
    ``bucket_rows`` ranks each) in sky order, ``rows`` at a time, each file deleted once
    read (a function of its own: a second process writing rows reads its buckets with it)."""
    for k, path in buckets:
        with pa.OSFile(str(path), "rb") as fh:
            table = pa.ipc.open_stream(fh).read_all()
        path.unlink()
        positions = table.column(RANK).to_numpy() - k * bucket_rows
        order = np.empty(len(positions), dtype=np.int64)
        order[positions] = np.arange(len(positions))
        table = table.drop_columns([RANK]).take(pa.array(order))
        for batch in table.to_batches(max_chunksize=rows):
            yield batch
        del table
