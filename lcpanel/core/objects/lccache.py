"""Parsed light-curve cache: a collection's light curves kept in lcpanel's own binary form,
so bulk exports read them in microseconds instead of running the survey format's parser.

The operator builds it (``lcpanel cache-lightcurves``); it lives in the collection's
catalog directory (``<basedir>/collections/<id>/lccache/``), never in the survey's own
directory, and it costs disk: about the light curves' uncompressed size (for the demo's
gzipped CSV, ~2.6x the originals). Without it everything works as before.

One file per light curve: ``MAGIC``, the head's length (8 bytes, little-endian), the head
(JSON), then each column's raw bytes at an 8-byte-aligned offset, up to the file's end; the
head holds the CRC-32 of those bytes, checked at every read (0.4 us for a demo light curve). The head holds what
:class:`~lcpanel.core.objects.lcformats.LightCurve` holds besides its arrays, in a JSON
that tags tuples, numpy scalars and non-finite floats so that they read back as the same
types and values (anything else makes the light curve uncacheable; it is then read by its
format, as without the cache). No pickle: a cache file is data, never code.

A cached light curve is used only while it is *fresh*: the source file has the size and
modification time it had when cached, and the reader's *token* is the same (lcpanel's
version, the format's spec and the size and modification time of the code that reads and
describes it, :func:`reader_token`). Otherwise the source is read with its format.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import struct
from pathlib import Path

import numpy as np
import orjson
from isal.isal_zlib import crc32

from .lcformats import LightCurve

MAGIC = b"lcpanel-lc 1\n"
_LENGTH = struct.Struct("<Q")
#: the head of a cache file is small (metadata only); a larger one is not a cache file
MAX_HEAD = 1 << 22
_FIELDS = ("objectid", "objectinfo", "column_info", "meta", "time_columns", "mag_columns", "err_columns", "masks")
#: fields that are tuples of column names: stored as lists, read back as tuples
_ROLES = ("time_columns", "mag_columns", "err_columns")


class Uncacheable(ValueError):
    """A light curve holding something this cache cannot store exactly."""


# ---------------------------------------------------------------------------
# exact JSON for metadata
# ---------------------------------------------------------------------------

def _encode(value):
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return value
    if kind is float:
        return value if np.isfinite(value) else {"$f": repr(value)}
    if kind is dict:
        if any(type(k) is not str or k.startswith("$") for k in value):
            raise Uncacheable("a dict key that is not a plain string")
        return {k: _encode(v) for k, v in value.items()}
    if kind is list:
        return [_encode(v) for v in value]
    if kind is tuple:
        return {"$t": [_encode(v) for v in value]}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"$n": [value.dtype.str, _encode(value.item())]}
    raise Uncacheable(f"a value of type {kind.__name__}")


def _untag(value):
    """A value of a head written by :func:`_encode`, its tagged parts back to their types (no
    plain dict key starts with ``$``: :func:`_encode` makes sure)."""
    kind = type(value)
    if kind is list:
        return [_untag(v) for v in value]
    if kind is not dict:
        return value
    if len(value) == 1:
        (key, inner), = value.items()
        if key == "$f":
            return float(inner)
        if key == "$t":
            return tuple(_untag(v) for v in inner)
        if key == "$n":
            return np.dtype(inner[0]).type(_untag(inner[1]))
    return {k: _untag(v) for k, v in value.items()}


def _column_dtype(col) -> str:
    if type(col) is not np.ndarray or col.ndim != 1 or col.dtype.kind not in "biufSU" or col.dtype.fields:
        raise Uncacheable("a column that is not a flat array of numbers or fixed-width text")
    return col.dtype.str


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------

def encode(lc: LightCurve, token: str, source_stat: tuple[int, int]) -> bytes:
    """A cache file's bytes for ``lc`` (raises :class:`Uncacheable`)."""
    columns, offset = [], 0
    arrays = []
    for name, col in lc.columns.items():
        if type(name) is not str:
            raise Uncacheable("a column name that is not a string")
        dtype = _column_dtype(col)
        data = np.ascontiguousarray(col).tobytes()
        columns.append([name, dtype, offset, len(col)])
        arrays.append(data)
        offset += len(data) + (-len(data)) % 8
    fields = {field: _encode(getattr(lc, field)) for field in _FIELDS}
    for field in _ROLES:
        names = getattr(lc, field)
        if type(names) is not tuple or any(type(n) is not str for n in names):
            raise Uncacheable(f"{field} that is not a tuple of names")
        fields[field] = list(names)
    body = b"".join(part for data in arrays for part in (data, b"\0" * ((-len(data)) % 8)))
    try:
        text = orjson.dumps({"token": token, "source": list(source_stat), "columns": columns,
                             "crc32": crc32(body), "lc": fields})
    except orjson.JSONEncodeError as exc:  # e.g. an integer past 64 bits
        raise Uncacheable(str(exc)) from None
    text += b" " * ((-(len(MAGIC) + _LENGTH.size + len(text))) % 8)
    return b"".join([MAGIC, _LENGTH.pack(len(text)), text, body])


def decode(raw: bytearray, token: str | None = None, source_stat: tuple[int, int] | None = None) -> LightCurve | None:
    """The light curve in a cache file's bytes, or None when they are not a cache file or
    not fresh for ``token`` and ``source_stat``. The columns are writable views of ``raw``."""
    start = len(MAGIC) + _LENGTH.size
    if len(raw) < start or raw[:len(MAGIC)] != MAGIC:
        return None
    (length,) = _LENGTH.unpack_from(raw, len(MAGIC))
    if length > MAX_HEAD or start + length > len(raw):
        return None
    try:
        text = bytes(raw[start:start + length])
        head = orjson.loads(text)
        if token is not None and head["token"] != token:
            return None
        if source_stat is not None and tuple(head["source"]) != tuple(source_stat):
            return None
        base = start + length
        # the columns lie one after another, each 8-byte aligned, up to the file's end
        columns, expected = {}, 0
        for name, dtype, offset, n in head["columns"]:
            dtype = np.dtype(dtype)
            if dtype.kind not in "biufSU" or offset != expected or type(n) is not int or n < 0:
                return None
            columns[name] = np.frombuffer(raw, dtype, n, base + offset)
            expected = offset + n * dtype.itemsize + (-(n * dtype.itemsize)) % 8
        if base + expected != len(raw) or crc32(memoryview(raw)[base:]) != head["crc32"]:
            return None
        fields = head["lc"]
        if b'"$' in text:
            fields = {field: _untag(value) for field, value in fields.items()}
        for field in _ROLES:
            fields[field] = tuple(fields[field])
        return LightCurve(columns=columns, **fields)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def same_lightcurve(a: LightCurve, b: LightCurve) -> bool:
    """Whether two light curves hold the same columns (names, order, dtypes, values bit for
    bit) and the same metadata, value for value and type for type (NaN equal to NaN)."""
    if list(a.columns) != list(b.columns):
        return False
    for name, col in a.columns.items():
        other = b.columns[name]
        if col.dtype != other.dtype or col.shape != other.shape or col.tobytes() != np.ascontiguousarray(other).tobytes():
            return False
    return all(_same(getattr(a, f), getattr(b, f)) for f in _FIELDS)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and a != a:
        return b != b
    return a == b


# ---------------------------------------------------------------------------
# the cache of one collection
# ---------------------------------------------------------------------------

def reader_token(fmt, spec: dict | None) -> str:
    """What the cached light curves of ``fmt`` depend on besides their source files:
    lcpanel's version, the format's class and spec, the collection's declarations
    (``spec``) and the size and modification time of the modules that read and describe
    light curves (the format class's module and the format's ``source_files()``)."""
    from ... import __version__
    from . import formatinfo, lcformats, lcrequest

    modules = [inspect.getfile(type(fmt)), formatinfo.__file__, lcformats.__file__, lcrequest.__file__]
    modules += [str(p) for p in fmt.source_files()]
    stats = []
    for path in modules:
        try:
            st = os.stat(path)
            stats.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([str(path), None, None])
    text = json.dumps([__version__, f"{type(fmt).__module__}:{type(fmt).__qualname__}", fmt.to_spec(), spec, stats],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: the cache's directory in a collection's catalog directory
CACHE_DIR = "lccache"


def cache_dir(info) -> Path:
    """Where the light-curve cache of a collection (its ``CollectionInfo``) lives."""
    return Path(info.catalog_dir) / CACHE_DIR


class LCCache:
    """The parsed light curves of one collection, under ``root`` (:func:`cache_dir`), each
    file named by the SHA256 of its source's absolute path."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._root = os.fspath(self.root)

    def path_for(self, source: str | Path) -> Path:
        return Path(self._file(source))

    def _file(self, source: str | Path) -> str:
        # (strings, not pathlib: a Path made and printed per read was a fifth of a cached read)
        name = hashlib.sha256(os.fsencode(os.path.abspath(source))).hexdigest()
        return os.path.join(self._root, name[:2], name + ".lcb")

    def load(self, source: str | Path, token: str) -> LightCurve | None:
        """The cached light curve of ``source`` if there is a fresh one, else None."""
        try:
            with open(self._file(source), "rb") as fd:
                st = os.stat(source)
                size = os.fstat(fd.fileno()).st_size
                raw = bytearray(size)
                if fd.readinto(raw) != size:
                    return None
        except OSError:
            return None
        return decode(raw, token, (st.st_size, st.st_mtime_ns))

    def store(self, source: str | Path, token: str, lc: LightCurve, source_stat: tuple[int, int]) -> bool:
        """Cache ``lc`` as read from ``source`` (whose size and modification time were
        ``source_stat`` before it was read); False, and nothing written, when it cannot be
        stored exactly (checked by reading the bytes back)."""
        from ..atomic import write_bytes

        try:
            data = encode(lc, token, source_stat)
        except Uncacheable:
            return False
        back = decode(bytearray(data), token, source_stat)
        if back is None or not same_lightcurve(lc, back):
            return False
        # renamed into place whole, not fsynced: a copy lost to a power cut is read again
        write_bytes(self.path_for(source), data, durable=False)
        return True


#: what :func:`worker_reader` made, per (format class, spec, base, cache directory)
_WORKER_READERS: dict = {}


def worker_reader(reader: str, spec: dict, base: str, cache: str | None = None
                  ) -> tuple[object, LCCache | None, str | None]:
    """In a worker process (product builds, the cache's own build), which has no app: the
    collection's format, its class named ``"module:Class"`` by the builder (never by a
    user) and made from ``spec`` and ``base``, with the cache at ``cache`` (which need not
    exist yet: a cache built later is used from then on) and the token of the format's
    light curves, or ``None, None`` without a cache directory. Remembered for the life of
    the process."""
    import functools
    import importlib

    key = json.dumps([reader, spec, base, cache], sort_keys=True)
    found = _WORKER_READERS.get(key)
    if found is None:
        module, _, name = reader.partition(":")
        cls = functools.reduce(getattr, name.split("."), importlib.import_module(module))
        fmt = cls.from_spec(spec, Path(base))
        found = _WORKER_READERS[key] = (fmt, *((LCCache(cache), reader_token(fmt, spec)) if cache else (None, None)))
    return found


def cached_read(fmt, spec: dict | None, path, cache: LCCache | None, token: str | None):
    """``lcrequest.read_lightcurve(fmt, spec, path)``, from ``cache`` when it holds a fresh copy."""
    from .lcrequest import read_lightcurve

    if cache is not None and token is not None:
        lc = cache.load(path, token)
        if lc is not None:
            return lc
    return read_lightcurve(fmt, spec, path)


# ---------------------------------------------------------------------------
# building a collection's cache (the operator's command)
# ---------------------------------------------------------------------------

def _fill(reader: str, spec: dict, base: str, root: str, paths: list[str]) -> dict:
    """Cache ``paths`` (in a worker process); counts of what happened to them."""
    fmt, cache, token = worker_reader(reader, spec, base, root)
    counts = {"cached": 0, "fresh": 0, "uncacheable": 0, "unreadable": 0}
    from ...errors import UserError
    from .lcrequest import read_lightcurve

    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            counts["unreadable"] += 1
            continue
        if cache.load(path, token) is not None:
            counts["fresh"] += 1
            continue
        try:
            lc = read_lightcurve(fmt, spec, path)
        except Exception:
            counts["unreadable"] += 1
            continue
        try:
            stored = cache.store(path, token, lc, (st.st_size, st.st_mtime_ns))
        except OSError as exc:  # a full disk, a directory made read-only
            raise UserError(f"cannot write the light-curve cache in {root}: {exc.strerror or exc}") from None
        counts["cached" if stored else "uncacheable"] += 1
    return counts


def build_cache(app, collection_id: str, workers: int = 1, show_progress: bool = True,
                chunk: int = 200) -> dict:
    """Cache every light curve of a collection (the ones already fresh are kept), in
    ``workers`` processes; counts of cached, fresh, uncacheable and unreadable files, and
    the cache's size in bytes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ...errors import UserError
    from ..progress import progress_bar

    catalog = app.catalogs.get(collection_id)
    info = catalog.info
    if info.lcformat is None or "lcfname" not in catalog.columns:
        raise UserError(f"collection {collection_id!r} has no light curves to cache")
    cls = app.lc_formats.get(info.lcformat["kind"])
    paths = [str(p) for (rel,) in catalog.query('SELECT "lcfname" FROM object_catalog')
             if rel and (p := info.object_file(rel)) is not None]
    root = cache_dir(info)
    root.mkdir(parents=True, exist_ok=True)
    args = (f"{cls.__module__}:{cls.__qualname__}", info.lcformat, str(info.source), str(root))
    chunks = [paths[i:i + chunk] for i in range(0, len(paths), chunk)]
    counts = {"cached": 0, "fresh": 0, "uncacheable": 0, "unreadable": 0}
    with progress_bar(len(paths), desc=f"caching {collection_id}", unit="LC", disable=not show_progress) as bar:
        if workers <= 1:
            results = ((_fill(*args, part), len(part)) for part in chunks)
        else:
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            futures = {pool.submit(_fill, *args, part): len(part) for part in chunks}
            results = ((f.result(), futures[f]) for f in as_completed(futures))
        try:
            for part_counts, n in results:
                for key, value in part_counts.items():
                    counts[key] += value
                bar.update(n)
        finally:
            if workers > 1:
                pool.shutdown(cancel_futures=True)
    counts["bytes"] = sum(f.stat().st_size for f in root.glob("*/*.lcb"))
    return counts


#: reader tokens per (cache directory, format class, spec): the code they stat is the code
#: this process runs, so a token stays right for the life of the process
_TOKENS: dict = {}


def read_collection_lightcurve(fmt, info, path) -> LightCurve:
    """One light curve of a collection (its ``CollectionInfo``) as
    ``lcrequest.read_lightcurve(fmt, info.lcformat, path)`` gives it, from the collection's
    cache when that holds a fresh copy (a cache built while the server runs is used
    from then on)."""
    root = cache_dir(info)
    key = (str(root), type(fmt), json.dumps(info.lcformat, sort_keys=True, default=str))
    token = _TOKENS.get(key)
    if token is None:
        token = _TOKENS[key] = reader_token(fmt, info.lcformat)
    return cached_read(fmt, info.lcformat, path, LCCache(root), token)
