"""The columns of a FITS binary table, as the ``fits-table`` light-curve format reads them.

A plain table (every column one value per row of type L, B, I, J, K, E or D, or text
``rA``; no scaling, no TDIM, no heap; an uncompressed file) is read straight from the
file's bytes as one big-endian record array: for a TESS CDIPS light curve (985 rows, 34
columns) that is a fraction of a millisecond against ~6 ms for astropy's FITS_rec, which
builds its column definitions and converts every field. Anything else is read by
astropy. Both give what astropy gives: 1-d columns in native byte order, text decoded
(ASCII; other bytes replaced), columns with more than one value per row left out.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import numpy as np

#: binary-table codes read directly, and their big-endian numpy types
_CODES = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM = re.compile(r"^\s*(\d*)([A-Z])\s*$")


class Layout(NamedTuple):
    """A plain table's row as a numpy record type, and which of its columns are logical
    (stored as the characters ``T`` and ``F``)."""
    dtype: np.dtype
    logical: frozenset


def plain_layout(header) -> Layout | None:
    """The layout of a row of this binary-table header when the table is plain (see the
    module docstring), else None."""
    if header.get("XTENSION") != "BINTABLE" or header.get("NAXIS") != 2 or header.get("PCOUNT", 0) != 0 \
            or header.get("GCOUNT", 1) != 1:
        return None
    names, formats, seen, logical = [], [], set(), set()
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        name, tform = header.get(f"TTYPE{i}"), header.get(f"TFORM{i}")
        if not isinstance(name, str) or not isinstance(tform, str) or not name or name.lower() in seen:
            return None
        if any(f"{key}{i}" in header for key in ("TSCAL", "TZERO", "TDIM")):
            return None
        m = _TFORM.match(tform)
        if m is None:
            return None
        repeat, code = int(m.group(1) or 1), m.group(2)
        if code == "A" and repeat > 0:
            formats.append(f"S{repeat}")
        elif code in _CODES and repeat == 1:
            formats.append(_CODES[code])
        else:
            return None
        names.append(name)
        seen.add(name.lower())
        if code == "L":
            logical.add(name)
    if not names:
        return None
    dtype = np.dtype({"names": names, "formats": formats})
    return Layout(dtype, frozenset(logical)) if dtype.itemsize == header.get("NAXIS1") else None


def table_columns(path, hdul, index) -> dict[str, np.ndarray]:
    """The 1-d columns of binary-table HDU ``index`` of ``hdul`` (``astropy.io.fits.open``
    of the file at ``path``), by name in the table's order."""
    hdu = hdul[index]
    layout = plain_layout(hdu.header)
    rows = int(hdu.header.get("NAXIS2", 0))
    where = hdu.fileinfo()  # the HDU's (HDUList.fileinfo serialises every header to see if one changed)
    if layout is not None and where is not None:
        raw = _table_bytes(path, where["datLoc"], layout.dtype.itemsize * rows)
        if raw is not None:
            records = np.frombuffer(raw, layout.dtype, count=rows)
            return {name: records[name] == b"T" if name in layout.logical else _native(records[name])
                    for name in layout.dtype.names}
    return _astropy_columns(hdu)


def _table_bytes(path, offset: int, size: int) -> bytes | None:
    """The table's bytes, read from the file; None when the file is compressed (its bytes
    are not the FITS stream astropy's offsets count in) or shorter than the header says
    (checked first: a corrupt NAXIS2 must not become a huge read)."""
    with open(path, "rb") as fh:
        if fh.read(9) != b"SIMPLE  =" or os.fstat(fh.fileno()).st_size < offset + size:
            return None
        fh.seek(offset)
        data = fh.read(size)
    return data if len(data) == size else None


def _native(field: np.ndarray) -> np.ndarray:
    if field.dtype.kind == "S":
        return _text(field)
    return field.astype(field.dtype.newbyteorder("="))


def _text(field: np.ndarray) -> np.ndarray:
    """Text cells as astropy decodes them (trailing NULs dropped, spaces kept), bytes that
    are not ASCII replaced."""
    if field.size and np.ascontiguousarray(field).view(np.uint8).max() >= 128:
        return np.char.decode(field, "ascii", errors="replace")
    return field.astype(f"U{field.dtype.itemsize}")


def _astropy_columns(hdu) -> dict[str, np.ndarray]:
    data = hdu.data
    out = {}
    for col in hdu.columns:
        values = np.asarray(data[col.name])
        if values.ndim != 1:
            continue
        if values.dtype.kind == "S":
            values = np.char.decode(values, "ascii", errors="replace")
        out[col.name] = values.astype(values.dtype.newbyteorder("="))
    return out
