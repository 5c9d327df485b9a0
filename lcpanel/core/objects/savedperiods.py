"""Saved periods: several candidate periods per object, folded at one shared epoch (as
SkyPortal keeps them), stored in the basedir (``BASEDIR/saved_periods.sqlite``, WAL);
the survey's collection directory is never written.

- Everyone who can see an object may **save** a period of it (days, finite, > 0) with
  an optional label (at most :data:`MAX_LABEL` characters, no control characters); each
  is kept with its author (the visitor's identity), the magcol it was found on and the
  time. Saving a period already saved (within 1e-9 relative) returns that one. An
  identity saves at most :data:`MAX_PER_DAY` periods of one object in any 24 hours
  (admins are not capped); an object holds at most :data:`MAX_PER_OBJECT`.
- A period's author, or an admin, may **delete** it.
- The **shared epoch** (time of minimum light, in the checkplot's time column) is the
  one every saved period folds at. Staff and admins set or replace it; anyone's save
  that carries an epoch sets it while there is none. Without one, the reviewer's
  adopted ``varepoch`` is used.
- The reviewer's **adopted** period (``varperiod`` of a reviewed object, see
  :mod:`lcpanel.core.objects.annotations`) is always listed first, marked ``adopted``.

Request budgets and same-origin checks are the interfaces' (JSON API base handler, the
object page's budget), as for reviews.
"""

from __future__ import annotations

import math
import unicodedata
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from ...errors import Forbidden, NotFound, TooManyRequests, UserError, shown
from ..clock import now
from ..wal import connect_wal
from . import annotations
from .record import must_exist

PERIODS_FILE = "saved_periods.sqlite"
MAX_LABEL = 80
MAX_MAGCOL = 200
MAX_PER_DAY = 30
MAX_PER_OBJECT = 100
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS periods (
    period_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id TEXT NOT NULL,
    objectid      TEXT NOT NULL,
    magcol        TEXT NOT NULL DEFAULT '',
    period        REAL NOT NULL,
    label         TEXT NOT NULL DEFAULT '',
    author        TEXT NOT NULL,
    time          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS periods_object ON periods(collection_id, objectid, period_id);
CREATE TABLE IF NOT EXISTS epochs (
    collection_id TEXT NOT NULL,
    objectid      TEXT NOT NULL,
    epoch         REAL NOT NULL,
    author        TEXT NOT NULL,
    time          TEXT NOT NULL,
    PRIMARY KEY (collection_id, objectid)
);
"""


def _path(basedir) -> Path:
    return Path(getattr(basedir, "path", basedir)) / PERIODS_FILE


def _connect(basedir, *, write: bool):
    path = _path(basedir)
    if not write and not path.is_file():
        return None
    conn = connect_wal(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    if write:
        conn.executescript(SCHEMA)
    return conn


def check_period_value(value, field: str = "period") -> float:
    """A period in days: a finite number > 0 (numeric text accepted)."""
    if isinstance(value, bool) or value is None:
        raise UserError(f"{field} must be a number of days > 0, not {value!r}", field=field)
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise UserError(f"{field} must be a number of days > 0, not {shown(value)}", field=field) from None
    except OverflowError:  # a JSON integer too large for a float
        out = math.inf
    if not math.isfinite(out) or out <= 0:
        raise UserError(f"{field} must be a finite number of days > 0, not {shown(value)}", field=field)
    return out


def check_epoch(value) -> float:
    """An epoch: a finite number (the checkplot's time column)."""
    if isinstance(value, bool) or value is None:
        raise UserError(f"epoch must be a number, not {value!r}", field="epoch")
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise UserError(f"epoch must be a number, not {shown(value)}", field="epoch") from None
    except OverflowError:  # a JSON integer too large for a float
        out = math.inf
    if not math.isfinite(out):
        raise UserError(f"epoch must be a finite number, not {shown(value)}", field="epoch")
    return out


def check_magcol(value) -> str:
    """The light-curve column a period was found in: text of at most :data:`MAX_MAGCOL`
    characters, or none ("")."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"magcol must be the name of a magnitude column, not {shown(value)}", field="magcol")
    text = value.strip()
    if len(text) > MAX_MAGCOL:
        raise UserError(f"magcol is {len(text)} characters long; a column name has at most {MAX_MAGCOL}",
                        field="magcol")
    return text


def check_label(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UserError(f"label must be text, not {shown(value)}", field="label")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if len(text) > MAX_LABEL:
        raise UserError(f"label is {len(text)} characters long; at most {MAX_LABEL} are allowed", field="label")
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            raise UserError(f"label: control or unassigned character U+{ord(ch):04X} is not allowed", field="label")
    return text


def _row(r) -> dict:
    return {"period_id": r[0], "magcol": r[1] or None, "period": r[2], "label": r[3], "author": r[4],
            "time": r[5], "adopted": False}


def object_periods(basedir, catalog, objectid: str, *, magcol: str | None = None) -> dict:
    """``{"epoch": {"epoch", "author", "time", "source"} | None, "periods": [...]}``: the
    adopted period first (``adopted: True``, no ``period_id``), then saved ones, oldest
    first."""
    must_exist(catalog, objectid)
    cid = catalog.info.collection_id
    periods, epoch = [], None
    try:
        _target, values = annotations.catalog_values(catalog.info, objectid, magcol)
    except UserError:
        values = {}
    vp, ve = values.get("varperiod"), values.get("varepoch")
    if values.get("objectisvar") in (1, "1") and isinstance(vp, (int, float)) and vp > 0:
        periods.append({"period_id": None, "magcol": magcol, "period": float(vp), "label": "adopted by a reviewer",
                        "author": None, "time": None, "adopted": True})
    conn = _connect(basedir, write=False)
    if conn is not None:
        with closing(conn):
            has = conn.execute("SELECT name FROM sqlite_master WHERE name='periods'").fetchone()
            if has:
                periods += [_row(r) for r in conn.execute(
                    "SELECT period_id, magcol, period, label, author, time FROM periods WHERE collection_id = ? "
                    "AND objectid = ? ORDER BY period_id", (cid, objectid))]
                e = conn.execute("SELECT epoch, author, time FROM epochs WHERE collection_id = ? AND objectid = ?",
                                 (cid, objectid)).fetchone()
                if e:
                    epoch = {"epoch": e[0], "author": e[1], "time": e[2], "source": "shared"}
    if epoch is None and isinstance(ve, (int, float)) and math.isfinite(ve):
        epoch = {"epoch": float(ve), "author": None, "time": None, "source": "adopted"}
    return {"collection_id": cid, "objectid": objectid, "epoch": epoch, "periods": periods}


def save_period(basedir, catalog, objectid: str, viewer, period, *, label=None, magcol: str | None = None,
                epoch=None) -> dict:
    """Save ``viewer``'s period of an object (see the module docstring); the saved row."""
    must_exist(catalog, objectid)
    period = check_period_value(period)
    label = check_label(label)
    epoch = check_epoch(epoch) if epoch is not None else None
    author = annotations.validate_author(viewer.identity)
    magcol = check_magcol(magcol)
    cid = catalog.info.collection_id
    current = now()
    stamp = current.isoformat(timespec="microseconds")
    with closing(_connect(basedir, write=True)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT period_id, magcol, period, label, author, time FROM periods "
                                "WHERE collection_id = ? AND objectid = ?", (cid, objectid)).fetchall()
            same = [r for r in rows if abs(r[2] - period) <= 1e-9 * period]
            if same:
                out = _row(same[0])
            else:
                if len(rows) >= MAX_PER_OBJECT:
                    raise UserError(f"this object has {len(rows)} saved periods, the most it may hold; delete some "
                                    "first", field="period")
                if not viewer.admin:
                    since = (current - timedelta(days=1)).isoformat(timespec="microseconds")
                    recent = sum(1 for r in rows if r[4] == author and r[5] > since)
                    if recent >= MAX_PER_DAY:
                        raise TooManyRequests(f"you may save at most {MAX_PER_DAY} periods of one object per day",
                                              retry_after=3600.0)
                cur = conn.execute("INSERT INTO periods (collection_id, objectid, magcol, period, label, author, time)"
                                   " VALUES (?,?,?,?,?,?,?)", (cid, objectid, magcol, period, label, author, stamp))
                out = {"period_id": cur.lastrowid, "magcol": magcol or None, "period": period, "label": label,
                       "author": author, "time": stamp, "adopted": False}
            if epoch is not None:
                conn.execute("INSERT OR IGNORE INTO epochs (collection_id, objectid, epoch, author, time) "
                             "VALUES (?,?,?,?,?)", (cid, objectid, epoch, author, stamp))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return out


def set_epoch(basedir, catalog, objectid: str, viewer, epoch) -> dict:
    """Set or replace the object's shared epoch (staff and admins)."""
    if not viewer.staff:
        raise Forbidden("only staff may change the shared epoch; everyone may save periods")
    must_exist(catalog, objectid)
    epoch = check_epoch(epoch)
    author = annotations.validate_author(viewer.identity)
    stamp = now().isoformat(timespec="microseconds")
    with closing(_connect(basedir, write=True)) as conn:
        conn.execute("INSERT OR REPLACE INTO epochs (collection_id, objectid, epoch, author, time) VALUES (?,?,?,?,?)",
                     (catalog.info.collection_id, objectid, epoch, author, stamp))
    return {"epoch": epoch, "author": author, "time": stamp, "source": "shared"}


def delete_period(basedir, catalog, objectid: str, viewer, period_id) -> None:
    """Delete a saved period: its author's own, or any for an admin."""
    try:
        pid = int(period_id)
    except (TypeError, ValueError):
        raise UserError(f"period_id must be a whole number, not {period_id!r}", field="period_id") from None
    conn = _connect(basedir, write=False)
    missing = NotFound(f"object {objectid!r} has no saved period {pid}")
    if conn is None:
        raise missing
    with closing(conn):
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            r = conn.execute("SELECT author FROM periods WHERE period_id = ? AND collection_id = ? AND objectid = ?",
                             (pid, catalog.info.collection_id, objectid)).fetchone()
            if r is None:
                raise missing
            if not (viewer.admin or r[0] == viewer.identity):
                raise Forbidden("only its author or an admin may delete a saved period")
            conn.execute("DELETE FROM periods WHERE period_id = ?", (pid,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def can_delete(viewer, period: dict) -> bool:
    return not period.get("adopted") and (viewer.admin or period.get("author") == viewer.identity)
