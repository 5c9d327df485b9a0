"""The basedir: where lcpanel keeps its collections registry, derived catalogs,
datasets and products.

```
BASEDIR/
  lcpanel.toml              optional settings (lcpanel.config)
  lcc-collections.sqlite    registry of collections, their columns and object ids
  collections/<id>/         catalog-objectinfo.sqlite, catalog-kdtree.pkl, catalog-skyindex.npy
  datasets/ab/cd/<id>.pkl   one file per dataset
  products/ab/cd/           built products
```
Derived catalogs live in the basedir, not in the operator's collection directory, so a
survey's data directory can be read-only and shared by several basedirs.
"""

from __future__ import annotations

import functools

import json
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from ...config import CONFIG_FILE
from ...errors import Conflict, NotFound, UserError
from .columns import ColumnInfo

REGISTRY_FILE = "lcc-collections.sqlite"
COLLECTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    collection_id   TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    project         TEXT NOT NULL DEFAULT '',
    datarelease     INTEGER NOT NULL DEFAULT 0,
    citation        TEXT NOT NULL DEFAULT '',
    kind            TEXT NOT NULL,
    source          TEXT NOT NULL,
    catalog_dir     TEXT NOT NULL,
    lcformat        TEXT,
    field_fits      TEXT,
    nobjects        INTEGER NOT NULL,
    center_ra       REAL, center_decl REAL, radius_deg REAL,
    footprint       TEXT NOT NULL,
    added_at        TEXT NOT NULL,
    lcpanel_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS collection_columns (
    collection_id TEXT NOT NULL REFERENCES collections(collection_id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    name          TEXT NOT NULL,
    key           TEXT NOT NULL,
    sqltype       TEXT NOT NULL,
    unit          TEXT NOT NULL DEFAULT '',
    ucd           TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    indexed       INTEGER NOT NULL DEFAULT 0,
    fts           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (collection_id, name)
);
-- every column name across collections: how many collections have it, and whether any
-- indexes it or searches it by full text
CREATE VIEW IF NOT EXISTS column_union AS
    SELECT name, MIN(sqltype) AS sqltype, COUNT(*) AS ncollections,
           MAX(indexed) AS indexed, MAX(fts) AS fts, MAX(unit) AS unit, MAX(description) AS description
    FROM collection_columns GROUP BY name;
"""


@dataclass(frozen=True)
class CollectionInfo:
    """One registered collection, as stored in the registry."""

    collection_id: str
    name: str
    description: str
    project: str
    datarelease: int
    citation: str
    kind: str
    source: str
    catalog_dir: str
    lcformat: dict | None
    field_fits: str | None
    nobjects: int
    center_ra: float | None
    center_decl: float | None
    radius_deg: float | None
    footprint: dict
    added_at: str
    lcpanel_version: str
    columns: tuple[ColumnInfo, ...] = field(default=())

    @property
    def catalog_sqlite(self) -> Path:
        return Path(self.catalog_dir) / CATALOG_SQLITE

    @property
    def kdtree_pkl(self) -> Path:
        return Path(self.catalog_dir) / CATALOG_KDTREE

    @property
    def skyindex_npy(self) -> Path:
        return Path(self.catalog_dir) / CATALOG_SKYINDEX

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @functools.cached_property
    def _resolved_source(self) -> Path:
        return Path(self.source).resolve()

    def object_file(self, relpath) -> Path | None:
        """An object's file (light curve, checkplot, period-finding pickle) from its path
        relative to the collection directory: None unless this is an astrobase
        collection and the path resolves to an existing file inside that directory."""
        if not relpath or self.kind != "astrobase":
            return None
        root = self._resolved_source
        path = (root / str(relpath)).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def summary(self) -> dict:
        """What the collection listing (CLI, JSON API) shows about it."""
        return {
            "collection_id": self.collection_id,
            "name": self.name,
            "description": self.description,
            "project": self.project,
            "datarelease": self.datarelease,
            "citation": self.citation,
            "kind": self.kind,
            "nobjects": self.nobjects,
            "center": [self.center_ra, self.center_decl],
            "radius_deg": self.radius_deg,
            "has_lightcurves": self.lcformat is not None,
            "has_field_image": self.field_fits is not None,
            "footprint": self.footprint,
            "columns": [c.name for c in self.columns],
            "indexed_columns": [c.name for c in self.columns if c.indexed],
            "fts_columns": [c.name for c in self.columns if c.fts],
            "added_at": self.added_at,
        }


CATALOG_SQLITE = "catalog-objectinfo.sqlite"
CATALOG_KDTREE = "catalog-kdtree.pkl"
CATALOG_SKYINDEX = "catalog-skyindex.npy"


def validate_collection_id(collection_id: str) -> str:
    if not isinstance(collection_id, str) or not COLLECTION_ID.match(collection_id):
        raise UserError(
            f"collection id {collection_id!r} is not valid: use 1-48 lowercase letters, digits "
            "and underscores, starting with a letter (e.g. 'hatnet_kepler_dr1')",
            field="collection_id",
        )
    return collection_id


class Basedir:
    """Paths and the collections registry of one basedir."""

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        if not (self.path / REGISTRY_FILE).is_file():
            raise NotFound(f"{path} is not an lcpanel basedir (no {REGISTRY_FILE}); create one with 'lcpanel init {path}'")

    @classmethod
    def init(cls, path: str | Path) -> "Basedir":
        """Create a new basedir. Refuses a directory that already is one."""
        path = Path(path)
        if (path / REGISTRY_FILE).exists():
            raise Conflict(f"{path} is already an lcpanel basedir")
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        for sub in ("collections", "datasets", "products"):
            (path / sub).mkdir(exist_ok=True)
        if not (path / CONFIG_FILE).exists():
            (path / CONFIG_FILE).write_text(DEFAULT_CONFIG_TEXT)
        with closing(sqlite3.connect(path / REGISTRY_FILE)) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        return cls(path)

    @property
    def registry_path(self) -> Path:
        return self.path / REGISTRY_FILE

    @property
    def collections_dir(self) -> Path:
        return self.path / "collections"

    def catalog_dir(self, collection_id: str) -> Path:
        return self.collections_dir / validate_collection_id(collection_id)

    def connect(self, readonly: bool = True) -> sqlite3.Connection:
        if readonly:
            conn = sqlite3.connect(f"file:{self.registry_path}?mode=ro", uri=True)
        else:
            conn = sqlite3.connect(self.registry_path, timeout=30)
            conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        return conn

    def collection_ids(self) -> list[str]:
        with closing(self.connect()) as conn:
            return [r[0] for r in conn.execute("SELECT collection_id FROM collections ORDER BY collection_id")]

    def collections(self, conn: sqlite3.Connection | None = None) -> list[CollectionInfo]:
        """Every registered collection (on ``conn`` when given, else a fresh connection)."""
        if conn is None:
            with closing(self.connect()) as conn:
                return self.collections(conn)
        rows = conn.execute("SELECT * FROM collections ORDER BY collection_id").fetchall()
        return [self._info(conn, row) for row in rows]

    def collection(self, collection_id: str) -> CollectionInfo:
        with closing(self.connect()) as conn:
            row = conn.execute("SELECT * FROM collections WHERE collection_id = ?", (collection_id,)).fetchone()
            if row is None:
                from ..suggest import did_you_mean

                known = [r[0] for r in conn.execute("SELECT collection_id FROM collections")]
                raise NotFound(f"unknown collection {collection_id!r}: {did_you_mean(str(collection_id), known)}")
            return self._info(conn, row)

    def column_union(self) -> list[dict]:
        """Every column across collections with the number of collections that have it."""
        with closing(self.connect()) as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM column_union ORDER BY name")]

    def shared_columns(self, collection_ids: list[str]) -> list[str]:
        """Column names that every one of the given collections has, in the first one's order."""
        infos = [self.collection(c) for c in collection_ids]
        if not infos:
            return []
        common = set(infos[0].column_names())
        for info in infos[1:]:
            common &= set(info.column_names())
        return [c for c in infos[0].column_names() if c in common]

    def find_objects(self, objectids: list[str]) -> list[tuple[str, str]]:
        """(collection_id, objectid) pairs for the given exact object ids, looked up in
        each collection's catalog (its unique objectid index)."""
        out = []
        for info in self.collections():
            path = Path(info.catalog_sqlite)
            if not path.is_file():  # a catalog kept elsewhere (e.g. HATS)
                continue
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                for chunk in _chunks(objectids, 500):
                    marks = ",".join("?" * len(chunk))
                    out += [(info.collection_id, r[0]) for r in conn.execute(
                        f"SELECT objectid FROM object_catalog WHERE objectid IN ({marks})", chunk)]
        return out

    def _info(self, conn: sqlite3.Connection, row: sqlite3.Row) -> CollectionInfo:
        cols = conn.execute(
            "SELECT name, key, sqltype, unit, ucd, description, indexed, fts FROM collection_columns "
            "WHERE collection_id = ? ORDER BY position", (row["collection_id"],)).fetchall()
        data = dict(row)
        data["lcformat"] = json.loads(data["lcformat"]) if data["lcformat"] else None
        data["footprint"] = json.loads(data["footprint"])
        data["columns"] = tuple(
            ColumnInfo(name=c[0], key=c[1], sqltype=c[2], unit=c[3], ucd=c[4], description=c[5],
                       indexed=bool(c[6]), fts=bool(c[7])) for c in cols)
        return CollectionInfo(**data)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


DEFAULT_CONFIG_TEXT = """\
# lcpanel settings for this basedir. Every setting is optional; the values below are the defaults.

[plugins]
# allow = []          # entry-point names to load; empty: every installed lcpanel plugin
# deny = []           # entry-point names never to load (to replace a built-in plugin)

[search]
# cone_default_radius_arcmin = 5.0
# cone_max_radius_arcmin = 60.0
# xmatch_default_radius_arcsec = 3.0
# xmatch_max_radius_arcsec = 60.0
# xmatch_max_lines = 5000
# max_upload_bytes = 1000000
# default_limit = 1000
# max_limit = 100000
# query_timeout_s = 5.0

[limits]
# requests per minute per role, shared by all server processes (0 = unlimited);
# anonymous visitors are counted per client address, others per account or API key owner
# anonymous_requests_per_minute = 1200
# user_requests_per_minute = 3000
# staff_requests_per_minute = 6000
# admin_requests_per_minute = 0
# burst = 120
# pages one client (a logged-in account, else an address) may open per minute (each is a
# session on the server), and at once; websocket connections are counted apart, by the
# same rule (0 = unlimited)
# page_views_per_minute = 60
# page_burst = 30
# rows one search may keep in its dataset, per role
# anonymous_max_rows = 10000
# user_max_rows = 100000
# staff_max_rows = 100000
# admin_max_rows = 100000

[requests]
# per server process: threads for searches, ADQL, product planning, password checks
# workers = 4
# heavy requests held at once (running or waiting); one more gets 503 with Retry-After
# max_heavy = 16
# retry_after_s = 5
# the largest request body (bytes), refused before it is read
# max_body_bytes = 8388608
# close a connection whose request head is not complete after this long
# idle_timeout_s = 60.0
# a request body must arrive within this long
# body_timeout_s = 120.0
# memory SQLite may hold per server process (bytes; 0: no cap)
# sqlite_heap_bytes = 536870912
# bytes one answer may hold, per role (TAP answers are cut with OVERFLOW; the JSON API says 413)
# anonymous_max_result_bytes = 16777216
# user_max_result_bytes = 67108864
# staff_max_result_bytes = 268435456
# admin_max_result_bytes = 268435456

[quotas]
# disk per identity for datasets and products, in MB (0 = unlimited); anonymous: per address
# anonymous_disk_mb = 50.0
# user_disk_mb = 2000.0
# staff_disk_mb = 10000.0
# admin_disk_mb = 0.0
# the largest product zip one request may build, in MB (estimated at planning time)
# anonymous_product_mb = 20.0
# user_product_mb = 1000.0
# staff_product_mb = 5000.0
# admin_product_mb = 0.0
# comments a dataset may hold (on it and on its objects; their length: [reviews])
# max_comments_per_dataset = 200
# days after which anonymous non-public datasets / unused products are removed (0 = never)
# anonymous_dataset_days = 7.0
# product_unused_days = 30.0
# gc_interval_minutes = 60.0

[reviews]
# characters per comment (every comment: on objects, datasets and dataset objects), and
# object comments per object per identity in any 24 hours (0 = unlimited); admins are
# not capped on objects
# max_comment_chars = 5000
# max_comments_per_object_per_day = 20

[periodsearch]
# period searches on demand: worker processes per server process, searches one identity
# may have queued or running at once per role (0 = unlimited; anonymous: per address)
# workers = 2
# anonymous_concurrent = 1
# user_concurrent = 2
# staff_concurrent = 4
# admin_concurrent = 0
# bounds of one search: points, trial frequencies, points x frequencies, seconds
# max_points = 200000
# max_frequencies = 500000
# max_work = 2e9
# time_limit_s = 300.0
# finished searches one object may keep
# max_results_per_object = 200
"""
