"""HATS collections behind lcpanel's catalog interface, searched through LSDB.

:class:`HatsCatalog` is what the ``open_catalog`` hook returns for a collection of kind
``hats``. It implements ``lcpanel.plugin_api.CatalogBase``, the interface the built-in
search types use, so ``cone``, ``xmatch`` and ``filter`` run on it unchanged:

- ``skyindex.cone`` / ``skyindex.crossmatch``: LSDB cone search / cross-match on the
  process's Dask scheduler, with lcpanel's exact distance kernels on the workers;
- ``select``: a column filter over every partition (SQLite semantics), the first
  ``limit`` rows in sort order and the count;
- ``passing``, ``top``, ``fetch_values``: on the rows the search just found.

Row ids are handles to rows a search found in this process (a HATS catalog has no
dense row numbering), kept for the last few searches; lcpanel fetches a search's rows
right after running it. Object-id and full-text searches need SQL indexes a HATS
catalog does not have: they answer with a clear error.

LSDB catalogs are opened once per process and cached by path and modification time.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
from lcpanel.plugin_api import CatalogBase, NotFound, UserError

from .kernels import (DIST_COLUMN, INPUT_COLUMN, INPUT_DEC, INPUT_RA, ExactCone, PairsWithin, distances_deg,
                      filter_mask, partition_top, pylist)
from .runtime import HatsSettings, runtime_for

log = logging.getLogger(__name__)

POINTER_FILE = "hats-collection.json"
#: searches whose rows stay fetchable by row id
KEEP_RESULTS = 16


# --- opening LSDB catalogs, once per process ----------------------------------------------

_open: dict[tuple, object] = {}
_open_lock = threading.Lock()


def _stamp(path: Path) -> float:
    """Latest modification time of the catalog's properties files (a rewrite changes it)."""
    stamps = [p.stat().st_mtime for p in (path / "collection.properties", path / "properties",
                                          path / "partition_info.csv") if p.exists()]
    return max(stamps) if stamps else path.stat().st_mtime


def open_lsdb(path: str | Path):
    """The LSDB catalog at ``path`` (a HATS catalog or collection, with its default margin),
    opened once per process and re-opened when its files change."""
    import lsdb

    path = Path(path)
    if not path.exists():
        raise NotFound(f"HATS catalog {path} does not exist (moved or deleted?)")
    key = (os.getpid(), str(path), _stamp(path))
    with _open_lock:
        cat = _open.get(key)
        if cat is None:
            try:
                cat = lsdb.open_catalog(path, columns="all")
            except Exception as exc:
                raise UserError(f"cannot open {path} as a HATS catalog: {type(exc).__name__}: {exc}") from None
            for stale in [k for k in _open if k[1] == str(path)]:
                del _open[stale]
            _open[key] = cat
        return cat


def read_pointer(catalog_dir: str | Path) -> dict:
    path = Path(catalog_dir) / POINTER_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NotFound(f"{path} is missing or broken ({exc}); remove and re-add the collection") from None


# --- the catalog --------------------------------------------------------------------------


class _Results:
    """Rows found by recent searches, as column lists, addressable by row id."""

    def __init__(self, keep: int = KEEP_RESULTS):
        self._ids = itertools.count()
        self._frames: OrderedDict[int, tuple[int, pd.DataFrame, dict]] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def add(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        with self._lock:
            first = next(self._ids)
            if n > 1:  # reserve the block [first, first + n)
                self._ids = itertools.count(first + n)
            self._frames[first] = (n, frame.reset_index(drop=False), {})
            while len(self._frames) > self._keep:
                self._frames.popitem(last=False)
        return np.arange(first, first + n, dtype=np.int64)

    def locate(self, row_id: int) -> tuple[pd.DataFrame, dict, int]:
        with self._lock:
            for first, (n, frame, cache) in reversed(self._frames.items()):
                if first <= row_id < first + n:
                    return frame, cache, row_id - first
        raise NotFound(f"row {row_id} of a HATS collection is no longer held; run the search again")


class HatsSkyIndex:
    """The ``skyindex`` of a HATS collection: cone and cross-match through LSDB, with the
    contract of ``lcpanel.core.catalogs.skyindex.SkyIndex.cone`` and ``.crossmatch``."""

    def __init__(self, catalog: "HatsCatalog"):
        self.catalog = catalog

    def cone(self, ra_deg, dec_deg, radius_deg):
        """Rows within ``radius_deg``: (row ids, distances in degrees), nearest first."""
        cat = self.catalog
        found = cat.compute(cat.lsdb().search(ExactCone(ra_deg, dec_deg, radius_deg)))
        dist = distances_deg(found, cat.ra_column, cat.dec_column, ra_deg, dec_deg)
        order = np.lexsort((np.arange(len(found)), dist))
        return cat.results.add(found.iloc[order]), dist[order]

    def crossmatch(self, ra_deg, dec_deg, radius_arcsec, nearest: bool = True):
        """Match many positions: (input index, row ids, distances in arcsec); the nearest
        row per input, or every pair sorted by input, distance, then catalog order."""
        import lsdb

        cat = self.catalog
        ra = np.mod(np.asarray(ra_deg, dtype=np.float64), 360.0)
        dec = np.asarray(dec_deg, dtype=np.float64)
        if len(ra) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        targets = pd.DataFrame({INPUT_COLUMN: np.arange(len(ra), dtype=np.int64), INPUT_RA: ra, INPUT_DEC: dec})
        left = lsdb.from_dataframe(targets, ra_column=INPUT_RA, dec_column=INPUT_DEC,
                                   catalog_name="lcpanel_targets", margin_threshold=None)
        right = cat.lsdb()
        if right.margin is None:
            log.warning("HATS catalog %s has no margin cache: matches across partition boundaries "
                        "may be missed", cat.path)
        elif right.margin.hc_structure.catalog_info.margin_threshold < radius_arcsec:
            raise UserError(f"match radius {radius_arcsec:g}\" is over this HATS catalog's margin of "
                            f"{right.margin.hc_structure.catalog_info.margin_threshold:g}\"",
                            field="radius_arcsec")
        try:
            pairs = cat.compute(left.crossmatch(right, algorithm=PairsWithin(radius_arcsec), suffixes=("", ""),
                                                suffix_method="overlapping_columns", log_changes=False))
        except RuntimeError as exc:
            if str(exc) != "Catalogs do not overlap":  # LSDB's only word for "no target is in the coverage"
                raise
            pairs = ()
        if len(pairs) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
        pairs = pairs.drop(columns=[c for c in (INPUT_RA, INPUT_DEC) if c in pairs.columns])
        inputs = np.asarray(pairs[INPUT_COLUMN], dtype=np.int64)
        dist = np.asarray(pairs[DIST_COLUMN], dtype=np.float64)
        tiebreak = cat.row_key(pairs)
        order = np.lexsort((tiebreak, dist, inputs))
        if nearest:
            inputs_sorted = inputs[order]
            first = np.concatenate(([True], inputs_sorted[1:] != inputs_sorted[:-1]))
            order = order[first]
        kept = pairs.iloc[order].drop(columns=[INPUT_COLUMN, DIST_COLUMN])
        return inputs[order], cat.results.add(kept), dist[order]


class HatsCatalog(CatalogBase):
    """A collection of kind ``hats``: an LSDB catalog behind lcpanel's catalog interface
    (a sibling of the SQLite catalog; ``query``/``conn`` answer that SQL searches need an
    lcpanel catalog)."""

    def __init__(self, info, settings, hats_settings: HatsSettings):
        super().__init__(info, settings)
        pointer = read_pointer(info.catalog_dir)
        self.path = Path(pointer["path"])
        #: lcpanel column name -> HATS column name
        self.column_map: dict[str, str] = pointer["columns"]
        self.ra_column = pointer["ra_column"]
        self.dec_column = pointer["dec_column"]
        self.runtime = runtime_for(hats_settings)
        self.results = _Results()

    # -- LSDB ----------------------------------------------------------------------------

    def lsdb(self):
        return open_lsdb(self.path)

    def compute(self, lazy) -> pd.DataFrame:
        """A lazy LSDB catalog computed on the configured scheduler, as a pandas frame."""
        (frame,) = self.runtime.compute(lazy.to_dask_dataframe())
        return pd.DataFrame(frame)

    def row_key(self, frame) -> np.ndarray:
        """A tiebreaker in catalog order: the object id's rank, or the spatial index."""
        objectid = self.column_map.get("objectid")
        if objectid in frame.columns:
            return pd.factorize(frame[objectid].astype(str), sort=True)[0]
        return np.asarray(frame.index, dtype=np.int64)

    def _typed_columns(self) -> dict[str, tuple[str, str]]:
        return {name: (self.column_map[name], sqltype) for name, sqltype in self.columns.items()
                if name in self.column_map}

    @property
    def skyindex(self) -> HatsSkyIndex:
        return HatsSkyIndex(self)

    # -- rows found by searches ------------------------------------------------------------

    def fetch_values(self, row_ids, names: list[str]) -> list[tuple]:
        columns = []
        located = [self.results.locate(int(r)) for r in row_ids]
        for name in names:
            hats_name = self.column_map.get(name)
            col = []
            for frame, cache, pos in located:
                values = cache.get(name)
                if values is None:
                    values = cache[name] = (pylist(frame[hats_name]) if hats_name in frame.columns
                                            else [None] * len(frame))
                col.append(values[pos])
            columns.append(col)
        return list(zip(*columns)) if names else [() for _ in row_ids]

    def passing(self, row_ids, flt) -> np.ndarray:
        row_ids = np.asarray(row_ids, dtype=np.int64)
        if flt is None or len(row_ids) == 0:
            return np.ones(len(row_ids), dtype=bool)
        names = sorted(flt.columns)
        values = dict(zip(names, zip(*self.fetch_values(row_ids, names))))
        frame = pd.DataFrame({n: pd.Series(list(values[n]), dtype=object) for n in names})
        return filter_mask(frame, flt, {n: (n, self.columns[n]) for n in names})

    def select(self, flt, sort, limit: int) -> tuple[list[int], int]:
        """Rows passing ``flt`` over the whole catalog: the first ``limit`` in ``sort``
        order (catalog order, i.e. HEALPix order, when empty) and how many there are."""
        import dask

        sort = [(c, d) for c, d in sort if c in self.column_map]
        cat = self.lsdb()
        pixels = cat.get_healpix_pixels()
        parts = cat.to_delayed()
        columns = self._typed_columns()
        tasks = [dask.delayed(partition_top)(p, flt, sort, int(limit), columns) for p in parts]
        answers = self.runtime.compute(*tasks)
        start = {i: px.pixel << (2 * (29 - px.order)) for i, px in enumerate(pixels)}
        frames, total = [], 0
        for i in sorted(start, key=start.get):
            count, frame = answers[i]
            total += count
            if len(frame):
                frames.append(frame)
        if not frames:
            return [], total
        found = pd.concat(frames)
        if sort:
            from .kernels import sort_positions

            found = found.iloc[sort_positions(found, sort, columns)]
        ids = self.results.add(found.iloc[:limit])
        return ids.tolist(), total
