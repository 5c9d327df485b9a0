"""Ids as people type them: a normalised index of every object id and alias.

Table ``object_ids`` in a collection's catalog SQLite, one row per (object, id column)
with a value: ``norm`` (the value trimmed, Unicode-normalised (NFKC), case-folded, inner
whitespace collapsed), ``col`` (the id column's number in ``object_id_columns``: 0 is
``objectid``, then alias columns such as ``twomassid``) and ``row_id``. It is a WITHOUT
ROWID table keyed by (norm, col, row_id), so an exact id and an id *prefix* are both one
B-tree range scan (``norm >= p AND norm < p || U+10FFFF``), and the ids nearest a string
that matches nothing are the neighbours of its position in that order. The value as
stored is read from the object's catalog row (an entry holding it and the column's name
was twice the size: 208 against 110 bytes per object with four id columns).

What people type is turned into search keys by :func:`query_keys`: the normalised
text, and for alias columns also without a catalog's designation prefix (``TIC 25155310``
-> ``25155310``, ``2MASS J14374811-5648595`` -> ``14374811-5648595``,
``Gaia DR3 123`` -> ``123``). An object's own id is matched only as typed (normalised).

Catalogs built before this index existed, or with its first layout (``col`` the column
name, and a ``value`` column), get it when a process starts (the ``startup``
hook of :mod:`lcpanel.plugins.search`) or, failing that, when first searched
(:func:`ensure_id_index`): a one-off build (the 4e6 ids of the benchmarks' 1e6-object
catalog: 2.8 s; benchmarks/bench_idsearch.py times it on catalogs of its own).
"""

from __future__ import annotations

import difflib
import json
import re
import sqlite3
import unicodedata
import weakref
from collections.abc import Collection
from contextlib import closing
from functools import lru_cache
from pathlib import Path

TABLE = "object_ids"
COLUMNS_TABLE = "object_id_columns"
#: the highest code point: ``p || MAX_CHAR`` is above every string starting with ``p``
MAX_CHAR = "\U0010ffff"
#: designation prefixes people write in front of a catalog's own alias value; 2MASS ids
#: are stored with or without their "J", so both readings are tried
DESIGNATIONS = (re.compile(r"^(?:2mass(?:\s*j(?=\d))?|tic|gaia(?:\s*dr\d)?|kic|epic|ucac4)[\s_:-]*"),
                re.compile(r"^2mass[\s_:-]*"))
SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (norm TEXT NOT NULL, col INTEGER NOT NULL, "
          "row_id INTEGER NOT NULL, PRIMARY KEY (norm, col, row_id)) WITHOUT ROWID")
COLUMNS_SCHEMA = f"CREATE TABLE IF NOT EXISTS {COLUMNS_TABLE} (col INTEGER PRIMARY KEY, name TEXT NOT NULL)"


def normalize_id(value) -> str:
    """An id as compared: NFKC, trimmed, case-folded, inner whitespace runs as one space;
    integral numbers without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    text = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def query_keys(text: str) -> tuple[str, list[str]]:
    """(key for object ids, keys for alias columns) of what someone typed."""
    norm = normalize_id(text)
    aliases = [norm] + [d.sub("", norm) for d in DESIGNATIONS]
    return norm, [a for a in dict.fromkeys(aliases) if a]


def _stored(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def build_id_index(conn: sqlite3.Connection, columns: list[str], source: str = "object_catalog",
                   plain: Collection[str] = ()) -> int:
    """(Re)build ``object_ids`` from ``columns`` (objectid first, then aliases) of table
    ``source`` (``row_id`` and those columns); returns the number of ids indexed. ``plain``:
    columns whose text values are all known to be plain (:func:`is_plain`), normalised
    by SQLite's ``lower`` without a check of each value. Runs in the caller's transaction."""
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(f"DROP TABLE IF EXISTS {COLUMNS_TABLE}")
    conn.execute(SCHEMA)
    conn.execute(COLUMNS_SCHEMA)
    conn.executemany(f"INSERT INTO {COLUMNS_TABLE} VALUES (?, ?)", list(enumerate(columns)))
    conn.create_function("lcp_norm_id", 1, normalize_id, deterministic=True)
    # the ids go into the index sorted: appending to a B-tree in key order is many times
    # faster than inserting in catalog order. Ids that normalise to nothing are taken out
    # afterwards (they sort first): a filter on the expression made SQLite work it out twice
    inserted = conn.execute(f"INSERT OR IGNORE INTO {TABLE} {entries_sql(columns, source, plain)}").rowcount
    return inserted - conn.execute(f"DELETE FROM {TABLE} WHERE norm = ''").rowcount


def entries_sql(columns: list[str], source: str = "object_catalog", plain: Collection[str] = ()) -> str:
    """The SELECT of every (norm, col, row_id) entry of ``columns``, in index order. Each
    alias column is read from the table itself (``NOT INDEXED``): with a catalog's
    statistics SQLite walked a column index instead and fetched each row by its id, in
    random order (1e6 objects: 7.4 s against 2.9 s); the objectid is read from its own
    unique index where ``source`` has it (narrower than the table; the ingest's copy of
    the catalog is made before that index). ``plain``: as for :func:`build_id_index`."""
    return " UNION ALL ".join(
        f'SELECT {_norm_sql(c, c in plain)} AS norm, {i} AS col, row_id '
        f'FROM {source}{"" if i == 0 else " NOT INDEXED"} WHERE "{c}" IS NOT NULL'
        for i, c in enumerate(columns)) + " ORDER BY norm, col, row_id"


def _norm_sql(column: str, plain: bool = False) -> str:
    """SQL for one id column's normalised value (:func:`normalize_id`). Integers, and plain
    text (:func:`is_plain`: nearly every catalog id), are done by SQLite itself, as Python
    would do them (``str``; ``lower``); anything else calls the Python function (a call per
    id was 80% of an ingest's id-index time). Each text value is checked for being plain
    (a ``GLOB``: at 1e7 objects and four id columns, ~10 s of the index's ~45 s) unless the
    whole column is known to be (``plain``, found by the ingest as it stages the rows)."""
    c = f'"{column}"'
    text = f"lower({c})" if plain else f"CASE WHEN {c} NOT GLOB '*[^!-~]*' THEN lower({c}) ELSE lcp_norm_id({c}) END"
    return f"CASE typeof({c}) WHEN 'integer' THEN CAST({c} AS TEXT) WHEN 'text' THEN {text} ELSE lcp_norm_id({c}) END"


def is_plain(text: str) -> bool:
    """Whether ``text`` is a plain id: printable ASCII without spaces (``!`` to ``~``), which
    :func:`normalize_id` only lower-cases, as SQLite's ``lower`` does."""
    return all("!" <= ch <= "~" for ch in text)


def id_columns(names) -> list[str]:
    from .columns import ALIAS_COLUMNS

    names = list(names)
    return ["objectid"] + [c for c in ALIAS_COLUMNS if c in names]


def has_id_index(path: str | Path) -> bool:
    """Whether the catalog has the id index in its current layout."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return _current(conn)


def _current(conn) -> bool:
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name IN (?, ?)", (TABLE, COLUMNS_TABLE))}
    return names == {TABLE, COLUMNS_TABLE}


def ensure_id_index(path: str | Path) -> bool:
    """Add the id index to a catalog made before it existed, or rebuild one of the first
    layout; True when it was (re)built. Safe when several processes open the catalog at
    once (the first one builds it)."""
    if has_id_index(path):
        return False
    with closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _current(conn):
                conn.rollback()
                return False
            names = [r[1] for r in conn.execute("PRAGMA table_info(object_catalog)")]
            if "objectid" not in names:  # not a catalog of this kind (e.g. a plugin's)
                conn.rollback()
                return False
            build_id_index(conn, id_columns(names))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return True


# --- lookups (on any connection with .execute(sql, params) -> rows) --------------------------


def _rows(conn, sql: str, params: tuple) -> list[tuple]:
    cur = conn.execute(sql, params)
    return cur.rows if hasattr(cur, "rows") else cur.fetchall()


_COLUMNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _columns(conn) -> dict[int, str]:
    """The id columns by number (read once per connection: a catalog's are fixed)."""
    try:
        return _COLUMNS[conn]
    except (KeyError, TypeError):
        names = dict(_rows(conn, f"SELECT col, name FROM {COLUMNS_TABLE}", ()))
    try:
        _COLUMNS[conn] = names
    except TypeError:  # a connection that cannot be weakly referenced
        pass
    return names


@lru_cache(maxsize=256)
def _value_sql(sql: str, names: tuple[tuple[int, str], ...]) -> str:
    return sql.replace("{value}", "CASE i.col " + " ".join(f'WHEN {k} THEN c."{n}"' for k, n in names) + " END")


def _with_values(conn, sql: str, params: tuple, names: dict[int, str]) -> list[tuple]:
    """Rows of ``sql`` (an ``object_ids`` query aliased ``i`` whose first columns are
    ``row_id, col``), with each id's column name and stored value (read from the catalog
    row) in place of its column number."""
    rows = _rows(conn, _value_sql(sql, tuple(names.items())), params)
    return [(r[0], names[r[1]], _stored(r[2]), *r[3:]) for r in rows]


def exact(conn, text: str) -> list[tuple[int, str, str]]:
    """(row_id, column, value) of the objects whose id or an alias is ``text`` as typed
    (trimmed, any case; aliases also without a designation prefix)."""
    own, aliases = query_keys(text)
    names = _columns(conn)
    select = f"SELECT i.row_id, i.col, {{value}} FROM {TABLE} i JOIN object_catalog c ON c.row_id = i.row_id"
    out = _with_values(conn, f"{select} WHERE i.norm = ? AND i.col = 0", (own,), names)
    marks = ",".join("?" * len(aliases))
    out += _with_values(conn, f"{select} WHERE i.norm IN ({marks}) AND i.col != 0", tuple(aliases), names)
    return out


def owners(conn, text: str) -> list[str]:
    """The object ids (sorted, each once) of the objects whose id or an alias is ``text`` as
    typed (:func:`exact`)."""
    row_ids = sorted({r[0] for r in exact(conn, text)})
    if not row_ids:
        return []
    rows = _rows(conn, "SELECT objectid FROM object_catalog WHERE row_id IN (SELECT value FROM json_each(?))",
                 (json.dumps(row_ids),))
    return sorted({str(r[0]) for r in rows})


def exact_many(conn, texts: list[str]) -> list[tuple[int, str, str]]:
    """(row_id, column, the text as given) of every object whose id or an alias is one of
    ``texts`` (as :func:`exact`), in two queries."""
    own: dict[str, str] = {}
    alias: dict[str, str] = {}
    for t in texts:
        o, a = query_keys(t)
        own.setdefault(o, t)
        for k in a:
            alias.setdefault(k, t)
    names = _columns(conn)
    out = []
    for keys, cond in ((own, "col = 0"), (alias, "col != 0")):
        if not keys:
            continue
        for row_id, col, norm in _rows(conn, f"SELECT row_id, col, norm FROM {TABLE} WHERE norm IN "
                                             f"(SELECT value FROM json_each(?)) AND {cond}",
                                       (json.dumps(list(keys)),)):
            out.append((row_id, names[col], keys[norm]))
    return out


def prefix(conn, text: str, limit: int) -> tuple[list[tuple[int, str, str]], bool]:
    """Up to ``limit`` (row_id, column, value) whose id or an alias starts with ``text``
    (exact matches first, then in id order), each object once; and whether there are more."""
    own, aliases = query_keys(text)
    if not own:
        return [], False
    names = _columns(conn)
    rows, more = [], False
    for key, cond in [(own, "i.col = 0")] + [(a, "i.col != 0") for a in aliases]:
        got = _with_values(conn, f"SELECT i.row_id, i.col, {{value}}, i.norm FROM {TABLE} i "
                                 f"JOIN object_catalog c ON c.row_id = i.row_id WHERE i.norm >= ? AND i.norm < ? "
                                 f"AND {cond} ORDER BY i.norm, i.col, i.row_id LIMIT ?",
                           (key, key + MAX_CHAR, limit + 1), names)
        more |= len(got) > limit
        rows += [(r[3] != key, r[3], r[0], r[1], r[2]) for r in got[:limit]]
    found: dict[int, tuple[int, str, str]] = {}
    for _inexact, _norm, row_id, col, value in sorted(rows):
        found.setdefault(row_id, (row_id, col, value))
    return list(found.values())[:limit], more or len(found) > limit


def nearest(conn, text: str, n: int = 5) -> list[str]:
    """The stored ids closest to ``text``: its neighbours in id order on both sides,
    ranked by similarity (difflib), best first."""
    own, aliases = query_keys(text)
    names = _columns(conn)
    candidates: dict[str, float] = {}
    for key in dict.fromkeys([own, *aliases]):
        if not key:
            continue
        select = f"SELECT i.row_id, i.col, {{value}} FROM {TABLE} i JOIN object_catalog c ON c.row_id = i.row_id"
        below = _with_values(conn, f"{select} WHERE i.norm < ? ORDER BY i.norm DESC LIMIT ?", (key, n * 2), names)
        above = _with_values(conn, f"{select} WHERE i.norm >= ? ORDER BY i.norm LIMIT ?", (key, n * 2), names)
        for _row, _col, value in below + above:
            score = difflib.SequenceMatcher(None, key, normalize_id(value)).ratio()
            candidates[value] = max(candidates.get(value, 0.0), score)
    return [v for v, _s in sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --- equality on an alias column, answered by the id index --------------------------------


def btree_of_its_own(name: str, sqltype: str) -> bool:
    """Whether an indexed catalog column gets a B-tree index of its own: every one but the
    alias id columns of text, whose values this index holds (an equality or IN on one is
    answered here: :func:`equality_sql`). At 1e6 objects with three such columns that is
    72 bytes per object and three index builds less."""
    from .columns import ALIAS_COLUMNS

    return not (name in ALIAS_COLUMNS and sqltype == "TEXT")


def equality_keys(values) -> list[str] | None:
    """The index keys under which a text column's values equal to one of ``values`` (text,
    compared as SQL does: exactly) are all found, or None when some value has none: an id
    that normalises to nothing (blank) is not in the index."""
    keys = [normalize_id(v) for v in values if isinstance(v, str)]
    if len(keys) != len(values) or not all(keys):
        return None
    return list(dict.fromkeys(keys))


def equality_sql(col: int, keys: list[str]) -> tuple[str, tuple]:
    """A condition on ``object_ids`` (SQL, parameters) that holds for the entries of every
    row whose id column number ``col`` has a value normalising to one of ``keys``: their
    row ids are a superset of the rows an exact SQL equality on the column keeps."""
    marks = ", ".join("?" * len(keys))
    return f"col = ? AND norm IN ({marks})", (col, *keys)


def column_numbers(conn) -> dict[str, int]:
    """The id columns' numbers by name (every id column of the catalog)."""
    return {name: col for col, name in _columns(conn).items()}
