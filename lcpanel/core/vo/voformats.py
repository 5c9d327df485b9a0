"""The output formats of the VO services (TAP, Simple Cone Search, DataLink): VOTable in its
three serializations, CSV, TSV, JSON, FITS and HTML, each with the MIME type and short
name the TAP 1.1 standard (section 2.7.1) lists, and one writer per format.

``RESPONSEFORMAT`` values are matched case-insensitively, ignoring spaces. A plain
``votable`` (or ``application/x-votable+xml``) gets BINARY2: the client did not ask for
a serialization, and BINARY2 is smaller and faster to parse than TABLEDATA, with nulls
for every type (measured in ``benchmarks/bench_tap.py``). VOTable BINARY and BINARY2
are written here straight from the Python values (:func:`binary_stream`); FITS goes
through astropy (the result is a small table, and the FITS header rules are many).
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from html import escape as html_escape
from typing import Callable

from .votable import HEADER, VOField, _field_ids, _field_xml, _info, escape, iter_results_votable, results_csv, text

VOTABLE_MIME = "application/x-votable+xml"

_STRUCT = {"short": ">h", "int": ">i", "long": ">q", "float": ">f", "double": ">d", "unsignedByte": ">B"}
#: BINARY has no null flags: integer nulls are written as these (declared in VALUES null=)
_NULL_INT = {"short": -(2 ** 15), "int": -(2 ** 31), "long": -(2 ** 63), "unsignedByte": 255}


@dataclass(frozen=True)
class OutputFormat:
    key: str
    mime: str
    extension: str
    aliases: tuple[str, ...]
    #: TAPRegExt's identifier of a standard format, where there is one
    ivo_id: str = ""


def _norm(value: str) -> str:
    return "".join(str(value).split()).lower()


FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("votable/b2", f"{VOTABLE_MIME};serialization=BINARY2", "vot",
                 ("votable/b2", "votableb2", "binary2"), "ivo://ivoa.net/std/TAPRegExt#output-votable-binary2"),
    OutputFormat("votable/td", f"{VOTABLE_MIME};serialization=TABLEDATA", "vot",
                 ("votable/td", "votabletd", "tabledata"), "ivo://ivoa.net/std/TAPRegExt#output-votable-td"),
    OutputFormat("votable/b", f"{VOTABLE_MIME};serialization=BINARY", "vot",
                 ("votable/b", "votableb", "binary"), "ivo://ivoa.net/std/TAPRegExt#output-votable-binary"),
    OutputFormat("csv", "text/csv;header=present", "csv", ("csv", "text/csv")),
    OutputFormat("tsv", "text/tab-separated-values", "tsv", ("tsv", "text/tsv")),
    OutputFormat("json", "application/json", "json", ("json",)),
    OutputFormat("fits", "application/fits", "fits", ("fits", "image/fits")),
    OutputFormat("html", "text/html", "html", ("html",)),
)
_BY_NAME: dict[str, OutputFormat] = {}
for _fmt in FORMATS:
    for _name in (_fmt.key, _fmt.mime, *_fmt.aliases):
        _BY_NAME[_norm(_name)] = _fmt
# no serialization asked for: BINARY2
for _name in ("votable", VOTABLE_MIME, "text/xml", "application/xml"):
    _BY_NAME[_norm(_name)] = FORMATS[0]


def find_format(value: str | None) -> OutputFormat | None:
    """The format a ``RESPONSEFORMAT`` value names (None: VOTable BINARY2), or None when unknown."""
    if value is None or not str(value).strip():
        return FORMATS[0]
    return _BY_NAME.get(_norm(value))


def known_names() -> str:
    return ", ".join(f.key for f in FORMATS)


# --- VOTable BINARY / BINARY2 ------------------------------------------------------------------


def _encoder(field: VOField) -> Callable[[object], bytes]:
    """A function from one Python value to the field's bytes in a BINARY(2) stream."""
    dt = field.datatype
    if dt in _STRUCT:
        pack = struct.Struct(_STRUCT[dt]).pack
        if dt in ("float", "double"):
            def enc(v):
                try:
                    return pack(float(v)) if v is not None and not isinstance(v, (str, bytes)) else pack(math.nan)
                except (TypeError, ValueError):
                    return pack(math.nan)
        else:
            def enc(v):
                if v is None or isinstance(v, (str, bytes)) or (isinstance(v, float) and not math.isfinite(v)):
                    return pack(_NULL_INT[dt])
                return pack(int(v))
        return enc
    if dt == "boolean":
        return lambda v: b"?" if v is None else (b"T" if v else b"F")
    wide = dt == "unicodeChar"
    size = (field.arraysize or "1").strip()
    fixed = None if size.endswith("*") else int(size) if size.isdigit() else 1

    def enc(v):
        if v is None:
            s = ""
        else:
            s = text(v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
        # UTF-16 for unicodeChar (VOTable 1.5; UCS-2 where nothing lies outside the BMP), else ASCII
        data = s.encode("utf-16-be", "surrogatepass") if wide else s.encode("ascii", "replace")
        unit = 2 if wide else 1
        if fixed is not None:  # exactly 'fixed' characters, padded with NULs
            return data[:fixed * unit].ljust(fixed * unit, b"\0")
        return struct.pack(">I", len(data) // unit) + data
    return enc


def _is_null(field: VOField, v) -> bool:
    if v is None:
        return True
    if field.datatype in ("float", "double"):
        return isinstance(v, (str, bytes)) or (isinstance(v, float) and math.isnan(v))
    if field.datatype in _NULL_INT:
        return isinstance(v, (str, bytes)) or (isinstance(v, float) and not math.isfinite(v))
    return False


def binary_stream(fields: list[VOField], rows, *, binary2: bool) -> bytes:
    """The raw bytes of a BINARY (or BINARY2, with its per-row null flags) stream."""
    encoders = [_encoder(f) for f in fields]
    nflag = (len(fields) + 7) // 8
    out = bytearray()
    for row in rows:
        if binary2:
            flags = bytearray(nflag)
            for i, (f, v) in enumerate(zip(fields, row)):
                if _is_null(f, v):
                    flags[i // 8] |= 0x80 >> (i % 8)
            out += flags
        for enc, v in zip(encoders, row):
            out += enc(v)
    return bytes(out)


def _with_null(xml: str, null: int) -> str:
    """A FIELD element with ``<VALUES null=...>`` (after its DESCRIPTION, as the schema orders them)."""
    values = f'<VALUES null="{null}"/>'
    if xml.endswith("/>\n"):
        return xml[:-3] + f">{values}</FIELD>\n"
    return xml.replace("</FIELD>", f"{values}</FIELD>")


def results_binary(fields: list[VOField], rows, *, binary2: bool, overflow: bool | str = False,
                   description: str = "", services=()) -> bytes:
    return b"".join(iter_results_binary(fields, rows, binary2=binary2, overflow=overflow, description=description,
                                        services=services))


def iter_results_binary(fields: list[VOField], rows, *, binary2: bool, overflow: bool | str = False,
                        description: str = "", services=(), chunk_rows: int = 2000, annotations=()):
    """:func:`results_binary` in pieces of about ``chunk_rows`` rows (the base64 text is
    the same as written whole: pieces are cut at multiples of 57 bytes, one line)."""
    tag = "BINARY2" if binary2 else "BINARY"
    ids = _field_ids(fields)
    out = [HEADER, '<RESOURCE type="results">\n']
    if description:
        out.append(f"<DESCRIPTION>{escape(text(description))}</DESCRIPTION>\n")
    out.append(_info("QUERY_STATUS", "OK"))
    out += [a.xml({f.name: fid for f, fid in reversed(list(zip(fields, ids)))}) for a in annotations]
    out.append("<TABLE>\n")
    for f, fid in zip(fields, ids):
        xml = _field_xml(f, fid)
        out.append(_with_null(xml, _NULL_INT[f.datatype]) if not binary2 and f.datatype in _NULL_INT else xml)
    out.append(f"<DATA><{tag}><STREAM encoding=\"base64\">\n")
    pending = b""
    rows = list(rows) if not isinstance(rows, list) else rows
    for start in range(0, len(rows), chunk_rows):
        pending += binary_stream(fields, rows[start:start + chunk_rows], binary2=binary2)
        cut = len(pending) - len(pending) % 57
        out.append(base64.encodebytes(pending[:cut]).decode("ascii"))
        pending = pending[cut:]
        yield "".join(out).encode("utf-8")
        out = []
    out.append(base64.encodebytes(pending).decode("ascii") if pending else "")
    out.append(f"</STREAM></{tag}></DATA>\n</TABLE>\n")
    if overflow:
        out.append(_info("QUERY_STATUS", "OVERFLOW", overflow if isinstance(overflow, str) else None))
    out.append("</RESOURCE>\n")
    by_name = {f.name: fid for f, fid in reversed(list(zip(fields, ids)))}
    out += [service.xml(by_name) for service in services]
    out.append("</VOTABLE>\n")
    yield "".join(out).encode("utf-8")


# --- the others ---------------------------------------------------------------------------------


def _plain(v):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def results_tsv(fields: list[VOField], rows) -> bytes:
    """Tab-separated values with a header line; tabs and line breaks inside values become spaces."""
    def cell(v):
        v = _plain(v)
        return "" if v is None else " ".join(str(v).replace("\t", " ").splitlines())
    lines = ["\t".join(cell(f.name) for f in fields)]
    lines += ["\t".join(cell(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def results_json(fields: list[VOField], rows, *, overflow: bool = False) -> bytes:
    """``{"metadata": [column descriptions], "data": [[values]], "overflow": bool}``."""
    meta = [{k: v for k, v in (("name", f.name), ("datatype", f.datatype), ("arraysize", f.arraysize),
                               ("unit", f.unit), ("ucd", f.ucd), ("utype", f.utype), ("xtype", f.xtype),
                               ("description", f.description)) if v} for f in fields]
    return json.dumps({"metadata": meta, "data": [[_plain(v) for v in row] for row in rows],
                       "overflow": overflow}, allow_nan=False).encode("utf-8")


def results_html(fields: list[VOField], rows, *, description: str = "", overflow: bool = False) -> bytes:
    """A self-contained HTML page with the table; every name and value is escaped."""
    head = "".join(f"<th title=\"{html_escape(f.description or '')}\">{html_escape(f.name)}"
                   + (f" [{html_escape(f.unit)}]" if f.unit else "") + "</th>" for f in fields)
    body = "\n".join("<tr>" + "".join(f"<td>{'' if _plain(v) is None else html_escape(str(_plain(v)))}</td>"
                                      for v in row) + "</tr>" for row in rows)
    note = "<p>More rows matched than this answer holds (overflow).</p>" if overflow else ""
    title = html_escape(description or "query result")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>"
            f"<h1>{title}</h1>{note}<table border=\"1\"><thead><tr>{head}</tr></thead><tbody>\n{body}\n"
            "</tbody></table></body></html>\n").encode("utf-8")


def results_fits(fields: list[VOField], rows) -> bytes:
    """A FITS file with the result as a binary-table extension (units and UCDs kept as TUNIT/TUCD)."""
    import io

    import numpy as np
    from astropy.table import MaskedColumn, Table

    table = Table()
    columns = list(zip(*rows)) if rows else [() for _ in fields]
    used = set()
    for f, values in zip(fields, columns):
        name = f.name
        n = 2
        while name.lower() in used:
            name, n = f"{f.name}_{n}", n + 1
        used.add(name.lower())
        vals = [_plain(v) for v in values]
        mask = [v is None for v in vals]
        if f.datatype in ("float", "double"):
            data = np.array([math.nan if v is None else float(v) for v in vals], dtype=float)
        elif f.datatype in _STRUCT or f.datatype == "boolean":
            data = np.array([0 if v is None else int(v) for v in vals], dtype=np.int64)
        else:
            # FITS strings are ASCII: other characters become '?'
            data = np.array(["" if v is None else str(v).encode("ascii", "replace").decode() for v in vals],
                            dtype=str)
        table[name] = MaskedColumn(data, mask=mask, unit=f.unit or None, description=f.description or None)
    buf = io.BytesIO()
    table.write(buf, format="fits")
    return buf.getvalue()


def render(fmt: OutputFormat, fields: list[VOField], rows, *, overflow: bool | str = False, description: str = "",
           services=(), annotations=()) -> bytes:
    """The bytes of a result in ``fmt``."""
    return b"".join(iter_render(fmt, fields, rows, overflow=overflow, description=description, services=services,
                                annotations=annotations))


def iter_render(fmt: OutputFormat, fields: list[VOField], rows, *, overflow: bool | str = False,
                description: str = "", services=(), annotations=()):
    """:func:`render` in pieces: VOTables are written a few thousand rows at a time, so a
    large answer is sent while it is written; the other formats come whole."""
    rows = list(rows)
    if fmt.key == "votable/td":
        yield from iter_results_votable(fields, rows, overflow=overflow, description=description, services=services,
                                        annotations=annotations)
        return
    if fmt.key in ("votable/b2", "votable/b"):
        yield from iter_results_binary(fields, rows, binary2=fmt.key == "votable/b2", overflow=overflow,
                                       description=description, services=services, annotations=annotations)
        return
    yield _render_whole(fmt, fields, rows, overflow=bool(overflow), description=description)


def _render_whole(fmt: OutputFormat, fields: list[VOField], rows, *, overflow: bool, description: str) -> bytes:
    if fmt.key == "csv":
        return results_csv(fields, rows)
    if fmt.key == "tsv":
        return results_tsv(fields, rows)
    if fmt.key == "json":
        return results_json(fields, rows, overflow=overflow)
    if fmt.key == "html":
        return results_html(fields, rows, description=description, overflow=overflow)
    return results_fits(fields, rows)


def capabilities_xml() -> str:
    """TAPRegExt ``outputFormat`` elements for every format."""
    out = []
    for f in FORMATS:
        ivo = f' ivo-id="{f.ivo_id}"' if f.ivo_id else ""
        aliases = "".join(f"<alias>{escape(a)}</alias>" for a in (f.key, *f.aliases) if "/" in a or a.isalnum())
        out.append(f"<outputFormat{ivo}><mime>{escape(f.mime)}</mime>{aliases}</outputFormat>")
    return "".join(out)
