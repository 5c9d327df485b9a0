"""Rows staged in input order come back in sky order (lcpanel.core.catalogs.skyorder),
through bucket files, whatever the batch and bucket sizes, and leave no file behind."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lcpanel.core.catalogs import skyorder
from lcpanel.core.catalogs.skyorder import SkyOrderStaging

SCHEMA = pa.schema([("objectid", pa.string()), ("vmag", pa.float64()), ("ndet", pa.int64())])


def _batches(n: int, sizes, rng) -> list[pa.RecordBatch]:
    vmag = rng.uniform(8, 16, n)
    vmag[::7] = np.nan
    table = pa.table({"objectid": [f"OBJ-{i}" if i % 11 else None for i in range(n)],
                      "vmag": pa.array(vmag, mask=np.isnan(vmag)),
                      "ndet": pa.array(rng.integers(0, 1000, n))}, schema=SCHEMA)
    cuts = np.cumsum(sizes)
    assert cuts[-1] == n
    return [table.slice(lo, hi - lo).to_batches()[0] for lo, hi in zip(np.r_[0, cuts[:-1]], cuts)]


@pytest.mark.parametrize("bucket_rows, bucket_bytes, max_buckets, nbuckets", [
    (1, 1 << 30, 1_000, 1_000), (13, 1 << 30, 1_000, 77), (64, 1 << 30, 1_000, 16), (10_000, 1 << 30, 1_000, 1),
    (10_000, 2_000, 1_000, None),  # wide rows: buckets of ~2,000 bytes
    (1, 1 << 30, 30, 30),  # no more files open at once than that: buckets of 34 rows
])
def test_rows_come_back_in_the_order_of_their_ranks(tmp_path, monkeypatch, bucket_rows, bucket_bytes, max_buckets,
                                                    nbuckets):
    monkeypatch.setattr(skyorder, "BUCKET_ROWS", bucket_rows)
    monkeypatch.setattr(skyorder, "BUCKET_BYTES", bucket_bytes)
    monkeypatch.setattr(skyorder, "MAX_BUCKETS", max_buckets)
    rng = np.random.default_rng(bucket_rows)
    n = 1_000
    batches = _batches(n, [1, 499, 100, 7, 393], rng)
    # ranks as the build gives them: the stable order of a sort key with ties
    key = rng.integers(0, 50, n)
    order = np.argsort(key, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)

    staging = SkyOrderStaging(tmp_path, "staging", SCHEMA)
    for batch in batches:
        staging.add(batch)
    staged_bytes = (tmp_path / "staging.arrows").stat().st_size
    staging.sort(rank)
    buckets = list(tmp_path.glob("staging-*.arrows"))
    if nbuckets is None:  # as many as the bytes need, each of about the bytes asked
        nbuckets = -(-n // int(bucket_bytes / (staged_bytes / n)))
        assert nbuckets > 10
    assert len(buckets) == nbuckets
    got = list(staging.sorted_batches(97))
    staging.close()

    assert all(b.num_rows <= 97 for b in got)
    want = pa.Table.from_batches(batches).take(pa.array(order))
    assert pa.Table.from_batches(got, schema=SCHEMA).equals(want)
    assert list(tmp_path.iterdir()) == []


def test_close_deletes_every_file_whenever_it_comes(tmp_path):
    staging = SkyOrderStaging(tmp_path, "staging", SCHEMA)
    for batch in _batches(100, [60, 40], np.random.default_rng(1)):
        staging.add(batch)
    staging.close()
    assert list(tmp_path.iterdir()) == []

    staging = SkyOrderStaging(tmp_path, "staging", SCHEMA)
    for batch in _batches(100, [60, 40], np.random.default_rng(1)):
        staging.add(batch)
    staging.sort(np.arange(100)[::-1].copy())
    next(staging.sorted_batches(10))  # a refused catalog stops reading midway
    staging.close()
    assert list(tmp_path.iterdir()) == []
