"""What runs on the Dask workers, one HATS partition at a time, and the exact cuts.

The distance cuts and distances are lcpanel's own kernels (``lcpanel.core.catalogs.skyindex``):
LSDB prunes partitions and hands each one here, and the rows kept and the distances
reported are computed exactly as the SQLite backend computes them, so both backends
agree to the last bit. Column filters are evaluated by SQLite itself, on an in-memory
table of the filter's columns, so their semantics (NULLs, LIKE, text comparison,
type affinity) are the SQLite backend's too.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing

import numpy as np
import pandas as pd
import pyarrow as pa
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN
from lcpanel.plugin_api import angle_between_rad, pairs_within, radec_to_xyz, RECORD_DTYPE, SkyIndex
from lsdb.core.crossmatch.abstract_crossmatch_algorithm import AbstractCrossmatchAlgorithm
from lsdb.core.search.abstract_search import AbstractSearch

from .jitcache import cache_hats_kernels

cache_hats_kernels()

#: the input-list position column the cross-match adds to the targets
INPUT_COLUMN = "_lcp_input"
INPUT_RA = "_lcp_ra"
INPUT_DEC = "_lcp_dec"
DIST_COLUMN = "_lcp_dist_arcsec"
#: pruning is done on a radius widened by this (the exact cut follows)
_PRUNE_MARGIN_ARCSEC = 1e-3


def unit_vectors(frame, ra_column: str, dec_column: str) -> np.ndarray:
    """Unit vectors of a frame's positions, RA wrapped into [0, 360) as the sky index does."""
    ra = np.mod(np.asarray(frame[ra_column], dtype=np.float64), 360.0)
    dec = np.asarray(frame[dec_column], dtype=np.float64)
    return radec_to_xyz(ra, dec)


def distances_deg(frame, ra_column: str, dec_column: str, ra: float, dec: float) -> np.ndarray:
    """Angular distances (degrees) of a frame's rows from one position."""
    if len(frame) == 0:
        return np.empty(0)
    xyz = unit_vectors(frame, ra_column, dec_column)
    centre = np.broadcast_to(radec_to_xyz(ra, dec), xyz.shape)
    return np.degrees(angle_between_rad(xyz, centre))


class ExactCone(AbstractSearch):
    """LSDB search: partitions that may hold rows within ``radius_deg`` of (ra, dec), then
    lcpanel's exact cut (rows on the boundary are inside)."""

    def __init__(self, ra: float, dec: float, radius_deg: float):
        super().__init__(fine=True)
        self.ra, self.dec, self.radius_deg = float(ra), float(dec), float(radius_deg)

    def perform_hc_catalog_filter(self, hc_structure):
        radius_arcsec = self.radius_deg * 3600.0 * (1 + 1e-9) + _PRUNE_MARGIN_ARCSEC
        return hc_structure.filter_by_cone(self.ra, self.dec, radius_arcsec)

    def search_points(self, frame, metadata):
        if len(frame) == 0:
            return frame
        xyz = unit_vectors(frame, metadata.ra_column, metadata.dec_column)
        centre = np.broadcast_to(radec_to_xyz(self.ra, self.dec), xyz.shape)
        kept, _ = pairs_within(xyz, centre, math.radians(self.radius_deg))
        return frame.iloc[np.sort(kept)]


class PairsWithin(AbstractCrossmatchAlgorithm):
    """LSDB cross-match algorithm: every (input, catalog row) pair within the radius, found
    with lcpanel's HEALPix neighbourhood join on the right partition (margin included),
    with the exact distance in ``_lcp_dist_arcsec``. Choosing the nearest is the caller's
    job, over all partitions."""

    extra_columns = pd.DataFrame({DIST_COLUMN: pd.Series(dtype=pd.ArrowDtype(pa.float64()))})

    def __init__(self, radius_arcsec: float):
        self.radius_arcsec = float(radius_arcsec)

    def validate(self, left, right):
        super().validate(left, right)

    def perform_crossmatch(self, args):
        left, right = args.left_df, args.right_df
        info = args.right_catalog_info
        index = partition_index(right, info.ra_column, info.dec_column)
        inputs, rows, dist = index.crossmatch(
            np.asarray(left[INPUT_RA], dtype=np.float64), np.asarray(left[INPUT_DEC], dtype=np.float64),
            self.radius_arcsec, nearest=False)
        extra = pd.DataFrame({DIST_COLUMN: pd.Series(dist, dtype=pd.ArrowDtype(pa.float64()))})
        return inputs, rows, extra


def partition_index(frame, ra_column: str, dec_column: str) -> SkyIndex:
    """An lcpanel sky index of one partition, keyed by its ``_healpix_29`` values (the
    same order-29 ids lcpanel computes); row ids are positions in ``frame``."""
    if frame.index.name == SPATIAL_INDEX_COLUMN:
        hpx = np.asarray(frame.index, dtype=np.int64)
    else:
        hpx = np.asarray(frame[SPATIAL_INDEX_COLUMN], dtype=np.int64)
    order = np.argsort(hpx, kind="stable")
    xyz = unit_vectors(frame, ra_column, dec_column)[order]
    records = np.empty(len(order), dtype=RECORD_DTYPE)
    records["hpx29"] = hpx[order]
    records["x"], records["y"], records["z"] = xyz.T
    records["row"] = order
    return SkyIndex(records)


# --- values and filters -------------------------------------------------------------------


def pylist(series) -> list:
    """A column as Python values the way the SQLite backend returns them: NULL and NaN
    become None, integers are ints, text is str."""
    arr = pa.Array.from_pandas(series)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
        out = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            out[i] = None
        return out
    out = arr.to_pylist()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return [v if v else None for v in out]
    return out


def filter_mask(frame, flt, columns: dict[str, tuple[str, str]]) -> np.ndarray:
    """Which rows of ``frame`` pass ``flt`` (an lcpanel ``Filter``), decided by SQLite.

    ``columns`` maps each filter column's lcpanel name to (frame column, SQL type).
    """
    n = len(frame)
    if flt is None or n == 0:
        return np.ones(n, dtype=bool)
    names = sorted(flt.columns)
    decl = ", ".join(f'"{c}" {columns[c][1]}' for c in names)
    values = [pylist(frame[columns[c][0]]) for c in names]
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(f"CREATE TABLE object_catalog (pos INTEGER PRIMARY KEY, {decl})")
        marks = ",".join("?" * (len(names) + 1))
        conn.executemany(f"INSERT INTO object_catalog VALUES ({marks})", zip(range(n), *values))
        passing = [r[0] for r in conn.execute(f"SELECT pos FROM object_catalog WHERE {flt.sql}", flt.params)]
    mask = np.zeros(n, dtype=bool)
    mask[passing] = True
    return mask


def sort_positions(frame, sort, columns: dict[str, tuple[str, str]]) -> np.ndarray:
    """Positions of ``frame`` in ``sort`` order (NULLs last in both directions, ties in
    frame order), as the SQLite backend's ``ORDER BY ... NULLS LAST, row_id``."""
    order = np.arange(len(frame))
    for name, direction in reversed(list(sort)):
        values = pylist(frame[columns[name][0]])
        present = [i for i in order.tolist() if values[i] is not None]
        missing = [i for i in order.tolist() if values[i] is None]
        present.sort(key=values.__getitem__, reverse=(direction == "DESC"))
        order = np.array(present + missing, dtype=np.int64)
    return order


def partition_top(frame, flt, sort, limit: int, columns: dict[str, tuple[str, str]]):
    """One partition's part of a column-filter search: (number passing, the first
    ``limit`` passing rows in sort order, with their positions in ``_lcp_pos``)."""
    mask = filter_mask(frame, flt, columns)
    count = int(mask.sum())
    kept = frame.iloc[np.flatnonzero(mask)]
    if sort and len(kept):
        kept = kept.iloc[sort_positions(kept, sort, columns)[:limit]]
    else:
        kept = kept.iloc[:limit]
    return count, pd.DataFrame(kept)
