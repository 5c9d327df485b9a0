"""Streaming ingest: a Parquet catalog goes in batch by batch, every value lands as it was
in the file (nulls, NaN and empty strings as NULL), rows in sky order, and a problem found
in any batch refuses the whole catalog and changes nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import snapshot

from lcpanel.app import App
from lcpanel.core.catalogs import build, ingest, skyorder
from lcpanel.core.catalogs.ingest import add_catalog_collection
from lcpanel.core.catalogs.skyindex import SkyIndex, radec_to_hpx29, radec_to_xyz
from lcpanel.errors import IngestError

N = 103


def tricky_table(n: int = N, seed: int = 4) -> pa.Table:
    """Every kind of column a Parquet catalog brings: strings with nulls and empty values,
    dictionary-encoded strings, booleans, integers with nulls, float32 with NaN and nulls,
    timestamps, and a list column (which a catalog cannot hold)."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    note = [None if i % 7 == 0 else "" if i % 11 == 0 else f"note {i}" for i in range(n)]
    mag = rng.uniform(8, 16, n).astype(np.float32)
    mag[::13] = np.nan
    return pa.table({
        "source_id": pa.array([f"  OBJ-{i:04d} " for i in range(n)]),
        "RA_ICRS": pa.array(ra),
        "DE_ICRS": pa.array(dec),
        "kind": pa.array(["star" if i % 3 else "galaxy" for i in range(n)]).dictionary_encode(),
        "isvar": pa.array([bool(i % 2) for i in range(n)]),
        "ndet": pa.array([None if i % 5 == 0 else int(i) for i in range(n)], type=pa.int32()),
        "vmag": pa.array(mag, mask=np.arange(n) % 17 == 1),
        "note": pa.array(note, type=pa.string()),
        "seen": pa.array(np.datetime64("2026-01-01T00:00:00") + np.arange(n).astype("timedelta64[h]")),
        "spectrum": pa.array([[1.0, 2.0]] * n),
    })


def expected_rows(table: pa.Table) -> list[dict]:
    """What the catalog should hold, worked out from the file's values, in sky order."""
    cols = table.to_pydict()
    rows = []
    for i in range(table.num_rows):
        vmag = cols["vmag"][i]
        rows.append({
            "objectid": cols["source_id"][i].strip(), "ra": cols["RA_ICRS"][i], "decl": cols["DE_ICRS"][i],
            "kind": cols["kind"][i], "isvar": int(cols["isvar"][i]), "ndet": cols["ndet"][i],
            "vmag": None if vmag is None or np.isnan(vmag) else float(np.float32(vmag)),
            "note": cols["note"][i] or None,
            "hpx29": int(radec_to_hpx29(cols["RA_ICRS"][i], cols["DE_ICRS"][i])[0]), "input_row": i})
    rows.sort(key=lambda r: (r["hpx29"], r["input_row"]))
    return rows


def write_parquet(table: pa.Table, path, row_group_size: int = 40):
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 9 rows, so a 103-row file is read in 12 batches across 3 row groups, and
    sorted into sky order through 11 bucket files."""
    monkeypatch.setattr(ingest, "BATCH_ROWS", 9)
    monkeypatch.setattr(skyorder, "BUCKET_ROWS", 10)


def test_parquet_in_batches_lands_as_in_the_file(basedir, tmp_path, small_batches):
    table = tricky_table()
    path = write_parquet(table, tmp_path / "tricky.parquet")
    info = add_catalog_collection(App(basedir.path), basedir, path, show_progress=False)
    files = {p.name for p in (basedir.path / "collections" / info.collection_id).iterdir()}
    assert {"catalog-objectinfo.sqlite", "catalog-skyindex.npy"} <= files
    assert not any(f.startswith("staging") or "apart" in f for f in files) and "catalog-kdtree.pkl" not in files
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        got = [dict(r) for r in conn.execute("SELECT * FROM object_catalog ORDER BY row_id")]
        types = {r["name"]: r["type"] for r in conn.execute("PRAGMA table_info(object_catalog)")}
    want = expected_rows(table)
    assert [r["row_id"] for r in got] == list(range(N))
    assert [r["objectid"] for r in got] == [r["objectid"] for r in want]
    for g, w in zip(got, want):
        for key in ("ra", "decl", "kind", "isvar", "ndet", "vmag", "note", "hpx29"):
            assert g[key] == w[key], (w["objectid"], key)
    # a timestamp is its ISO text; a list column is left out
    seen = table.column("seen").to_pylist()
    from datetime import datetime

    assert [datetime.fromisoformat(g["seen"]) for g in got] == [seen[w["input_row"]] for w in want]
    assert "spectrum" not in types
    assert types["isvar"] == "INTEGER" and types["vmag"] == "REAL" and types["kind"] == "TEXT"

    # the sky index holds the same rows, and the footprint counts every object once
    index = SkyIndex.load(info.skyindex_npy)
    assert index.hpx29.tolist() == [r["hpx29"] for r in want]
    assert index.order.tolist() == list(range(N))
    assert sum(info.footprint["counts"]) == N
    assert info.footprint == footprint_brute_force(np.array([r["hpx29"] for r in want]))

    # ids are found as people type them, through the id index
    from lcpanel.core.catalogs.idindex import TABLE

    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        ids = dict(conn.execute(f"SELECT i.norm, c.objectid FROM {TABLE} i JOIN object_catalog c "
                                "ON c.row_id = i.row_id WHERE i.col = 0"))
    assert ids == {r["objectid"].lower(): r["objectid"] for r in want}


@pytest.mark.parametrize("ra_type", [pa.float64(), pa.float32(), pa.int32()])
def test_the_sky_index_equals_one_made_from_the_catalogs_rows(ra_type, basedir, tmp_path, small_batches):
    """The sky index is written from the positions as they were staged, not read back from
    the catalog: it must hold, row for row, what the catalog's rows give (hpx29, the unit
    vector of the stored ra/decl, the row id), ties in hpx29 (objects at one position, in
    different batches) in the catalog's order, and ra outside 0..360 as stored."""
    rng = np.random.default_rng(11)
    n = 97
    ra = rng.uniform(-30, 400, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    for i in range(0, n, 6):  # objects in one order-29 cell (~0.4 mas), far apart in the file
        ra[i], dec[i] = ra[3] + i * 1e-10, dec[3]
    ra[-1], dec[-1] = 0.0, 90.0
    table = pa.table({"objectid": [f"T-{i:03d}" for i in range(n)],
                      "ra": pa.array(np.round(ra) if pa.types.is_integer(ra_type) else ra).cast(ra_type),
                      "decl": pa.array(dec)})
    info = add_catalog_collection(App(basedir.path), basedir, write_parquet(table, tmp_path / "sky.parquet"),
                                  show_progress=False)
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT row_id, hpx29, ra, decl FROM object_catalog ORDER BY row_id").fetchall()
    row_id, hpx, ra_db, dec_db = (np.array(c) for c in zip(*rows))
    assert (np.diff(hpx) >= 0).all() and len(set(hpx.tolist())) < n - 10  # sky order, with ties
    got = SkyIndex.load(info.skyindex_npy)
    assert got.hpx29.tolist() == hpx.tolist() == radec_to_hpx29(np.mod(ra_db, 360.0), dec_db).tolist()
    assert got.order.tolist() == row_id.tolist() == list(range(n))
    assert np.array_equal(np.asarray(got.xyz), radec_to_xyz(ra_db.astype(np.float64), dec_db))
    assert not any(p.name.startswith("staging") for p in basedir.path.rglob("*"))


def footprint_brute_force(hpx29: np.ndarray) -> dict:
    """The deepest order (<= 12) with at most FOOTPRINT_MAX_CELLS cells, from all ids at once."""
    for order in range(12, -1, -1):
        cells, counts = np.unique(hpx29 >> (2 * (29 - order)), return_counts=True)
        if len(cells) <= build.FOOTPRINT_MAX_CELLS:
            return {"order": order, "cells": cells.tolist(), "counts": counts.tolist()}
    raise AssertionError


@pytest.mark.parametrize("nchunks", [1, 7, 50])
def test_footprint_added_chunk_by_chunk_equals_all_at_once(nchunks):
    rng = np.random.default_rng(nchunks)
    ra = np.concatenate([rng.uniform(0, 360, 3000), rng.normal(150, 0.5, 3000) % 360])
    dec = np.clip(np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 3000))), rng.normal(2, 0.5, 3000)]),
                  -90, 90)
    hpx = np.sort(radec_to_hpx29(ra, dec))
    counter = build._FootprintCounter()
    for part in np.array_split(hpx, nchunks):
        counter.add(part)
    assert counter.footprint() == footprint_brute_force(hpx)
    small = np.sort(radec_to_hpx29(rng.normal(150, 0.01, 50) % 360, rng.normal(2, 0.01, 50)))
    assert build.footprint_cells(small) == footprint_brute_force(small)


@pytest.mark.parametrize("problem, message", [
    ("duplicate_across_batches", r"1 objectids occur more than once, e\.g\. OBJ-0003"),
    ("empty_id_in_a_later_batch", r"empty objectid \(first at row 58\)"),
    ("bad_position_in_a_later_batch", r"'OBJ-0077' \(row 77\) at ra=nan"),
    ("dec_out_of_range", r"'OBJ-0031' \(row 31\) at ra=.*decl=95\.0"),
    ("integer_beyond_sqlite", r"column 'ndet' has a value that is not INTEGER \(rows 63 to 71\)"),
])
def test_a_problem_in_any_batch_refuses_the_catalog(problem, message, basedir, tmp_path, small_batches):
    cols = tricky_table().to_pydict()
    if problem == "duplicate_across_batches":
        cols["source_id"][90] = "OBJ-0003"
    elif problem == "empty_id_in_a_later_batch":
        cols["source_id"][58] = "   "
    elif problem == "bad_position_in_a_later_batch":
        cols["RA_ICRS"][77] = None
    elif problem == "dec_out_of_range":
        cols["DE_ICRS"][31] = 95.0
    types = {}
    if problem == "integer_beyond_sqlite":  # SQLite's integers are 64-bit signed
        cols["ndet"][66], types["ndet"] = 2**64 - 1, pa.uint64()
    table = pa.table({k: pa.array(v, types.get(k)) for k, v in cols.items() if k not in ("kind", "spectrum")})
    path = write_parquet(table, tmp_path / "broken.parquet")
    before = snapshot(basedir.path)
    with pytest.raises(IngestError, match=message):
        add_catalog_collection(App(basedir.path), basedir, path, show_progress=False)
    assert snapshot(basedir.path) == before


def test_a_truncated_parquet_file_is_refused(basedir, tmp_path):
    path = write_parquet(tricky_table(), tmp_path / "cut.parquet")
    path.write_bytes(path.read_bytes()[:-200])
    before = snapshot(basedir.path)
    with pytest.raises(IngestError, match="cannot read cut.parquet as parquet"):
        add_catalog_collection(App(basedir.path), basedir, path, show_progress=False)
    assert snapshot(basedir.path) == before


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_second_column_named_like_a_role_is_refused(suffix, basedir, tmp_path):
    """A column called ``objectid`` next to the chosen id column would have replaced it."""
    table = pa.table({"source_id": ["a", "b"], "objectid": ["x", "x"], "ra": [1.0, 2.0], "dec": [3.0, 4.0]})
    path = tmp_path / f"two_ids{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        path.write_text("source_id,objectid,ra,dec\na,x,1.0,3.0\nb,x,2.0,4.0\n")
    before = snapshot(basedir.path)
    with pytest.raises(IngestError, match="has a column 'objectid' besides 'source_id'"):
        add_catalog_collection(App(basedir.path), basedir, path, id_column="source_id", show_progress=False)
    assert snapshot(basedir.path) == before


def test_a_catalog_of_wide_rows_is_written_in_batches_bounded_in_bytes(tmp_path, monkeypatch):
    """The batches written into the catalog are bounded in bytes of staged rows, not only
    in rows: a catalog of 100 columns is written holding a fraction of the Python values
    it holds when they are bounded in rows only, and the catalog is the same. (The
    buckets' bound: tests/test_skyorder.py.)"""
    import tracemalloc

    from lcpanel.core.catalogs.build import build_catalog

    rng = np.random.default_rng(3)
    n = 12_000
    arrays = {"objectid": np.array([f"W-{i}" for i in range(n)]), "ra": rng.uniform(0, 360, n),
              "decl": np.degrees(np.arcsin(rng.uniform(-1, 1, n)))}
    arrays.update({f"m{j}": rng.normal(12, 2, n) for j in range(100)})  # ~830 bytes a row staged

    def peak_bytes(out, write_bytes, bucket_bytes):
        monkeypatch.setattr(build, "WRITE_BATCH_BYTES", write_bytes)
        monkeypatch.setattr(skyorder, "BUCKET_BYTES", bucket_bytes)
        out.mkdir()
        tracemalloc.start()
        try:
            build_catalog(out, dict(arrays), show_progress=False, kdtree=False)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    rows_only = peak_bytes(tmp_path / "rows", 1 << 40, 1 << 40)
    bounded = peak_bytes(tmp_path / "bytes", 1 << 20, 1 << 40)  # one bucket: the write batches alone
    assert bounded < rows_only / 3, (bounded, rows_only)
    with closing(sqlite3.connect(tmp_path / "rows" / build.CATALOG_SQLITE)) as a, \
            closing(sqlite3.connect(tmp_path / "bytes" / build.CATALOG_SQLITE)) as b:
        sql = "SELECT * FROM object_catalog ORDER BY row_id"
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()


def test_an_unsigned_integer_beyond_sqlite_in_a_fits_catalog_is_refused(basedir, tmp_path):
    """A FITS catalog's columns reach the build as numpy arrays (a Parquet file's as Arrow)
    and meet the same rule: a uint64 value over SQLite's 64-bit signed integers refuses
    the catalog, naming the column and the rows, and changes nothing, rather than being
    stored wrapped round to a negative number; the largest one that fits is stored as it is."""
    from astropy.table import Table

    def catalog(big, name):
        path = tmp_path / name
        Table({"objectid": ["A", "B", "C"], "ra": [1.0, 2.0, 3.0], "decl": [4.0, 5.0, 6.0],
               "ndet": np.array([1, big, 3], dtype=np.uint64)}).write(path)
        return path

    before = snapshot(basedir.path)
    with pytest.raises(IngestError, match=r"column 'ndet' has a value that is not INTEGER \(rows 0 to 2\)"):
        add_catalog_collection(App(basedir.path), basedir, catalog(2**64 - 1, "over.fits"), show_progress=False)
    assert snapshot(basedir.path) == before
    info = add_catalog_collection(App(basedir.path), basedir, catalog(2**63 - 1, "fits.fits"), show_progress=False)
    path = basedir.path / "collections" / info.collection_id / build.CATALOG_SQLITE
    with closing(sqlite3.connect(path)) as conn:
        stored = conn.execute("SELECT ndet FROM object_catalog ORDER BY objectid").fetchall()
    assert stored == [(1,), (2**63 - 1,), (3,)]
