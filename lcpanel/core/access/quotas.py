"""Disk quotas: how many bytes of datasets, products and period-search results
(:mod:`lcpanel.core.objects.periodsearch`) each identity holds, and the checks that keep a
visitor inside their quota and their role's product size cap.

The ledger is ``BASEDIR/usage.sqlite`` (WAL, shared by every server process): one row per
(kind, item, owner) with its size in bytes. The *owner* of a quota is the account
identity (``user:alice``, ``cli:operator``) or, for anonymous visitors, their client
address (``ip:203.0.113.5``): anonymous session cookies are free to make, addresses are
not. A write is charged its size before it is made, in one ``BEGIN IMMEDIATE``
transaction that checks the owner's total and adds the row, so two requests racing for
the last megabytes cannot both pass, and a refused write changes nothing (a dataset is
charged its file's exact size: it is pickled before the charge and written after it; a
write that fails after the charge takes its row back). Each owner's total is kept in
``usage_totals`` by triggers on ``usage``, in the same transactions, so the check reads
one row however many datasets the owner holds (summing the rows cost ~0.1 ms per
thousand on every save). Rows named ``reserved:...`` are reservations of earlier
versions; ``drop_stale_reservations`` removes them.

Sizes are settings of ``[quotas]`` (:class:`lcpanel.config.QuotaSettings`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from ...errors import TooLarge
from ..wal import connect_wal

USAGE_FILE = "usage.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    kind      TEXT NOT NULL,          -- dataset, product, periodsearch
    item      TEXT NOT NULL,          -- dataset id, product key, job id (or a reservation token)
    owner     TEXT NOT NULL,          -- quota owner: identity, or ip:<address> when anonymous
    bytes     INTEGER NOT NULL,
    created   REAL NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (kind, item, owner)
);
CREATE INDEX IF NOT EXISTS usage_owner ON usage(owner);
CREATE INDEX IF NOT EXISTS usage_item ON usage(item);
"""
#: per-owner totals, kept equal to SUM(bytes) of the owner's rows by triggers, and worked
#: out afresh whenever a process opens the ledger (in one write transaction): a ledger from
#: before the totals, or one written by a program that bypassed the triggers, is set right
TOTALS = """
CREATE TABLE IF NOT EXISTS usage_totals (owner TEXT PRIMARY KEY, bytes INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS usage_totals_insert AFTER INSERT ON usage BEGIN
    INSERT INTO usage_totals VALUES (NEW.owner, NEW.bytes)
        ON CONFLICT (owner) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER IF NOT EXISTS usage_totals_delete AFTER DELETE ON usage BEGIN
    UPDATE usage_totals SET bytes = bytes - OLD.bytes WHERE owner = OLD.owner;
END;
CREATE TRIGGER IF NOT EXISTS usage_totals_update AFTER UPDATE OF owner, bytes ON usage BEGIN
    UPDATE usage_totals SET bytes = bytes - OLD.bytes WHERE owner = OLD.owner;
    INSERT INTO usage_totals VALUES (NEW.owner, NEW.bytes)
        ON CONFLICT (owner) DO UPDATE SET bytes = bytes + excluded.bytes;
END;
DELETE FROM usage_totals;
INSERT INTO usage_totals SELECT owner, SUM(bytes) FROM usage GROUP BY owner;
"""


class QuotaExceeded(TooLarge):
    """A write would take an identity past its disk quota, or a product past its size cap."""


def mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:,.1f} MB"


def quota_owner(viewer, address: str | None) -> str:
    """Whose quota a request uses: the account, or the client address of an anonymous visitor."""
    if viewer.role == "anonymous" and address:
        return f"ip:{address}"
    return viewer.identity


class Ledger:
    """The usage ledger of one basedir."""

    def __init__(self, basedir: str | Path):
        self.path = Path(basedir) / USAGE_FILE
        self._local = threading.local()
        conn = self.connect()
        try:
            conn.executescript(f"{SCHEMA} BEGIN IMMEDIATE; {TOTALS} COMMIT;")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never across a fork
            conn = connect_wal(self.path, isolation_level=None)
            conn.execute("PRAGMA recursive_triggers = ON")  # REPLACE's deletions update the totals too
            conn.row_factory = sqlite3.Row
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def charge(self, kind: str, item: str, owner: str, nbytes: int, quota: int, what: str) -> None:
        """Record ``item`` of ``nbytes`` for ``owner`` if it fits in ``quota`` (0: no
        quota); :class:`QuotaExceeded` (and nothing recorded) if not. For a write whose
        exact size is known before it is made. The check and the row are one statement,
        so one write transaction (SQLite takes the write lock before the statement reads
        the total): two processes racing for the last megabytes cannot both pass."""
        conn = self.connect()
        t = time.time()
        cur = conn.execute(
            "INSERT OR REPLACE INTO usage SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE ?6 <= 0 OR "
            "coalesce((SELECT bytes FROM usage_totals WHERE owner = ?3), 0) + ?4 <= ?6",
            (kind, item, owner, int(nbytes), t, int(quota)))
        if cur.rowcount == 0:
            used = _total(conn, owner)
            raise QuotaExceeded(
                f"{what} would need about {mb(nbytes)} but only {mb(max(quota - used, 0))} of your "
                f"{mb(quota)} disk quota is left; delete datasets you no longer need"
                + (" or log in for a larger quota" if owner.startswith("ip:") else ""))

    def record(self, kind: str, item: str, owner: str, nbytes: int) -> None:
        t = time.time()
        self.connect().execute("INSERT OR REPLACE INTO usage VALUES (?,?,?,?,?,?)",
                               (kind, item, owner, int(nbytes), t, t))

    def touch(self, kind: str, item: str) -> None:
        """The item was used (a product requested or downloaded): its unused-time restarts."""
        self.connect().execute("UPDATE usage SET last_used = ? WHERE kind = ? AND item = ?", (time.time(), kind, item))

    def set_bytes(self, kind: str, item: str, nbytes: int) -> None:
        self.connect().execute("UPDATE usage SET bytes = ? WHERE kind = ? AND item = ?", (int(nbytes), kind, item))

    def forget(self, kind: str, item: str) -> None:
        self.connect().execute("DELETE FROM usage WHERE kind = ? AND item = ?", (kind, item))

    def used(self, owner: str) -> int:
        return _total(self.connect(), owner)

    def rows(self, kind: str | None = None) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM usage WHERE item NOT LIKE 'reserved:%'", ()
        if kind:
            sql, args = sql + " AND kind = ?", (kind,)
        return self.connect().execute(sql, args).fetchall()

    def drop_stale_reservations(self, older_than_s: float = 3600.0) -> int:
        cur = self.connect().execute("DELETE FROM usage WHERE item LIKE 'reserved:%' AND created < ?",
                                     (time.time() - older_than_s,))
        return cur.rowcount


def _total(conn: sqlite3.Connection, owner: str) -> int:
    row = conn.execute("SELECT bytes FROM usage_totals WHERE owner = ?", (owner,)).fetchone()
    return row[0] if row else 0


_ledgers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ledgers_lock = threading.Lock()


def ledger(app) -> Ledger:
    """The app's ledger (one per app and basedir)."""
    with _ledgers_lock:
        found = _ledgers.get(app)
        if found is None:
            found = _ledgers[app] = Ledger(app.basedir)
        return found


# --- datasets --------------------------------------------------------------------------------------


NO_MATCH = "nothing matched, so no dataset was saved"


def save_search(app, result, viewer, address: str | None, **create_kwargs):
    """Save a search result as a dataset of ``viewer`` inside their disk quota, charged its
    file's exact size before the file is written; None (and nothing written) when the
    search found no object."""
    if not result.rows:
        return None
    book, owner = ledger(app), quota_owner(viewer, address)
    quota = app.config.quotas.disk_bytes(viewer.role)
    charged = []

    def charge(dataset_id: str, nbytes: int) -> None:
        book.charge("dataset", dataset_id, owner, nbytes, quota, "saving this search as a dataset")
        charged.append(dataset_id)

    try:
        return app.datasets.create(result, viewer.identity, charge=charge, **create_kwargs)
    except BaseException:
        for dataset_id in charged:
            if not app.datasets.path(dataset_id).exists():  # the write failed after the charge
                book.forget("dataset", dataset_id)
        raise


# --- products --------------------------------------------------------------------------------------


def product_check(app, viewer, address: str | None):
    """A ``check(key, estimated_bytes)`` for :meth:`ProductStore.request`: refuses a product
    over the role's size cap, or over the requester's disk quota, and records it."""
    quotas = app.config.quotas
    owner = quota_owner(viewer, address)
    book = ledger(app)

    def check(key: str, estimate: int) -> None:
        cap = quotas.product_bytes(viewer.role)
        if cap > 0 and estimate > cap:
            who = "anonymous visitors" if viewer.role == "anonymous" else f"the {viewer.role} role"
            raise QuotaExceeded(
                f"this product would be about {mb(estimate)}; the largest product {who} may build is {mb(cap)}. "
                "Choose fewer objects (a selection) or a smaller product"
                + (", or log in" if viewer.role == "anonymous" else ""))
        conn = book.connect()
        if conn.execute("SELECT 1 FROM usage WHERE kind = 'product' AND item = ? AND owner = ?",
                        (key, owner)).fetchone():
            book.touch("product", key)
            return
        book.charge("product", key, owner, estimate, quotas.disk_bytes(viewer.role), "this product")
        book.touch("product", key)

    return check
