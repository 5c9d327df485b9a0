"""Read-only execution of SQL built from user input (column filters, ADQL, full text).

:func:`connect_readonly` opens a catalog with four independent guards:

1. the file is opened read-only (``file:...?mode=ro`` URI) and ``PRAGMA query_only=ON``;
2. an authorizer (``set_authorizer``) allows only what a SELECT over the allowed tables
   needs and denies everything else, at statement-preparation time:

   - SQLITE_SELECT;
   - SQLITE_READ of the allowed tables; of the shadow tables of allowed FTS5 tables
     (``<name>_config``, ``_idx``, ``_docsize``, ``_data``, ``_content``, which FTS5 reads
     with statements of its own); of ``json_each`` (a table-valued function); and the
     column-less read SQLite reports for ``count(*)`` over a WITH table or subquery (any
     name that is not stored in the file);
   - SQLITE_FUNCTION for :data:`ALLOWED_FUNCTIONS` (``match`` is the MATCH operator,
     ``like``/``glob`` the LIKE/GLOB operators; CAST is not a function);
   - three internal steps that SQLite and FTS5 take and that are harmless on a read-only
     connection: when a virtual table (FTS5, json_each) is first connected SQLite parses
     its declaration as an UPDATE of ``sqlite_master`` plus a read of its ROWID, which are
     answered SQLITE_IGNORE (update nothing, read NULL; denying them breaks every virtual
     table), and FTS5 reads ``PRAGMA data_version`` (allowed without an argument only);
   - denied: every write (INSERT, UPDATE, DELETE, CREATE, DROP, ALTER), ATTACH/DETACH,
     other PRAGMAs, transactions and savepoints, ANALYZE, REINDEX, recursive CTEs
     (SQLITE_RECURSIVE: user queries never need them and they are an easy way to spin),
     and any other function (load_extension, randomblob, zeroblob, printf, ...);
3. a progress handler that aborts a statement after ``timeout_s`` seconds of wall-clock
   time (checked every 1000 virtual-machine steps), reported as :class:`QueryTimeout`
   (HTTP 408);
4. at most ``max_rows`` rows are fetched, and at most ``max_bytes`` bytes of them (text
   counted as it is read, numbers as 8 bytes); the result says whether more existed and
   whether the byte cap cut it;
5. SQLite limits: one value (string, blob, bound parameter) at most
   :data:`VALUE_LENGTH_LIMIT` bytes, expressions at most :data:`EXPR_DEPTH_LIMIT` deep,
   at most :data:`COMPOUND_SELECT_LIMIT` terms in a UNION; and, process-wide,
   :func:`set_heap_limit` caps the memory SQLite may hold (a query over it fails with
   :class:`QueryTooLarge` instead of growing the server).

The deadline of a statement is the earlier of ``timeout_s`` from its start and the
request's deadline (:mod:`lcpanel.core.deadline`), so the time spent parsing and
translating the request counts.

A :class:`SafeConnection` wraps one :class:`sqlite3.Connection` and, like it, must only be
used from the thread that created it (``check_same_thread`` stays on): open one per
thread or per request. Errors caused by the query (syntax, unknown column, denied action,
time limit) become :class:`lcpanel.errors.UserError` subclasses; others (a corrupt or
missing file) propagate.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ...errors import UserError

ALLOWED_FUNCTIONS = frozenset({
    # aggregates
    "count", "sum", "total", "avg", "min", "max",
    # numbers
    "abs", "round", "sign", "sqrt", "pow", "power", "exp", "ln", "log", "log10", "log2",
    "floor", "ceil", "ceiling", "trunc", "mod", "pi", "degrees", "radians",
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
    # text
    "lower", "upper", "length", "substr", "substring", "instr", "trim", "ltrim", "rtrim",
    "replace", "like", "glob",
    # nulls, types, conditionals, planner hints
    "coalesce", "ifnull", "nullif", "iif", "typeof", "likely", "unlikely", "likelihood",
    # full text: MATCH operator and FTS5 auxiliary functions
    "match", "bm25", "highlight", "snippet",
})
FTS_SHADOW_SUFFIXES = ("_config", "_idx", "_docsize", "_data", "_content")
TABLE_FUNCTIONS = frozenset({"json_each"})
PROGRESS_STEPS = 1000
SQL_LENGTH_LIMIT = 1_000_000
#: the largest string, blob or bound parameter (a cone's row-id list is bound in pieces)
VALUE_LENGTH_LIMIT = 4 * 1024 * 1024
EXPR_DEPTH_LIMIT = 200
COMPOUND_SELECT_LIMIT = 64
#: rows fetched between two checks of the byte cap
FETCH_BATCH = 64

# what a denied action would have done, for error messages
_ACTION_VERBS = {
    **dict.fromkeys(("INSERT", "UPDATE", "DELETE"), "change table {arg}"),
    **dict.fromkeys((
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "CREATE_VTABLE", "DROP_INDEX", "DROP_TABLE",
        "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER",
        "DROP_VIEW", "DROP_VTABLE", "ALTER_TABLE"), "change the database schema"),
    **dict.fromkeys(("ATTACH", "DETACH"), "attach or detach a database file (VACUUM does too)"),
    **dict.fromkeys(("TRANSACTION", "SAVEPOINT"), "start or end a transaction"),
    **dict.fromkeys(("ANALYZE", "REINDEX"), "rebuild statistics or indexes"),
    "PRAGMA": "run PRAGMA {arg}",
    "RECURSIVE": "use a recursive WITH, which is not supported",
}
_ACTION_VERBS = {getattr(sqlite3, f"SQLITE_{a}"): verb for a, verb in _ACTION_VERBS.items()}


def _fold(name) -> str:
    """A table name as SQLite compares it: ASCII letters case-insensitively."""
    return str(name).translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class QueryTimeout(UserError):
    """A query that ran longer than the time limit."""

    status = 408


class SQLError(UserError):
    """A query that SQLite cannot run or that does something not allowed."""


class QueryTooLarge(UserError):
    """A query whose values or working memory are over the server's limits."""

    status = 413


class _ByteCapReached(Exception):
    pass


def set_heap_limit(nbytes: int) -> int:
    """Cap the memory SQLite may allocate in this process (all connections, all threads;
    ``PRAGMA hard_heap_limit``); 0 removes the cap. Returns the cap now in force."""
    with sqlite3.connect(":memory:") as conn:
        return int(conn.execute(f"PRAGMA hard_heap_limit={int(nbytes)}").fetchone()[0])


@dataclass(frozen=True)
class QueryResult:
    """At most ``max_rows`` rows; ``more`` tells whether the query had further rows;
    ``byte_capped`` that the rows stopped at the byte cap rather than the row cap."""

    columns: list[str]
    rows: list[tuple]
    more: bool
    byte_capped: bool = False


def connect_readonly(path: str | Path, *, allowed_tables: set[str], timeout_s: float,
                     max_rows: int) -> SafeConnection:
    """Open the SQLite file at ``path`` for user-derived SELECTs on ``allowed_tables``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite file at {path}")
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, isolation_level=None)
    try:
        return SafeConnection(conn, allowed_tables=allowed_tables, timeout_s=timeout_s, max_rows=max_rows)
    except BaseException:
        conn.close()
        raise


class _NotUTF8(Exception):
    """A text value SQLite's own decoding refused."""


class SafeConnection:
    """A read-only connection with an authorizer, a time limit and a row cap."""

    def __init__(self, conn: sqlite3.Connection, *, allowed_tables: set[str], timeout_s: float, max_rows: int):
        if timeout_s <= 0 or max_rows < 0:
            raise ValueError("timeout_s must be positive and max_rows not negative")
        self.conn = conn
        self.timeout_s = float(timeout_s)
        self.max_rows = int(max_rows)
        self.allowed_tables = frozenset(allowed_tables)
        self._deadline = math.inf
        self._denied: str | None = None
        self._text_bytes = 0
        self._byte_budget = math.inf
        conn.execute("PRAGMA query_only=ON")
        conn.execute("PRAGMA trusted_schema=OFF")
        self._schema_names = self._schema_object_names()
        self._readable = {_fold(t) for t in self.allowed_tables | TABLE_FUNCTIONS | self._fts_shadow_tables()}
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, SQL_LENGTH_LIMIT)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, VALUE_LENGTH_LIMIT)
        conn.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, EXPR_DEPTH_LIMIT)
        conn.setlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, COMPOUND_SELECT_LIMIT)
        conn.text_factory = self._text
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)

    def _schema_object_names(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master").fetchall()
        return {_fold(name) for (name,) in rows}

    def _fts_shadow_tables(self) -> set[str]:
        rows = self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        fts = {name for name, sql in rows
               if name in self.allowed_tables and re.search(r"\bUSING\s+fts5\b", sql or "", re.IGNORECASE)}
        return {name + suffix for name in fts for suffix in FTS_SHADOW_SUFFIXES}

    def _authorize(self, action: int, arg1, arg2, dbname, source) -> int:
        if action == sqlite3.SQLITE_SELECT:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if _fold(arg1) in self._readable and dbname in ("main", None):
                return sqlite3.SQLITE_OK
            if arg1 == "sqlite_master" and arg2 == "ROWID":
                return sqlite3.SQLITE_IGNORE
            if arg2 == "" and dbname is None and self._is_query_local(arg1):
                return sqlite3.SQLITE_OK
            return self._deny(f"reading table {arg1!r} is not allowed; tables you can read: "
                              + ", ".join(sorted(self.allowed_tables)))
        if action == sqlite3.SQLITE_FUNCTION:
            if str(arg2).lower() in ALLOWED_FUNCTIONS:
                return sqlite3.SQLITE_OK
            return self._deny(f"the function {arg2}() is not allowed")
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
            return sqlite3.SQLITE_IGNORE
        if action == sqlite3.SQLITE_PRAGMA and arg1 == "data_version" and arg2 is None:
            return sqlite3.SQLITE_OK
        verb = _ACTION_VERBS.get(action, f"do something other than read (SQLite action {action})")
        if arg1 in ("sqlite_master", "sqlite_temp_master"):
            verb = "change the database schema"
        return self._deny(f"only SELECT queries are allowed and this query would {verb.format(arg=arg1)}")

    def _is_query_local(self, name) -> bool:
        """Whether ``name`` is a CTE or subquery of the statement rather than a stored table
        (SQLite reports a row-count-only read of a CTE, e.g. ``count(*) FROM cte``, as a
        read of column '' of that name)."""
        name = _fold(name)
        return name not in self._schema_names and not name.startswith("sqlite_")

    def _deny(self, reason: str) -> int:
        if self._denied is None:
            self._denied = reason
        return sqlite3.SQLITE_DENY

    def _progress(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def _text(self, raw: bytes) -> str:
        """Every text value passes here on its way to Python: counted against the byte cap
        before the row holding it is kept."""
        self._text_bytes += len(raw)
        if self._text_bytes > self._byte_budget:
            raise _ByteCapReached
        return raw.decode("utf-8", "replace")

    def execute(self, sql: str, params=(), *, max_rows: int | None = None,
                max_bytes: int | None = None) -> QueryResult:
        """Run one SELECT; return at most ``max_rows`` (default: the connection's) rows
        holding at most ``max_bytes`` bytes (text as read, 8 bytes per other value)."""
        from .. import deadline

        cap = self.max_rows if max_rows is None else min(max_rows, self.max_rows)
        self._denied = None
        self._deadline = min(time.monotonic() + self.timeout_s, deadline.current())
        self._text_bytes, self._byte_budget = 0, math.inf if max_bytes is None else max_bytes
        # text is counted only against a byte cap: SQLite's own decoding is several times
        # faster than a call into Python per value (a seventh of a 77-row cone search's time)
        self.conn.text_factory = str if max_bytes is None else self._text
        try:
            return self._fetch(sql, params, cap)
        except _NotUTF8:
            # text that is not UTF-8 (a catalog written by another tool): read again, its
            # bad bytes replaced by U+FFFD
            self.conn.text_factory = self._text
            return self._fetch(sql, params, cap)
        finally:
            self._deadline = math.inf
            self._byte_budget = math.inf
            self.conn.text_factory = self._text

    def _fetch(self, sql: str, params, cap: int) -> QueryResult:
        rows: list[tuple] = []
        byte_capped = False
        try:
            cur = self.conn.execute(sql, params)
            columns = [d[0] for d in cur.description or ()]
            width = 8 * max(len(columns), 1)
            try:
                while len(rows) <= cap:
                    batch = cur.fetchmany(min(FETCH_BATCH, cap + 1 - len(rows)) or 1)
                    if not batch:
                        break
                    rows += batch
                    if self._text_bytes + width * len(rows) > self._byte_budget:
                        byte_capped = True
                        break
            except _ByteCapReached:
                byte_capped = True
            cur.close()
        except sqlite3.Error as exc:
            if self.conn.text_factory is str and str(exc).startswith("Could not decode to UTF-8"):
                raise _NotUTF8 from None
            error = self._user_error(exc)
            if error is exc:
                raise
            raise error from None
        except MemoryError:
            raise QueryTooLarge("the query needs more memory than this server allows; select fewer or "
                                "smaller columns, or fewer rows") from None
        if byte_capped:  # the rows read so far: the cap, give or take one batch
            return QueryResult(columns, rows[:cap], True, byte_capped=True)
        return QueryResult(columns, rows[:cap], len(rows) > cap)

    def _user_error(self, exc: sqlite3.Error) -> Exception:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_INTERRUPT:
            return QueryTimeout(f"the query was stopped after the time limit of {self.timeout_s:g} s; "
                                "narrow it with a column filter or a smaller region, or lower the row limit")
        if code == sqlite3.SQLITE_AUTH or self._denied:
            return SQLError(f"the query is not allowed: {self._denied or exc}")
        if isinstance(exc, sqlite3.ProgrammingError) and "one statement" in str(exc):
            return SQLError("the query holds more than one SQL statement; send a single SELECT")
        if isinstance(exc, sqlite3.ProgrammingError) and "bindings" in str(exc):
            return SQLError(f"the query's ? placeholders do not match its values: {exc}")
        if code == sqlite3.SQLITE_TOOBIG:
            return QueryTooLarge(f"the query makes a value over the limit of {VALUE_LENGTH_LIMIT // 1024 // 1024} "
                                 "MiB (a string or a list of values); make it smaller")
        if code == sqlite3.SQLITE_NOMEM:
            return QueryTooLarge("the query needs more memory than this server allows; select fewer or "
                                 "smaller columns, or fewer rows")
        if code in (sqlite3.SQLITE_ERROR, sqlite3.SQLITE_READONLY,
                    sqlite3.SQLITE_RANGE, sqlite3.SQLITE_MISMATCH):
            return SQLError(f"the query cannot run: {exc}")
        return exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SafeConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
