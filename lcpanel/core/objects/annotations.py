"""Reviews of objects stored in the basedir: variability info and comments, with their
history. The survey's collection directory is never written (see
:mod:`lcpanel.core.objects.reviews` for who may do what, the caps, and the operator's export into
the checkplots).

Variability info (astrobase's checkplot ``varinfo`` keys) is set by staff:

=============  =============================================================================
objectisvar    0 unreviewed, 1 variable, 2 not variable, 3 can't tell
varperiod      adopted period in days, a finite number > 0, or None
varepoch       epoch of the ephemeris (time of minimum light, the light curve's time
               system), a finite number, or None
vartags        comma-separated tags, at most 500 characters; normalised to "a, b, c"
               (blank tags and repeats, case-insensitively, dropped); "" means None
=============  =============================================================================

Comments are appended (author, time, text), never replaced; their author (or an admin)
may edit or delete them later, the old text staying in the history.

Numbers may also be given as numeric strings (form input); text is NFC-normalised and
stripped, and control characters are refused (newlines and tabs are allowed in comments).

Every change runs in one SQLite transaction (``BEGIN IMMEDIATE`` on the collection's
derived catalog ``BASEDIR/collections/<id>/catalog-objectinfo.sqlite``, with
``BASEDIR/annotations.sqlite`` (WAL) attached): it validates first (a bad value, author,
object or magcol raises :class:`UserError` and writes nothing), updates the catalog's
columns for the magcol (``<magcol>_objectisvar`` ... and ``_comments``, which holds the
survey's comment followed by every standing comment, one per line) so searches see the
review at once, keeps the external-content FTS5 index in step, and appends history rows.
The first time lcpanel changes a catalog column of an object, the survey's value is kept
in ``survey_values`` (shown beside the reviewed value, and the base of merged comments).

Tables of ``annotations.sqlite``: ``edits`` (the history: edit_id, change_id,
collection_id, objectid, magcol, field, old_value, new_value, author, time (UTC ISO
8601), comment_id; the columns checkplot_updated/checkplot_note are from when edits were
written into checkplots and are no longer used), ``comments`` (comment_id,
collection_id, objectid, author, time, text, edited, deleted, deleted_by) and
``survey_values``.

Concurrent editors (threads or processes, on one machine) are serialised by the catalog
write lock (busy timeout 30 s), so no edit is lost; ``expect`` turns "someone changed it
since I looked" into :class:`Conflict`. Searches read the catalog on new read-only
connections and see an edit once committed.
"""

from __future__ import annotations

import math
import sqlite3
import unicodedata
import uuid
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from ...errors import Conflict, Forbidden, NotFound, TooManyRequests, UserError, shown
from ..catalogs.basedir import Basedir, CollectionInfo
from ..clock import now, now_iso
from ..catalogs.columns import sql_name
from ..wal import connect_wal

ANNOTATIONS_FILE = "annotations.sqlite"
FIELDS = ("objectisvar", "varperiod", "varepoch", "vartags", "comments")
#: the fields staff set (comments are appended, see :func:`add_comment`)
VARINFO_FIELDS = FIELDS[:4]
OBJECTISVAR = {0: "unreviewed", 1: "variable", 2: "not variable", 3: "can't tell"}
MAX_VARTAGS = 500
MAX_COMMENTS = 5000
MAX_AUTHOR = 200
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS edits (
    edit_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id         TEXT NOT NULL,
    collection_id     TEXT NOT NULL,
    objectid          TEXT NOT NULL,
    magcol            TEXT NOT NULL DEFAULT '',
    field             TEXT NOT NULL,
    old_value,
    new_value,
    author            TEXT NOT NULL,
    time              TEXT NOT NULL,
    checkplot_updated INTEGER NOT NULL,
    checkplot_note    TEXT,
    comment_id        INTEGER
);
CREATE INDEX IF NOT EXISTS edits_object ON edits(collection_id, objectid, edit_id);
CREATE TABLE IF NOT EXISTS comments (
    comment_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL,
    objectid      TEXT NOT NULL,
    author        TEXT NOT NULL,
    time          TEXT NOT NULL,
    text          TEXT NOT NULL,
    edited        TEXT,
    deleted       TEXT,
    deleted_by    TEXT
);
CREATE INDEX IF NOT EXISTS comments_object ON comments(collection_id, objectid, comment_id);
CREATE INDEX IF NOT EXISTS comments_author ON comments(collection_id, objectid, author, time);
CREATE TABLE IF NOT EXISTS survey_values (
    collection_id TEXT NOT NULL,
    objectid      TEXT NOT NULL,
    column_name   TEXT NOT NULL,
    value,
    PRIMARY KEY (collection_id, objectid, column_name)
);
"""


# --- validation ---------------------------------------------------------------------------


def _bad(field: str, message: str) -> UserError:
    return UserError(f"{field}: {message}", field=field)


def _check_chars(field: str, text: str, allow_newlines: bool) -> None:
    for ch in text:
        if ch in "\n\t" and allow_newlines:
            continue
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            raise _bad(field, f"control or unassigned character U+{ord(ch):04X} is not allowed")


def _number(field: str, value) -> float:
    if isinstance(value, bool):
        raise _bad(field, f"must be a number, not {shown(value)}")
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _bad(field, f"must be a number, not {shown(value)}") from None
    except OverflowError:  # a JSON integer too large for a float
        out = math.inf
    if not math.isfinite(out):
        raise _bad(field, f"must be a finite number, not {shown(value)}")
    return out


def _validate_objectisvar(value):
    if value is None or isinstance(value, bool):
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {shown(value)}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {shown(value)}") from None
    if not number.is_integer() or int(number) not in OBJECTISVAR:
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {shown(value)}")
    return int(number)


def _isvar_choices() -> str:
    return ", ".join(f"{k} ({v})" for k, v in OBJECTISVAR.items())


def _validate_varperiod(value):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    period = _number("varperiod", value)
    if period <= 0:
        raise _bad("varperiod", f"must be a period in days greater than 0, not {value!r}")
    return period


def _validate_varepoch(value):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _number("varepoch", value)


def _text(field: str, value, limit: int, allow_newlines: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(field, f"must be text, not {type(value).__name__}")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    _check_chars(field, text, allow_newlines)
    if len(text) > limit:
        raise _bad(field, f"is {len(text)} characters long; at most {limit} are allowed")
    return text or None


def normalize_vartags(value) -> str | None:
    """'  RR Lyrae ,rrab,, RR lyrae' -> 'RR Lyrae, rrab' (a list of tags is accepted too)."""
    if isinstance(value, (list, tuple)):
        if not all(isinstance(t, str) for t in value):
            raise _bad("vartags", "must be text or a list of texts")
        value = ",".join(value)
    text = _text("vartags", value, 10 * MAX_VARTAGS, allow_newlines=False)
    if text is None:
        return None
    tags, seen = [], set()
    for tag in text.split(","):
        tag = " ".join(tag.split())
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tags.append(tag)
    out = ", ".join(tags)
    if len(out) > MAX_VARTAGS:
        raise _bad("vartags", f"are {len(out)} characters long; at most {MAX_VARTAGS} are allowed")
    return out or None


def _validate_comments(value):
    return _text("comments", value, MAX_COMMENTS, allow_newlines=True)


VALIDATORS = {
    "objectisvar": _validate_objectisvar,
    "varperiod": _validate_varperiod,
    "varepoch": _validate_varepoch,
    "vartags": normalize_vartags,
    "comments": _validate_comments,
}


def validate_changes(changes) -> dict:
    """The normalised values of ``changes`` ({field: value}); :class:`UserError` on an
    unknown field or a bad value."""
    if not isinstance(changes, dict):
        raise UserError(f"changes must be a mapping of field to value, not {type(changes).__name__}",
                        field="changes")
    unknown = [k for k in changes if k not in VALIDATORS]
    if unknown:
        raise UserError(f"cannot edit {', '.join(map(repr, unknown))}; editable fields are "
                        f"{', '.join(FIELDS)}", field=str(unknown[0]))
    return {k: VALIDATORS[k](v) for k, v in changes.items()}


def validate_author(author) -> str:
    if not isinstance(author, str):
        raise UserError("author must be text (who made the edit)", field="author")
    author = " ".join(author.split())
    if not author:
        raise UserError("author is required (who made the edit)", field="author")
    _check_chars("author", author, allow_newlines=False)
    if len(author) > MAX_AUTHOR:
        raise UserError(f"author is {len(author)} characters long; at most {MAX_AUTHOR} are allowed",
                        field="author")
    return author


# --- the catalog row ----------------------------------------------------------------------


class _Target:
    """Where one object's editable values live: its catalog row's columns and checkplot."""

    def __init__(self, row_id: int, magcol: str, columns: dict[str, str], fts_columns: list[str],
                 cpfname: str | None):
        self.row_id = row_id
        self.magcol = magcol
        self.columns = columns          # field -> catalog column, for the fields it has
        self.fts_columns = fts_columns  # every column of object_fts, in its order
        self.cpfname = cpfname


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"SELECT * FROM pragma_table_info('{table}')")]


def _field_columns(names: list[str], prefix: str) -> dict[str, str]:
    present = set(names)
    out = {}
    for f in FIELDS:
        for name in (prefix + f, f):
            if name in present:
                out[f] = name
                break
    return out


def _locate(conn: sqlite3.Connection, info: CollectionInfo, objectid: str, magcol: str | None,
            needed: set[str]) -> _Target:
    names = _table_columns(conn, "object_catalog")
    has_cp = "cpfname" in names
    row = conn.execute(
        f"SELECT row_id{', cpfname' if has_cp else ''} FROM object_catalog WHERE objectid = ?",
        (objectid,)).fetchone()
    if row is None:
        raise NotFound(f"no object {objectid!r} in collection {info.collection_id!r}")
    row_id, cpfname = row[0], (row[1] if has_cp else None)
    if magcol is not None:
        prefixes = _magcol_prefixes(names)
        if not isinstance(magcol, str) or not magcol.strip():
            raise UserError(f"magcol must be a magnitude column name, not {magcol!r}", field="magcol")
        prefix = sql_name(magcol) + "_"
        if prefix not in prefixes:
            known = ", ".join(p.rstrip("_") for p in prefixes if p) or "none"
            raise UserError(f"collection {info.collection_id!r} has no variability columns for magcol "
                            f"{magcol!r}; it has: {known}", field="magcol")
        columns = _field_columns(names, prefix)
        if prefix + "cpfname" in names:  # that magcol's own checkplot (lcpanel.core.objects.magcols)
            cpfname = conn.execute(f'SELECT "{prefix}cpfname" FROM object_catalog WHERE row_id = ?',
                                   (row_id,)).fetchone()[0]
    else:
        prefix, columns = varinfo_columns(names, cpfname, objectid)
    missing = sorted(needed - set(columns), key=FIELDS.index)
    if missing:
        raise UserError(
            f"collection {info.collection_id!r} has no catalog column for {', '.join(missing)}"
            f"{' of magcol ' + prefix.rstrip('_') if prefix else ''}; only collections with astrobase "
            "variability columns (add_cpinfo_to_lclist) can be edited", field=missing[0])
    has_fts = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'object_fts'").fetchone() is not None
    fts_columns = _table_columns(conn, "object_fts") if has_fts else []
    return _Target(int(row_id), prefix.rstrip("_"), columns, fts_columns, cpfname)


def _magcol_prefixes(names: list[str]) -> list[str]:
    return [n[:-len("objectisvar")] for n in names if n.endswith("_objectisvar") or n == "objectisvar"]


def varinfo_columns(names: list[str], cpfname: str | None, objectid: str) -> tuple[str, dict[str, str]]:
    """(magcol prefix, field -> catalog column) of an object's editable fields: those of
    the magcol its checkplot was made for, else of the first magcol with variability
    columns."""
    prefixes = _magcol_prefixes(names)
    prefix = prefixes[0] if prefixes else ""
    cpmagcol = _checkplot_magcol(cpfname, objectid)
    if cpmagcol is not None:
        try:
            guess = sql_name(cpmagcol) + "_"
        except UserError:
            guess = None
        if guess in prefixes:
            prefix = guess
    return prefix, _field_columns(names, prefix)


def _checkplot_magcol(cpfname: str | None, objectid: str) -> str | None:
    if not cpfname:
        return None
    name = Path(str(cpfname)).name
    head = f"checkplot-{objectid}-"
    if not name.startswith(head):
        return None
    rest = name[len(head):].split(".pkl")[0]
    return rest or None


def _as_field(field: str, value):
    """A catalog value as the field's Python type (the column's declared type may differ
    from the field's when ingest inferred it from an all-empty column)."""
    if value is None:
        return None
    if field == "objectisvar":
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if field in ("varperiod", "varepoch"):
        try:
            out = float(value)
        except (TypeError, ValueError):
            return value
        return out if math.isfinite(out) else None
    return str(value) if value != "" else None


# --- the annotations database ---------------------------------------------------------------


def annotations_path(basedir: Basedir) -> Path:
    return basedir.path / ANNOTATIONS_FILE


def _ensure_schema(path: Path) -> None:
    with closing(connect_wal(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as conn:
        conn.executescript(SCHEMA)
        if "comment_id" not in _table_columns(conn, "edits"):  # a database from before comments
            conn.execute("ALTER TABLE edits ADD COLUMN comment_id INTEGER")


def _ro_uri(path: Path) -> str:
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


def _basedir(basedir) -> Basedir:
    return basedir if isinstance(basedir, Basedir) else Basedir(basedir)


def _info(base: Basedir, collection_info) -> CollectionInfo:
    if isinstance(collection_info, CollectionInfo):
        return collection_info
    return base.collection(str(collection_info))


def _check_objectid(objectid) -> None:
    if not isinstance(objectid, str) or not objectid.strip():
        raise UserError(f"objectid must be a non-empty text, not {objectid!r}", field="objectid")


@contextmanager
def _locked(base: Basedir, info: CollectionInfo, objectid: str, magcol: str | None, needed: set[str]):
    """(connection, target) inside one write transaction on the collection's derived
    catalog with the annotations database attached; committed when the block ends
    without an error, rolled back otherwise."""
    catalog = info.catalog_sqlite
    if not catalog.is_file():
        raise NotFound(f"collection {info.collection_id!r} has no catalog")
    with closing(sqlite3.connect(_ro_uri(catalog), uri=True, timeout=BUSY_TIMEOUT_S)) as ro:
        target = _locate(ro, info, objectid, magcol, needed)
    ann = annotations_path(base)
    _ensure_schema(ann)
    conn = sqlite3.connect(catalog, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS ann", (str(ann),))
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn, target
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _read_row(conn, info: CollectionInfo, objectid: str, target: _Target) -> dict:
    """The catalog row's editable and full-text columns, by column name."""
    read_cols = list(dict.fromkeys(list(target.columns.values()) + target.fts_columns))
    if not read_cols:
        return {}
    select = ", ".join(_quote(c) for c in read_cols)
    row = conn.execute(f"SELECT {select} FROM object_catalog WHERE row_id = ? AND objectid = ?",
                       (target.row_id, objectid)).fetchone()
    if row is None:
        raise NotFound(f"no object {objectid!r} in collection {info.collection_id!r}")
    return dict(zip(read_cols, row))


def _write_catalog(conn, info: CollectionInfo, objectid: str, target: _Target, stored: dict,
                   updates: dict) -> None:
    """Set catalog columns (``updates``: column -> value) of the object's row, keep the
    FTS5 index in step, and remember each column's value from before lcpanel first
    changed it (the survey's value) in ``ann.survey_values``."""
    if not updates:
        return
    conn.executemany(
        "INSERT OR IGNORE INTO ann.survey_values (collection_id, objectid, column_name, value) VALUES (?,?,?,?)",
        [(info.collection_id, objectid, c, stored.get(c)) for c in updates])
    assignments = ", ".join(f"{_quote(c)} = ?" for c in updates)
    conn.execute(f"UPDATE object_catalog SET {assignments} WHERE row_id = ?", (*updates.values(), target.row_id))
    if target.fts_columns and set(updates) & set(target.fts_columns):
        fts = target.fts_columns
        names = ", ".join(_quote(c) for c in fts)
        marks = ", ".join("?" * len(fts))
        conn.execute(f"INSERT INTO object_fts(object_fts, rowid, {names}) VALUES ('delete', ?, {marks})",
                     (target.row_id, *(stored[c] for c in fts)))
        conn.execute(f"INSERT INTO object_fts(rowid, {names}) VALUES (?, {marks})",
                     (target.row_id, *(updates.get(c, stored[c]) for c in fts)))


def _survey_value(conn, info: CollectionInfo, objectid: str, column: str, stored: dict):
    row = conn.execute("SELECT value FROM ann.survey_values WHERE collection_id = ? AND objectid = ? AND "
                       "column_name = ?", (info.collection_id, objectid, column)).fetchone()
    return row[0] if row is not None else stored.get(column)


def _now() -> str:
    return now_iso("microseconds")


def _record(conn, rows: list[tuple]) -> None:
    """History rows: (change_id, collection_id, objectid, magcol, field, old, new, author, time, comment_id)."""
    conn.executemany(
        "INSERT INTO ann.edits (change_id, collection_id, objectid, magcol, field, old_value, new_value, author, "
        "time, checkplot_updated, checkplot_note, comment_id) VALUES (?,?,?,?,?,?,?,?,?,0,NULL,?)", rows)


# --- variability info -----------------------------------------------------------------------


def edit_object(basedir, collection_info, objectid: str, changes: dict, author: str, *,
                magcol: str | None = None, expect: dict | None = None) -> dict:
    """Change an object's variability info (see the module docstring). Who may do it is
    :mod:`lcpanel.core.objects.reviews`' business.

    ``changes``: {field: new value} for fields in :data:`VARINFO_FIELDS`. ``expect``:
    {field: value the caller last saw}; :class:`Conflict` if the catalog now holds
    something else. ``magcol``: whose columns to edit; by default the magcol of the
    object's checkplot, else the first with an ``_objectisvar`` column.

    Returns ``{collection_id, objectid, magcol, author, time, change_id, changed:
    {field: {old, new}}, values: {field: current value}}``. Nothing is written when
    nothing changes.
    """
    base = _basedir(basedir)
    info = _info(base, collection_info)
    _check_objectid(objectid)
    if isinstance(changes, dict) and "comments" in changes:
        raise UserError("comments are appended, never replaced: add a comment instead", field="comments")
    new = validate_changes(changes)
    author = validate_author(author)
    expected = validate_changes(expect) if expect is not None else {}
    if not new:
        raise UserError("nothing to change: give at least one of " + ", ".join(VARINFO_FIELDS), field="changes")
    with _locked(base, info, objectid, magcol, set(new) | set(expected)) as (conn, target):
        return _edit_locked(conn, info, objectid, target, new, expected, author)


def _edit_locked(conn, info: CollectionInfo, objectid: str, target: _Target, new: dict, expected: dict,
                 author: str) -> dict:
    cols = target.columns
    stored = _read_row(conn, info, objectid, target)
    current = {f: _as_field(f, stored[c]) for f, c in cols.items()}
    stale = {f: {"expected": v, "current": current.get(f)} for f, v in expected.items() if current.get(f) != v}
    if stale:
        raise Conflict(f"{objectid} was changed by someone else since you looked: "
                       + "; ".join(f"{f} is now {d['current']!r}" for f, d in stale.items()),
                       field=next(iter(stale)))
    changed = {f: {"old": current.get(f), "new": v} for f, v in new.items() if current.get(f) != v}
    stamp = _now()
    change_id = uuid.uuid4().hex
    values = {f: current.get(f) for f in cols if f != "comments"}
    values.update({f: d["new"] for f, d in changed.items()})
    result = {"collection_id": info.collection_id, "objectid": objectid, "magcol": target.magcol, "author": author,
              "time": stamp, "change_id": change_id if changed else None, "changed": changed, "values": values}
    if changed:
        _write_catalog(conn, info, objectid, target, stored, {cols[f]: d["new"] for f, d in changed.items()})
        _record(conn, [(change_id, info.collection_id, objectid, target.magcol, f, d["old"], d["new"], author, stamp,
                        None) for f, d in changed.items()])
    return result


# --- comments -------------------------------------------------------------------------------


def validate_comment(text, max_chars: int = MAX_COMMENTS) -> str:
    """A comment's normalised text; :class:`UserError` when empty, too long or holding
    control characters."""
    if isinstance(text, str) and len(text) > 4 * max_chars + 1000:  # not worth normalising
        raise UserError(f"a comment holds at most {max_chars} characters; this one has {len(text)}", field="comment")
    out = _text("comment", text, 4 * max_chars + 1000, allow_newlines=True)
    if out is None:
        raise UserError("a comment cannot be empty", field="comment")
    if len(out) > max_chars:
        raise UserError(f"a comment holds at most {max_chars} characters; this one has {len(out)}", field="comment")
    return out


def _merged_comments(conn, info: CollectionInfo, objectid: str, target: _Target, stored: dict):
    """The catalog's comments column after a comment change: the survey's own comment,
    then every standing comment, one per line (what full-text search sees)."""
    column = target.columns.get("comments")
    if column is None:
        return None, None
    base = _survey_value(conn, info, objectid, column, stored)
    texts = [r[0] for r in conn.execute(
        "SELECT text FROM ann.comments WHERE collection_id = ? AND objectid = ? AND deleted IS NULL "
        "ORDER BY comment_id", (info.collection_id, objectid))]
    merged = "\n".join(t for t in [base if base not in (None, "") else None, *texts] if t)
    return column, (merged or None)


def _sync_comments(conn, info: CollectionInfo, objectid: str, target: _Target, stored: dict) -> None:
    column, merged = _merged_comments(conn, info, objectid, target, stored)
    if column is not None and stored.get(column) != merged:
        _write_catalog(conn, info, objectid, target, stored, {column: merged})


def _comment_dict(row) -> dict:
    return dict(zip(("comment_id", "collection_id", "objectid", "author", "time", "text", "edited"), row))


def add_comment(basedir, collection_info, objectid: str, text: str, author: str, *,
                max_chars: int = MAX_COMMENTS, max_per_day: int = 0) -> dict:
    """Append a comment (author, time, text) to an object. ``max_per_day`` > 0: at most
    that many comments by ``author`` on this object in any 24 hours
    (:class:`TooManyRequests` otherwise; counted inside the write lock). Returns the
    comment."""
    base = _basedir(basedir)
    info = _info(base, collection_info)
    _check_objectid(objectid)
    text = validate_comment(text, max_chars)
    author = validate_author(author)
    with _locked(base, info, objectid, None, set()) as (conn, target):
        current = now()
        if max_per_day > 0:
            since = (current - timedelta(days=1)).isoformat(timespec="microseconds")
            recent = [r[0] for r in conn.execute(
                "SELECT time FROM ann.comments WHERE collection_id = ? AND objectid = ? AND author = ? AND time > ? "
                "ORDER BY time", (info.collection_id, objectid, author, since))]
            if len(recent) >= max_per_day:
                wait = (datetime.fromisoformat(recent[0]) + timedelta(days=1) - current).total_seconds()
                raise TooManyRequests(
                    f"you may add at most {max_per_day} comments per object per day; the next one is possible in "
                    f"{_duration(wait)}", retry_after=max(wait, 1.0))
        stored = _read_row(conn, info, objectid, target)
        stamp = current.isoformat(timespec="microseconds")
        cur = conn.execute("INSERT INTO ann.comments (collection_id, objectid, author, time, text) VALUES (?,?,?,?,?)",
                           (info.collection_id, objectid, author, stamp, text))
        comment_id = cur.lastrowid
        _record(conn, [(uuid.uuid4().hex, info.collection_id, objectid, "", "comment", None, text, author, stamp,
                        comment_id)])
        _sync_comments(conn, info, objectid, target, stored)
    return {"comment_id": comment_id, "collection_id": info.collection_id, "objectid": objectid, "author": author,
            "time": stamp, "text": text, "edited": None}


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} min" if minutes < 120 else f"{math.ceil(minutes / 60)} h"


def change_comment(basedir, collection_info, objectid: str, comment_id: int, text: str | None, editor: str, *,
                   may_change_others: bool = False, max_chars: int = MAX_COMMENTS) -> dict | None:
    """Edit (``text``) or delete (``text`` None) a standing comment. Only its author may,
    unless ``may_change_others`` (admins); :class:`Forbidden` otherwise. The old text stays
    in the history. Returns the edited comment, or None after a delete."""
    base = _basedir(basedir)
    info = _info(base, collection_info)
    _check_objectid(objectid)
    if isinstance(comment_id, bool) or not isinstance(comment_id, int):
        raise UserError(f"comment_id must be an integer, not {comment_id!r}", field="comment_id")
    if text is not None:
        text = validate_comment(text, max_chars)
    editor = validate_author(editor)
    with _locked(base, info, objectid, None, set()) as (conn, target):
        row = conn.execute(
            "SELECT comment_id, collection_id, objectid, author, time, text, edited FROM ann.comments "
            "WHERE comment_id = ? AND collection_id = ? AND objectid = ? AND deleted IS NULL",
            (comment_id, info.collection_id, objectid)).fetchone()
        if row is None:
            raise NotFound(f"object {objectid!r} has no comment {comment_id}")
        comment = _comment_dict(row)
        if comment["author"] != editor and not may_change_others:
            raise Forbidden("you may edit or delete only your own comments")
        if text == comment["text"]:
            return comment
        stored = _read_row(conn, info, objectid, target)
        stamp = _now()
        if text is None:
            conn.execute("UPDATE ann.comments SET deleted = ?, deleted_by = ? WHERE comment_id = ?",
                         (stamp, editor, comment_id))
        else:
            conn.execute("UPDATE ann.comments SET text = ?, edited = ? WHERE comment_id = ?", (text, stamp, comment_id))
        _record(conn, [(uuid.uuid4().hex, info.collection_id, objectid, "", "comment", comment["text"], text, editor,
                        stamp, comment_id)])
        _sync_comments(conn, info, objectid, target, stored)
    if text is None:
        return None
    return {**comment, "text": text, "edited": stamp}


def comments(basedir, collection_id: str, objectid: str) -> list[dict]:
    """An object's standing comments, oldest first: comment_id, collection_id, objectid,
    author, time, text, edited (time of the last edit or None); times UTC ISO 8601."""
    path = annotations_path(_basedir(basedir))
    if not path.is_file():
        return []
    with closing(sqlite3.connect(_ro_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'comments'").fetchone() is None:
            return []
        return [_comment_dict(r) for r in conn.execute(
            "SELECT comment_id, collection_id, objectid, author, time, text, edited FROM comments "
            "WHERE collection_id = ? AND objectid = ? AND deleted IS NULL ORDER BY comment_id",
            (collection_id, objectid))]


def survey_values(basedir, collection_id: str, objectid: str) -> dict:
    """Catalog column -> the value it had before lcpanel first changed it (only columns
    lcpanel has changed)."""
    path = annotations_path(_basedir(basedir))
    if not path.is_file():
        return {}
    with closing(sqlite3.connect(_ro_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'survey_values'").fetchone() is None:
            return {}
        return dict(conn.execute("SELECT column_name, value FROM survey_values WHERE collection_id = ? AND "
                                 "objectid = ?", (collection_id, objectid)))


def history(basedir, collection_id: str, objectid: str, *, limit: int | None = None) -> list[dict]:
    """Every recorded change of one object, oldest first (the last ``limit`` when given):
    dicts with edit_id, change_id, collection_id, objectid, magcol, field (a varinfo
    field, or ``comment`` with its comment_id: old_value None for a new comment,
    new_value None for a deleted one), old_value, new_value, author, time."""
    base = _basedir(basedir)
    path = annotations_path(base)
    if not path.is_file():
        return []
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UserError(f"limit must be a positive integer, not {limit!r}", field="limit")
    with closing(sqlite3.connect(_ro_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        conn.row_factory = sqlite3.Row
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'edits'").fetchone() is None:
            return []
        sql = "SELECT * FROM edits WHERE collection_id = ? AND objectid = ? ORDER BY edit_id DESC"
        params: tuple = (collection_id, objectid)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        rows = [dict(r) for r in conn.execute(sql, params)]
    rows.reverse()
    for r in rows:
        r.pop("checkplot_updated", None)
        r.pop("checkplot_note", None)
        r.setdefault("comment_id", None)
    return rows


def reviewed_objects(basedir, collection_id: str) -> dict[str, set[tuple[str, str]]]:
    """objectid -> {(magcol, varinfo field)} of every object of a collection with a
    reviewed varinfo field or a standing comment (field ``comment``, magcol '')."""
    path = annotations_path(_basedir(basedir))
    out: dict[str, set] = {}
    if not path.is_file():
        return out
    with closing(sqlite3.connect(_ro_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "edits" in tables:
            marks = ", ".join("?" * len(VARINFO_FIELDS))
            for oid, magcol, fld in conn.execute(
                    f"SELECT DISTINCT objectid, magcol, field FROM edits WHERE collection_id = ? AND field IN ({marks})",
                    (collection_id, *VARINFO_FIELDS)):
                out.setdefault(oid, set()).add((magcol, fld))
        if "comments" in tables:
            for (oid,) in conn.execute("SELECT DISTINCT objectid FROM comments WHERE collection_id = ? AND "
                                       "deleted IS NULL", (collection_id,)):
                out.setdefault(oid, set()).add(("", "comment"))
    return out


def catalog_values(info: CollectionInfo, objectid: str, magcol: str | None = None) -> tuple[_Target, dict]:
    """(target, {field: value}) of an object's editable fields in the derived catalog
    (reviews merged over the survey's values)."""
    with closing(sqlite3.connect(_ro_uri(info.catalog_sqlite), uri=True, timeout=BUSY_TIMEOUT_S)) as conn:
        target = _locate(conn, info, objectid, magcol, set())
        stored = _read_row(conn, info, objectid, target)
    return target, {f: _as_field(f, stored[c]) for f, c in target.columns.items()}
