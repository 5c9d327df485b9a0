"""A small client for lcpanel's JSON API, for notebooks and scripts.

It needs nothing beyond the standard library, numpy and astropy, and it keeps the
server's session cookie: datasets made through one :class:`Client` belong to it, so its
private datasets stay visible to it (and only to it)::

    from lcpanel.client import Client

    c = Client("http://127.0.0.1:5006")
    res = c.search("cone", coords="290 45 5", filter="vmag < 12", limit=100)
    res                             # <SearchResult 12 of 12 matching objects, dataset 3f2a...>
    res.table                       # astropy Table with units and descriptions
    res.table["ra"].unit            # deg

    ds = c.dataset(res.dataset_id)  # summary dict; ds.table holds *every* row
    c.edit_dataset(res.dataset_id, name="bright stars near Kepler", visibility="public")
    frozen = c.freeze(res.dataset_id)["dataset"]

    p = c.product(res.dataset_id, "lightcurves", format="csv",
                  progress=lambda s: print(f"{s['progress']:.0%}"))
    path = c.download(res.dataset_id, p, dest_dir="downloads")   # resumable, SHA256-checked

    c.object_file("demo", "LCP-000001", "lightcurve", format="csv", dest_dir="downloads")

Any error the API reports (a 4xx JSON answer ``{"error", "type", "field"}``), and any
failure to reach the server, is raised as :class:`ClientError` with ``status``,
``message`` and ``field`` (the request field at fault, e.g. ``"coords"``). Over the
server's rate limit (429) or while it is busy (503), a request waits as long as the
answer's ``Retry-After`` asks and is sent again, for up to ``max_wait_s`` (600 s) in all;
``Client(url, max_wait_s=0)`` raises at once instead.

Downloads go to ``<filename>.part`` first and are renamed to their final name only once
their SHA256 matches the server's (the ``X-Content-SHA256`` header and the product's
status). An interrupted download leaves its ``.part`` behind; calling :meth:`Client.download`
again asks only for the missing bytes (an HTTP ``Range`` request). A ``.part`` whose bytes
turn out to be wrong is deleted and reported, so the next call starts afresh.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, MozillaCookieJar
from pathlib import Path
from typing import Any

import numpy as np

from .core.urls import object_path, segment

__all__ = ["Client", "ClientError", "Dataset", "SearchResult", "rows_to_table"]

#: rows fetched per request when reading a whole dataset (the server's maximum)
PAGE_SIZE = 10_000
#: the search spec's own keys; every other search keyword is a parameter of the search type
SPEC_KEYS = ("collections", "filter", "sort", "limit")
#: keywords of :meth:`Client.search` that go to the query string (dataset settings)
QUERY_KEYS = ("visibility", "name", "description")
CHUNK = 1 << 20
#: answers that mean "not now": the server did nothing and says (Retry-After) when to come back
RETRY_STATUSES = (429, 503)


class ClientError(Exception):
    """An error from the lcpanel API or from talking to it.

    ``status`` is the HTTP status (None when the server could not be reached or the
    error is the client's own, e.g. a checksum mismatch), ``message`` the server's
    explanation, ``field`` the request field it is about (or None), ``type`` the
    server's error type (``UserError``, ``NotFound``...)."""

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None,
                 type: str | None = None, url: str | None = None, payload: dict | None = None):
        self.message = message
        self.status = status
        self.field = field
        self.type = type
        self.url = url
        self.payload = payload or {}
        super().__init__(str(self))

    def __str__(self) -> str:
        prefix = f"[{self.status}] " if self.status is not None else ""
        suffix = f" (field: {self.field})" if self.field else ""
        return f"{prefix}{self.message}{suffix}"


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """The seconds an answer's ``Retry-After`` asks for (a number of seconds; lcpanel
    never sends a date), or None without a usable one."""
    try:
        wait = float((exc.headers.get("Retry-After") or "").strip())
    except ValueError:
        return None
    return wait if 0 <= wait < 3600 else None


# --- tables ---------------------------------------------------------------------------------

_REAL = ("REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL")
_INTEGER = ("INTEGER", "INT", "BIGINT", "SMALLINT", "BOOLEAN")


def _unit(text: str | None):
    """An astropy unit, or None when there is none or astropy cannot parse it."""
    if not text:
        return None
    try:
        import astropy.units as u

        unit = u.Unit(text, parse_strict="silent")
    except Exception:  # noqa: BLE001 - a unit is a nicety, never a reason to fail
        return None
    return None if isinstance(unit, u.UnrecognizedUnit) else unit


def _column(meta: dict, values: list):
    from astropy.table import Column, MaskedColumn

    sqltype = str(meta.get("sqltype") or "").upper()
    nulls = [v is None for v in values]
    kwargs = {"name": meta["name"], "description": meta.get("description") or None,
              "unit": _unit(meta.get("unit")),
              "meta": {k: meta[k] for k in ("ucd", "key", "sqltype") if meta.get(k)}}
    try:
        if sqltype in _REAL:
            return Column(np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64), **kwargs)
        if sqltype in _INTEGER:
            data = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
            return MaskedColumn(data, mask=nulls, **kwargs) if any(nulls) else Column(data, **kwargs)
        if sqltype == "TEXT" or (not sqltype and all(v is None or isinstance(v, str) for v in values)):
            data = np.array(["" if v is None else str(v) for v in values], dtype=str)
            return MaskedColumn(data, mask=nulls, **kwargs) if any(nulls) else Column(data, **kwargs)
    except (TypeError, ValueError):
        pass  # values that do not fit the declared type: keep them as they are
    data = np.empty(len(values), dtype=object)
    data[:] = values
    return Column(data, **kwargs)


def rows_to_table(columns: list[dict], rows: list[dict], meta: dict | None = None):
    """An astropy Table from the API's column metadata and rows.

    REAL columns are floats with NaN for nulls; INTEGER columns are integers, masked
    where null; TEXT columns are strings, masked where null. Units astropy understands
    become column units; descriptions and UCDs are kept."""
    from astropy.table import Table

    table = Table([_column(c, [r.get(c["name"]) for r in rows]) for c in columns], meta=meta or {})
    return table


# --- results --------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """What :meth:`Client.search` returns: the rows as an astropy :attr:`table` and the
    search's summary. Every search is stored as a dataset: :attr:`dataset_id`."""

    table: Any
    dataset_id: str | None
    nmatched: int
    nreturned: int
    nmatched_is_lower_bound: bool = False
    messages: list[str] = field(default_factory=list)
    spec: dict = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)
    per_collection: dict = field(default_factory=dict)
    columns: list[dict] = field(default_factory=list)
    summary: str = ""
    elapsed_ms: float | None = None
    dataset_url: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.nreturned

    def __repr__(self) -> str:
        summary = self.summary or f"{self.nreturned} of {self.nmatched} matching objects"
        return f"<SearchResult {summary}, dataset {self.dataset_id}>"


class Dataset(dict):
    """A dataset's summary (name, owner, visibility, spec, columns, comments...) as a
    dict, with every one of its rows in :attr:`table` (and as dicts in :attr:`rows`)."""

    def __init__(self, summary: dict, rows: list[dict]):
        super().__init__(summary)
        self.rows = rows
        meta = {k: summary.get(k) for k in ("dataset_id", "name", "spec", "nmatched", "frozen", "version")}
        self.table = rows_to_table(summary.get("columns") or [], rows, meta)

    @property
    def dataset_id(self) -> str:
        return self["dataset_id"]

    def __repr__(self) -> str:
        return f"<Dataset {self.get('dataset_id', '')[:12]} {self.get('name')!r}: {len(self.rows)} objects>"


# --- the client -----------------------------------------------------------------------------


def _safe_filename(name: str | None, fallback: str) -> str:
    name = Path(str(name or "").replace("\\", "/")).name.strip()
    name = re.sub(r"[\x00-\x1f]", "", name)
    return name if name and name not in (".", "..") else fallback


def _disposition_filename(header: str | None) -> str | None:
    if not header:
        return None
    m = re.search(r"filename\*=UTF-8''([^;]+)", header, re.IGNORECASE)
    if m:
        return urllib.parse.unquote(m.group(1))
    m = re.search(r'filename="([^"]*)"', header) or re.search(r"filename=([^;]+)", header)
    return m.group(1).strip() if m else None


class Client:
    """A session with an lcpanel server.

    ``url``: the server's base URL. ``timeout``: seconds to wait on the network for any
    one read. ``cookie_file``: keep the session (and so the ownership of datasets made
    with it) across Python sessions in this file (Mozilla cookies.txt format; it is a
    credential for your datasets, kept readable only by you).
    """

    page_size: int = PAGE_SIZE

    def __init__(self, url: str = "http://127.0.0.1:5006", *, timeout: float = 60.0,
                 cookie_file: str | os.PathLike | None = None, max_wait_s: float = 600.0):
        self.url = url.rstrip("/")
        #: the longest one request waits, over all its retries, when the server answers 429
        #: or 503 with Retry-After (over its rate limit, or busy); 0: raise at once
        self.max_wait_s = max_wait_s
        #: how many times, and how long in all, this client waited so
        self.waits, self.waited_s = 0, 0.0
        parts = urllib.parse.urlsplit(self.url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.cookie_file = Path(cookie_file) if cookie_file else None
        if self.cookie_file:
            self.cookies: CookieJar = MozillaCookieJar(str(self.cookie_file))
            if self.cookie_file.exists():
                self.cookies.load(ignore_discard=True)
        else:
            self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # --- HTTP -------------------------------------------------------------------------------

    def _full_url(self, path: str, query: dict | None = None) -> str:
        url = path if re.match(r"^https?://", path) else self.url + "/" + path.lstrip("/")
        query = {k: v for k, v in (query or {}).items() if v is not None}
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        return url

    def _open(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
              headers: dict | None = None):
        """The open response (caller closes it); API errors as :class:`ClientError`."""
        url = self._full_url(path, query)
        headers = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        elif method in ("POST", "PUT"):
            data = b""
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            # the server takes writes made with its session cookie only as JSON from its own
            # origin (lcpanel.csrf); this client is that origin's own tool
            headers["Content-Type"] = "application/json"
            headers["Origin"] = self.origin
        before = len(self.cookies)
        waited = 0.0
        while True:
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                resp = self.opener.open(req, timeout=self.timeout)
                break
            except urllib.error.HTTPError as exc:
                wait = _retry_after(exc) if exc.code in RETRY_STATUSES else None
                if wait is None or waited + wait > self.max_wait_s:
                    raise self._http_error(exc, url) from None
                exc.close()
                time.sleep(wait)
                waited += wait
                self.waits += 1
                self.waited_s += wait
            except urllib.error.URLError as exc:
                raise ClientError(f"cannot reach the lcpanel server at {self.url}: {exc.reason}", url=url) from None
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise ClientError(f"cannot reach the lcpanel server at {self.url}: {exc}", url=url) from None
        if self.cookie_file and len(self.cookies) != before:
            self._save_cookies()
        return resp

    def _save_cookies(self) -> None:
        self.cookie_file.parent.mkdir(parents=True, exist_ok=True)
        self.cookies.save(ignore_discard=True)
        os.chmod(self.cookie_file, 0o600)

    @staticmethod
    def _http_error(exc: urllib.error.HTTPError, url: str) -> ClientError:
        try:
            raw = exc.read()
        except Exception:  # noqa: BLE001
            raw = b""
        finally:
            exc.close()
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if isinstance(payload, dict) and payload.get("error"):
            return ClientError(str(payload["error"]), status=exc.code, field=payload.get("field"),
                               type=payload.get("type"), url=url, payload=payload)
        text = raw.decode("utf-8", "replace").strip()[:200]
        return ClientError(f"HTTP {exc.code} {exc.reason}" + (f": {text}" if text else ""), status=exc.code, url=url)

    def _json(self, method: str, path: str, **kwargs) -> Any:
        url = self._full_url(path, kwargs.get("query"))
        with self._open(method, path, **kwargs) as resp:
            raw = resp.read()
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ClientError(f"the server answered {url} with something that is not JSON", url=url) from None

    def get(self, path: str, **query) -> Any:
        """GET any API path (e.g. ``"/api/products"``) and return its JSON."""
        return self._json("GET", path, query=query)

    # --- collections and search -------------------------------------------------------------

    def collections(self) -> list[dict]:
        """Every collection's summary (id, name, size, sky footprint, column names...)."""
        return self.get("/api/collections")["collections"]

    def collection(self, collection_id: str) -> dict:
        """One collection with full column metadata (units, UCDs, descriptions)."""
        return self.get(f"/api/collections/{segment(collection_id)}")

    def search_types(self) -> list[dict]:
        """The search types and the JSON schema of their parameters."""
        return self.get("/api/search/types")["types"]

    def search(self, type_or_spec: str | dict, /, *, collections=None, filter: str | None = None,
               sort=None, limit: int | None = None, params: dict | None = None,
               visibility: str | None = None, name: str | None = None, description: str | None = None,
               **search_params) -> SearchResult:
        """Run a search; it becomes a dataset (``visibility``: public, unlisted (the
        default) or private; ``name``, ``description``: the dataset's).

        Give the search type and its parameters as keywords
        (``search("cone", coords="290 45 5", filter="vmag < 12")``), or a whole spec
        (``search({"type": "cone", "params": {...}, "limit": 10})``); keywords then
        override or add to it."""
        if isinstance(type_or_spec, dict):
            spec = dict(type_or_spec)
        elif isinstance(type_or_spec, str):
            spec = {"type": type_or_spec}
        else:
            raise TypeError("search() takes a search type (e.g. 'cone') or a whole spec dict")
        merged = dict(spec.get("params") or {})
        merged.update(params or {})
        merged.update(search_params)
        spec["params"] = merged
        for key, value in (("collections", collections), ("filter", filter), ("sort", sort), ("limit", limit)):
            if value is not None:
                spec[key] = list(value) if isinstance(value, tuple) else value
        query = {"visibility": visibility, "name": name, "description": description}
        data = self._json("POST", "/api/search", query=query, body=spec)
        meta = {k: data.get(k) for k in ("dataset_id", "spec", "nmatched", "nreturned")}
        return SearchResult(
            table=rows_to_table(data.get("columns") or [], data.get("rows") or [], meta),
            dataset_id=data.get("dataset_id"), nmatched=data.get("nmatched", 0),
            nreturned=data.get("nreturned", len(data.get("rows") or [])),
            nmatched_is_lower_bound=bool(data.get("nmatched_is_lower_bound")),
            messages=list(data.get("messages") or []), spec=data.get("spec") or spec,
            collections=list(data.get("collections") or []), per_collection=data.get("per_collection") or {},
            columns=data.get("columns") or [], summary=data.get("summary", ""), elapsed_ms=data.get("elapsed_ms"),
            dataset_url=data.get("dataset_url"), raw=data)

    # --- datasets ---------------------------------------------------------------------------

    def _dataset_path(self, dataset_id: str) -> str:
        return f"/api/datasets/{segment(dataset_id)}"

    def datasets(self, mine: bool = False, q: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
        """Public datasets and your own, newest first (only your own with ``mine=True``;
        ``q`` searches names and descriptions)."""
        return self.get("/api/datasets", mine="1" if mine else None, q=q or None, limit=limit,
                        offset=offset)["datasets"]

    def dataset_page(self, dataset_id: str, start: int = 0, stop: int | None = None) -> dict:
        """One page of a dataset's rows (``rows``) with its summary, as the API gives it."""
        return self.get(self._dataset_path(dataset_id), start=start, stop=stop)

    def dataset(self, dataset_id: str, *, page_size: int | None = None) -> Dataset:
        """A dataset's summary and *all* its rows (``.table``), read in pages of
        ``page_size`` rows (default :attr:`page_size`)."""
        size = int(page_size or self.page_size)
        if not 1 <= size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        for _attempt in range(3):
            first = self.dataset_page(dataset_id, 0, size)
            rows = list(first.pop("rows"))
            first.pop("row_range", None)
            total = int(first.get("nobjects", len(rows)))
            consistent = True
            while len(rows) < total:
                page = self.dataset_page(dataset_id, len(rows), len(rows) + size)
                if page.get("updated") != first.get("updated") or not page["rows"]:
                    consistent = False  # edited while we read it: read it again
                    break
                rows += page["rows"]
            if consistent:
                return Dataset(first, rows)
        raise ClientError(f"dataset {dataset_id} kept changing while it was being read; try again")

    def edit_dataset(self, dataset_id: str, *, name: str | None = None, description: str | None = None,
                     visibility: str | None = None, comment: str | None = None,
                     remove_objects: list[str] | None = None, keep_objects: list[str] | None = None,
                     object_comment: dict | None = None) -> dict:
        """Change a dataset (only what is given). Owners may change the name,
        description, visibility and objects ("collection/objectid" keys); anyone who
        can see it may comment. Returns ``{"dataset": summary, "changed": [...]}``;
        editing a frozen dataset makes a new version, whose summary is returned."""
        changes = {k: v for k, v in (("name", name), ("description", description), ("visibility", visibility),
                                     ("comment", comment), ("remove_objects", remove_objects),
                                     ("keep_objects", keep_objects), ("object_comment", object_comment))
                   if v is not None}
        if not changes:
            raise ValueError("nothing to change: give e.g. name=...")
        return self._json("POST", self._dataset_path(dataset_id), body=changes)

    def freeze(self, dataset_id: str) -> dict:
        """Make an immutable, citable copy: ``{"dataset": summary, "permalink": ...}``."""
        return self._json("POST", self._dataset_path(dataset_id) + "/freeze")

    def delete_dataset(self, dataset_id: str) -> dict:
        return self._json("DELETE", self._dataset_path(dataset_id))

    def urls(self, dataset_id: str, *, kind: str | None = None, format: str | None = None) -> list[str]:
        """One download URL per object and file of a dataset (for wget or curl); ``kind``
        (``lightcurve``, ``checkplot``, ``periodfinding``) keeps one kind, ``format``
        (``csv``, ``fits``...) has light curves converted on download."""
        query = {k: v for k, v in (("kind", kind), ("format", format)) if v}
        path = self._dataset_path(dataset_id) + "/urls" + ("?" + urllib.parse.urlencode(query) if query else "")
        with self._open("GET", path) as resp:
            return resp.read().decode("utf-8").split()

    # --- products ---------------------------------------------------------------------------

    def builders(self) -> list[dict]:
        """The product builders and their options."""
        return self.get("/api/products")["builders"]

    def products(self, dataset_id: str) -> list[dict]:
        """A dataset's products with their status and SHA256."""
        return self.get(self._dataset_path(dataset_id) + "/products")["products"]

    def product_status(self, dataset_id: str, key: str) -> dict:
        return self.get(f"{self._dataset_path(dataset_id)}/products/{segment(key)}")

    def product(self, dataset_id: str, builder: str, *, objects: list[str] | None = None,
                options: dict | None = None, wait: bool = True, timeout: float = 600.0, poll: float = 0.5,
                progress: Callable[[dict], Any] | bool | None = None, **builder_options) -> dict:
        """Start a product (or reuse an identical one) and, with ``wait``, poll until it is
        built; return its status (``status``, ``progress``, ``sha256``, ``size``,
        ``filename``, ``download``...).

        Builder options go as keywords (``format="csv"``) or as ``options``; ``objects``
        selects "collection/objectid" keys. ``progress`` is called with each status
        polled (``True`` prints a progress line to stderr). A failed build, or one not
        done within ``timeout`` seconds, raises :class:`ClientError`."""
        opts = {**(options or {}), **builder_options}
        body = {"builder": builder, "options": opts}
        if objects is not None:
            body["objects"] = list(objects)
        status = self._json("POST", self._dataset_path(dataset_id) + "/products", body=body)
        if progress is True:
            progress = _print_progress
        if progress:
            progress(status)
        if not wait:
            return status
        deadline = time.monotonic() + timeout
        while status["status"] not in ("done", "failed"):
            if time.monotonic() > deadline:
                raise ClientError(f"the {builder} product is still {status['status']} after {timeout:g} s "
                                  f"({status.get('progress', 0):.0%}); call product() again to keep waiting",
                                  payload=status)
            time.sleep(poll)
            status = self._json("GET", status.get("url") or
                                f"{self._dataset_path(dataset_id)}/products/{status['key']}")
            if progress:
                progress(status)
        if status["status"] == "failed":
            raise ClientError(f"the {builder} product failed: {status.get('error') or 'unknown error'}",
                              field="status", payload=status)
        return status

    def lightcurves(self, dataset_id: str, *, format: str = "parquet", objects: list[str] | None = None,
                    as_table: str = "pandas", dest_dir: str | os.PathLike | None = None,
                    timeout: float = 600.0, progress: Callable[[dict], Any] | bool | None = None,
                    magcol: str | None = None, times: str | None = None,
                    mask: str | list[str] | None = None, masked: str | None = None):
        """Every light curve of a dataset (or of ``objects``) at once.

        ``magcol`` (the magnitude series to keep, e.g. ``"aep_000"``), ``times`` (a time
        column to keep, e.g. ``"bjd"``, or a system to add: ``"BJD_TDB"``, ``"HJD_UTC"``,
        ``"MJD_UTC"``, ``"JD_UTC"``), ``mask`` (named quality masks, e.g.
        ``"aiq_000_good"``) and ``masked`` (``"drop"`` or ``"flag"``) are the product's
        options (see ``builders()``); each file states what was applied.

        ``format="parquet"`` builds (or reuses) the dataset's ``lightcurves`` product in
        Parquet, downloads it (resumable, SHA256-checked) and returns one long table
        (``collection``, ``objectid`` and every light-curve column): a pandas DataFrame,
        or with ``as_table="astropy"`` an astropy Table with the columns' units and
        descriptions. Other formats return the path of the downloaded zip.
        ``dest_dir``: where the zip is kept (default: a temporary directory)."""
        import tempfile
        import zipfile

        if as_table not in ("pandas", "astropy"):
            raise ClientError("as_table must be 'pandas' or 'astropy'", field="as_table")
        asked = {k: v for k, v in (("magcol", magcol), ("times", times), ("mask", mask), ("masked", masked))
                 if v is not None}
        asked = {k: ",".join(v) if isinstance(v, (list, tuple)) else v for k, v in asked.items()}
        status = self.product(dataset_id, "lightcurves", objects=objects, format=format, timeout=timeout,
                              progress=progress, **asked)
        if dest_dir is None:
            dest_dir = tempfile.mkdtemp(prefix="lcpanel-lightcurves-")
        path = self.download(dataset_id, status, dest_dir)
        if format != "parquet":
            return path
        target = Path(dest_dir) / "lightcurves.parquet"
        with zipfile.ZipFile(path) as zf, zf.open("lightcurves.parquet") as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
        if as_table == "astropy":
            from astropy.table import Table

            return Table.read(target, format="parquet")
        import pandas

        return pandas.read_parquet(target)

    # --- downloads --------------------------------------------------------------------------

    def download(self, dataset_id: str, product: dict | str, dest_dir: str | os.PathLike = ".", *,
                 filename: str | None = None, progress: Callable[[int, int | None], Any] | None = None) -> Path:
        """Download a built product (its status dict from :meth:`product`, or its key) into
        ``dest_dir`` and return the file's path.

        Bytes go to ``<filename>.part``; an existing ``.part`` is resumed with an HTTP
        Range request. The file gets its final name only when its SHA256 matches the
        server's; otherwise the ``.part`` is deleted and :class:`ClientError` raised.
        ``progress(bytes_so_far, total_bytes)`` is called as bytes arrive."""
        status = product if isinstance(product, dict) else self.product_status(dataset_id, product)
        if status.get("status") != "done":
            # the caller's copy may be stale: ask again
            status = self.product_status(dataset_id, status["key"])
            if status.get("status") != "done":
                raise ClientError(f"the product is {status.get('status')}, not ready to download", field="status",
                                  payload=status)
        url = status.get("download") or f"{self._dataset_path(dataset_id)}/products/{status['key']}/download"
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        final = dest / _safe_filename(filename or status.get("filename"), f"{status.get('key', 'product')}.zip")
        expected = (status.get("sha256") or "").lower() or None
        size = status.get("size")
        if expected and final.exists() and final.stat().st_size == (size or final.stat().st_size) \
                and _file_sha256(final) == expected:
            return final  # already here, and intact
        return self._fetch(url, final, expected=expected, size=size, progress=progress, resume=True)

    def object_file(self, collection_id: str, objectid: str, kind: str = "lightcurve", *,
                    format: str | None = None, dest_dir: str | os.PathLike = ".",
                    filename: str | None = None, times: str | None = None,
                    mask: str | list[str] | None = None, magcol: str | list[str] | None = None,
                    masked: str | None = None) -> Path:
        """Download one object's ``lightcurve`` (``format``: original, csv, fits,
        votable...), ``checkplot`` or ``periodfinding`` file, checked against the
        server's SHA256; returns its path. For converted light curves, ``times``
        (``BJD_TDB``, ``HJD_UTC``, ``MJD_UTC``, ``JD_UTC``) adds a first column of times in
        that system (or, naming a time column such as ``bjd``, keeps only that one),
        ``magcol`` keeps only those magnitude columns (for a checkplot: the magcol's
        checkplot) and ``mask`` (a name or names of the format's quality masks) removes
        the points it rejects (``masked="flag"``: keeps them, flagged in a column
        ``masked``); the file's header states what was done."""
        path = f"{object_path(collection_id, objectid)}/{segment(kind)}"
        query = {"format": format, "times": times, "masked": masked,
                 "magcol": ",".join(magcol) if isinstance(magcol, (list, tuple)) else magcol,
                 "mask": ",".join(mask) if isinstance(mask, (list, tuple)) else mask}
        query = {k: v for k, v in query.items() if v}
        if query:
            path += "?" + urllib.parse.urlencode(query)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        return self._fetch(path, None, expected=None, size=None, progress=None, resume=False, dest_dir=dest,
                           filename=filename)

    def _fetch(self, url: str, final: Path | None, *, expected: str | None, size: int | None, progress,
               resume: bool, dest_dir: Path | None = None, filename: str | None = None) -> Path:
        """Stream ``url`` into ``final`` (via ``final.part``), verifying its SHA256.

        Without ``final`` the name comes from the answer's Content-Disposition."""
        offset = 0
        digest = hashlib.sha256()
        part = final.with_name(final.name + ".part") if final is not None else None
        if resume and part is not None and part.exists():
            offset = part.stat().st_size
            if size is not None and offset > size:
                part.unlink()  # longer than the file: not a prefix of it
                offset = 0
            else:
                digest = _sha256_of(part)
        if resume and size is not None and offset == size and offset > 0:
            return self._finish(part, final, digest.hexdigest(), expected, None)  # nothing left to fetch

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = self._open("GET", url, headers=headers)
        except ClientError as exc:
            if exc.status == 416 and part is not None and part.exists():
                return self._finish(part, final, digest.hexdigest(), expected, None)
            raise
        with resp:
            header_sha = (resp.headers.get("X-Content-SHA256") or "").lower() or None
            if final is None:
                name = filename or _disposition_filename(resp.headers.get("Content-Disposition"))
                final = dest_dir / _safe_filename(name, Path(urllib.parse.urlsplit(url).path).name or "download")
                part = final.with_name(final.name + ".part")
            if header_sha and expected and header_sha != expected:
                raise ClientError(f"the server's SHA256 for {final.name} ({header_sha[:12]}...) is not the one in "
                                  f"the product's status ({expected[:12]}...): the product changed; request it again")
            mode = "wb"
            if offset:
                content_range = resp.headers.get("Content-Range") or ""
                if resp.status == 206 and content_range.startswith(f"bytes {offset}-"):
                    mode = "ab"
                elif resp.status == 206:
                    raise ClientError(f"the server answered a request for bytes {offset}- with {content_range!r}")
                else:  # the server sent the whole file: start again
                    offset, digest = 0, hashlib.sha256()
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else size
            received = offset
            with open(part, mode) as out:
                try:
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        if progress:
                            progress(received, total)
                except (OSError, http.client.HTTPException) as exc:
                    reason = str(exc) or type(exc).__name__
                else:
                    reason = None if total is None or received >= total else "the connection closed early"
            if reason is not None:
                raise ClientError(f"the download of {final.name} was interrupted after {received} of "
                                  f"{total if total is not None else '?'} bytes ({reason}); call it again to "
                                  f"resume from {part.name}", url=url)
        return self._finish(part, final, digest.hexdigest(), expected, header_sha)

    @staticmethod
    def _finish(part: Path, final: Path, got: str, expected: str | None, header_sha: str | None) -> Path:
        want = header_sha or expected
        if want is None:
            part.unlink(missing_ok=True)
            raise ClientError(f"the server gave no SHA256 for {final.name}; it cannot be verified")
        if got != want:
            part.unlink(missing_ok=True)
            raise ClientError(f"SHA256 mismatch for {final.name}: expected {want}, got {got}. The partial file "
                              f"was corrupt and has been deleted; download again to start afresh.")
        os.replace(part, final)
        return final


def _sha256_of(path: Path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h


def _file_sha256(path: Path) -> str:
    return _sha256_of(path).hexdigest()


def _print_progress(status: dict) -> None:
    print(f"\r{status.get('builder', 'product')}: {status.get('status')} "
          f"{status.get('done', 0)}/{status.get('total', 0)} ({status.get('progress', 0):.0%})"
          + (f", {status['rate']:g}/s" if status.get("rate") else ""),
          end="\n" if status.get("status") in ("done", "failed") else "", file=sys.stderr, flush=True)
