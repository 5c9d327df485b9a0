"""Register a HATS catalog as a collection of a basedir (``lcpanel hats-add``).

Nothing is copied: the collection's directory in the basedir holds only
``hats-collection.json`` (where the catalog is, and which HATS column each lcpanel
column reads), and the registry gets the collection's columns, size, centre and
footprint like any other collection, with ``kind = "hats"``. Removing the collection
(``lcpanel remove-collection``) deletes that small directory, never the catalog.

Columns: the object id, RA and Dec columns become ``objectid``, ``ra`` and ``decl`` as
in every lcpanel collection; other scalar columns keep their (lowercased) names; nested
and list columns are left out. A catalog written by ``hats-export`` brings back its
lcpanel column descriptions. Object ids are not copied into the registry (a HATS
catalog may hold billions), so the registry's id look-up across collections does not
list HATS collections.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
from lcpanel.plugin_api import (
    atomic_dir, Basedir, BuiltCatalog, check_collection_free, collection_slug, CollectionMeta, ColumnInfo,
    describe_column as describe, FOOTPRINT_MAX_CELLS, IngestError, radec_to_xyz, register_collection,
    sql_name, validate_collection_id)

from . import KIND
from .catalog import POINTER_FILE, open_lsdb
from .export import COLUMNS_FILE

ID_NAMES = ("objectid", "object_id", "id", "source_id", "objid", "name")
RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs")
DEC_NAMES = ("decl", "dec", "dec_deg", "dej2000", "dec_icrs")


def add_hats_collection(app, basedir: Basedir, hats_path: str | Path, *, collection_id: str | None = None,
                        meta: dict | None = None, id_column: str | None = None):
    """Register the HATS catalog or collection at ``hats_path``; returns its CollectionInfo."""
    path = Path(hats_path).resolve()
    if not path.is_dir():
        raise IngestError(f"{hats_path} is not a directory (a HATS catalog or collection)")
    saved = _saved_columns(path)
    collection_id = validate_collection_id(collection_id or saved.get("collection_id") or collection_slug(path.name))
    check_collection_free(basedir, collection_id)
    cat = open_lsdb(path)
    info = cat.hc_structure.catalog_info
    columns, column_map = _columns(cat, info, saved, id_column)
    built = BuiltCatalog(columns=tuple(columns), nobjects=int(info.total_rows or 0),
                         **_extent(cat), footprint=_footprint(cat))
    fields = {k: saved[k] for k in ("name", "description", "project", "datarelease", "citation") if k in saved}
    fields.update({k: v for k, v in (meta or {}).items() if v is not None})
    fields.setdefault("name", info.catalog_name or path.name)
    cmeta = CollectionMeta(**{k: (int(v) if k == "datarelease" else str(v)) for k, v in fields.items()})
    target = basedir.catalog_dir(collection_id)
    pointer = {"path": str(path), "columns": column_map, "ra_column": info.ra_column,
               "dec_column": info.dec_column, "margin": cat.margin is not None}
    with atomic_dir(target) as tmp:
        (tmp / POINTER_FILE).write_text(json.dumps(pointer, indent=1))
    return register_collection(app, basedir, collection_id, built, cmeta, kind=KIND, source=path, lcformat=None,
                               field_fits=None)


def _saved_columns(path: Path) -> dict:
    """What ``hats-export`` wrote about the collection, or {}."""
    for candidate in (path / COLUMNS_FILE, *path.glob(f"*/{COLUMNS_FILE}")):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise IngestError(f"{candidate} is broken: {exc}") from None
    return {}


def _sqltype(dtype) -> str | None:
    arrow = getattr(dtype, "pyarrow_dtype", None)
    if arrow is None:
        try:
            arrow = pa.from_numpy_dtype(dtype)
        except (TypeError, NotImplementedError, pa.ArrowNotImplementedError):
            return "TEXT" if str(dtype) in ("object", "str", "string") else None
    if pa.types.is_integer(arrow) or pa.types.is_boolean(arrow):
        return "INTEGER"
    if pa.types.is_floating(arrow):
        return "REAL"
    if pa.types.is_string(arrow) or pa.types.is_large_string(arrow) or pa.types.is_dictionary(arrow):
        return "TEXT"
    return None


def _columns(cat, info, saved: dict, id_column: str | None):
    """(lcpanel columns, lcpanel name -> HATS column) for the catalog."""
    dtypes = dict(cat.dtypes.items())
    nested = set(getattr(cat, "nested_columns", []) or [])
    lowered = {c.lower(): c for c in dtypes}
    if id_column and id_column not in dtypes:
        raise IngestError(f"the HATS catalog has no column {id_column!r}; it has {', '.join(list(dtypes)[:30])}")
    ident = id_column or saved.get("id_column") or next((lowered[n] for n in ID_NAMES if n in lowered), None)
    if ident is None or ident not in dtypes:
        raise IngestError(f"cannot tell the HATS catalog's object id column (looked for {', '.join(ID_NAMES)}); "
                          "name it with --id-column")
    roles = {"objectid": ident, "ra": info.ra_column, "decl": info.dec_column}
    column_map, types = {}, {}
    for name, col in roles.items():
        column_map[name] = col
        types[name] = "TEXT" if name == "objectid" else "REAL"
    for col, dtype in dtypes.items():
        if col in roles.values() or col in nested or col.startswith("_"):
            continue
        sqltype = _sqltype(dtype)
        name = sql_name(col)
        if sqltype is None or name in column_map:
            continue
        column_map[name], types[name] = col, sqltype
    if _sqltype(dtypes[ident]) == "INTEGER":
        types["objectid"] = "INTEGER"
    described = {c["name"]: ColumnInfo(**c) for c in saved.get("columns", [])}
    columns = [described.get(name) or describe(name, column_map[name], types[name]) for name in column_map]
    return columns, column_map


def _pixel_starts(cat) -> list[tuple[int, int]]:
    return [(px.order, px.pixel) for px in cat.get_healpix_pixels()]


def _extent(cat) -> dict:
    """A centre and radius (degrees) containing every partition."""
    from cdshealpix import nested
    import astropy.units as u

    pixels = _pixel_starts(cat)
    if not pixels:
        return {"center_ra": 0.0, "center_decl": 0.0, "radius_deg": 180.0}
    lon, lat, size = [], [], []
    for order, pixel in pixels:
        lo, la = nested.healpix_to_lonlat(np.array([pixel], dtype=np.uint64), order)
        lon.append(lo.to_value(u.deg)[0])
        lat.append(la.to_value(u.deg)[0])
        size.append(math.degrees(math.sqrt(4 * math.pi / (12 * 4**order))))
    xyz = radec_to_xyz(np.array(lon), np.array(lat))
    mean = xyz.mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-9:
        return {"center_ra": 0.0, "center_decl": 0.0, "radius_deg": 180.0}
    centre = mean / norm
    reach = np.degrees(np.arccos(np.clip(xyz @ centre, -1.0, 1.0))) + np.array(size)
    return {"center_ra": float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0),
            "center_decl": float(np.degrees(np.arcsin(np.clip(centre[2], -1.0, 1.0)))),
            "radius_deg": float(min(180.0, reach.max()))}


def _footprint(cat) -> dict:
    """Cells holding objects, with counts, at the deepest order giving at most
    ``FOOTPRINT_MAX_CELLS`` cells (from the catalog's skymap; else from its partitions)."""
    from hats.io.skymap import read_skymap

    hc = cat.hc_structure
    for order in range(min(12, hc.catalog_info.skymap_order or 12), -1, -1):
        try:
            skymap = np.asarray(read_skymap(hc, order))
        except (FileNotFoundError, ValueError, OSError):
            break
        cells = np.flatnonzero(skymap)
        if len(cells) <= FOOTPRINT_MAX_CELLS:
            return {"order": order, "cells": cells.tolist(), "counts": skymap[cells].astype(int).tolist()}
    pixels = _pixel_starts(cat)
    total = int(hc.catalog_info.total_rows or 0)
    for order in range(min(o for o, _ in pixels), -1, -1):
        parents: dict[int, int] = {}
        for o, p in pixels:
            parent = p >> (2 * (o - order))
            parents[parent] = parents.get(parent, 0) + total // len(pixels)
        if len(parents) <= FOOTPRINT_MAX_CELLS:
            cells = sorted(parents)
            return {"order": order, "cells": cells, "counts": [parents[c] for c in cells]}
    raise AssertionError("order 0 has 12 cells")
