"""An index of a collection's period-finding results: one row per object, magcol and method.

astrobase writes one period-finding pickle per object (``periodfinding/periodfinding-<id>.pkl``,
the catalog's ``pffname`` column): ``{magcol: {"0-gls": {"bestperiod", "bestlspval",
"nbestperiods", ...}, "1-bls": {...}, "pfmethods": [...]}}``. Searching by period over
those files would read every pickle on every search, so the plugin reads them once
per collection (when the collection is added, or at the first search) into small numpy
arrays, kept in ``BASEDIR/collections/<id>/periodsearch-index.npz`` beside lcpanel's own
derived catalog (it goes away with the collection) and in memory per process.

The file records the collection's ``added_at``: a collection removed and added again
gets a fresh index.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lcpanel.plugin_api import (
    atomic_path, CheckplotError, method_code, pf_entries, read_checkplot_bytes, sql_name, UserError)

log = logging.getLogger(__name__)

INDEX_FILE = "periodsearch-index.npz"
#: bump when the arrays change meaning; an index of another version is rebuilt
INDEX_VERSION = 1


@dataclass(frozen=True)
class PFIndex:
    """Parallel arrays, one element per (object, magcol, method), in the catalog's row
    order and each pickle's ``pfmethods`` order."""

    row_id: np.ndarray   # int64, the catalog's row_id
    magcol: np.ndarray   # str, SQL form of the magcol ("aep_000")
    method: np.ndarray   # str, astrobase method code ("gls", "bls", "pdm"...)
    period: np.ndarray   # float64, best period in days (NaN when missing)
    peak: np.ndarray     # float64, periodogram value at the best period
    nobjects: int        # objects with a readable period-finding pickle
    unreadable: int      # objects whose pickle could not be read

    def __len__(self) -> int:
        return len(self.row_id)

    def magcols(self) -> list[str]:
        """The magcols present, in order of first appearance."""
        return list(dict.fromkeys(self.magcol.tolist()))


def _float(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def read_pfpickle(path: str | Path) -> dict:
    """A period-finding pickle, read with lcpanel's restricted unpickler (plain
    containers and numpy data only). Raises :class:`lcpanel.core.objects.checkplots.CheckplotError`."""
    path = Path(path)
    pf, _gz, _proto = read_checkplot_bytes(path.read_bytes(), path.name)
    return pf


def pf_results(pf: dict):
    """Yield ``(magcol, method, entry)`` for every magcol and method of a pickle."""
    for magcol, per_magcol in pf.items():
        if not isinstance(per_magcol, dict) or magcol in ("kwargs",):
            continue
        for key, entry in pf_entries(per_magcol):
            yield str(magcol), method_code(key), entry


def build_index(collection) -> PFIndex:
    """Read every period-finding pickle of a collection (``collection``: its
    :class:`lcpanel.core.catalogs.basedir.CollectionInfo`)."""
    rows, magcols, methods, periods, peaks = [], [], [], [], []
    nobjects = unreadable = 0
    if collection.kind == "astrobase":
        uri = f"file:{collection.catalog_sqlite}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            names = {r[1] for r in conn.execute("PRAGMA table_info(object_catalog)")}
            found = (conn.execute("SELECT row_id, pffname FROM object_catalog WHERE pffname IS NOT NULL "
                                  "ORDER BY row_id").fetchall() if "pffname" in names else [])
        for row_id, relpath in found:
            path = collection.object_file(relpath)
            if path is None:
                continue
            try:
                pf = read_pfpickle(path)
            except (CheckplotError, OSError) as exc:
                log.warning("periodsearch: skipping %s: %s", path, exc)
                unreadable += 1
                continue
            nobjects += 1
            for magcol, method, entry in pf_results(pf):
                try:
                    magcol = sql_name(magcol)
                except UserError:
                    continue
                rows.append(row_id)
                magcols.append(magcol)
                methods.append(method)
                periods.append(_float(entry.get("bestperiod")))
                peaks.append(_float(entry.get("bestlspval")))
    return PFIndex(row_id=np.array(rows, dtype=np.int64), magcol=np.array(magcols, dtype=str),
                   method=np.array(methods, dtype=str), period=np.array(periods, dtype=np.float64),
                   peak=np.array(peaks, dtype=np.float64), nobjects=nobjects, unreadable=unreadable)


def save_index(index: PFIndex, collection) -> Path:
    target = Path(collection.catalog_dir) / INDEX_FILE
    with atomic_path(target, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, row_id=index.row_id, magcol=index.magcol, method=index.method, period=index.period,
                 peak=index.peak, counts=np.array([index.nobjects, index.unreadable], dtype=np.int64),
                 stamp=np.array([collection.added_at, str(INDEX_VERSION)]))
    return target


def _read_saved(collection) -> PFIndex | None:
    path = Path(collection.catalog_dir) / INDEX_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            if data["stamp"].tolist() != [collection.added_at, str(INDEX_VERSION)]:
                return None
            counts = data["counts"].tolist()
            return PFIndex(row_id=data["row_id"], magcol=data["magcol"], method=data["method"],
                           period=data["period"], peak=data["peak"], nobjects=counts[0], unreadable=counts[1])
    except (OSError, KeyError, ValueError):
        return None


_cache: dict[tuple[str, str], PFIndex] = {}
_lock = threading.Lock()


def get_index(collection) -> PFIndex:
    """The collection's index: from memory, else from its file, else built (and saved
    when the basedir is writable)."""
    key = (str(collection.catalog_dir), collection.added_at)
    with _lock:
        index = _cache.get(key)
        if index is not None:
            return index
        index = _read_saved(collection)
        if index is None:
            index = build_index(collection)
            try:
                save_index(index, collection)
            except OSError as exc:
                log.warning("periodsearch: cannot save the index of %s: %s", collection.collection_id, exc)
        _cache[key] = index
        return index


def clear_cache() -> None:
    with _lock:
        _cache.clear()
