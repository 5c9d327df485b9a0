"""TAP_UPLOAD: a user's own table (VOTable or CSV, sent inline as ``UPLOAD=name,param:part``)
becomes ``TAP_UPLOAD.<name>`` for one query, joinable with every collection in ADQL.

The table is checked (size, rows, columns, names) and written to a private temporary SQLite
file that the query attaches read-only like any catalog; it is removed when the query is
done (:class:`Uploads` is a context manager) and never touches a collection or the
basedir. Uploads by URL are refused: the service does not fetch from the network.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from ...errors import TooLarge, UserError
from .tap_schema import TapColumn, TapTable

SCHEMA = "TAP_UPLOAD"
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_TABLES = 4
MAX_COLUMNS = 200


def parse_upload_param(value: str) -> list[tuple[str, str]]:
    """``[(table name, reference)]`` from ``t1,param:p1;t2,http://host/t2.vot``: a reference
    is ``param:<part>`` (inline) or an http(s) URL."""
    out = []
    for item in (value or "").split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, ref = item.partition(",")
        name, ref = name.strip(), ref.strip()
        if not sep or not NAME_RE.match(name):
            raise UserError(f"UPLOAD item {item[:80]!r} must be 'name,param:part' with a name of letters, digits "
                            "and underscores starting with a letter")
        if not (ref.startswith("param:") or ref.lower().startswith(("http://", "https://"))):
            raise UserError(f"UPLOAD {name}: the table must be given as param:<part> or an http(s) URL")
        out.append((name, ref))
    if len(out) > MAX_TABLES:
        raise UserError(f"at most {MAX_TABLES} uploaded tables per query; this one has {len(out)}")
    if len({n.lower() for n, _ in out}) != len(out):
        raise UserError("UPLOAD names the same table twice")
    return out


def read_table(name: str, data: bytes, *, max_rows: int):
    """An astropy Table from VOTable or CSV bytes; a 400 naming the problem otherwise."""
    from astropy.table import Table

    head = data.lstrip()[:200].lower()
    try:
        if head.startswith(b"<?xml") or head.startswith(b"<votable"):
            from astropy.io.votable import parse_single_table

            votable = parse_single_table(io.BytesIO(data), verify="ignore")
            table = votable.to_table()
            # the declared VO types, so the query's answer can say the same
            table.meta["vo_fields"] = {f.name: (f.datatype, f.arraysize, f.xtype) for f in votable.fields}
        else:
            table = Table.read(data.decode("utf-8"), format="ascii.csv")
    except UserError:
        raise
    except Exception as exc:  # astropy raises many kinds for a malformed file
        raise UserError(f"upload {name!r} is neither a readable VOTable nor CSV: {str(exc)[:200]}") from None
    if len(table) > max_rows:
        raise TooLarge(f"upload {name!r} has {len(table)} rows; the limit is {max_rows}")
    if not table.colnames or len(table.colnames) > MAX_COLUMNS:
        raise UserError(f"upload {name!r} must have 1 to {MAX_COLUMNS} columns; it has {len(table.colnames)}")
    bad = [c for c in table.colnames if not NAME_RE.match(c)]
    if bad:
        raise UserError(f"upload {name!r}: column name {bad[0][:60]!r} is not a plain identifier (letters, digits "
                        "and underscores, starting with a letter); rename it before uploading")
    if len({c.lower() for c in table.colnames}) != len(table.colnames):
        raise UserError(f"upload {name!r} has two columns whose names differ only in case")
    return table


def _column(table, name: str) -> tuple[TapColumn, str, list]:
    column, sqltype, values = _plain_column(table, name)
    declared = (table.meta.get("vo_fields") or {}).get(name)
    if declared:
        datatype, arraysize, xtype = declared
        same_kind = {"long": ("short", "int", "long", "unsignedByte", "boolean"), "double": ("float", "double"),
                     "unicodeChar": ("char", "unicodeChar")}
        if datatype in same_kind.get(column.datatype, ()):
            # text is kept whole, so every char column is variable-length
            column = replace(column, datatype=datatype, arraysize="*" if "char" in datatype.lower() else None,
                             xtype=xtype or "")
        elif xtype:
            column = replace(column, xtype=xtype)
    return column, sqltype, values


def _plain_column(table, name: str) -> tuple[TapColumn, str, list]:
    import numpy as np

    col = table[name]
    kind = col.dtype.kind
    mask = np.ma.getmaskarray(col) if hasattr(col, "mask") else np.zeros(len(col), bool)
    data = np.asarray(col)
    unit = str(col.unit) if getattr(col, "unit", None) is not None else ""
    ucd = (getattr(col, "meta", {}) or {}).get("ucd", "") or ""
    if kind in "iub":
        values = [None if m else int(v) for v, m in zip(data.tolist(), mask)]
        return TapColumn(name=name, datatype="long", unit=unit, ucd=ucd), "INTEGER", values
    if kind == "f":
        values = [None if m or not math.isfinite(v) else float(v) for v, m in zip(data.tolist(), mask)]
        return TapColumn(name=name, datatype="double", unit=unit, ucd=ucd), "REAL", values
    values = [None if m else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
              for v, m in zip(data.tolist(), mask)]
    return TapColumn(name=name, datatype="unicodeChar", arraysize="*", unit=unit, ucd=ucd), "TEXT", values


class Uploads:
    """The uploaded tables of one query, as TAP tables backed by temporary files."""

    def __init__(self, tables: dict[str, bytes], *, max_rows: int):
        self.dir = Path(tempfile.mkdtemp(prefix="lcpanel-upload-"))
        self.tables: list[TapTable] = []
        try:
            for name, data in tables.items():
                self.tables.append(self._write(name, read_table(name, data, max_rows=max_rows)))
        except BaseException:
            self.close()
            raise

    def _write(self, name: str, table) -> TapTable:
        path = self.dir / f"{name.lower()}.sqlite"
        columns, decls, values = [], [], []
        for cname in table.colnames:
            column, sqltype, vals = _column(table, cname)
            columns.append(column)
            decls.append(f'"{cname.lower()}" {sqltype}')
            values.append(vals)
        with closing(sqlite3.connect(path)) as conn:
            conn.execute(f'CREATE TABLE "{name.lower()}" ({", ".join(decls)})')
            conn.executemany(f'INSERT INTO "{name.lower()}" VALUES ({",".join("?" * len(decls))})', zip(*values))
            conn.commit()
        return TapTable(schema=SCHEMA, name=name, description=f"table {name} uploaded with this query",
                        columns=tuple(replace(c, name=c.name.lower()) for c in columns),
                        db=f"upload_{name.lower()}", sql_table=name.lower(), path=str(path), nrows=len(table))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Uploads":
        return self

    def __exit__(self, *exc) -> None:
        self.close()



def fetch_url(name: str, url: str, *, max_bytes: int, timeout_s: float, allow_private: bool) -> bytes:
    """The bytes at ``url`` (TAP's upload-by-URL), at most ``max_bytes`` within ``timeout_s``.
    Unless ``allow_private``, a host that resolves to a loopback, private, link-local or
    reserved address is refused, so an upload cannot make the server read its own network."""
    import ipaddress
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UserError(f"UPLOAD {name}: {url[:100]!r} is not an http(s) URL")
    if not allow_private:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
        except OSError:
            raise UserError(f"UPLOAD {name}: cannot resolve host {parts.hostname!r}") from None
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global:
                raise UserError(f"UPLOAD {name}: host {parts.hostname!r} is on a private or local network; "
                                "this service fetches uploads from public addresses only")

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirect could lead to a private address: send the final URL instead

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout_s) as resp:
            data = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise UserError(f"UPLOAD {name}: {url[:100]} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(f"UPLOAD {name}: cannot read {url[:100]}: {str(exc)[:120]}") from None
    if len(data) > max_bytes:
        raise TooLarge(f"UPLOAD {name} at {url[:100]} is larger than the limit of {max_bytes} bytes")
    return data
