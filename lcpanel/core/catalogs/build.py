"""Write one collection's derived catalog files from column arrays.

Input is a mapping of catalog key -> 1-d array (astrobase's ``lclist['objects']`` or a
plain table's columns). Output, in one directory:

- ``catalog-objectinfo.sqlite``: table ``object_catalog`` (``row_id`` 0-based integer
  primary key, every column, order-29 HEALPix id ``hpx29`` and unit vector ``cx, cy,
  cz``), rows sorted by ``hpx29`` so a sky region is a few contiguous row ranges; an FTS5
  table ``object_fts`` over the text columns; the normalised id index ``object_ids``
  (:mod:`lcpanel.core.catalogs.idindex`); indexes on ids and commonly filtered
  columns; tables ``catalog_info`` and ``catalog_columns`` so the file describes itself.
- ``catalog-skyindex.npy``: the sky index (:mod:`lcpanel.core.catalogs.skyindex`), memory-mapped
  by server processes.
- ``catalog-kdtree.pkl``: a scipy cKDTree on the unit vectors, tree index = ``row_id``,
  for astrobase tools that expect it.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ...errors import IngestError
from . import skyindex
from .basedir import CATALOG_KDTREE, CATALOG_SKYINDEX, CATALOG_SQLITE
from .columns import (ALIAS_COLUMNS, COMMON_INDEXED, ColumnInfo, describe, is_path_column, sql_name,
                      to_sql_values)
from .idindex import build_id_index, id_columns
from ..progress import progress_bar

FTS_TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '-+_'"
INSERT_CHUNK = 50_000
#: numpy kinds whose SQL type follows from the dtype alone: such a column stays a numpy
#: array until written, turned into Python values one INSERT_CHUNK at a time (a whole
#: catalog as Python objects took ~1 KB per object: the bulk of ingest's peak memory)
CHUNKED_KINDS = "biufUS"
FOOTPRINT_MAX_CELLS = 768


@dataclass(frozen=True)
class BuiltCatalog:
    columns: tuple[ColumnInfo, ...]
    nobjects: int
    objectids: list[str]
    center_ra: float
    center_decl: float
    radius_deg: float
    footprint: dict


def build_catalog(
    out_dir: Path,
    arrays: dict[str, np.ndarray],
    *,
    extra_indexed: tuple[str, ...] = (),
    info: dict | None = None,
    show_progress: bool = True,
) -> BuiltCatalog:
    """Write the catalog files for ``arrays`` into ``out_dir`` (which must exist).

    ``arrays`` must hold ``objectid``, ``ra`` and ``decl``; every other key becomes a
    column. Raises :class:`IngestError` on anything that would make a broken catalog.
    ``arrays`` is consumed: each of its columns is dropped from it once its copy in sky
    order is made, so that a large catalog is in memory once, not twice.
    """
    objectids, ra, decl = _required(arrays)
    n = len(objectids)
    hpx = skyindex.radec_to_hpx29(ra, decl)
    order = np.argsort(hpx, kind="stable")
    xyz = skyindex.radec_to_xyz(ra[order], decl[order])

    columns, values = _columns(arrays, order, extra_indexed)
    sky_cols = [describe(c, c, t) for c, t in (("hpx29", "INTEGER"), ("cx", "REAL"), ("cy", "REAL"), ("cz", "REAL"))]
    values["hpx29"] = hpx[order]
    values["cx"], values["cy"], values["cz"] = (np.ascontiguousarray(xyz[:, i]) for i in range(3))
    all_columns = tuple(columns + sky_cols)

    _write_sqlite(out_dir / CATALOG_SQLITE, all_columns, values, n, info or {}, show_progress)
    skyindex.SkyIndex.build(ra[order], decl[order]).save(out_dir / CATALOG_SKYINDEX)
    with open(out_dir / CATALOG_KDTREE, "wb") as fh:
        pickle.dump(cKDTree(xyz), fh, protocol=pickle.HIGHEST_PROTOCOL)

    center_ra, center_decl, radius = _bounding_circle(xyz)
    return BuiltCatalog(
        columns=tuple(columns),
        nobjects=n,
        objectids=[objectids[i] for i in order.tolist()],
        center_ra=center_ra,
        center_decl=center_decl,
        radius_deg=radius,
        footprint=footprint_cells(hpx),
    )


def _required(arrays: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    missing = [k for k in ("objectid", "ra", "decl") if k not in arrays]
    if missing:
        raise IngestError(f"the catalog has no {', '.join(missing)} column; these are required")
    n = len(arrays["objectid"])
    if n == 0:
        raise IngestError("the catalog has no objects")
    for key, arr in arrays.items():
        if len(arr) != n:
            raise IngestError(f"column {key!r} has {len(arr)} values but objectid has {n}")
    objectids = [None if v is None else str(v.decode() if isinstance(v, bytes) else v).strip()
                 for v in np.asarray(arrays["objectid"]).tolist()]
    empty = [i for i, v in enumerate(objectids) if not v]
    if empty:
        raise IngestError(f"{len(empty)} objects have an empty objectid (first at row {empty[0]})")
    uniq, counts = np.unique(np.asarray(objectids), return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise IngestError(f"{len(dups)} objectids occur more than once, e.g. {', '.join(map(str, dups[:5]))}")
    try:
        ra = np.asarray(arrays["ra"], dtype=np.float64)
        decl = np.asarray(arrays["decl"], dtype=np.float64)
    except (TypeError, ValueError):
        raise IngestError("ra and decl must be numbers in decimal degrees") from None
    bad = ~np.isfinite(ra) | ~np.isfinite(decl) | (decl < -90) | (decl > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IngestError(
            f"{int(bad.sum())} objects have missing or invalid coordinates, e.g. {objectids[i]!r} "
            f"at ra={ra[i]!r}, decl={decl[i]!r}")
    return objectids, np.mod(ra, 360.0), decl


def _columns(arrays: dict, order: np.ndarray, extra_indexed: tuple[str, ...]):
    columns: list[ColumnInfo] = []
    values: dict[str, list] = {}
    seen: dict[str, str] = {}
    first = ["objectid", "ra", "decl"]
    for key in first + [k for k in arrays if k not in first]:
        name = sql_name(key)
        if name in seen:
            raise IngestError(f"catalog keys {seen[name]!r} and {key!r} both become column {name!r}")
        seen[name] = key
        arr = np.asarray(arrays[key])
        if arr.ndim != 1:
            continue
        arrays[key] = None  # the sorted copy below replaces it (see build_catalog)
        if arr.dtype.kind in CHUNKED_KINDS:  # SQL values made chunk by chunk when written
            vals = arr[order]
            sqltype = to_sql_values(vals[:0])[0]
        else:
            sqltype, vals = to_sql_values(arr[order])
        del arr
        if key == "objectid":
            sqltype = "TEXT"
            vals = vals if isinstance(vals, np.ndarray) and vals.dtype.kind in "US" else [str(v) for v in vals]
        col = describe(name, key, sqltype)
        columns.append(col)
        values[name] = vals
    unknown = [c for c in extra_indexed if c not in values]
    if unknown:
        raise IngestError(f"cannot index unknown column(s) {', '.join(unknown)}")
    names = {c.name for c in columns}
    indexed = {"objectid"} | (names & set(ALIAS_COLUMNS)) | (names & set(COMMON_INDEXED)) | set(extra_indexed)
    indexed |= {c.name for c in columns if c.name.rsplit("_", 1)[-1] in ("varperiod", "objectisvar")}
    out = []
    for c in columns:
        fts = c.sqltype == "TEXT" and not is_path_column(c.name)
        out.append(ColumnInfo(**{**c.to_dict(), "indexed": c.name in indexed, "fts": fts}))
    return out, values


def _write_sqlite(path: Path, columns, values, n: int, info: dict, show_progress: bool) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA page_size=8192")
        decl = ", ".join(f'"{c.name}" {c.sqltype}' for c in columns)
        conn.execute(f"CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, {decl})")
        marks = ",".join("?" * (len(columns) + 1))
        cols = [values[c.name] for c in columns]
        with progress_bar(total=n, desc="writing catalog", unit="obj", disable=not show_progress) as bar:
            for start in range(0, n, INSERT_CHUNK):
                stop = min(start + INSERT_CHUNK, n)
                rows = zip(range(start, stop), *(_sql_chunk(c, start, stop) for c in cols))
                conn.executemany(f"INSERT INTO object_catalog VALUES ({marks})", rows)
                bar.update(stop - start)
        conn.execute('CREATE UNIQUE INDEX object_catalog_objectid ON object_catalog(objectid)')
        conn.execute('CREATE INDEX object_catalog_hpx29 ON object_catalog(hpx29)')
        for c in columns:
            if c.indexed and c.name != "objectid":
                conn.execute(f'CREATE INDEX "object_catalog_{c.name}" ON object_catalog("{c.name}")')
        build_id_index(conn, id_columns(c.name for c in columns))
        fts_cols = [c.name for c in columns if c.fts]
        conn.execute(
            f"CREATE VIRTUAL TABLE object_fts USING fts5({', '.join(fts_cols)}, content='object_catalog', "
            f"content_rowid='row_id', tokenize=\"{FTS_TOKENIZER}\", prefix='3')")
        conn.execute("INSERT INTO object_fts(object_fts) VALUES ('rebuild')")
        conn.execute("CREATE TABLE catalog_info (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO catalog_info VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.items()])
        conn.execute("CREATE TABLE catalog_columns (position INTEGER, name TEXT PRIMARY KEY, key TEXT, sqltype TEXT, "
                     "unit TEXT, ucd TEXT, description TEXT, indexed INTEGER, fts INTEGER)")
        conn.executemany(
            "INSERT INTO catalog_columns VALUES (?,?,?,?,?,?,?,?,?)",
            [(i, c.name, c.key, c.sqltype, c.unit, c.ucd, c.description, int(c.indexed), int(c.fts))
             for i, c in enumerate(columns)])
        conn.execute("ANALYZE")
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")


def _sql_chunk(values, start: int, stop: int) -> list:
    """Rows ``start:stop`` of a column as SQL values (see :data:`CHUNKED_KINDS`)."""
    if isinstance(values, np.ndarray):
        return to_sql_values(values[start:stop])[1]
    return values[start:stop]


def _bounding_circle(xyz: np.ndarray) -> tuple[float, float, float]:
    """A centre (mean direction) and the radius that contains every object, in degrees."""
    mean = xyz.mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-9:
        return 0.0, 0.0, 180.0
    centre = mean / norm
    radius = float(np.degrees(np.arccos(np.clip((xyz @ centre).min(), -1.0, 1.0))))
    ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0)
    dec = float(np.degrees(np.arcsin(np.clip(centre[2], -1.0, 1.0))))
    return ra, dec, radius


def footprint_cells(hpx29: np.ndarray) -> dict:
    """The HEALPix cells (nested) that hold objects, at the deepest order giving at most
    ``FOOTPRINT_MAX_CELLS`` cells, with the object count in each."""
    hpx29 = np.sort(np.asarray(hpx29, dtype=np.int64))
    for order in range(12, -1, -1):
        cells, counts = np.unique(hpx29 >> np.int64(2 * (29 - order)), return_counts=True)
        if len(cells) <= FOOTPRINT_MAX_CELLS:
            return {"order": order, "cells": cells.tolist(), "counts": counts.tolist()}
    raise AssertionError("order 0 has 12 cells")
