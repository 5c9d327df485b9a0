"""Run translated ADQL on read-only SQLite connections with the sqlsafe guards.

One ADQL query may read several collections and TAP_SCHEMA. A connection here is an
empty in-memory main database to which the files the query needs are ATTACHed
read-only (``file:...?mode=ro``) *before* the guards go on: then ATTACH is limited to 0
and denied by the authorizer like every write, PRAGMA, transaction and unknown function
(:class:`TapConnection` extends :class:`lcpanel.core.catalogs.sqlsafe.SafeConnection` to allow
reads of exactly the attached tables the query names, and lcpanel's geometry functions).
Double-quoted strings are not taken for identifiers (``SQLITE_DBCONFIG_DQS_DML`` off)
and LIKE is case-sensitive as in ADQL (``ILIKE`` is not). Connections are cached per
thread and per set of attached files; at most :data:`MAX_ATTACHED` tables' databases
per query.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np

from ..deadline import deadline as request_deadline
from .adql import UDF_NAMES, ADQLError, Translation, translate
from ..catalogs.skyindex import angular_separation_deg
from ..catalogs.sqlsafe import ALLOWED_FUNCTIONS, SafeConnection, _fold
from .tap_schema import TAP_SCHEMA_DB, TapModel, TapTable
from .votable import VOField

MAX_ATTACHED = 10
CACHED_CONNECTIONS = 8


# --- SQL functions for ADQL geometry ---------------------------------------------------------


def _distance(ra1, dec1, ra2, dec2):
    if None in (ra1, dec1, ra2, dec2):
        return None
    return float(angular_separation_deg(ra1, dec1, ra2, dec2))


def _contains_circle(ra, dec, ra0, dec0, radius):
    d = _distance(ra, dec, ra0, dec0)
    if d is None or radius is None:
        return None
    return int(d <= radius)


def _intersects_circles(ra1, dec1, r1, ra2, dec2, r2):
    d = _distance(ra1, dec1, ra2, dec2)
    if d is None or r1 is None or r2 is None:
        return None
    return int(d <= r1 + r2)


def _truncate(x, n=0):
    if x is None or n is None:
        return None
    scale = 10.0 ** int(n)
    value = math.trunc(x * scale) / scale
    return int(value) if isinstance(x, int) and int(n) <= 0 else value


def _rand(seed=None):
    return random.Random(seed).random() if seed is not None else random.random()


def install_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("lcp_distance", 4, _distance, deterministic=True)
    conn.create_function("lcp_contains_circle", 5, _contains_circle, deterministic=True)
    conn.create_function("lcp_intersects_circles", 6, _intersects_circles, deterministic=True)
    conn.create_function("lcp_truncate", 2, _truncate, deterministic=True)
    conn.create_function("lcp_rand", 0, _rand)
    conn.create_function("lcp_rand", 1, _rand)


class TapConnection(SafeConnection):
    """A guarded connection whose readable tables are ``(attached schema, table)`` pairs."""

    def __init__(self, conn: sqlite3.Connection, readable: set[tuple[str, str]], **kwargs):
        self._pairs = {(db, _fold(t)) for db, t in readable}
        super().__init__(conn, allowed_tables=set(), **kwargs)

    def _schema_object_names(self) -> set[str]:
        """Names stored in any attached file: such a name is never a WITH table of the
        query, even when a WITH somewhere in it uses the name."""
        names = set()
        for _seq, db, _file in self.conn.execute("PRAGMA database_list").fetchall():
            quoted = db.replace('"', '""')
            names |= {_fold(n) for (n,) in self.conn.execute(f'SELECT name FROM "{quoted}".sqlite_master')}
        return names

    def _authorize(self, action: int, arg1, arg2, dbname, source) -> int:
        if action == sqlite3.SQLITE_READ:
            if (dbname, _fold(arg1)) in self._pairs:
                return sqlite3.SQLITE_OK
            if _fold(arg1) == "json_each" and dbname in ("main", None):
                return sqlite3.SQLITE_OK
            if arg1 == "sqlite_master" and arg2 == "ROWID":
                return sqlite3.SQLITE_IGNORE
            if arg2 == "" and dbname is None and self._is_query_local(arg1):
                return sqlite3.SQLITE_OK
            return self._deny(f"reading {arg1!r} is not allowed")
        if action == sqlite3.SQLITE_FUNCTION:
            if str(arg2).lower() in ALLOWED_FUNCTIONS or str(arg2).lower() in UDF_NAMES:
                return sqlite3.SQLITE_OK
            return self._deny(f"the function {arg2}() is not allowed")
        return super()._authorize(action, arg1, arg2, dbname, source)


def open_connection(attachments: list[tuple[str, str]], readable: set[tuple[str, str]], *, timeout_s: float,
                    max_rows: int) -> TapConnection:
    """An in-memory connection with ``(schema name, file)`` attached read-only, then guarded."""
    conn = sqlite3.connect(":memory:", uri=True, isolation_level=None)
    try:
        conn.setconfig(sqlite3.SQLITE_DBCONFIG_DQS_DML, False)
        conn.setconfig(sqlite3.SQLITE_DBCONFIG_DQS_DDL, False)
        conn.execute("PRAGMA case_sensitive_like=ON")
        for name, path in attachments:
            conn.execute("ATTACH DATABASE ? AS ?", (f"file:{quote(str(path))}?mode=ro", name))
        install_functions(conn)
        return TapConnection(conn, readable, timeout_s=timeout_s, max_rows=max_rows)
    except BaseException:
        conn.close()
        raise


@dataclass
class QueryOutput:
    fields: list[VOField]
    rows: list[tuple]
    overflow: bool
    translation: Translation
    elapsed_ms: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: the rows stopped at the byte cap (``overflow`` is then True too)
    byte_capped: bool = False


class TapEngine:
    """Runs ADQL for one app: translation against the current TAP model, the sky index for
    cones, and cached guarded connections (one set per thread and process)."""

    def __init__(self, catalogs, model_fn):
        self.catalogs = catalogs
        self.model_fn = model_fn
        self._local = threading.local()

    def model(self) -> TapModel:
        return self.model_fn()

    def _cone_rows(self, table: TapTable, ra: float, dec: float, radius: float, strict: bool):
        if radius <= 0:
            return []
        catalog = self.catalogs.get(table.collection_id)
        rows, dist = catalog.skyindex.cone(ra % 360.0, dec, min(radius, 180.0))
        if strict:
            rows = rows[dist < radius]
        return np.sort(rows)

    def translate(self, query: str, *, objects_only: bool = False, uploads=()) -> Translation:
        """``uploads``: more tables (``TAP_UPLOAD.*``) visible to this query only."""
        model = self.model()
        if uploads:
            model = TapModel(tables=model.tables + list(uploads), tap_schema_path=model.tap_schema_path)
        return translate(query, model, self._cone_rows, objects_only=objects_only, match_rows=self._match_rows,
                         id_rows=self._id_rows)

    def _id_rows(self, table: TapTable, column: str, values: list[str]):
        """Row ids whose alias id ``column`` may hold one of ``values`` (from the id index), or
        None when the column is not one the index holds."""
        catalog = self.catalogs.get(table.collection_id)
        finder = getattr(catalog, "id_rows", None)
        return finder(column, values) if finder is not None else None

    def _match_rows(self, table: TapTable, upload: TapTable, ra_col: str, dec_col: str, radius: float):
        """Per row of an uploaded table (rowid order), the collection rows within ``radius``."""
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(f"file:{upload.path}?mode=ro", uri=True)) as conn:
            values = conn.execute(f'SELECT "{ra_col}", "{dec_col}" FROM "{upload.sql_table}" ORDER BY rowid').fetchall()
        out: list[list[int]] = [[] for _ in values]
        pos = np.array([(r, d) if isinstance(r, (int, float)) and isinstance(d, (int, float)) else (np.nan, np.nan)
                        for r, d in values], dtype=float).reshape(-1, 2)
        ok = np.flatnonzero(np.isfinite(pos).all(axis=1) & (np.abs(pos[:, 1]) <= 90))
        if len(ok) and radius > 0:
            catalog = self.catalogs.get(table.collection_id)
            inputs, rows, _ = catalog.skyindex.crossmatch(pos[ok, 0] % 360.0, pos[ok, 1], radius * 3600.0,
                                                          nearest=False)
            for i, r in zip(ok[inputs].tolist(), rows.tolist()):
                out[i].append(int(r))
        return out

    def _connection(self, model: TapModel, tables: list[TapTable], timeout_s: float, max_rows: int):
        attach: dict[str, str] = {}
        readable: set[tuple[str, str]] = set()
        for t in tables:
            path = str(model.tap_schema_path) if t.db == TAP_SCHEMA_DB else t.path
            attach[t.db] = path
            readable.add((t.db, t.sql_table))
        if len(attach) > MAX_ATTACHED:
            raise ADQLError(f"a query can read at most {MAX_ATTACHED} collections; this one reads {len(attach)}")
        key = tuple(sorted(attach.items())), tuple(sorted(readable))
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # never across a fork
            local.pool, local.pid = OrderedDict(), os.getpid()
        conn = local.pool.get(key)
        if conn is None:
            conn = open_connection(sorted(attach.items()), readable, timeout_s=timeout_s, max_rows=max_rows)
            local.pool[key] = conn
            while len(local.pool) > CACHED_CONNECTIONS:
                _, old = local.pool.popitem(last=False)
                old.close()
        else:
            local.pool.move_to_end(key)
        conn.timeout_s, conn.max_rows = float(timeout_s), int(max_rows)
        return conn

    def run(self, query: str, *, maxrec: int, timeout_s: float, max_bytes: int | None = None,
            uploads=(), on_connection=None) -> QueryOutput:
        """Translate and run ``query`` within ``timeout_s`` in all (translation included);
        at most ``maxrec`` rows and about ``max_bytes`` bytes (``overflow`` says if more
        existed, ``byte_capped`` that the byte cap cut the rows). ``uploads``: the query's
        ``TAP_UPLOAD`` tables. ``on_connection(sqlite3.Connection)`` is called before the
        query starts (so another thread can ``interrupt()`` it)."""
        started = time.perf_counter()
        with request_deadline(timeout_s):
            translation = self.translate(query, uploads=uploads)
            out = self.execute(translation, maxrec=maxrec, timeout_s=timeout_s, max_bytes=max_bytes,
                               on_connection=on_connection)
        out.elapsed_ms = (time.perf_counter() - started) * 1000.0
        return out

    def execute(self, translation: Translation, *, maxrec: int, timeout_s: float,
                max_bytes: int | None = None, on_connection=None) -> QueryOutput:
        """Run a translated query; at most ``maxrec`` rows (and ``max_bytes``)."""
        started = time.perf_counter()
        conn = self._connection(self.model(), translation.tables, timeout_s, max(maxrec, 0))
        if on_connection is not None:
            on_connection(conn.conn)
        result = conn.execute(translation.sql, translation.params, max_rows=max(maxrec, 0), max_bytes=max_bytes)
        fields = infer_fields(translation.fields, result.rows)
        notes = []
        if "scan" in translation.regions:
            notes.append("a region was too large for the sky index and was cut row by row")
        return QueryOutput(fields=fields, rows=result.rows, overflow=result.more, translation=translation,
                           elapsed_ms=(time.perf_counter() - started) * 1000.0, notes=notes,
                           byte_capped=result.byte_capped)


def infer_fields(fields: list[VOField], rows: list[tuple]) -> list[VOField]:
    """Complete result fields whose type the query did not fix, from the values."""
    out = []
    for i, f in enumerate(fields):
        if f.datatype:
            out.append(f)
            continue
        kinds = {type(r[i]) for r in rows if r[i] is not None}
        if kinds <= {int} and kinds:
            out.append(VOField(name=f.name, datatype="long", unit=f.unit, ucd=f.ucd))
        elif kinds <= {int, float} and kinds:
            out.append(VOField(name=f.name, datatype="double", unit=f.unit, ucd=f.ucd))
        elif not kinds:
            out.append(VOField(name=f.name, datatype="double", unit=f.unit, ucd=f.ucd))
        else:
            out.append(VOField(name=f.name, datatype="unicodeChar", arraysize="*", unit=f.unit, ucd=f.ucd))
    return out
