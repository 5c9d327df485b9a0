"""Reviewers' edits of an object's variability info and comments, with their history.

Editable fields (astrobase's checkplot ``varinfo`` keys and ``comments``):

=============  =============================================================================
objectisvar    0 unreviewed, 1 variable, 2 not variable, 3 can't tell
varperiod      adopted period in days, a finite number > 0, or None
varepoch       epoch of the ephemeris (time of minimum light, the light curve's time
               system), a finite number, or None
vartags        comma-separated tags, at most 500 characters; normalised to "a, b, c"
               (blank tags and repeats, case-insensitively, dropped); "" means None
comments       free text, at most 5000 characters; "" means None
=============  =============================================================================

Numbers may also be given as numeric strings (form input); text is NFC-normalised and
stripped, and control characters are refused (newlines and tabs are allowed in comments).

:func:`edit_object` changes one object of one collection:

1. validates everything first: unknown fields, bad values, a bad author, an unknown
   object or a catalog without the needed columns raise :class:`UserError` (NotFound
   for the object) and nothing is written;
2. in one SQLite transaction (``BEGIN IMMEDIATE`` on the collection's derived catalog
   ``BASEDIR/collections/<id>/catalog-objectinfo.sqlite``, with ``BASEDIR/annotations.sqlite``
   attached) it re-reads the row, updates the magcol's columns (``<magcol>_objectisvar``,
   ``_varperiod``, ``_varepoch``, ``_vartags``, ``_comments``), keeps the external-content
   FTS5 index in step (the 'delete' command with the row's old values, then the new
   values) and appends one history row per changed field, all committed together;
3. while holding that lock it rewrites the object's checkplot pickle atomically (temp
   file + ``os.replace``, same gzip-ness, pickle protocol and file mode) with the new
   varinfo/comments, if the collection directory and file are writable. If not (or the
   write fails), the catalog edit still happens and the result and the history rows
   say the checkplot was not updated and why. If the catalog commit fails after the
   checkplot was replaced, the old checkplot bytes are put back.

Concurrent editors (threads or processes, on one machine) are serialised by the catalog
write lock (busy timeout 30 s), so no edit is lost; ``append_comment`` appends inside the
lock, and ``expect`` turns "someone changed it since I looked" into :class:`Conflict`.
Searches read the catalog on new read-only connections and see an edit once committed.

The history (:func:`history`) is a basedir-level table ``edits`` in
``BASEDIR/annotations.sqlite`` (WAL): edit_id, change_id (one per :func:`edit_object`
call), collection_id, objectid, magcol, field, old_value, new_value (typed: NULL, REAL,
INTEGER or TEXT), author, time (UTC ISO 8601), checkplot_updated, checkplot_note.
Old values are the catalog's (what searches showed), so an unreviewed object's
objectisvar is 0 even where its checkplot says None.

A checkplot shared with another basedir (the same collection directory ingested twice)
is updated, but the other basedir's catalog is not.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import sqlite3
import stat
import unicodedata
import uuid
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from ..errors import Conflict, NotFound, UserError
from .atomic import atomic_path, write_bytes
from .basedir import Basedir, CollectionInfo
from .checkplots import read_checkplot_bytes
from .clock import now_iso
from .columns import sql_name

ANNOTATIONS_FILE = "annotations.sqlite"
FIELDS = ("objectisvar", "varperiod", "varepoch", "vartags", "comments")
OBJECTISVAR = {0: "unreviewed", 1: "variable", 2: "not variable", 3: "can't tell"}
MAX_VARTAGS = 500
MAX_COMMENTS = 5000
MAX_AUTHOR = 200
BUSY_TIMEOUT_S = 30.0
CHECKPLOT_GZIP_LEVEL = 6

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
    checkplot_note    TEXT
);
CREATE INDEX IF NOT EXISTS edits_object ON edits(collection_id, objectid, edit_id);
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
        raise _bad(field, f"must be a number, not {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _bad(field, f"must be a number, not {value!r}") from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _bad(field, f"must be a number, not {value!r}") from None
    if not math.isfinite(out):
        raise _bad(field, f"must be a finite number, not {value!r}")
    return out


def _validate_objectisvar(value):
    if value is None or isinstance(value, bool):
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {value!r}")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {value!r}") from None
    if not number.is_integer() or int(number) not in OBJECTISVAR:
        raise _bad("objectisvar", f"must be one of {_isvar_choices()}, not {value!r}")
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
        if prefix + "cpfname" in names:  # that magcol's own checkplot (lcpanel.core.magcols)
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


# --- the checkplot ------------------------------------------------------------------------


def _checkplot_path(info: CollectionInfo, cpfname: str | None) -> tuple[Path | None, str | None]:
    """The resolved checkplot path inside the collection directory, or (None, why not)."""
    if not cpfname:
        return None, "the object has no checkplot"
    path = info.object_file(cpfname)
    if path is None:
        return None, f"the checkplot {cpfname} is missing or outside the collection directory"
    return path, None


def _checkplot_not_writable(path: Path) -> str | None:
    """Why the checkplot at ``path`` cannot be replaced, or None when it can."""
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return "the collection directory is read-only"
    if not os.access(path, os.W_OK):
        return "the checkplot file is read-only"
    return None


def _rewrite_checkplot(path: Path, values: dict) -> bytes:
    """Replace the checkplot at ``path`` with ``values`` (field -> new value) applied;
    return the file's previous bytes."""
    raw = path.read_bytes()
    cp, gzipped, protocol = read_checkplot_bytes(raw, path.name)
    varinfo = dict(cp.get("varinfo") or {})
    for field, value in values.items():
        if field == "comments":
            cp["comments"] = value
        else:
            varinfo[field] = value
    cp["varinfo"] = varinfo
    if not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:
        protocol = pickle.HIGHEST_PROTOCOL
    data = pickle.dumps(cp, protocol=protocol)
    if gzipped:
        data = gzip.compress(data, compresslevel=CHECKPLOT_GZIP_LEVEL, mtime=0)
    mode = stat.S_IMODE(path.stat().st_mode)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
    return raw


# --- annotations database -----------------------------------------------------------------


def annotations_path(basedir: Basedir) -> Path:
    return basedir.path / ANNOTATIONS_FILE


def _ensure_schema(path: Path) -> None:
    with closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as conn:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)


def _ro_uri(path: Path) -> str:
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


def _basedir(basedir) -> Basedir:
    return basedir if isinstance(basedir, Basedir) else Basedir(basedir)


def _info(base: Basedir, collection_info) -> CollectionInfo:
    if isinstance(collection_info, CollectionInfo):
        return collection_info
    return base.collection(str(collection_info))


# --- edits --------------------------------------------------------------------------------


def edit_object(basedir, collection_info, objectid: str, changes: dict, author: str, *,
                magcol: str | None = None, append_comment: str | None = None,
                expect: dict | None = None) -> dict:
    """Change an object's variability info and comments (see the module docstring).

    ``changes``: {field: new value} for fields in :data:`FIELDS`. ``append_comment``:
    text added as a new line at the end of the current comments (inside the lock, so
    concurrent appends are all kept; may be combined with other changes but not with
    ``comments``). ``expect``: {field: value the caller last saw}; :class:`Conflict` if
    the catalog now holds something else. ``magcol``: whose columns to edit; by default
    the magcol of the object's checkplot, else the first with an ``_objectisvar`` column.

    Returns ``{collection_id, objectid, magcol, author, time, change_id, changed:
    {field: {old, new}}, values: {field: current value}, checkplot: {updated, path,
    reason}, checkplot_updated}``. Nothing is written when nothing changes.
    """
    base = _basedir(basedir)
    info = _info(base, collection_info)
    if not isinstance(objectid, str) or not objectid.strip():
        raise UserError(f"objectid must be a non-empty text, not {objectid!r}", field="objectid")
    new = validate_changes(changes)
    author = validate_author(author)
    if append_comment is not None:
        if "comments" in new:
            raise UserError("give either comments or append_comment, not both", field="comments")
        append_comment = _text("comments", append_comment, MAX_COMMENTS, allow_newlines=True)
    expected = validate_changes(expect) if expect is not None else {}
    if not new and append_comment is None:
        raise UserError("nothing to change: give at least one of " + ", ".join(FIELDS), field="changes")
    needed = set(new) | set(expected) | ({"comments"} if append_comment is not None else set())

    catalog = info.catalog_sqlite
    if not catalog.is_file():
        raise NotFound(f"collection {info.collection_id!r} has no catalog at {catalog}")
    with closing(sqlite3.connect(_ro_uri(catalog), uri=True, timeout=BUSY_TIMEOUT_S)) as ro:
        target = _locate(ro, info, objectid, magcol, needed)

    ann = annotations_path(base)
    _ensure_schema(ann)
    conn = sqlite3.connect(catalog, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    undo: list[tuple[Path, bytes]] = []  # checkplots replaced in this transaction, with their old bytes
    try:
        conn.execute("ATTACH DATABASE ? AS ann", (str(ann),))
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = _edit_locked(conn, info, objectid, target, new, expected, append_comment, author, undo)
            conn.execute("COMMIT" if result["changed"] else "ROLLBACK")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for path, old_bytes in undo:
                write_bytes(path, old_bytes)
            raise
    finally:
        conn.close()


def _edit_locked(conn, info: CollectionInfo, objectid: str, target: _Target, new: dict, expected: dict,
                 append_comment: str | None, author: str, undo: list) -> dict:
    cols = target.columns
    read_cols = list(dict.fromkeys(list(cols.values()) + target.fts_columns))
    select = ", ".join(_quote(c) for c in read_cols)
    row = conn.execute(f"SELECT {select} FROM object_catalog WHERE row_id = ? AND objectid = ?",
                       (target.row_id, objectid)).fetchone()
    if row is None:
        raise NotFound(f"no object {objectid!r} in collection {info.collection_id!r}")
    stored = dict(zip(read_cols, row))
    current = {f: _as_field(f, stored[c]) for f, c in cols.items()}

    stale = {f: {"expected": v, "current": current.get(f)} for f, v in expected.items() if current.get(f) != v}
    if stale:
        raise Conflict(f"{objectid} was changed by someone else since you looked: "
                       + "; ".join(f"{f} is now {d['current']!r}" for f, d in stale.items()),
                       field=next(iter(stale)))
    final = dict(new)
    if append_comment is not None:
        joined = "\n".join(t for t in (current.get("comments"), append_comment) if t)
        if len(joined) > MAX_COMMENTS:
            raise UserError(f"comments: would be {len(joined)} characters long with this addition; at most "
                            f"{MAX_COMMENTS} are allowed", field="comments")
        final["comments"] = joined or None
    changed = {f: {"old": current.get(f), "new": v} for f, v in final.items() if current.get(f) != v}
    now = now_iso("microseconds")
    change_id = uuid.uuid4().hex
    values = {f: current.get(f) for f in cols}
    values.update({f: d["new"] for f, d in changed.items()})
    result = {
        "collection_id": info.collection_id,
        "objectid": objectid,
        "magcol": target.magcol,
        "author": author,
        "time": now,
        "change_id": change_id if changed else None,
        "changed": changed,
        "values": values,
        "checkplot": {"updated": False, "path": target.cpfname, "reason": "nothing changed"},
        "checkplot_updated": False,
    }
    if not changed:
        return result

    updates = {cols[f]: d["new"] for f, d in changed.items()}
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

    path, reason = _checkplot_path(info, target.cpfname)
    if path is not None:
        reason = _checkplot_not_writable(path)
    if path is not None and reason is None:
        try:
            old_bytes = _rewrite_checkplot(path, {f: d["new"] for f, d in changed.items()})
        except UserError as exc:  # CheckplotError: unreadable pickle
            reason = f"the checkplot could not be read: {exc.message}"
        except OSError as exc:
            reason = f"the checkplot could not be written: {exc.strerror or exc}"
        else:
            undo.append((path, old_bytes))
    updated = reason is None
    result["checkplot"] = {"updated": updated, "path": target.cpfname, "reason": reason}
    result["checkplot_updated"] = updated

    conn.executemany(
        "INSERT INTO ann.edits (change_id, collection_id, objectid, magcol, field, old_value, new_value, author, "
        "time, checkplot_updated, checkplot_note) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(change_id, info.collection_id, objectid, target.magcol, f, d["old"], d["new"], author, now,
          int(updated), reason) for f, d in changed.items()])
    return result


def history(basedir, collection_id: str, objectid: str, *, limit: int | None = None) -> list[dict]:
    """Every recorded edit of one object, oldest first (the last ``limit`` when given):
    dicts with edit_id, change_id, collection_id, objectid, magcol, field, old_value,
    new_value, author, time, checkplot_updated (bool), checkplot_note."""
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
        r["checkplot_updated"] = bool(r["checkplot_updated"])
    return rows
