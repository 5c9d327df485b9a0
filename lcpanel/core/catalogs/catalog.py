"""Read-only access to the collections' derived catalogs, shared by every search.

:class:`CatalogBase` is the contract every search type runs on: the SQLite
:class:`Catalog` of an ingested collection and the catalogs that plugins open through
the ``open_catalog`` hook (e.g. HATS) are siblings under it.
:class:`Catalogs` (one per app) opens each collection once per process: its SQLite
catalog on read-only, guarded connections (one per thread) and its sky index (read
through the system's file cache, so server processes share the pages and start fast). A collection added
or removed while the server runs is seen at the next search.
"""

from __future__ import annotations

import abc
import json
import logging
import math
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np

from ...errors import UserError
from .basedir import Basedir, CollectionInfo
from .skyindex import SkyIndex
from .filters import sort_sql
from .sqlsafe import connect_readonly

CATALOG_TABLES = {"object_catalog", "object_fts", "object_ids", "object_id_columns"}
log = logging.getLogger(__name__)
# searches bound their own results (limits, sky regions); this only stops runaways
INTERNAL_MAX_ROWS = 20_000_000
#: the most rows :func:`few_rows` lets a filter read from its indexes before ordering them
FEW_ROWS_MAX = 250_000


def _ids_json(row_ids) -> str:
    return json.dumps([int(r) for r in row_ids])


class CatalogBase(abc.ABC):
    """What a search needs of one collection's catalog, whatever stores it.

    ``info`` is the collection's :class:`CollectionInfo`, ``settings`` the basedir's
    :class:`lcpanel.config.SearchSettings`, ``columns`` maps column name to SQL type.
    Row ids are integers the catalog hands out (``select``, ``skyindex``) and takes back
    (``fetch_values``, ``passing``). Only SQL catalogs answer ``query``/``conn``
    (object-id and full-text searches); others raise :class:`UserError` saying so.
    """

    #: what the catalog answers, for the error of an SQL-only search run on it
    searches = "cone, cross-match and column-filter searches"

    def __init__(self, info: CollectionInfo, settings):
        self.info = info
        self.collection_id = info.collection_id
        self.settings = settings
        self.columns = {c.name: c.sqltype for c in info.columns}

    @property
    @abc.abstractmethod
    def skyindex(self):
        """An object with ``cone(ra_deg, dec_deg, radius_deg)`` -> (row ids, distances in deg,
        nearest first) and ``crossmatch(ra_deg, dec_deg, radius_arcsec, nearest=True)`` ->
        (input index, row ids, distances in arcsec): the contract of :class:`SkyIndex`."""

    @abc.abstractmethod
    def fetch_values(self, row_ids, names: list[str]) -> list[tuple]:
        """Tuples of the named columns of the given rows, in the order of ``row_ids``."""

    @abc.abstractmethod
    def passing(self, row_ids, flt) -> np.ndarray:
        """Boolean mask: which of ``row_ids`` pass the filter (all when ``flt`` is None)."""

    @abc.abstractmethod
    def select(self, flt, sort, limit: int) -> tuple[list[int], int]:
        """Rows passing ``flt`` (all rows when None): the first ``limit`` in ``sort`` order
        (the catalog's own order when empty), and how many there are."""

    def conn(self):
        """A guarded read-only SQL connection (SQL catalogs only)."""
        raise UserError(f"collection {self.collection_id!r} is a {self.info.kind.upper()} catalog: it answers "
                        f"{self.searches} (object-id and full-text searches need an lcpanel catalog)")

    def query(self, sql: str, params=()) -> list[tuple]:
        """Rows of a read-only SQL query over ``object_catalog`` (SQL catalogs only)."""
        return self.conn().execute(sql, tuple(params)).rows

    def object_row(self, objectid: str, names: list[str] | None = None) -> dict | None:
        """One object's catalog row (the named columns, default all) as a dict, or None
        when the catalog has no such object (SQL catalogs only)."""
        names = [n for n in (names if names is not None else self.columns) if n in self.columns]
        if not names:
            return None
        cols = ", ".join(f'"{n}"' for n in names)
        rows = self.query(f"SELECT {cols} FROM object_catalog WHERE objectid = ?", (objectid,))
        return dict(zip(names, rows[0])) if rows else None

    def object_file(self, objectid: str, column: str) -> Path | None:
        """The absolute path of an object's file named in ``column`` (``lcfname``, ``cpfname``,
        ``pffname``), or None; never a path outside the collection's directory."""
        if column not in self.columns:
            return None
        rows = self.query(f'SELECT "{column}" FROM object_catalog WHERE objectid = ?', (objectid,))
        return self.info.object_file(rows[0][0]) if rows else None

    def fetch_rows(self, row_ids, names: list[str]) -> list[dict]:
        """The named columns of the given rows, in the order of ``row_ids``."""
        return [dict(zip(names, values)) for values in self.fetch_values(row_ids, names)]

    def top(self, row_ids, extra: dict, sort, limit: int) -> list[int]:
        """Indices into ``row_ids`` of the first ``limit`` in ``sort`` order; sort keys may be
        catalog columns or the search's extra columns. NULLs sort last."""
        n = len(row_ids)
        if n == 0:
            return []
        catalog_cols = [c for c, _ in sort if c in self.columns]
        values = {c: [None] * n for c in catalog_cols}
        if catalog_cols:
            for i, row in enumerate(self.fetch_rows(row_ids, catalog_cols)):
                for c in catalog_cols:
                    values[c][i] = row[c]
        values.update(extra)
        values["collection"] = [self.collection_id] * n
        order = list(range(n))
        for column, direction in reversed(list(sort)):
            col = values[column]
            present = [i for i in order if col[i] is not None]
            missing = [i for i in order if col[i] is None]
            present.sort(key=col.__getitem__, reverse=(direction == "DESC"))
            order = present + missing
        return order[:limit]


class Catalog(CatalogBase):
    """An ingested collection's SQLite catalog: columns, sky index and guarded SQL."""

    def __init__(self, info: CollectionInfo, settings):
        super().__init__(info, settings)
        self._local = threading.local()
        self._skyindex: SkyIndex | None = None
        self._id_index: bool | None = None
        self._id_numbers: dict[str, int] | None = None
        #: (filter SQL, ORDER BY) -> whether to count through the indexes first (:meth:`select`)
        self._plans: dict[tuple[str, str], bool] = {}

    @property
    def skyindex(self) -> SkyIndex:
        if self._skyindex is None:
            self._skyindex = SkyIndex.load(self.info.skyindex_npy, mmap=True)
        return self._skyindex

    @property
    def id_index(self) -> bool:
        """Whether the catalog has its id index (:mod:`lcpanel.core.catalogs.idindex`); a catalog
        made before it existed gets it here, once."""
        if self._id_index is None:
            from .idindex import ensure_id_index

            try:
                ensure_id_index(self.info.catalog_sqlite)
                self._id_index = True
            except (OSError, sqlite3.Error) as exc:  # e.g. a read-only catalog directory
                log.warning("collection %s: no id index (%s); id searches scan the catalog", self.collection_id, exc)
                self._id_index = False
        return self._id_index

    def conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never across a fork
            conn = connect_readonly(
                self.info.catalog_sqlite, allowed_tables=CATALOG_TABLES,
                timeout_s=self.settings.query_timeout_s, max_rows=INTERNAL_MAX_ROWS)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def fetch_values(self, row_ids, names: list[str]) -> list[tuple]:
        if len(row_ids) == 0:
            return []
        cols = ", ".join(f'"{n}"' for n in names)
        found = {}
        for chunk in _chunks(list(row_ids), 20_000):
            for rec in self.query(
                    f"SELECT row_id, {cols} FROM object_catalog WHERE row_id IN (SELECT value FROM json_each(?))",
                    (_ids_json(chunk),)):
                found[rec[0]] = rec[1:]
        return [found[int(r)] for r in row_ids]

    def _alias_lookup(self, column: str, values) -> tuple[str, tuple] | None:
        """The condition on ``object_ids`` (SQL, parameters) whose entries' rows include
        every row whose alias id ``column`` equals one of ``values``
        (:func:`idindex.equality_sql`), or None when the index cannot tell (not an alias
        id column of text, a blank value, no index)."""
        from . import idindex

        if self.columns.get(column) != "TEXT" or column == "objectid" or not self.id_index:
            return None
        if self._id_numbers is None:
            self._id_numbers = idindex.column_numbers(self.conn())
        col = self._id_numbers.get(column)
        keys = idindex.equality_keys(values) if col is not None else None
        return idindex.equality_sql(col, keys) if keys is not None else None

    def where_sql(self, flt) -> tuple[str, tuple]:
        """The filter's SQL and parameters for ``object_catalog``: its own, and for each
        equality it requires on an alias id column (``Filter.equalities``) a look-up of
        the id index, which holds those columns' values (they have no index of their
        own: :func:`lcpanel.core.catalogs.idindex.btree_of_its_own`)."""
        terms, params = [f"({flt.sql})"], tuple(flt.params)
        for column, values in flt.equalities:
            lookup = self._alias_lookup(column, values)
            if lookup is not None:
                terms.append(f"row_id IN (SELECT row_id FROM object_ids WHERE {lookup[0]})")
                params += lookup[1]
        return (" AND ".join(terms), params) if len(terms) > 1 else (flt.sql, tuple(flt.params))

    def id_rows(self, column: str, values) -> list[int] | None:
        """Row ids (sorted; a superset) of the rows whose alias id ``column`` may equal one
        of ``values``, from the id index; None when it cannot tell (:meth:`_alias_lookup`)."""
        lookup = self._alias_lookup(column, values)
        if lookup is None:
            return None
        sql, params = lookup
        return [r[0] for r in self.query(f"SELECT DISTINCT row_id FROM object_ids WHERE {sql} ORDER BY row_id", params)]

    def passing(self, row_ids, flt) -> np.ndarray:
        row_ids = np.asarray(row_ids, dtype=np.int64)
        if flt is None or len(row_ids) == 0:
            return np.ones(len(row_ids), dtype=bool)
        ok: set[int] = set()
        where, params = self.where_sql(flt)
        for chunk in _chunks(row_ids.tolist(), 20_000):
            ok.update(r[0] for r in self.query(
                f"SELECT row_id FROM object_catalog WHERE row_id IN (SELECT value FROM json_each(?)) AND ({where})",
                (_ids_json(chunk), *params)))
        return np.fromiter((r in ok for r in row_ids.tolist()), dtype=bool, count=len(row_ids))

    def select(self, flt, sort, limit: int) -> tuple[list[int], int]:
        """(Row order when ``sort`` is empty.)

        SQLite's planner cannot tell how many rows a condition keeps (no histograms), and for
        ``ORDER BY row_id LIMIT n`` it walks the table in row order, hoping to meet ``n``
        matches soon: through every row when a handful pass (``vmag < 6``: 138 ms at 1e6
        objects, against 0.1 ms through the vmag index). So when SQLite would walk, but can
        find the filter's rows through its indexes, they are counted there first (a count
        the answer needs whenever ``n`` or more pass); when at most :func:`few_rows` pass,
        they are read through the indexes and sorted (``+column`` in ORDER BY keeps SQLite
        from walking an index in order instead); when more do, the walk meets ``n`` of them
        soon. (A filter no index serves reads every row either way.)"""
        keys = [(c, d) for c, d in sort if c in self.columns]
        terms = sort_sql(keys)
        order = f"ORDER BY {terms}, row_id" if terms else "ORDER BY row_id"
        sql, params = self.where_sql(flt) if flt is not None else ("", ())
        if flt is not None and self._walks_instead_of_searching(sql, order):
            n = self.query(f"SELECT count(*) FROM object_catalog WHERE {sql}", params)[0][0]
            if n <= few_rows(limit, self.info.nobjects):
                after = sort_sql(keys, by_index=False)
                order = f"ORDER BY {after}, +row_id" if after else "ORDER BY +row_id"
            ids = [r[0] for r in self.query(f"SELECT row_id FROM object_catalog WHERE {sql} {order} LIMIT ?",
                                            (*params, int(limit)))]
            return ids, n
        where = f"WHERE {sql}" if flt is not None else ""
        ids = [r[0] for r in self.query(f"SELECT row_id FROM object_catalog {where} {order} LIMIT ?",
                                        (*params, int(limit)))]
        if len(ids) < limit:
            return ids, len(ids)
        count = self.query(f"SELECT count(*) FROM object_catalog {where}", params)[0][0]
        return ids, count

    def _walks_instead_of_searching(self, where_sql: str, order: str) -> bool:
        """Whether SQLite would answer a filter (its SQL with ``?`` placeholders) in ``order``
        by walking the table or a whole index, though it can find the filter's rows through
        index look-ups alone (the two query plans, kept per filter shape and order)."""
        known = self._plans.get((where_sql, order))
        if known is None:
            def steps(sql: str) -> list[str]:
                return [str(r[-1]) for r in self.query(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?"))]

            try:
                unordered = steps(f"SELECT 1 FROM object_catalog WHERE {where_sql}")
                ordered = steps(f"SELECT row_id FROM object_catalog WHERE {where_sql} {order} LIMIT ?")
            except (UserError, sqlite3.Error):  # e.g. a plugin's filter with a '?' in a string: as before
                unordered = ordered = []
            known = (any(s.startswith("SEARCH object_catalog") for s in unordered)
                     and not any(s.startswith("SCAN") for s in unordered)
                     and any(s.startswith("SCAN object_catalog") for s in ordered))
            if len(self._plans) >= 512:
                self._plans.clear()
            self._plans[(where_sql, order)] = known
        return known


def few_rows(limit: int, nrows: int) -> int:
    """How many matching rows a filter may have and still be read through its indexes and
    sorted, rather than met in a walk of the table in order (:meth:`Catalog.select`).
    Reading ``m`` matches through an index and sorting them costs about ``m`` steps; the
    ordered walk meets ``limit`` of them after about ``limit * nrows / m`` rows, at ~0.5 of
    a step each (measured at 1e6 rows). The two meet near ``sqrt(limit * nrows / 2)``:
    22,000 rows for a limit of 100 at 1e7 objects."""
    return int(min(max(math.sqrt(limit * max(nrows, 1) / 2), limit, 1000), FEW_ROWS_MAX))


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Catalogs:
    """Every collection's :class:`Catalog`, opened once per process.

    The registry is re-read only when another connection has changed it (SQLite's
    ``data_version``), so a search costs no registry queries in the common case."""

    def __init__(self, basedir: str | Path, settings, opener=None):
        self.basedir = Basedir(basedir)
        self.settings = settings
        #: ``opener(info)`` -> a catalog object or None (the ``open_catalog`` plugin hook)
        self._opener = opener
        self._open: dict[str, CatalogBase] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def _infos(self) -> dict[str, CollectionInfo]:
        local = self._local
        if getattr(local, "conn", None) is None or local.pid != os.getpid():  # never across a fork
            local.conn = self.basedir.connect()
            local.version, local.pid = None, os.getpid()
        version = local.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != local.version:
            local.infos = {i.collection_id: i for i in self.basedir.collections(conn=local.conn)}
            local.version = version
        return local.infos

    def ids(self) -> list[str]:
        return sorted(self._infos())

    def get(self, collection_id: str) -> CatalogBase:
        info = self._infos().get(collection_id)
        if info is None:
            info = self.basedir.collection(collection_id)  # raises NotFound with a suggestion
        with self._lock:
            cat = self._open.get(collection_id)
            if cat is None or cat.info.added_at != info.added_at or cat.info.catalog_dir != info.catalog_dir:
                cat = (self._opener(info) if self._opener else None) or Catalog(info, self.settings)
                self._open[collection_id] = cat
            return cat
