"""Products: zips of a dataset's light curves, checkplots and period-finding results,
built in worker processes off the request path.

A :class:`ProductBuilder` (registered through ``register_product_builders``) turns a
dataset and its options into a *plan*: the list of :class:`Entry` files that go in the
zip. The plan's content key (SHA256 of the builder, options, and every input's path,
size and modification time) names the product, so identical inputs reuse an existing
zip. A worker writes the zip to a temporary file beside its target, with an
``SHA256SUMS`` manifest of every member, and renames it into place when complete: a
build that fails or is killed leaves nothing anyone can download, and can be retried.

Progress and results live in ``BASEDIR/products/index.sqlite`` (WAL), so every server
process can report a build that another one started.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import threading
import time
import zipfile
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from deflate import deflate_compress
from isal.isal_zlib import crc32

from ..errors import NotFound, UserError
from .suggest import did_you_mean
from .atomic import atomic_path
from .clock import now_iso
from .wal import connect_wal

log = logging.getLogger(__name__)

#: a running build that has not reported for this long is taken as dead (builds report
#: after every member, at most every 0.25 s)
STALE_AFTER_S = 20.0
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
STORED_SUFFIXES = (".gz", ".zip", ".png", ".jpg", ".fz", ".parquet")
#: libdeflate level of the other members: at 1 it takes 0.14-0.24 ms for a 35-43 kB light
#: curve against zlib's 0.27 ms at its level 1 (and ~1.4 ms at 6), for output 8 % smaller
#: than zlib's; bulk exports are bound by deflate otherwise (benchmarks/bench_products.py).
#: Not ISA-L, though it takes half the time: twice a clean-clone CI run found a split build
#: whose zip was not the one-worker zip, one member ISA-L had deflated to other bytes
#: (README, "Back to libdeflate"). tests/test_zip_members.py checks that fresh processes and
#: other fillings of the compressor's memory give the same bytes.
#: ``stream`` members are deflated by zipfile (zlib) at the same level
ZIP_LEVEL = 1
#: members made before they are compressed and written: converting a few light curves, then
#: deflating and hashing them, keeps each step's code and tables in the CPU's caches
#: (2-5 % less CPU per converted light curve than one member at a time; ~8 x 45 kB held)
MADE_AHEAD = 8
#: a build of this many members or more is split over the worker pool (see ProductStore._submit),
#: in at most PARTS_PER_WORKER slices per worker (a busy worker does not hold the others back)
#: of at least SPLIT_MIN // 2 members
SPLIT_MIN = 200
PARTS_PER_WORKER = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    key       TEXT PRIMARY KEY,
    builder   TEXT NOT NULL,
    options   TEXT NOT NULL,
    filename  TEXT NOT NULL,
    status    TEXT NOT NULL,          -- queued, running, done, failed
    done      INTEGER NOT NULL DEFAULT 0,
    total     INTEGER NOT NULL DEFAULT 0,
    sha256    TEXT,
    size      INTEGER,
    manifest  TEXT,
    error     TEXT,
    heartbeat REAL NOT NULL,
    created   TEXT NOT NULL,
    updated   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dataset_products (
    dataset_id TEXT NOT NULL,
    builder    TEXT NOT NULL,
    options    TEXT NOT NULL,
    selection  TEXT NOT NULL,         -- 'all' or the SHA256 of the selected object keys
    key        TEXT NOT NULL,
    PRIMARY KEY (dataset_id, builder, options, selection)
);
CREATE INDEX IF NOT EXISTS dataset_products_key ON dataset_products(key);
"""


ENTRY_KINDS = ("file", "bytes", "call", "stream")


@dataclass(frozen=True)
class Entry:
    """One member of a product zip.

    ``kind`` is ``"file"`` (copy ``source``), ``"bytes"`` (``data`` as is) or ``"call"``:
    the worker process imports ``func`` (``"package.module:function"``, the builder's own
    code, never user input) and calls ``function(**args)`` for the member's bytes; ``args``
    is JSON-able and the size and modification time of each of ``inputs`` (the files it
    reads) join the content key, so an edited input means a new zip. Long work belongs in
    a ``call``: ``plan`` runs in the web request. (A converted light curve is a ``call``
    of :func:`lcpanel.plugins.products.converted_lightcurve`.)

    ``"stream"`` is a ``call`` whose function writes the member into a binary file object
    passed as ``sink`` (``function(sink=..., **args)``) instead of returning it: the
    worker streams it into the zip, so a member larger than memory can be made (a
    dataset's Parquet: :func:`lcpanel.core.objects.lcparquet.dataset_parquet`).

    A ``call`` or ``stream`` member's size is estimated, before the build, at ``growth``
    times its inputs' size and ``overhead`` bytes more (:func:`estimate_bytes`; size caps
    and disk quotas are checked against it): a conversion that may be larger than its
    input says so (converted light curves: :data:`CONVERTED_GROWTH`,
    :data:`CONVERTED_FIXED`); a summary of many inputs keeps the default, once its inputs.
    """

    arcname: str
    kind: str
    source: str | None = None
    data: bytes | None = None
    func: str | None = None
    args: dict | None = None
    inputs: tuple[str, ...] = ()
    growth: float = 1.0
    overhead: int = 0

    def __post_init__(self):
        if self.kind not in ENTRY_KINDS:
            raise ValueError(f"Entry kind must be one of {', '.join(ENTRY_KINDS)}, not {self.kind!r}")
        if self.kind in ("call", "stream") and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.func or ""):
            raise ValueError(f"a {self.kind} entry names its function as 'package.module:function', not {self.func!r}")

    def fingerprint(self) -> list:
        if self.kind == "bytes":
            return [self.arcname, self.kind, hashlib.sha256(self.data or b"").hexdigest()]
        if self.kind in ("call", "stream"):
            stats = [[p, os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in self.inputs]
            return [self.arcname, self.kind, self.func, self.args, stats]
        st = os.stat(self.source)
        return [self.arcname, self.kind, self.source, st.st_size, st.st_mtime_ns]


class ProductBuilder:
    """Base class of product builders. Subclasses set ``name``, ``title``, the accepted
    ``options`` (name -> allowed values, the first one the default) and implement
    :meth:`plan`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, tuple]] = {}

    @classmethod
    def validate_options(cls, options: dict | None) -> dict:
        if options is not None and not isinstance(options, dict):
            raise UserError(f"options must be an object such as {{\"format\": \"csv\"}}, not {type(options).__name__}",
                            field="options")
        options = dict(options or {})
        for key in options:
            if key not in cls.options:
                raise UserError(f"{cls.name} has no option {key!r}: {did_you_mean(key, cls.options)}", field=key)
        out = {}
        for key, allowed in cls.options.items():
            value = options.get(key, allowed[0])
            if value not in allowed:
                raise UserError(f"{cls.name} option {key!r} must be one of {', '.join(map(str, allowed))}",
                                field=key)
            out[key] = value
        return out

    @classmethod
    def describe(cls) -> dict:
        return {"name": cls.name, "title": cls.title, "description": cls.description,
                "options": {k: list(v) for k, v in cls.options.items()}}

    def plan(self, app, dataset, rows: list[int], options: dict) -> list[Entry]:
        """The zip's members for the given row indices of the dataset."""
        raise NotImplementedError


#: what a converted light curve may grow to, relative to its survey file, in a size
#: estimate (deflated, measured at up to 1.9x: VOTable of the demo's gzipped CSV; 1.8x for
#: the real HAT file, 0.6x for the CDIPS FITS files; an :class:`Entry`'s ``growth``) ...
CONVERTED_GROWTH = 2.0
#: ... and the bytes it may hold besides (headers: a FITS file is 2,880-byte blocks; its
#: ``overhead``)
CONVERTED_FIXED = 8_000
#: the size estimate of a computed member that names no input files
CALL_ESTIMATE = 64_000
#: a member's share of the zip (local header 30 bytes, central directory 46, zip64 extras
#: up to 28, with its name twice) and of SHA256SUMS (a 64-digit hash, two spaces, the
#: name, a newline): this plus three times the name's bytes
ZIP_PER_MEMBER = 30 + 46 + 28 + 64 + 3
#: the zip's end records (zip64 included) and SHA256SUMS's own member
ZIP_FIXED = 22 + 56 + 20 + ZIP_PER_MEMBER + 3 * len("SHA256SUMS")


def estimate_bytes(entries: list[Entry]) -> int:
    """An upper estimate of a product zip's size, known at planning time, which size caps
    and disk quotas are checked against: files and bytes as they are (a member is never
    stored larger), a computed member at its entry's ``growth`` times its input files and
    ``overhead`` more (:data:`CALL_ESTIMATE` when it names no input), and each member's
    share of the zip's headers and of SHA256SUMS."""
    total = ZIP_FIXED
    for e in entries:
        if e.kind == "file":
            total += os.stat(e.source).st_size
        elif e.kind == "bytes":
            total += len(e.data or b"")
        else:
            inputs = sum(os.stat(p).st_size for p in e.inputs)
            total += int(e.growth * inputs) + e.overhead if inputs else max(CALL_ESTIMATE, e.overhead)
        total += ZIP_PER_MEMBER + 3 * len(e.arcname.encode("utf-8"))
    return total


def content_key(builder: str, options: dict, entries: list[Entry]) -> str:
    blob = json.dumps([builder, options, [e.fingerprint() for e in entries]], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def selection_id(keys: list[str] | None) -> str:
    if keys is None:
        return "all"
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()


class ProductStore:
    """Product records, their files and the worker pool of one basedir."""

    def __init__(self, basedir: str | Path, max_workers: int = 2):
        self.basedir = Path(basedir)
        self.root = self.basedir / "products"
        self.root.mkdir(parents=True, exist_ok=True)
        self.index_path = self.root / "index.sqlite"
        self.max_workers = max_workers
        self._pool: ProcessPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._local = threading.local()
        with self.connect() as conn:
            conn.executescript(SCHEMA)

    def connect(self) -> sqlite3.Connection:
        """This thread's connection to the index (kept open, see DatasetStore._connect)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never across a fork
            conn = self._local.conn = _connect(self.index_path)
            self._local.pid = os.getpid()
        return conn

    def file_path(self, key: str, builder: str) -> Path:
        return self.root / key[:2] / key[2:4] / f"{builder}-{key}.zip"

    def _executor(self) -> ProcessPoolExecutor:
        # a pool made before a server forks its worker processes is not usable after it
        if self._pool is None or self._pool_pid != os.getpid():
            import multiprocessing

            self._pool = ProcessPoolExecutor(self.max_workers, mp_context=multiprocessing.get_context("spawn"))
            self._pool_pid = os.getpid()
        return self._pool

    def recover(self) -> int:
        """Remove temporary zips older than an hour (left by killed builds); complete a
        build killed after its zip was renamed into place (the zip matches the SHA256
        recorded before the rename: done; it does not: removed, to be built again).
        Returns the temporary files removed."""
        from .atomic import clean_stale_temps

        with self.connect() as conn:
            pending = conn.execute("SELECT key, builder, sha256 FROM products WHERE status IN ('queued', 'running') "
                                   "AND sha256 IS NOT NULL").fetchall()
        for row in pending:
            target = self.file_path(row["key"], row["builder"])
            if not target.exists():
                continue
            if _file_sha256(target) == row["sha256"]:
                with self.connect() as conn:
                    _set(conn, row["key"], status="done")
            else:
                target.unlink(missing_ok=True)
        return sum(clean_stale_temps(sub) for sub in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]"))

    def shutdown(self, *, terminate: bool = False) -> None:
        """Close this thread's index connection and the worker pool: after the builds
        running finish, or (``terminate``, when the server stops) at once, killing the
        worker processes (a killed build leaves no zip and is rebuilt when asked again)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
            self._local.conn = None
        if self._pool is not None and self._pool_pid == os.getpid():
            if terminate:
                workers = list((getattr(self._pool, "_processes", None) or {}).values())
                self._pool.shutdown(wait=False, cancel_futures=True)
                for proc in workers:
                    proc.terminate()
                for proc in workers:
                    proc.join(timeout=5)
                    if proc.is_alive():
                        proc.kill()
            else:
                self._pool.shutdown(wait=True, cancel_futures=False)
        self._pool = None

    # --- requests ---------------------------------------------------------------------------

    def request(self, app, dataset, builder_name: str, options: dict | None = None,
                objects: list[str] | None = None, *, wait: bool = False, check=None) -> dict:
        """Start (or reuse) the product for a dataset or a selection of its objects
        (``objects``: "collection/objectid" keys). Returns its status. ``check(key,
        estimated_bytes)``, if given, is called once the plan is known and before anything
        is written; it may refuse the request by raising (quotas, size caps)."""
        builder_cls = app.product_builders.get(builder_name)
        options = builder_cls.validate_options(options)
        rows = _selected_rows(dataset, objects)
        entries = builder_cls().plan(app, dataset, rows, options)
        if not entries:
            raise UserError(f"the {builder_cls.title.lower() or builder_name} product would be empty: "
                            "none of the chosen objects has such files")
        key = content_key(builder_name, options, entries)
        if check is not None:
            check(key, estimate_bytes(entries))
        target = self.file_path(key, builder_name)
        opts = json.dumps(options, sort_keys=True)
        filename = f"{builder_name}-{dataset.dataset_id[:12]}-{key[:8]}.zip"
        start = False
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT * FROM products WHERE key = ?", (key,)).fetchone()
            if row is None or _needs_build(row, target):
                stamp = now_iso()
                conn.execute("INSERT OR REPLACE INTO products (key, builder, options, filename, status, done, total, "
                             "heartbeat, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (key, builder_name, opts, filename, "queued", 0, len(entries), time.time(), stamp, stamp))
                start = True
            conn.execute("INSERT OR REPLACE INTO dataset_products VALUES (?,?,?,?,?)",
                         (dataset.dataset_id, builder_name, opts, selection_id(objects), key))
        if start:
            future = self._submit(key, entries, target)
            future.add_done_callback(lambda f: self._built(app, dataset, key, f))
            if wait:
                future.result()
        elif wait:
            self.wait(key)
        return self.status(key)

    def _submit(self, key: str, entries: list[Entry], target: Path) -> Future:
        """Start the build: in one worker, or, with :data:`SPLIT_MIN` members or more and
        several workers, in slices of consecutive members over the pool, joined in order
        by a thread of this process (:func:`join_parts`) into the same zip."""
        index, dicts = str(self.index_path), [asdict(e) for e in entries]
        nparts = min(self.max_workers * PARTS_PER_WORKER, len(dicts) // (SPLIT_MIN // 2))
        if self.max_workers < 2 or len(dicts) < SPLIT_MIN:
            return self._executor().submit(build_product, index, key, dicts, str(target))
        from .atomic import TEMP_PREFIX

        target.parent.mkdir(parents=True, exist_ok=True)
        bounds = [len(dicts) * i // nparts for i in range(nparts + 1)]
        parts = []
        for i in range(nparts):
            path = target.parent / f"{TEMP_PREFIX}{target.name}.{os.getpid()}.{threading.get_ident()}.part{i}"
            parts.append((str(path), self._executor().submit(build_part, index, key, dicts[bounds[i]:bounds[i + 1]],
                                                             str(path))))
        done: Future = Future()

        def join() -> None:
            try:
                join_parts(index, key, parts, str(target))
            finally:
                done.set_result(None)

        threading.Thread(target=join, name=f"product-{key[:8]}", daemon=True).start()
        return done

    def _built(self, app, dataset, key: str, future) -> None:
        """Tell plugins (``product_built``), in the process that asked for the build."""
        if future.cancelled() or future.exception() is not None:
            return
        try:
            status = self.status(key)
            if status["status"] == "done":
                app.notify("product_built", dataset=dataset, product=status)
        except Exception:
            log.exception("product_built hook for %s failed", key)

    def wait(self, key: str, timeout: float = 600.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(key)
            if status["status"] in ("done", "failed") or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def status(self, key: str) -> dict:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM products WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise NotFound("no such product")
        return _status(row, self.file_path(key, row["builder"]))

    def for_dataset(self, dataset_id: str) -> list[dict]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT dp.selection, p.* FROM dataset_products dp JOIN products p ON p.key = dp.key "
                "WHERE dp.dataset_id = ? ORDER BY p.created", (dataset_id,)).fetchall()
        out = []
        for row in rows:
            status = _status(row, self.file_path(row["key"], row["builder"]))
            status["selection"] = row["selection"]
            out.append(status)
        return out

    def linked(self, dataset_id: str, key: str) -> bool:
        with self.connect() as conn:
            return conn.execute("SELECT 1 FROM dataset_products WHERE dataset_id = ? AND key = ?",
                                (dataset_id, key)).fetchone() is not None

    def dataset_changed(self, app, dataset) -> list[dict]:
        """After the dataset's objects changed: rebuild its whole-dataset products from the
        new object list and drop links to selections that no longer make sense; delete
        zips nothing refers to any more."""
        with self.connect() as conn:
            links = conn.execute("SELECT * FROM dataset_products WHERE dataset_id = ?",
                                 (dataset.dataset_id,)).fetchall()
            conn.execute("DELETE FROM dataset_products WHERE dataset_id = ?", (dataset.dataset_id,))
        rebuilt = []
        for link in links:
            if link["selection"] == "all" and dataset.nobjects:
                rebuilt.append(self.request(app, dataset, link["builder"], json.loads(link["options"])))
        self.collect_garbage({link["key"] for link in links})
        return rebuilt

    def dataset_deleted(self, dataset_id: str) -> None:
        with self.connect() as conn:
            keys = {r[0] for r in conn.execute("SELECT key FROM dataset_products WHERE dataset_id = ?", (dataset_id,))}
            conn.execute("DELETE FROM dataset_products WHERE dataset_id = ?", (dataset_id,))
        self.collect_garbage(keys)

    def collect_garbage(self, keys: set[str]) -> None:
        """Delete the zips (and records) of these products if no dataset refers to them."""
        with self.connect() as conn:
            for key in keys:
                if conn.execute("SELECT 1 FROM dataset_products WHERE key = ?", (key,)).fetchone():
                    continue
                row = conn.execute("SELECT builder, status FROM products WHERE key = ?", (key,)).fetchone()
                if row is None or row["status"] in ("queued", "running"):
                    continue
                self.file_path(key, row["builder"]).unlink(missing_ok=True)
                conn.execute("DELETE FROM products WHERE key = ?", (key,))


def _connect(path) -> sqlite3.Connection:
    conn = connect_wal(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def _needs_build(row, target: Path) -> bool:
    if row["status"] == "done":
        return not target.exists()
    if row["status"] == "failed":
        return True
    return time.time() - row["heartbeat"] > STALE_AFTER_S


def _status(row, target: Path) -> dict:
    status = row["status"]
    error = row["error"]
    if status in ("queued", "running") and time.time() - row["heartbeat"] > STALE_AFTER_S:
        status, error = "failed", "the build stopped without finishing (the worker was killed); request it again"
    if status == "done" and not target.exists():
        status, error = "failed", "the product file is missing; request it again"
    total = row["total"] or 1
    try:  # members per second since the request (queue wait included)
        from datetime import datetime

        elapsed = row["heartbeat"] - datetime.fromisoformat(row["created"]).timestamp()
        rate = round(row["done"] / elapsed, 1) if row["done"] and elapsed > 0 else None
    except (TypeError, ValueError):
        rate = None
    return {
        "key": row["key"], "builder": row["builder"], "options": json.loads(row["options"]),
        "status": status, "progress": 1.0 if status == "done" else round(row["done"] / total, 4),
        "done": row["done"], "total": row["total"], "rate": rate, "sha256": row["sha256"], "size": row["size"],
        "filename": row["filename"], "error": scrub_paths(error), "created": row["created"], "updated": row["updated"],
    }


def _selected_rows(dataset, objects: list[str] | None) -> list[int]:
    keys = dataset.keys()
    if objects is None:
        return list(range(len(keys)))
    if not isinstance(objects, list) or not objects or not all(isinstance(k, str) for k in objects):
        raise UserError("objects must be a non-empty list of 'collection/objectid' keys", field="objects")
    index = {k: i for i, k in enumerate(keys)}
    missing = [k for k in objects if k not in index]
    if missing:
        raise UserError(f"{len(missing)} selected objects are not in the dataset, e.g. {missing[0]!r}",
                        field="objects")
    return sorted({index[k] for k in objects})


# --- the worker side ------------------------------------------------------------------------

def _function(entry: Entry):
    import importlib

    module, _, name = (entry.func or "").partition(":")
    return getattr(importlib.import_module(module), name)


def _call_bytes(entry: Entry) -> bytes:
    data = _function(entry)(**(entry.args or {}))
    if not isinstance(data, bytes):
        raise TypeError(f"{entry.func} returned {type(data).__name__}, not bytes")
    return data


class MemberFailed(Exception):
    """One member of a product zip could not be made (the message names it)."""


#: an absolute path (POSIX or Windows) inside a message, e.g. in ``[Errno 2] ...: '/data/x'``
_PATH = re.compile(r"""(?:(?<=^)|(?<=[\s'"(=:]))(?:[A-Za-z]:)?[/\\][^\s'"),]*""")


def describe_failure(exc: BaseException) -> str:
    """Why something failed, in words a visitor may read: never a server path."""
    if isinstance(exc, FileNotFoundError):
        return "its source file is missing"
    if isinstance(exc, PermissionError):
        return "its source file cannot be read (permission denied)"
    if isinstance(exc, IsADirectoryError):
        return "its source is a directory, not a file"
    if isinstance(exc, OSError):
        return f"its source file could not be read ({exc.strerror or 'input/output error'})"
    text = _PATH.sub("<file>", str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def scrub_paths(message: str | None) -> str | None:
    """``message`` with any absolute path replaced (errors recorded by older versions)."""
    return _PATH.sub("<file>", message) if message else message


def _member_bytes(entry: Entry) -> bytes:
    if entry.kind == "file":
        with open(entry.source, "rb") as fh:
            return fh.read()
    if entry.kind == "call":
        return _call_bytes(entry)
    return entry.data or b""


def build_product(index_path: str, key: str, entries: list[dict], target: str) -> None:
    """Write the zip for ``entries`` to ``target`` (worker process entry point). Never
    raises: a failure is recorded in the index, with a message a visitor may read."""
    conn = _connect(index_path)
    try:
        _set(conn, key, status="running", error=None, done=0)
        entries = [Entry(**e) for e in entries]
        _write_zip(conn, key, target, lambda zf: _write_members(conn, key, zf, entries))
    except Exception as exc:
        _failed(conn, key, exc)
    finally:
        conn.close()


def build_part(index_path: str, key: str, entries: list[dict], target: str) -> list[tuple[str, str, int]]:
    """One slice of a split build (worker process entry point): its members alone in a
    zip at ``target`` (no manifest), adding to the product's progress; returns the slice's
    manifest rows. Raises when a member cannot be made (:func:`join_parts` records it)."""
    conn = _connect(index_path)
    try:
        _set(conn, key, status="running", error=None)
        with zipfile.ZipFile(target, "w") as zf:
            return _write_members(conn, key, zf, [Entry(**e) for e in entries])
    finally:
        conn.close()


def join_parts(index_path: str, key: str, parts: list, target: str) -> None:
    """Finish a split build: ``parts`` are (zip path, future of :func:`build_part`) in
    member order; their members are copied as they are (compressed bytes, not
    recompressed) into the product zip, which is then the same file one worker would
    have written. Runs in a thread of the requesting process; removes the parts."""
    conn = _connect(index_path)
    try:
        manifest = []
        for _, future in parts:
            while True:
                try:
                    manifest += future.result(timeout=STALE_AFTER_S / 4)
                    break
                except TimeoutError:  # a slice still queued behind other builds: not dead
                    _set(conn, key)

        def fill(zf):
            last = time.monotonic()
            for path, _ in parts:
                last = _copy_members(zf, path, lambda: _set(conn, key), last)
            return manifest

        _write_zip(conn, key, target, fill)
    except Exception as exc:
        for _, future in parts:
            future.cancel()
        for _, future in parts:  # a part already running ends first (it would report "running")
            _quietly_wait(future)
        _failed(conn, key, exc)
    finally:
        for path, future in parts:
            _quietly_wait(future)
            Path(path).unlink(missing_ok=True)
        conn.close()


def _quietly_wait(future) -> None:
    try:
        future.exception()
    except BaseException:  # noqa: BLE001 -- cancelled, or the pool was broken
        pass


def _write_zip(conn, key: str, target: str, fill) -> None:
    """The product zip at ``target``: ``fill(zf)`` adds the members and returns their
    manifest rows, then ``SHA256SUMS``; written beside and renamed into place. Its SHA256,
    size and manifest are recorded before the rename, so a zip at ``target`` always has
    them; a worker killed between the rename and "done" leaves a zip that
    :meth:`ProductStore.recover` checks against them and completes."""
    with atomic_path(target, suffix=".zip") as tmp:
        with zipfile.ZipFile(tmp, "w") as zf:
            manifest = fill(zf)
            sums = "".join(f"{digest}  {name}\n" for name, digest, _ in manifest)
            _add(zf, "SHA256SUMS", sums.encode())
        _set(conn, key, sha256=_file_sha256(tmp), size=tmp.stat().st_size,
             manifest=json.dumps([{"name": n, "sha256": d, "size": s} for n, d, s in manifest]))
    _set(conn, key, status="done")


def _failed(conn, key: str, exc: Exception) -> None:
    log.exception("product %s failed", key, exc_info=exc)
    message = str(exc) if isinstance(exc, MemberFailed) else f"the zip could not be written: {describe_failure(exc)}"
    _set(conn, key, status="failed", error=message[:500])


def _write_members(conn, key: str, zf: zipfile.ZipFile, entries: list[Entry]) -> list[tuple[str, str, int]]:
    """Make and add each member, in entry order; add to the product's ``done`` at most
    every 0.25 s. Up to :data:`MADE_AHEAD` members are made before they are added."""
    manifest = []
    made: list[tuple[Entry, bytes]] = []
    last, reported = time.monotonic(), 0

    def add_made() -> None:
        nonlocal last, reported
        for entry, data in made:
            _add(zf, entry.arcname, data)
            manifest.append((entry.arcname, hashlib.sha256(data).hexdigest(), len(data)))
        made.clear()
        if len(manifest) > reported and (time.monotonic() - last > 0.25 or len(manifest) == len(entries)):
            _advance(conn, key, len(manifest) - reported)
            reported, last = len(manifest), time.monotonic()

    for entry in entries:
        stream = entry.kind == "stream"
        if stream:
            add_made()  # the members before it, first
        try:
            if stream:
                manifest.append((entry.arcname, *_add_stream(zf, entry, lambda: _set(conn, key))))
            else:
                made.append((entry, _member_bytes(entry)))
        except Exception as exc:
            raise MemberFailed(f"{entry.arcname} could not be made: {describe_failure(exc)}") from exc
        if stream or len(made) == MADE_AHEAD:
            add_made()
    add_made()
    return manifest


def _copy_members(dst: zipfile.ZipFile, path: str, beat, last: float) -> float:
    """Append every member of the zip at ``path`` to ``dst`` byte for byte (local header
    and data as written, central directory entry from its ZipInfo). zipfile has no
    public call for a raw copy: this sets what ``ZipFile.writestr`` sets after a write."""
    import struct

    with zipfile.ZipFile(path) as src, open(path, "rb") as fh:
        for info in src.infolist():
            fh.seek(info.header_offset)
            header = fh.read(30)
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            length = 30 + name_len + extra_len + info.compress_size
            fh.seek(info.header_offset)
            info.header_offset = dst.fp.tell()
            _copy_exactly(fh, dst.fp, length)
            dst.filelist.append(info)
            dst.NameToInfo[info.filename] = info
            dst.start_dir = dst.fp.tell()
            dst._didModify = True
            if time.monotonic() - last > 0.25:
                beat()
                last = time.monotonic()
    return last


def _copy_exactly(src, dst, length: int) -> None:
    while length:
        chunk = src.read(min(length, 1 << 20))
        if not chunk:
            raise OSError("a part of the build ended early")
        dst.write(chunk)
        length -= len(chunk)


def _info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
    info.external_attr = 0o644 << 16
    stored = arcname.endswith(STORED_SUFFIXES)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.compress_level = None if stored else ZIP_LEVEL
    return info


def deflated(data: bytes) -> bytes:
    """A member's bytes as the zip holds them when deflated: raw deflate by libdeflate at
    :data:`ZIP_LEVEL`."""
    return deflate_compress(data, ZIP_LEVEL)


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    """Add one member: stored as it is, or :func:`deflated`; written as
    ``ZipFile.writestr`` writes a member (local header with CRC and sizes, then the data;
    zipfile has no call for adding data compressed elsewhere)."""
    info = _info(arcname)
    packed = data if info.compress_type == zipfile.ZIP_STORED else deflated(data)
    info.file_size, info.compress_size, info.CRC = len(data), len(packed), crc32(data)
    info.header_offset = zf.fp.tell()
    zf.fp.write(info.FileHeader())
    zf.fp.write(packed)
    zf.filelist.append(info)
    zf.NameToInfo[info.filename] = info
    zf.start_dir = zf.fp.tell()
    zf._didModify = True


class _Sink(io.RawIOBase):
    """The zip member a ``stream`` entry writes: counts and hashes what passes, and
    calls ``beat`` at most every 0.25 s (a long member must not look like a dead build)."""

    def __init__(self, dest, beat):
        self.dest, self.beat, self.size, self.sha = dest, beat, 0, hashlib.sha256()
        self._last = time.monotonic()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self.dest.write(view)
        self.sha.update(view)
        self.size += len(view)
        if time.monotonic() - self._last > 0.25:
            self.beat()
            self._last = time.monotonic()
        return len(view)

    def tell(self) -> int:
        return self.size


def _add_stream(zf: zipfile.ZipFile, entry: Entry, beat) -> tuple[str, int]:
    """Write a ``stream`` entry's member straight into the zip (Zip64, as its size is
    not known before); returns its SHA256 and size."""
    with zf.open(_info(entry.arcname), "w", force_zip64=True) as dest:
        sink = _Sink(dest, beat)
        _function(entry)(sink=sink, **(entry.args or {}))
    return sink.sha.hexdigest(), sink.size


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _advance(conn: sqlite3.Connection, key: str, members: int) -> None:
    """``members`` more are in (several parts of a split build add to the same count)."""
    conn.execute("UPDATE products SET done = done + ?, heartbeat = ?, updated = ? WHERE key = ?",
                 (members, time.time(), now_iso(), key))


def _set(conn: sqlite3.Connection, key: str, **fields) -> None:
    fields["heartbeat"] = time.time()
    fields["updated"] = now_iso()
    cols = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE products SET {cols} WHERE key = ?", (*fields.values(), key))


def summary_csv(dataset, rows: list[int]) -> bytes:
    """Every column of the chosen objects as CSV (the dataset zip's object summary)."""
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = dataset.column_names()
    writer.writerow(names)
    for i in rows:
        writer.writerow(["" if dataset.data[n][i] is None else dataset.data[n][i] for n in names])
    return out.getvalue().encode()
