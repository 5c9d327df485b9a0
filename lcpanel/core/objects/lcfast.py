"""Fast light-curve writers: CSV, CSV.gz, FITS and VOTable written straight from numpy
arrays to bytes, for bulk exports (thousands of light curves per product).

The metadata (units, descriptions, time systems, roles, flag meanings, header keywords,
COMMENT notes) comes from the same functions of :mod:`lcpanel.core.objects.lcexport` that the
astropy-based writers there use, so both say the same things; only the writing of the
header cards, the XML and the data rows is done here, without building astropy Tables,
HDUs or VOTable trees per light curve. A light curve with a column dtype these writers
do not handle (object, unsigned ints but uint8, multi-dimensional columns, non-ASCII
strings) is written by the astropy path instead (``None`` from a writer means "use it").

The CSV, ECSV and FITS writers produce the same bytes as the astropy path; the VOTable
writer the same document too (TIMESYS, INFOs, FIELDs with ref/ucd/unit/description), its
BINARY2 stream made from the columns at once. ``tests/test_lcfast.py`` compares the
bytes and reads both paths' output back with astropy.
"""

from __future__ import annotations

import base64
import re
import textwrap
import warnings
from dataclasses import replace
from functools import lru_cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from deflate import gzip_compress

from .lcformats import LightCurve, csv_header

#: libdeflate gzip level of the csv.gz format: 1 takes a tenth of the CPU time of zlib's 9
#: for files ~15 % larger (bulk exports are bound by it otherwise); the gzip header has no
#: time stamp, so identical light curves give identical files (not ISA-L: see
#: products.ZIP_LEVEL)
CSV_GZ_LEVEL = 1
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


# ---------------------------------------------------------------------------
# text cells
# ---------------------------------------------------------------------------

#: the magnitudes (per float size) where the shortest round-trip text of a value, as
#: orjson (float64) or Arrow (float32) writes it, is Python's ``repr`` (float64) or
#: numpy's ``str`` (float32) but for the ``.0`` of integral values, which Arrow leaves out:
#: Python writes smaller and larger values in exponent notation and the others do not
#: always (1.5e-05 is 0.000015, 12345678901.5 is 1.23456789015e+10), so those (rare in
#: light curves) are written by Python
_FAST_RANGE = {8: (1.1e-4, 0.9e10), 4: (1.1e-4, 0.9e6)}


def _orjson_text(col: np.ndarray) -> pa.StringArray:
    """The shortest round-trip text of every value of a float64 column, written by orjson
    into one buffer (``[1.5,2.0,null]``) and cut at its commas into an Arrow string array
    (0.16 against 0.26 ms for Arrow's cast of 3,500 values). Non-finite values read ``null``."""
    return _split(orjson.dumps(np.ascontiguousarray(col), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1], ",", len(col))


def _split(raw: bytes, sep: str, n: int) -> pa.StringArray:
    """The ``n`` items of ``raw`` separated by the one-character ``sep`` (found in no
    item), as an Arrow string array: separator offsets from numpy, the items' bytes from
    one ``bytes.replace``."""
    seps = np.flatnonzero(np.frombuffer(raw, np.uint8) == ord(sep))
    data = raw.replace(sep.encode(), b"")
    offsets = np.empty(n + 1, np.int32)
    offsets[0] = 0
    offsets[1:n] = seps - np.arange(n - 1)
    offsets[n] = len(data)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _orjson_writes_repr() -> bool:
    """Whether this orjson writes ``repr``'s text for values across the fast range (its
    notation is orjson's choice, not a standard: a release writing otherwise makes the
    writers fall back to Arrow instead of writing different files)."""
    low, high = _FAST_RANGE[8]
    probe = np.array([0.0, -0.0, 1.0, -12.0, 0.5, 0.1, 12.25, 2455000.0, 2455000.123456789, 123456789.0,
                      low, low * 1.000001, 0.00012345678901234, high * 0.999999, 8999999999.0, 1 / 3, 2 / 3,
                      1e-4 * 1.5, 1e9 + 0.5, 5e-3, 99999.99999, 1e5, 1e6 + 1e-7])
    probe = np.concatenate([probe, -probe])
    return _orjson_text(probe).to_pylist() == [repr(v) for v in probe.tolist()]


_ORJSON_REPR = _orjson_writes_repr()


def _float_text(col: np.ndarray, nan: str) -> pa.StringArray:
    """Shortest round-trip text of a float column, as ``repr`` (float64) or numpy's
    ``str`` (float32) writes each value; ``nan`` for non-finite values.

    orjson (float64) or Arrow (float32) format the values in compiled code, a fraction of
    the cost of ``repr`` per value; ``tests/test_lcfast.py`` checks the equality on values
    of every magnitude."""
    finite = np.isfinite(col)
    size = np.abs(col)
    low, high = _FAST_RANGE[col.dtype.itemsize]
    with np.errstate(invalid="ignore"):
        fast = ((size >= low) & (size < high)) | (size == 0)
    by_orjson = col.dtype == np.float64 and _ORJSON_REPR
    # integral values end in ".0" from orjson, as repr writes them, and bare from Arrow
    if by_orjson:
        text = _orjson_text(col)
    else:
        text = pc.cast(pa.array(col), pa.string())
    if not by_orjson:
        with np.errstate(invalid="ignore"):
            whole = fast & (col == np.trunc(col))
        if whole.any():
            text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    python = finite & ~fast
    if python.any():
        write = str if col.dtype == np.float32 else repr
        values = [write(value) for value in (col[python].tolist() if col.dtype != np.float32 else col[python])]
        text = pc.replace_with_mask(text, pa.array(python), pa.array(values, pa.string()))
    if not finite.all():
        text = pc.if_else(pa.array(finite), text, nan)
    return text


def _text(col: np.ndarray, nan: str) -> pa.StringArray | None:
    """The column's values as text (floats: :func:`_float_text`; ints and bools as
    ``str`` writes them); None for dtypes not handled."""
    kind = col.dtype.kind
    if kind == "f":
        return _float_text(col if col.dtype.itemsize in (4, 8) else col.astype(np.float64), nan)
    if kind in "iu":
        return pc.cast(pa.array(col), pa.string())
    if kind == "b":
        return pc.if_else(pa.array(col), "True", "False")
    if kind == "U":
        return _unicode_text(col)
    return None


def _unicode_text(col: np.ndarray) -> pa.StringArray:
    """A unicode column as an Arrow string array, the values as ``tolist`` gives them (no
    trailing NULs): for ASCII, made from the code points at once (Python strings cost
    0.2 us each: 2 ms for each text column of a HATNet light curve)."""
    codes = _codes(col)
    if codes.size == 0 or codes.max() >= 128:
        return pa.array(col.tolist(), pa.string())
    width = codes.shape[1]
    filled = codes != 0
    lengths = np.where(filled.any(axis=1), width - np.argmax(filled[:, ::-1], axis=1), 0)
    offsets = np.zeros(len(col) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = codes.astype(np.uint8)[np.arange(width) < lengths[:, None]]
    return pa.StringArray.from_buffers(len(col), pa.py_buffer(offsets), pa.py_buffer(data))


def _texts(columns: list[np.ndarray], nan: str) -> list[pa.StringArray]:
    """:func:`_text` of every column (of the kinds :func:`_plain` admits); the float
    columns of one dtype are formatted in one go (one Arrow call for all of them rather
    than one per column)."""
    out: list = [None] * len(columns)
    for dtype in (np.float64, np.float32):
        same = [i for i, c in enumerate(columns) if c.dtype == dtype]
        if len(same) > 1:
            text = _float_text(np.concatenate([columns[i] for i in same]), nan)
            start = 0
            for i in same:
                out[i] = text.slice(start, len(columns[i]))
                start += len(columns[i])
    return [text if text is not None else _text(col, nan) for text, col in zip(out, columns)]


def _rows(columns: list[pa.StringArray], between: str) -> str:
    """Every row's cells joined by ``between``, each row ending in a newline."""
    parts: list = []
    for col in columns:
        parts += [col, between]
    parts[-1] = "\n"
    lines = pc.binary_join_element_wise(*parts, "")
    whole = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
    return pc.binary_join(whole, "")[0].as_py()


def _numeric(col: np.ndarray) -> bool:
    """Whether :func:`_numeric_rows` takes the column's dtype: float64 or an integer."""
    return col.dtype == np.float64 or col.dtype.kind in "iu"


def _in_band(col: np.ndarray) -> bool:
    """Whether every value of a :func:`_numeric` column is one :func:`_numeric_rows`
    writes (NaN, zero, or a magnitude in the band where orjson writes ``repr``'s text)."""
    size = np.abs(col.astype(np.float64, copy=False))
    low, high = _FAST_RANGE[8]
    with np.errstate(invalid="ignore"):
        return bool((((size >= low) & (size < high)) | (size == 0) | np.isnan(size)).all())


def _numeric_rows(columns: list[np.ndarray], nan: str, between: str) -> bytes | None:
    """The rows of :func:`_rows` over :func:`_texts`, written in one orjson pass over the
    whole table when every column is float64 or integer (a light curve's times,
    magnitudes, errors and flags). orjson's ``[a,b,c,d]`` becomes ``a,b\\nc,d\\n`` by
    setting each row's last comma to a newline (the others to the one-character
    ``between``); the ``.0`` of integer cells and the rest of orjson's ``null`` once
    ``nan`` (at most four characters) is written over it are cut out.

    None when a column is of another dtype, holds an infinity, a float outside the band
    where orjson writes ``repr``'s text, or an integer float64 cannot hold: the
    column-by-column path writes those."""
    if not _ORJSON_REPR or not columns or len(nan) > 4 or len(between) != 1:
        return None
    if not all(_numeric(c) for c in columns):
        return None
    table = np.column_stack(columns).astype(np.float64, copy=False)
    low, high = _FAST_RANGE[8]
    size = np.abs(table)
    with np.errstate(invalid="ignore"):
        fast = ((size >= low) & (size < high)) | (size == 0)
    missing = np.isnan(table)
    if not (fast | missing).all():
        return None
    ints = np.array([c.dtype.kind in "iu" for c in columns])
    # one cell after another, a,b,c,d: the ',' ending each row's last cell becomes the newline
    raw = np.frombuffer(orjson.dumps(table.ravel(), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1], np.uint8).copy()
    commas = np.flatnonzero(raw == ord(","))
    ends = np.append(commas, len(raw)).reshape(table.shape)
    if between != ",":
        raw[commas] = ord(between)
    raw[ends[:-1, -1]] = ord("\n")
    # bytes to cut are set to NUL (never in orjson's numbers) and dropped at the end
    cut = ends[:, ints]
    raw[cut - 1] = raw[cut - 2] = 0
    if missing.any():  # "null" overwritten by nan, the rest of it cut
        cut = ends[missing]
        for back in range(4):
            raw[cut - 4 + back] = ord(nan[back]) if back < len(nan) else 0
    return raw.tobytes().replace(b"\0", b"") + b"\n"


def _body(columns: list[np.ndarray], nan: str, between: str) -> bytes:
    """Every row of the table as text, cells joined by ``between``: :func:`_numeric_rows`
    when it can, else :func:`_rows` over :func:`_pieces`."""
    rows = _numeric_rows(columns, nan, between)
    if rows is None:
        rows = _rows(_pieces(columns, nan, between), between).encode("utf-8")
    return rows


def _pieces(columns: list[np.ndarray], nan: str, between: str) -> list[pa.StringArray]:
    """Each row's text column by column (:func:`_texts`), but every run of two or more
    numeric columns between text columns written together by :func:`_numeric_rows` as
    one piece (``a,b,c``): fewer, longer cells for Arrow to join. A numeric column with a
    value outside :func:`_in_band` ends a run rather than sending the whole run to the
    slower column-by-column path."""
    out: list = []
    plain: list[int] = []
    run: list[np.ndarray] = []

    def close_run():
        text = _numeric_rows(run, nan, between) if len(run) > 1 else None
        if text is None:
            plain.extend(range(len(out), len(out) + len(run)))
            out.extend(run)
        else:
            out.append(_split(text[:-1], "\n", len(run[0])))
        run.clear()

    for col in columns:
        if _numeric(col) and _in_band(col):
            run.append(col)
            continue
        close_run()
        plain.append(len(out))
        out.append(col)
    close_run()
    for i, text in zip(plain, _texts([out[i] for i in plain], nan)):
        out[i] = text
    return out


def _codes(arr: np.ndarray) -> np.ndarray:
    """A unicode column's code points, one row per value (NUL-padded to the column's width)."""
    return np.ascontiguousarray(arr).view(np.uint32).reshape(len(arr), arr.dtype.itemsize // 4)


def _holds_any(arr: np.ndarray, chars: str) -> bool:
    """Whether any value of a unicode column holds any of ``chars`` (not NUL)."""
    return bool(np.isin(_codes(arr), [ord(c) for c in chars]).any())


def _plain(lc: LightCurve) -> dict[str, np.ndarray] | None:
    """The columns as native-order 1-d arrays, or None when one has an unhandled dtype."""
    out = {}
    for name, values in lc.columns.items():
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.dtype.kind not in "fiubU":
            return None
        if arr.dtype.kind == "u" and arr.dtype.itemsize != 1:
            return None
        if arr.dtype.kind == "U" and (arr.dtype.itemsize == 0 or not (_codes(arr) < 128).all()):
            return None
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        out[name] = arr
    return out


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------

def fast_csv(lc: LightCurve) -> bytes | None:
    """The bytes of :func:`lcexport.export_csv`: its header (:func:`csv_header`, as
    there) and the rows joined directly."""
    from .lcexport import _csv_lightcurve

    cols = _plain(lc)
    if cols is None or len(cols) < 2:  # csv quotes a lone empty field: leave it to the csv module
        return None
    for arr in cols.values():
        if arr.dtype.kind == "U" and _holds_any(arr, ',"\r\n'):
            return None
    head = csv_header(_csv_lightcurve(lc))
    if not len(lc):
        return head.encode("utf-8")
    return head.encode("utf-8") + _body(list(cols.values()), "", ",")


def gzipped(data: bytes) -> bytes:
    """``data`` as the csv.gz format gzips it: libdeflate at :data:`CSV_GZ_LEVEL`, no time
    stamp."""
    return bytes(gzip_compress(data, CSV_GZ_LEVEL))


def fast_csv_gz(lc: LightCurve) -> bytes | None:
    data = fast_csv(lc)
    if data is None:
        from .lcexport import export_csv

        data = export_csv(lc)
    return gzipped(data)


def fast_ecsv(lc: LightCurve) -> bytes | None:
    """The bytes of :func:`lcexport.export_ecsv`: its header and column-name line
    (as astropy writes them for an empty copy of the light curve) and the rows joined
    directly, space-separated, floats as astropy writes them (``nan`` for NaN). The header
    is :func:`ecsvhead.ecsv_head`'s where it promises astropy's bytes."""
    from .ecsvhead import ecsv_head
    from .lcexport import export_ecsv

    cols = _plain(lc)
    if cols is None:
        return None
    for arr in cols.values():
        if arr.dtype.kind == "U" and (_holds_any(arr, ' "\'\t\r\n#,') or (_codes(arr)[:, 0] == 0).any()):
            return None  # astropy quotes these; leave them to it
        if arr.dtype.kind == "f" and np.isinf(arr).any():
            return None
    head = ecsv_head(lc) or export_ecsv(replace(lc, columns={k: np.asarray(v)[:0] for k, v in lc.columns.items()}))
    if not len(lc):
        return head
    return head + _body(list(cols.values()), "nan", " ")


# ---------------------------------------------------------------------------
# FITS
# ---------------------------------------------------------------------------

_TFORM = {"f8": "D", "f4": "E", "i8": "K", "i4": "J", "i2": "I", "u1": "B", "b1": "L"}


_PLAIN_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
#: keywords astropy writes otherwise (commentary, long strings) or refuses (END)
_SPECIAL_KEYWORDS = frozenset(("COMMENT", "HISTORY", "CONTINUE", "END"))


def _card(keyword: str, value, comment: str | None) -> bytes:
    """One header card's 80-byte image(s), as astropy writes it (CONTINUE cards included).
    A plain keyword with a bool, int, finite float or short string is formatted here, as
    astropy's ``Card`` does (each object's own values are new to any cache, and a ``Card``
    costs ~0.02 ms); any other card is astropy's, kept, so the ones every light curve of a
    collection has are made by it once."""
    image = _plain_card(keyword, value, comment)
    if image is not None:
        return image
    # a float is told apart by its text too: -0.0 and 0.0 are one key to a cache
    return _astropy_card(keyword, value, comment, repr(value) if type(value) is float else None)


def _plain_card(keyword: str, value, comment: str | None) -> bytes | None:
    """astropy's ``Card(keyword, value, comment).image`` (``card._format_image``), for the
    cases it formats in one card without a warning; None for the others."""
    frame = _frame(keyword, comment)
    if frame is None:
        return None
    kind = type(value)
    if kind is str:
        if not (value.isascii() and value.isprintable()):  # astropy's text: printable ASCII
            return None
        # astropy pads a string to 8 characters inside its quotes and 20 outside, an empty one not at all
        text = f"{"'{:8}'".format(value.replace("'", "''")):20}" if value else "''"
    elif kind is float:
        text = repr(value).replace("e", "E")
        if len(text) > 20 or text in ("nan", "inf", "-inf"):
            return None
        text = f"{text:>20}"
    elif kind is bool:
        text = f"{'T' if value else 'F':>20}"
    elif kind is int:
        text = f"{value:>20d}"
    else:
        return None
    image = frame[0] + text + frame[1]
    if len(image) > 80:
        if kind is str and len(text) > 70:  # astropy continues the string on CONTINUE cards
            return None
        image = image[:80]  # astropy cuts the comment (with a VerifyWarning)
    return f"{image:80}".encode("ascii")


@lru_cache(maxsize=4096)
def _frame(keyword: str, comment: str | None) -> tuple[str, str] | None:
    """What a plain card holds before and after its value (``KEYWORD = `` and `` / comment``),
    or None when astropy writes the card otherwise (commentary or not a plain keyword) or
    the comment is not printable ASCII."""
    if not _PLAIN_KEYWORD.fullmatch(keyword) or keyword in _SPECIAL_KEYWORDS:
        return None
    if comment and not (comment.isascii() and comment.isprintable()):
        return None
    # astropy tests the comment with trailing blanks stripped
    return f"{keyword:8}= ", (f" / {comment}" if comment and not comment.isspace() else "")


@lru_cache(maxsize=1024, typed=True)
def _astropy_card(keyword: str, value, comment: str | None, _text: str | None) -> bytes:
    from astropy.io import fits

    with warnings.catch_warnings():  # comments too long for the card are cut, as in lcexport
        warnings.simplefilter("ignore", category=fits.verify.VerifyWarning)
        card = fits.Card(keyword, value, comment) if comment is not None else fits.Card(keyword, value)
        return card.image.encode("ascii")


def _kept_card(keyword: str, value, comment: str | None) -> bytes:
    """:func:`_card`, kept: for the cards every light curve of a collection has (its columns',
    the fixed keywords), a look-up costs less than formatting."""
    return _kept_card_image(keyword, value, comment, repr(value) if type(value) is float else None)


@lru_cache(maxsize=8192, typed=True)
def _kept_card_image(keyword: str, value, comment: str | None, _text: str | None) -> bytes:
    return _card(keyword, value, comment)


def _comment(text: str) -> bytes:
    return _kept_card("COMMENT", text, None)


def _block(cards: list[bytes]) -> bytes:
    head = b"".join(cards) + b"END".ljust(80)
    return head + b" " * (-len(head) % 2880)


def fast_fits(lc: LightCurve) -> bytes | None:
    """The bytes of :func:`lcexport.export_fits`, header cards and big-endian rows
    written directly."""
    from .lcexport import (
        EXTNAME,
        _column_time_keywords,
        _column_unit_description,
        _fits_text,
        _time_info,
        _write_header_keywords,
    )

    cols = _plain(lc)
    if cols is None:
        return None
    forms, dtypes = [], []
    for name, arr in cols.items():
        if arr.dtype.kind == "U":
            width = arr.dtype.itemsize // 4
            forms.append(f"{width}A")
            dtypes.append((name, f"S{width}"))
        else:
            code = f"{arr.dtype.kind}{arr.dtype.itemsize}"
            if code not in _TFORM:
                return None
            forms.append(_TFORM[code])
            dtypes.append((name, "i1" if code == "b1" else (">" + code if arr.dtype.itemsize > 1 else code)))
    nrows = len(lc)
    rows = np.zeros(nrows, dtype=dtypes)
    for (name, arr), (_, dt) in zip(cols.items(), dtypes):
        if arr.dtype.kind == "b":
            rows[name] = np.where(arr, ord("T"), ord("F"))
        elif arr.dtype.kind == "U":
            rows[name] = _codes(arr).astype(np.uint8).view(f"S{arr.dtype.itemsize // 4}").ravel()
        else:
            rows[name] = arr
    rowlen = rows.dtype.itemsize

    cards = [_kept_card("XTENSION", "BINTABLE", "binary table extension"),
             _kept_card("BITPIX", 8, "array data type"), _kept_card("NAXIS", 2, "number of array dimensions"),
             _kept_card("NAXIS1", rowlen, "length of dimension 1"), _card("NAXIS2", nrows, "length of dimension 2"),
             _kept_card("PCOUNT", 0, "number of group parameters"), _kept_card("GCOUNT", 1, "number of groups"),
             _kept_card("TFIELDS", len(cols), "number of table fields")]
    descriptions = []
    for index, (name, form) in enumerate(zip(cols, forms), start=1):
        unit, description = _column_unit_description(lc, name)
        text = _fits_text(description) if description else None
        descriptions.append(text)
        cards.append(_kept_card(f"TTYPE{index}", name, text) if text else _kept_card(f"TTYPE{index}", name, None))
        cards.append(_kept_card(f"TFORM{index}", form, None))
        if unit:
            cards.append(_kept_card(f"TUNIT{index}", _fits_unit(unit), None))
    # after every column's TTYPE/TFORM/TUNIT, per column: TCTYP, TRPOS, TCOMM (astropy's order)
    time = _time_info(lc)
    for index, (name, text) in enumerate(zip(cols, descriptions), start=1):
        for prefix, value, comment in _column_time_keywords(lc, name, time):
            cards.append(_kept_card(f"{prefix}{index}", value, comment))
        if text:
            cards.append(_kept_card(f"TCOMM{index}", text, None))
    cards.append(_kept_card("EXTNAME", EXTNAME, "extension name"))
    _write_header_keywords(lc, lambda key, value, comment: cards.append(_card(key, value, comment)),
                           lambda text: cards.append(_comment(text)))

    primary = _block([_kept_card("SIMPLE", True, "conforms to FITS standard"),
                      _kept_card("BITPIX", 8, "array data type"), _kept_card("NAXIS", 0, "number of array dimensions"),
                      _kept_card("EXTEND", True, None),
                      _card("OBJECT", _fits_text(str(lc.objectid)), "object identifier"),
                      _comment(f"the light curve is in the binary table extension {EXTNAME}")])
    data = rows.tobytes()
    return primary + _block(cards) + data + b"\0" * (-len(data) % 2880)


@lru_cache(maxsize=256)
def _fits_unit(unit: str) -> str:
    from astropy import units as u

    return u.Unit(unit).to_string("fits")


# ---------------------------------------------------------------------------
# VOTable
# ---------------------------------------------------------------------------

_VODATATYPE = {"f8": "double", "f4": "float", "i8": "long", "i4": "int", "i2": "short", "u1": "unsignedByte",
               "b1": "boolean"}
_VOHEAD = ('<?xml version="1.0" encoding="utf-8"?>\n'
           '<!-- Produced with lcpanel -->\n'
           '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://www.ivoa.net/xml/VOTable/v1.3 '
           'http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd">\n')


def _attrs(**attrs) -> str:
    from astropy.utils.xml._iterparser import escape_xml

    return "".join(f' {k}="{escape_xml(_clean(v))}"' for k, v in sorted(attrs.items()) if v is not None)


def _vo_id(name: str) -> str:
    from astropy.io.votable.xmlutil import fix_id

    return fix_id(name)


def _clean(text) -> str:
    """XML 1.0 allows no control characters but tab, newline and carriage return."""
    text = str(text)
    return text if text.isprintable() else _CONTROL.sub(" ", text)


#: the width astropy's VOTable writer wraps element text at (``textwrap``'s default)
_WRAP = 70


def _xml_text(text, indent: str | None = None) -> str:
    """Element text escaped as astropy writes it (wrapped at 70 columns with ``indent``)."""
    from astropy.utils.xml._iterparser import escape_xml_cdata

    text = _clean(text)
    if indent is not None:
        # one line (no run of spaces, no other white space, short enough) is not rewrapped
        one_line = text and len(indent) + len(text) <= _WRAP and text == " ".join(text.split())
        text = indent + text if one_line else textwrap.fill(text, _WRAP, initial_indent=indent,
                                                            subsequent_indent=indent)
    return escape_xml_cdata(text)


def fast_votable(lc: LightCurve) -> bytes | None:
    """The document of :func:`lcexport.export_votable` (same TIMESYS, INFOs, FIELDs), its
    BINARY2 stream made by :func:`_binary2` from the columns at once."""
    from .formatinfo import ROLE_UCD
    from .lcexport import (
        IVOA_REFPOS,
        TIMESYS_ID,
        _column_time,
        _column_unit_description,
        _header_cards,
        _info_value,
        _time_info,
        _timeorigin,
    )

    cols = _plain(lc)
    if cols is None:
        return None
    fields = []
    time = _time_info(lc)
    systems: dict[tuple, str] = {}
    column_system = {}
    timesys_xml = []
    for name in [time["column"]] + [n for n in lc.time_columns if n != time["column"]]:
        this = time if name is None or name == time["column"] else _column_time(lc, name)
        key = (this["scale"], this["refpos"], this["form"], this["origin"])
        if key not in systems:
            systems[key] = TIMESYS_ID if not systems else f"{TIMESYS_ID}-{len(systems) + 1}"
            origin = _timeorigin(this)
            timesys_xml.append(_timesys_xml(
                systems[key], IVOA_REFPOS.get(this["refpos"], "UNKNOWN"),
                None if origin is None else (origin if isinstance(origin, str) else repr(float(origin))),
                this["scale"] if this["scale"] and this["scale"] != "LOCAL" else "UNKNOWN"))
        column_system[name] = systems[key]
    for name, arr in cols.items():
        code = f"{arr.dtype.kind}{arr.dtype.itemsize}"
        if arr.dtype.kind == "U":
            width = arr.dtype.itemsize // 4
            datatype, arraysize = "unicodeChar", ("*" if width == 1 else str(width))
        elif code in _VODATATYPE:
            datatype, arraysize = _VODATATYPE[code], None
        else:
            return None
        unit, description = _column_unit_description(lc, name)
        role = (lc.column_info.get(name) or {}).get("role")
        fields.append((name, datatype, arraysize, unit, description,
                       column_system.get(name, TIMESYS_ID) if name in lc.time_columns else None,
                       ROLE_UCD.get(role)))

    out = [_VOHEAD, *timesys_xml, ' <RESOURCE type="results">\n']
    cards, notes = _header_cards(lc)
    out += [_info_xml(key, _info_value(value), comment) for key, value, comment in cards]
    out += [_info_xml("COMMENT", note, "") for note in notes]
    out.append('  <TABLE name="lightcurve">\n   <DESCRIPTION>\n'
               f"{_xml_text(f'light curve of {lc.objectid}', '    ')}\n   </DESCRIPTION>\n")
    out += [_field_xml(*field) for field in fields]
    end = b"  </TABLE>\n </RESOURCE>\n</VOTABLE>\n"
    if not len(lc):  # astropy writes no DATA for a table without rows
        return "".join(out).encode("utf-8") + end
    out.append('   <DATA>\n    <BINARY2>\n     <STREAM encoding="base64">\n')
    return b"".join(("".join(out).encode("utf-8"), base64.b64encode(_binary2(list(cols.values()))),
                     b"     </STREAM>\n    </BINARY2>\n   </DATA>\n", end))


def _binary2(columns: list[np.ndarray]) -> np.ndarray:
    """The rows of the columns (of the kinds :func:`_plain` admits) as a VOTable BINARY2
    stream, as astropy writes it for the FIELDs :func:`fast_votable` declares: per row the
    null flags (all clear: a NaN is a value, as astropy writes it), then each cell
    big-endian: numbers as stored, booleans ``T``/``F``, strings UTF-16 (ASCII here),
    one-character columns (arraysize ``*``) as a count and the characters, wider ones
    NUL-padded to their width. Returned as contiguous bytes (``uint8``): one byte matrix, a
    row per row, each column written into its cells; the bytes of empty one-character
    cells are dropped at the end."""
    n, flags = len(columns[0]), (len(columns) + 7) // 8
    if all(arr.dtype.kind in "fiu" for arr in columns):  # numbers only: one record per row
        rows = np.zeros(n, [("", "u1", (flags,))]
                        + [(f"c{i}", arr.dtype.newbyteorder(">")) for i, arr in enumerate(columns)])
        for i, arr in enumerate(columns):
            rows[f"c{i}"] = arr
        return rows.view(np.uint8)
    widths = [_cell_width(arr) for arr in columns]
    matrix = np.zeros((n, flags + sum(widths)), np.uint8)
    drop = []
    at = flags
    for arr, width in zip(columns, widths):
        cells = matrix[:, at:at + width]
        kind = arr.dtype.kind
        if kind == "b":
            cells[:, 0] = np.where(arr, ord("T"), ord("F"))
        elif kind == "U":
            codes = _codes(arr)  # ASCII: each character's UTF-16 is a zero byte, then its code
            if codes.shape[1] == 1:
                full = codes[:, 0] != 0
                cells[:, 3] = full  # the count, a big-endian 32-bit 0 or 1
                cells[:, 5] = codes[:, 0]
                drop.append((at + 4, ~full))
            else:
                cells[:, 1::2] = codes
        else:
            cells.view(arr.dtype.newbyteorder(">"))[:, 0] = arr
        at += width
    if not drop:
        return matrix.reshape(-1)
    keep = np.ones(matrix.shape, bool)
    for at, empty in drop:
        keep[empty, at:at + 2] = False
    return matrix[keep]


def _cell_width(arr: np.ndarray) -> int:
    """Bytes of one cell of the column in :func:`_binary2`'s rows."""
    if arr.dtype.kind == "b":
        return 1
    if arr.dtype.kind == "U":
        chars = arr.dtype.itemsize // 4
        return 2 * chars + (4 if chars == 1 else 0)  # a one-character cell starts with its count
    return arr.dtype.itemsize


@lru_cache(maxsize=1024)
def _field_xml(name: str, datatype: str, arraysize: str | None, unit: str, description: str | None,
               ref: str | None, ucd: str | None) -> str:
    """A FIELD element (the same for every light curve of a collection, so made once)."""
    attrs = _attrs(ID=_vo_id(name), arraysize=arraysize, datatype=datatype, name=name, ref=ref, ucd=ucd,
                   unit=_vo_unit(unit) if unit else None)
    if description:
        return (f"   <FIELD{attrs}>\n    <DESCRIPTION>\n{_xml_text(description, '     ')}\n"
                "    </DESCRIPTION>\n   </FIELD>\n")
    return f"   <FIELD{attrs}/>\n"


@lru_cache(maxsize=256)
def _timesys_xml(ID: str, refposition: str, timeorigin: str | None, timescale: str) -> str:
    return " <TIMESYS" + _attrs(ID=ID, refposition=refposition, timeorigin=timeorigin, timescale=timescale) + "/>\n"


def _info_xml(name: str, value: str, comment: str) -> str:
    """An INFO element of the RESOURCE: its value escaped here, what surrounds it kept
    per name and comment (the same for every light curve of a collection)."""
    from astropy.utils.xml._iterparser import escape_xml

    start, end = _info_frame(name, comment)
    return f"{start}{escape_xml(_clean(value))}{end}"


@lru_cache(maxsize=4096)
def _info_frame(name: str, comment: str) -> tuple[str, str]:
    """What an INFO element holds before and after its value, as :func:`_attrs` writes the
    attributes (sorted: name, unit, value)."""
    head = _attrs(name=name, unit="deg" if name in ("RA", "DEC") else None)
    return f"  <INFO{head} value=\"", (f"\">{_xml_text(comment)}</INFO>\n" if comment else "\"/>\n")


@lru_cache(maxsize=256)
def _vo_unit(unit: str) -> str:
    from astropy import units as u

    return u.Unit(unit).to_string("vounit") if unit else ""


FAST_WRITERS = {"csv": fast_csv, "csv.gz": fast_csv_gz, "ecsv": fast_ecsv, "fits": fast_fits, "votable": fast_votable}

