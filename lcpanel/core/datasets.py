"""Datasets: every completed search becomes a dataset that can be shared, edited,
commented on, frozen and turned into products.

A dataset is stored as ``BASEDIR/datasets/ab/cd/<id>.pkl`` (``ab``, ``cd``: the first two
and next two characters of its id), written atomically; ``BASEDIR/datasets/index.sqlite``
(WAL) lists them for browsing. Ids are SHA256 hex digests of a random salt and the
search, so nobody can guess one; access is still checked on every read.

Dataset files are replaced by rename (a process dying mid-write leaves the old version)
without fsync, and the index runs with ``synchronous=NORMAL``: creating a dataset costs
well under a millisecond instead of several, and only a power cut can lose the last few.

Edits take an exclusive lock on the dataset (``fcntl.flock`` on its file, taken again if
the file was replaced meanwhile), re-read it, change it and replace it, so several server
processes can edit at once without losing a change. A frozen dataset never changes:
editing it makes a new version.

Events: the store announces what it did (``dataset_created``, ``dataset_updated``,
``dataset_frozen``, ``dataset_deleted``) through the ``notify(event, **kwargs)`` it is
given (the app's :meth:`lcpanel.app.App.notify`), after the change is written and its
lock released; so every interface (API, CLI, web pages) triggers the same listeners.

Identity: ``owner`` strings such as ``"anon:1f2e..."`` (an anonymous session),
``"user:alice"`` or ``"cli:operator"``. :class:`Principal` carries the identity and whether
it is an admin (admins see and manage everything).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import pickle
import re
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import Config
from ..errors import Forbidden, NotFound, TooLarge, UserError
from .atomic import write_bytes
from .clock import now_iso
from .wal import connect_wal

log = logging.getLogger(__name__)

VISIBILITIES = ("public", "unlisted", "private")
DEFAULT_VISIBILITY = "unlisted"
DATASET_ID = re.compile(r"^[0-9a-f]{64}$")
MAX_NAME = 200
MAX_TEXT = 10_000
MAX_COMMENTS = 1000

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id  TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    search_type TEXT NOT NULL,
    collections TEXT NOT NULL,
    nobjects    INTEGER NOT NULL,
    nmatched    INTEGER NOT NULL,
    frozen      INTEGER NOT NULL,
    parent      TEXT,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS datasets_owner ON datasets(owner, updated);
CREATE INDEX IF NOT EXISTS datasets_visibility ON datasets(visibility, updated);
"""


@dataclass(frozen=True)
class Principal:
    """Who is asking: an owner identity and a role (see :mod:`lcpanel.core.access.users`)."""

    identity: str
    role: str = "anonymous"

    @property
    def admin(self) -> bool:
        """Admins see and manage every dataset."""
        return self.role == "admin"

    @property
    def staff(self) -> bool:
        """Staff (and admins) review objects: they may change variability info."""
        return self.role in ("staff", "admin")

    def owns(self, dataset: "Dataset") -> bool:
        return self.admin or dataset.owner == self.identity


OPERATOR = Principal("cli:operator", "admin")


def object_key(collection: str, objectid: str) -> str:
    return f"{collection}/{objectid}"


@dataclass
class Dataset:
    dataset_id: str
    owner: str
    visibility: str
    name: str
    description: str
    spec: dict
    collections: list[str]
    #: ColumnInfo dicts, in display order; ``collection`` first
    columns: list[dict]
    #: column name -> values, one per object (columnar: compact and fast to pickle)
    data: dict[str, list]
    nmatched: int
    nmatched_is_lower_bound: bool = False
    messages: list[str] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)
    #: "collection/objectid" -> comments on that object in this dataset
    object_comments: dict[str, list[dict]] = field(default_factory=dict)
    created: str = ""
    updated: str = ""
    status: str = "complete"
    frozen: bool = False
    #: the dataset this one was frozen from or is a new version of
    parent: str | None = None
    version: int = 1

    @property
    def nobjects(self) -> int:
        return len(self.data.get("objectid", []))

    def column_names(self) -> list[str]:
        return [c["name"] for c in self.columns]

    def keys(self) -> list[str]:
        return [object_key(c, o) for c, o in zip(self.data["collection"], self.data["objectid"])]

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict]:
        names = self.column_names()
        stop = self.nobjects if stop is None else min(stop, self.nobjects)
        return [{n: self.data[n][i] for n in names} for i in range(start, stop)]

    def summary(self) -> dict:
        return {
            "dataset_id": self.dataset_id, "name": self.name, "description": self.description,
            "owner": self.owner, "visibility": self.visibility, "search_type": self.spec.get("type"),
            "collections": self.collections, "nobjects": self.nobjects, "nmatched": self.nmatched,
            "nmatched_is_lower_bound": self.nmatched_is_lower_bound, "frozen": self.frozen,
            "parent": self.parent, "version": self.version, "created": self.created, "updated": self.updated,
            "status": self.status,
        }

    def to_dict(self, start: int = 0, stop: int | None = None) -> dict:
        out = self.summary()
        out.update({"spec": self.spec, "messages": self.messages, "comments": self.comments,
                    "object_comments": self.object_comments, "columns": self.columns,
                    "rows": self.rows(start, stop), "row_range": [start, min(stop or self.nobjects, self.nobjects)]})
        return out


def new_dataset_id(spec: dict) -> str:
    salt = secrets.token_bytes(32)
    return hashlib.sha256(salt + json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def validate_dataset_id(dataset_id: str) -> str:
    if not isinstance(dataset_id, str) or not DATASET_ID.match(dataset_id):
        raise NotFound("no such dataset (a dataset id is 64 hexadecimal characters)")
    return dataset_id


class DatasetStore:
    """Create, read, list, edit and delete the datasets of one basedir."""

    def __init__(self, basedir: str | Path, notify=None):
        self.root = Path(basedir) / "datasets"
        #: ``notify(event, **kwargs)``: where the store announces its changes (see the module doc)
        self._notify = notify or _no_listeners
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_path = self.root / "index.sqlite"
        self._local = threading.local()
        config = Config.load(basedir)
        #: comments (dataset and object comments together) a dataset may hold, and their length
        self.max_comments = config.quotas.max_comments_per_dataset
        self.max_comment_chars = config.reviews.max_comment_chars
        with self._connect() as conn:
            conn.executescript(INDEX_SCHEMA)

    # --- paths and index -------------------------------------------------------------------

    def path(self, dataset_id: str) -> Path:
        dataset_id = validate_dataset_id(dataset_id)
        return self.root / dataset_id[:2] / dataset_id[2:4] / f"{dataset_id}.pkl"

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection to the index (kept open: closing the last WAL
        connection checkpoints, which costs an fsync)."""
        conn = getattr(self._local, "conn", None)
        # a connection must not cross a fork (lcpanel serve --num-procs forks after start-up)
        if conn is None or self._local.pid != os.getpid():
            conn = connect_wal(self.index_path)
            conn.row_factory = sqlite3.Row
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _index(self, conn: sqlite3.Connection, ds: Dataset) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ds.dataset_id, ds.owner, ds.visibility, ds.name, ds.description, ds.spec.get("type", ""),
             ",".join(ds.collections), ds.nobjects, ds.nmatched, int(ds.frozen), ds.parent, ds.created, ds.updated))

    @contextmanager
    def _locked(self, dataset_id: str):
        """Hold the dataset's lock: ``flock`` on its file, taken again if an edit replaced
        the file while this waited (the lock is then on a file nobody reads any more)."""
        path = self.path(dataset_id)
        while True:
            try:
                fh = open(path, "rb")
            except FileNotFoundError:
                raise NotFound("no such dataset") from None
            with fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    if _same_file(fh, path):
                        yield path
                        return
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self, path: Path) -> Dataset:
        try:
            with open(path, "rb") as fh:
                return Dataset(**pickle.load(fh))  # our own file, at a path built from a validated id
        except FileNotFoundError:
            raise NotFound("no such dataset") from None

    def _write(self, ds: Dataset, charge=None) -> None:
        payload = pickle.dumps(dict(vars(ds)), protocol=pickle.HIGHEST_PROTOCOL)
        if charge is not None:
            charge(ds.dataset_id, len(payload))
        write_bytes(self.path(ds.dataset_id), payload, durable=False)
        with self._connect() as conn:
            self._index(conn, ds)

    # --- operations -----------------------------------------------------------------------

    def create(self, result, owner: str, *, visibility: str = DEFAULT_VISIBILITY, name: str | None = None,
               description: str = "", charge=None) -> Dataset:
        """A new dataset from a :class:`lcpanel.core.search.SearchResult`. ``charge(dataset_id,
        nbytes)`` is called with the file's exact size before anything is written; if it
        raises (a disk quota), nothing is."""
        _check_visibility(visibility)
        spec = result.spec.to_dict()
        names = [c.name for c in result.columns]
        data = {n: [r.get(n) for r in result.rows] for n in names}
        stamp = now_iso("milliseconds")
        ds = Dataset(
            dataset_id=new_dataset_id(spec), owner=owner, visibility=visibility,
            name=_text(name or default_name(spec), "name", MAX_NAME), description=_text(description, "description"),
            spec=spec, collections=list(result.collections), columns=[c.to_dict() for c in result.columns],
            data=data, nmatched=result.nmatched, nmatched_is_lower_bound=result.nmatched_is_lower_bound,
            messages=list(result.messages), created=stamp, updated=stamp)
        self._write(ds, charge)
        self._notify("dataset_created", dataset=ds)
        return ds

    def get(self, dataset_id: str, viewer: Principal) -> Dataset:
        """The dataset, if ``viewer`` may see it (private ones only by their owner or an admin).
        A private dataset of someone else is reported as not found, not as forbidden."""
        ds = self._read(self.path(dataset_id))
        if ds.visibility == "private" and not viewer.owns(ds):
            raise NotFound("no such dataset")
        return ds

    def list(self, viewer: Principal, *, mine: bool = False, query: str | None = None, limit: int = 100,
             offset: int = 0) -> list[dict]:
        """Public datasets and the viewer's own (only their own with ``mine``), newest first."""
        where, params = [], []
        if mine:
            where.append("owner = ?")
            params.append(viewer.identity)
        elif not viewer.admin:
            where.append("(visibility = 'public' OR owner = ?)")
            params.append(viewer.identity)
        if query:
            if len(query) > MAX_NAME:
                raise UserError(f"search text is at most {MAX_NAME} characters", field="query")
            where.append("(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\' OR search_type = ?)")
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [like, like, query]
        sql = "SELECT * FROM datasets" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY updated DESC LIMIT ? OFFSET ?"
        with self._connect() as conn:
            rows = conn.execute(sql, (*params, max(1, min(int(limit), 1000)), max(0, int(offset)))).fetchall()
        return [dict(r, collections=r["collections"].split(",") if r["collections"] else [],
                     frozen=bool(r["frozen"])) for r in rows]

    def edit(self, dataset_id: str, viewer: Principal, changes: dict) -> tuple[Dataset, set[str]]:
        """Apply ``changes`` and return the dataset with the names of what changed.

        Owners may change ``name``, ``description``, ``visibility`` and the objects
        (``remove_objects``: list of "collection/objectid" keys); anyone who can see the
        dataset may add ``comment`` (on the dataset) and ``object_comment``
        (``{"key": ..., "text": ...}``). Editing a frozen dataset makes a new version
        owned by the editor, returned instead.
        """
        if not isinstance(changes, dict) or not changes:
            raise UserError("nothing to change: give e.g. {\"name\": \"...\"}")
        allowed = {"name", "description", "visibility", "remove_objects", "keep_objects", "comment", "object_comment"}
        unknown = set(changes) - allowed
        if unknown:
            raise UserError(f"cannot change {sorted(unknown)[0]!r}; editable: {', '.join(sorted(allowed))}")
        owner_fields = {"name", "description", "visibility", "remove_objects", "keep_objects"}
        with self._locked(dataset_id) as path:
            ds = self._read(path)
            if ds.visibility == "private" and not viewer.owns(ds):
                raise NotFound("no such dataset")
            if owner_fields & set(changes) and not viewer.owns(ds):
                raise Forbidden("only the dataset's owner can change its name, description, visibility or objects")
            if ds.frozen:
                ds = self._new_version(ds, viewer)
            changed = _apply(ds, viewer, changes, self.max_comments, self.max_comment_chars)
            ds.updated = now_iso("milliseconds")
            self._write(ds)
        self._notify("dataset_updated", dataset=ds, changes=changed)
        return ds, changed

    def _new_version(self, frozen: Dataset, viewer: Principal) -> Dataset:
        ds = Dataset(**{**asdict(frozen), "dataset_id": new_dataset_id(frozen.spec), "frozen": False,
                        "parent": frozen.dataset_id, "version": frozen.version + 1,
                        "owner": frozen.owner if viewer.owns(frozen) else viewer.identity, "created": now_iso("milliseconds")})
        return ds

    def freeze(self, dataset_id: str, viewer: Principal) -> Dataset:
        """An immutable, citable copy with its own permanent id; the original stays editable."""
        ds = self.get(dataset_id, viewer)
        if not viewer.owns(ds):
            raise Forbidden("only the dataset's owner can freeze it")
        if ds.frozen:
            return ds
        stamp = now_iso("milliseconds")
        frozen = Dataset(**{**asdict(ds), "dataset_id": new_dataset_id(ds.spec), "frozen": True,
                            "parent": ds.dataset_id, "created": stamp, "updated": stamp,
                            "visibility": "public" if ds.visibility == "public" else "unlisted"})
        self._write(frozen)
        self._notify("dataset_frozen", dataset=frozen)
        return frozen

    def close(self) -> None:
        """Close this thread's index connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def recover(self) -> dict:
        """After a crash: index dataset files that were written but not indexed (a process
        killed between the two steps) and remove temporary files older than an hour."""
        from .atomic import clean_stale_temps

        with self._connect() as conn:
            known = {r[0] for r in conn.execute("SELECT dataset_id FROM datasets")}
        indexed = removed = 0
        for sub in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]"):
            removed += clean_stale_temps(sub)
            for path in sub.glob("*.pkl"):
                if path.stem in known or not DATASET_ID.match(path.stem):
                    continue
                try:
                    ds = self._read(path)
                except Exception:
                    log.warning("dataset file %s cannot be read; left alone", path.name)
                    continue
                with self._connect() as conn:
                    self._index(conn, ds)
                indexed += 1
        return {"indexed": indexed, "temp_files_removed": removed}

    def delete(self, dataset_id: str, viewer: Principal) -> None:
        with self._locked(dataset_id) as path:
            ds = self._read(path)
            if not viewer.owns(ds):
                if ds.visibility == "private":
                    raise NotFound("no such dataset")
                raise Forbidden("only the dataset's owner can delete it")
            if ds.frozen and not viewer.admin:
                raise Forbidden("a frozen dataset is permanent; only an admin can delete it")
            with self._connect() as conn:
                conn.execute("DELETE FROM datasets WHERE dataset_id = ?", (ds.dataset_id,))
            path.unlink()
        path.with_suffix(".lock").unlink(missing_ok=True)  # left by versions that locked a file of its own
        self._notify("dataset_deleted", dataset_id=ds.dataset_id)


def _same_file(fh, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fh``."""
    try:
        return os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False


def _no_listeners(event: str, **kwargs) -> None:
    """The notifier of a store nobody listens to (maintenance, tests)."""


def default_name(spec: dict) -> str:
    """A dataset's name when none is given: the search type and its first parameter, a
    list as its first items ("objectid: HAT-1, HAT-2 and 8 more"), or several numbers
    and short texts by name ("cone: ra=290, dec=45, radius_arcmin=60")."""
    params = spec.get("params") or {}
    kind = spec.get("type", "search")
    given = {k: v for k, v in params.items()
             if not (v is None or v is False or (isinstance(v, (str, list, tuple)) and not v))}
    value = next(iter(given.values()), "")
    scalars = {k: v for k, v in given.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    if len(scalars) > 1 and len(scalars) == len(given):
        detail = ", ".join(f"{k}={_short(v)}" for k, v in scalars.items())
    elif isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value if str(v).strip()]
        shown = []
        for item in items:
            if shown and len(", ".join([*shown, item])) > 50:
                break
            shown.append(item[:50])
        rest = len(items) - len(shown)
        detail = ", ".join(shown) + (f" and {rest} more" if rest else "")
    else:
        detail = str(value).splitlines()[0] if str(value).strip() else ""
    return f"{kind}: {detail[:80]}" if detail else kind


def _short(value) -> str:
    """A parameter as people write it: a number without a whole one's ``.0`` (at most 10
    significant digits), a text's first line."""
    if isinstance(value, str):
        return value.strip().splitlines()[0] if value.strip() else ""
    return f"{value:.10g}"


def _check_visibility(visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise UserError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {visibility!r}", field="visibility")


def _text(value, field_name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise UserError(f"{field_name} must be text", field=field_name)
    value = value.strip()
    if len(value) > limit:
        raise UserError(f"{field_name} is at most {limit} characters", field=field_name)
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
        raise UserError(f"{field_name} holds control characters", field=field_name)
    return value


def _comment(viewer: Principal, text, limit: int = MAX_TEXT) -> dict:
    text = _text(text, "comment", limit)
    if not text:
        raise UserError("a comment cannot be empty", field="comment")
    return {"author": viewer.identity, "time": now_iso("milliseconds"), "text": text}


def _apply(ds: Dataset, viewer: Principal, changes: dict, max_comments: int = MAX_COMMENTS,
           max_chars: int = MAX_TEXT) -> set[str]:
    """Validate every change first, then apply them all: a bad edit changes nothing."""
    updates = {}
    if "name" in changes:
        updates["name"] = _text(changes["name"], "name", MAX_NAME) or ds.name
    if "description" in changes:
        updates["description"] = _text(changes["description"], "description")
    if "visibility" in changes:
        _check_visibility(changes["visibility"])
        updates["visibility"] = changes["visibility"]
    keep = None
    if "remove_objects" in changes or "keep_objects" in changes:
        keys = ds.keys()
        known = set(keys)
        given = changes.get("remove_objects", changes.get("keep_objects"))
        if not isinstance(given, list) or not all(isinstance(k, str) for k in given):
            raise UserError("objects are given as a list of 'collection/objectid' keys", field="objects")
        missing = [k for k in given if k not in known]
        if missing:
            raise UserError(f"{len(missing)} objects are not in this dataset, e.g. {missing[0]!r}", field="objects")
        chosen = set(given)
        keep = [i for i, k in enumerate(keys) if (k in chosen) == ("keep_objects" in changes)]
    new_comment = _comment(viewer, changes["comment"], max_chars) if "comment" in changes else None
    obj_comment = None
    if "object_comment" in changes:
        oc = changes["object_comment"]
        if not isinstance(oc, dict) or not isinstance(oc.get("key"), str):
            raise UserError("object_comment must be {\"key\": \"collection/objectid\", \"text\": ...}",
                            field="object_comment")
        if oc["key"] not in set(ds.keys()):
            raise UserError(f"object {oc['key']!r} is not in this dataset", field="object_comment")
        obj_comment = (oc["key"], _comment(viewer, oc.get("text"), max_chars))
    held = len(ds.comments) + sum(len(v) for v in ds.object_comments.values())
    if (new_comment or obj_comment) and held + bool(new_comment) + bool(obj_comment) > max_comments:
        raise TooLarge(f"this dataset already holds {held} comments, the most one dataset may hold is "
                       f"{max_comments}", field="object_comment" if obj_comment and not new_comment else "comment")

    for key, value in updates.items():
        setattr(ds, key, value)
    changed = set(updates)
    if keep is not None:
        ds.data = {n: [col[i] for i in keep] for n, col in ds.data.items()}
        live = set(ds.keys())
        ds.object_comments = {k: v for k, v in ds.object_comments.items() if k in live}
        changed.add("objects")
    if new_comment:
        ds.comments.append(new_comment)
        changed.add("comments")
    if obj_comment:
        ds.object_comments.setdefault(obj_comment[0], []).append(obj_comment[1])
        changed.add("object_comments")
    return changed

