"""VOTable 1.4 and CSV documents for the VO endpoints (TAP, Simple Cone Search).

Results are written as TABLEDATA by this module rather than through
``astropy.io.votable``'s writer, which costs about 130 us per row and 4 ms per document
(a 100-row cone answer: 15 ms here against 0.3 ms); the output is read back with
``astropy.io.votable`` (and by pyvo and STILTS) in the tests. Every document is
well-formed XML: values are escaped and characters XML 1.0 forbids are dropped.

- :class:`VOField`: a column (name, datatype, arraysize, unit, UCD, utype, xtype, description);
- :func:`results_votable`: a DALI results document, ``QUERY_STATUS`` ``OK`` before the
  table and ``OVERFLOW`` after it when the row cap cut the result (:func:`iter_results_votable`:
  the same in pieces, for streaming);
- :func:`error_votable`: a DALI error document (``QUERY_STATUS`` ``ERROR`` with the message),
  optionally with the ``<INFO name="Error">`` that Simple Cone Search 1.03 requires;
- :func:`results_csv`: RFC 4180 CSV with a header line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape, quoteattr

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          f'<VOTABLE version="1.4" xmlns="{VOTABLE_NS}" '
          'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n')
VOTABLE_MIME = "application/x-votable+xml"
CSV_MIME = "text/csv"

# characters XML 1.0 does not allow anywhere (control characters other than tab, LF, CR)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INT_TYPES = ("short", "int", "long", "unsignedByte")
_FLOAT_TYPES = ("float", "double")


@dataclass(frozen=True)
class VOField:
    """One column of a VOTable (the same attributes TAP_SCHEMA.columns declares)."""

    name: str
    datatype: str = "char"
    arraysize: str | None = None
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    xtype: str = ""
    description: str = ""

    def renamed(self, name: str) -> "VOField":
        return replace(self, name=name)


def text(value) -> str:
    """A string safe inside XML 1.0 (forbidden control characters removed)."""
    return _XML_ILLEGAL.sub("", str(value))


def _attr(value) -> str:
    return quoteattr(text(value))


def _field_xml(field: VOField, fid: str) -> str:
    attrs = [f"name={_attr(field.name)}", f"ID={_attr(fid)}", f"datatype={_attr(field.datatype)}"]
    if field.arraysize:
        attrs.append(f"arraysize={_attr(field.arraysize)}")
    for key in ("unit", "ucd", "utype", "xtype"):
        value = getattr(field, key)
        if value:
            attrs.append(f"{key}={_attr(value)}")
    head = "<FIELD " + " ".join(attrs)
    if field.description:
        return f"{head}><DESCRIPTION>{escape(text(field.description))}</DESCRIPTION></FIELD>\n"
    return head + "/>\n"


def _cell_writer(field: VOField):
    """A function turning one Python value into the text of a TD (empty for null)."""
    if field.datatype in _INT_TYPES or field.datatype == "boolean":
        def cell(v):
            if v is None or isinstance(v, str) or (isinstance(v, float) and not math.isfinite(v)):
                return ""
            return str(int(v))
    elif field.datatype in _FLOAT_TYPES:
        def cell(v):
            if v is None or isinstance(v, (str, bytes)):
                return ""
            v = float(v)
            return repr(v) if math.isfinite(v) else ("NaN" if math.isnan(v) else ("+Inf" if v > 0 else "-Inf"))
    else:
        ascii_only = field.datatype == "char"

        def cell(v):
            if v is None:
                return ""
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            v = str(v)
            if ascii_only and not v.isascii():  # char is 7-bit; unicodeChar holds the rest
                v = v.encode("ascii", "replace").decode("ascii")
            return escape(text(v))
    return cell


def _field_ids(fields: list[VOField]) -> list[str]:
    """Unique XML IDs: the names made into NCNames, numbered when they repeat."""
    out, seen = [], set()
    for i, f in enumerate(fields):
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", f.name) or f"col{i}"
        if not re.match(r"[A-Za-z_]", base):
            base = "c_" + base
        fid, n = base, 1
        while fid in seen:
            n += 1
            fid = f"{base}_{n}"
        seen.add(fid)
        out.append(fid)
    return out


def _info(name: str, value: str, content: str = "") -> str:
    if content:
        return f"<INFO name={_attr(name)} value={_attr(value)}>{escape(text(content))}</INFO>\n"
    return f"<INFO name={_attr(name)} value={_attr(value)}/>\n"


def results_votable(fields: list[VOField], rows, *, overflow: bool | str = False, infos: dict | None = None,
                    description: str = "", services=()) -> bytes:
    """A DALI results document: ``rows`` are sequences of Python values in field order.
    ``services`` are service descriptors (objects with ``xml(field_ids)``, given the XML ID
    of each column by name), written after the results."""
    return b"".join(iter_results_votable(fields, rows, overflow=overflow, infos=infos, description=description,
                                         services=services))


def iter_results_votable(fields: list[VOField], rows, *, overflow: bool | str = False, infos: dict | None = None,
                         description: str = "", chunk_rows: int = 2000, services=(), annotations=()):
    """:func:`results_votable` in pieces of about ``chunk_rows`` rows, so a large answer
    can be sent while it is written instead of being held whole (and twice) in memory.
    ``annotations`` (objects with ``xml(field_ids)``, e.g. a MIVOT block) are written in
    the results resource before the table."""
    out = [HEADER, '<RESOURCE type="results">\n']
    if description:
        out.append(f"<DESCRIPTION>{escape(text(description))}</DESCRIPTION>\n")
    out.append(_info("QUERY_STATUS", "OK"))
    for key, value in (infos or {}).items():
        out.append(_info(key, str(value)))
    ids = _field_ids(fields)
    out += [a.xml({f.name: fid for f, fid in reversed(list(zip(fields, ids)))}) for a in annotations]
    out.append("<TABLE>\n")
    out += [_field_xml(f, fid) for f, fid in zip(fields, ids)]
    out.append("<DATA><TABLEDATA>\n")
    cells = [_cell_writer(f) for f in fields]
    for i, row in enumerate(rows):
        out.append("<TR>" + "".join(f"<TD>{c(v)}</TD>" for c, v in zip(cells, row)) + "</TR>\n")
        if (i + 1) % chunk_rows == 0:
            yield "".join(out).encode("utf-8")
            out = []
    out.append("</TABLEDATA></DATA>\n</TABLE>\n")
    if overflow:  # True, or a message saying which limit cut the rows
        out.append(_info("QUERY_STATUS", "OVERFLOW", overflow if isinstance(overflow, str) else None))
    out.append("</RESOURCE>\n")
    by_name = {f.name: fid for f, fid in reversed(list(zip(fields, ids)))}
    out += [service.xml(by_name) for service in services]
    out.append("</VOTABLE>\n")
    yield "".join(out).encode("utf-8")


def error_votable(message: str, *, scs: bool = False) -> bytes:
    """A DALI error document; with ``scs`` also SCS 1.03's ``<INFO name="Error">``."""
    out = [HEADER]
    if scs:
        out.append(_info("Error", message))
    out.append('<RESOURCE type="results">\n')
    out.append(_info("QUERY_STATUS", "ERROR", message))
    out.append("</RESOURCE>\n</VOTABLE>\n")
    return "".join(out).encode("utf-8")


def results_csv(fields: list[VOField], rows) -> bytes:
    """CSV with a header line; nulls are empty cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([f.name for f in fields])
    for row in rows:
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row])
    return buf.getvalue().encode("utf-8")
