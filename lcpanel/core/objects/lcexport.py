"""Export one light curve to a downloadable file: CSV, gzipped CSV, FITS, ECSV, VOTable.

Every format states the object, the time system and the column units, and keeps
every column (quality flags included) as a column with its own dtype: integer flags
stay integers, NaNs stay NaN (FITS, ECSV, VOTable) or empty cells (CSV).

Output is deterministic: the same :class:`LightCurve` always gives the same bytes (no
dates, checksums or gzip timestamps are written), because products are stored and
served by content address.

Time system policy
------------------
Each time column's system comes from its ``lc.column_info`` entry (``timescale``,
``refpos``, ``timeorigin``: see :mod:`lcpanel.core.objects.formatinfo`) and otherwise from
``lc.meta`` as below. The global keywords describe the *primary* time column (the first
whose scale is known; a column named ``time`` first, since astropy reads it by them);
every time column with that scale and origin also gets FITS ``TCTYPn``/``TRPOSn`` so
astropy reads it as ``Time``; other time columns are described in a COMMENT, and the
VOTable has one TIMESYS per distinct system. ``lc.meta``:

- ``timesys``: the time scale (``TDB``, ``UTC``, ...; a compound like ``BJD_TDB`` is
  understood too). It is written as FITS ``TIMESYS`` only when it is a scale the FITS
  standard knows. **When it is unknown, TIMESYS is not written** (an invalid value
  such as ``UNKNOWN`` makes FITS readers fail) and a COMMENT says the scale is unknown
  and must not be taken to be UTC, the FITS default. ECSV carries the same header;
  the VOTable's TIMESYS element says ``timescale="UNKNOWN"`` (allowed there), and the
  CSV header says ``timesys: UNKNOWN``.
- ``timeref``: the reference position (``SOLARSYSTEM``, ``BARYCENTER``,
  ``HELIOCENTER``, ``GEOCENTER``, ``TOPOCENTER``...) or a time format that implies one
  (``BJD``, ``HJD``). Written as ``TREFPOS`` (FITS 4.0 vocabulary) and ``TIMEREF``
  (the older OGIP vocabulary that HEASARC tools read).
- ``timeformat`` (``JD``, ``BJD``, ``HJD``, ``MJD``...) and ``timeoffset``: the time
  values plus ``timeoffset`` are Julian Dates (Modified Julian Dates if the format
  says MJD); written as ``JDREF`` (or ``MJDREF``). With neither known, the origin is
  not written and a COMMENT says so.
- ``timeunit``: ``TIMEUNIT`` (default: the time column's unit, else ``d``).

Header keyword policy
---------------------
``OBJECT``, ``RA``/``DEC`` (degrees), the time keywords above, ``MAGSYS``,
``MAGSFLUX`` (magnitude columns hold fluxes), ``TELESCOP``, ``INSTRUME``, then every
other scalar (int, float, bool, str) of ``lc.objectinfo`` and ``lc.meta``, its name
upper-cased with characters other than ``A-Z0-9_-`` turned into ``_``. Names of up to
8 characters are plain FITS keywords; longer ones are ``HIERARCH`` cards (read back
by astropy under the same name). Non-finite floats, lists, arrays and ``None`` are
left out; a name that clashes with a structural or already written keyword is left
out with a COMMENT. The table meta (ECSV), the FITS header and the VOTable INFOs all
hold the same keywords.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import textwrap
import warnings
from dataclasses import replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ...errors import UserError
from ..suggest import did_you_mean
from .lcformats import LightCurve, lightcurve_to_csv


class ExportFormat(NamedTuple):
    suffix: str
    mime: str
    description: str


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat(".csv", "text/csv",
                        "CSV with a '#' header stating the object, time system and column units"),
    "csv.gz": ExportFormat(".csv.gz", "application/gzip", "the CSV, gzip-compressed"),
    "fits": ExportFormat(".fits", "application/fits",
                         "FITS binary table (TUNIT, TCOMM, TIMESYS and object keywords)"),
    "ecsv": ExportFormat(".ecsv", "text/x-ecsv",
                         "Astropy ECSV: text with units, descriptions and metadata"),
    "votable": ExportFormat(".vot", "application/x-votable+xml",
                            "IVOA VOTable 1.4 with units, descriptions and a TIMESYS element"),
}

EXTNAME = "LIGHTCURVE"
TIMESYS_ID = "lcpanel-timesys"  # a hyphen: no FIELD ID made from a column name has one

# time scales the FITS standard allows in TIMESYS
FITS_TIME_SCALES = {"TAI", "TT", "TDT", "ET", "IAT", "UT1", "UTC", "GMT", "GPS", "TCG", "TCB", "TDB", "LOCAL"}
# reference-position words -> FITS 4.0 TREFPOS value
REFPOS = {
    "TOPOCENTER": "TOPOCENTER", "TOPOCENTRIC": "TOPOCENTER", "LOCAL": "TOPOCENTER",
    "GEOCENTER": "GEOCENTER", "GEOCENTRIC": "GEOCENTER",
    "BARYCENTER": "BARYCENTER", "BARYCENTRIC": "BARYCENTER", "SOLARSYSTEM": "BARYCENTER",
    "HELIOCENTER": "HELIOCENTER", "HELIOCENTRIC": "HELIOCENTER",
    "EMBARYCENTER": "EMBARYCENTER", "RELOCATABLE": "RELOCATABLE", "CUSTOM": "CUSTOM",
}
# FITS 4.0 TREFPOS -> OGIP TIMEREF
OGIP_TIMEREF = {"TOPOCENTER": "LOCAL", "GEOCENTER": "GEOCENTRIC", "BARYCENTER": "SOLARSYSTEM",
                "HELIOCENTER": "HELIOCENTRIC"}
# FITS TREFPOS -> IVOA refposition vocabulary (VOTable TIMESYS)
IVOA_REFPOS = {"TOPOCENTER": "TOPOCENTER", "GEOCENTER": "GEOCENTER", "BARYCENTER": "BARYCENTER",
               "HELIOCENTER": "HELIOCENTER", "EMBARYCENTER": "EMBARYCENTER", "RELOCATABLE": "RELOCATABLE"}
# time-format words -> (JD or MJD, implied reference position)
TIME_FORMATS = {
    "JD": ("JD", None), "BJD": ("JD", "BARYCENTER"), "HJD": ("JD", "HELIOCENTER"),
    "MJD": ("MJD", None), "BMJD": ("MJD", "BARYCENTER"), "HMJD": ("MJD", "HELIOCENTER"),
}
# unit strings astronomers write that astropy does not parse
UNIT_ALIASES = {
    "days": "d", "jd": "d", "bjd": "d", "hjd": "d", "mjd": "d", "bjd_tdb": "d", "hjd_utc": "d",
    "mags": "mag", "magnitude": "mag", "magnitudes": "mag",
    "sec": "s", "secs": "s", "seconds": "s", "degrees": "deg", "none": "", "-": "",
}
# keywords FITS or this module write; objectinfo keys must not overwrite them
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|THEAP|EXTNAME|EXTVER|END|COMMENT|HISTORY"
    r"|CHECKSUM|DATASUM|T(TYPE|FORM|UNIT|NULL|SCAL|ZERO|DISP|DIM|COMM)\d+)$")
# lc.meta keys consumed by the time/magnitude keywords
_META_USED = {"timesys", "timeref", "timeformat", "timeoffset", "timeunit", "magsys", "magsarefluxes",
              "telescope", "instrument", "format", "time_conversion", "mask", "location", "readermodule",
              "magcol", "times"}
_OBJECTINFO_USED = {"objectid", "ra", "decl", "dec"}


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def export_lightcurve(lc: LightCurve, fmt: str) -> bytes:
    """The light curve as the bytes of a file in ``fmt`` (a key of :data:`EXPORT_FORMATS`)."""
    writer = _WRITERS.get(fmt) if isinstance(fmt, str) else None
    if writer is None:
        hint = did_you_mean(str(fmt), EXPORT_FORMATS)
        known = "" if hint.startswith("known") else f"; known: {', '.join(EXPORT_FORMATS)}"
        raise UserError(f"unknown light-curve export format {fmt!r}: {hint}{known}", field="format")
    if not lc.columns:
        raise UserError(f"light curve {lc.objectid} has no columns to export")
    return writer(lc)


def lightcurve_table(lc: LightCurve):
    """An astropy Table of the light curve: columns with units and descriptions, and a
    ``meta`` of FITS keywords (see the module docstring) plus ``comments``."""
    from astropy.table import Column, Table

    table = Table()
    for name, values in lc.columns.items():
        unit, description = _column_unit_description(lc, name)
        table[name] = Column(_plain_array(values), name=name, unit=unit or None, description=description)
    cards, notes = _header_cards(lc)
    table.meta.update({key: value for key, value, _ in cards})
    if notes:
        table.meta["comments"] = notes
    return table


# ---------------------------------------------------------------------------
# one function per format
# ---------------------------------------------------------------------------

def export_csv(lc: LightCurve) -> bytes:
    """CSV via :func:`lightcurve_to_csv`, with the units and descriptions resolved as in
    the other formats and ``timesys: UNKNOWN`` when the time scale is not known."""
    return lightcurve_to_csv(_csv_lightcurve(lc)).encode("utf-8")


def _csv_lightcurve(lc: LightCurve) -> LightCurve:
    """``lc`` with the column_info and meta the CSV header states."""
    column_info = {}
    for name in lc.columns:
        unit, description = _column_unit_description(lc, name)
        column_info[name] = {"unit": unit, "description": description or ""}
    from .formatinfo import time_sentence

    meta = {k: v for k, v in lc.meta.items() if k != "location"}
    if _time_info(lc)["scale"] is None:
        meta["timesys"] = "UNKNOWN"
    for name in lc.time_columns:
        if name in lc.columns and any(k in (lc.column_info.get(name) or {}) for k in ("timescale", "timeorigin")):
            meta[f"time {name}"] = time_sentence(name, lc.column_info[name])
    roles = {n: (lc.column_info.get(n) or {}).get("role") for n in lc.columns}
    if any(roles.values()):
        meta["roles"] = ", ".join(f"{n}={r}" for n, r in roles.items() if r)
    for name in lc.columns:
        flags = (lc.column_info.get(name) or {}).get("flags")
        if flags:
            kind = "bit " if (lc.column_info[name]).get("bits") else ""
            meta[f"flags {name}"] = "; ".join(f"{kind}{k} = {v}" for k, v in flags.items())
    if lc.masks:
        meta["masks available"] = "; ".join(f"{k}: {v.get('description', '')}" for k, v in lc.masks.items())
    return replace(lc, column_info=column_info, meta=meta)


def export_csv_gz(lc: LightCurve) -> bytes:
    """The CSV, gzipped with no file name and mtime 0 so equal inputs give equal bytes."""
    return gzip.compress(export_csv(lc), compresslevel=9, mtime=0)


def export_fits(lc: LightCurve) -> bytes:
    """An empty primary HDU and a binary table ``LIGHTCURVE`` with TTYPEn (description as
    the card comment), TUNITn, TCOMMn and the header keywords."""
    from astropy.io import fits

    table = lightcurve_table(lc)
    bare = table.copy(copy_data=False)
    bare.meta.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=fits.verify.VerifyWarning)
        hdu = fits.table_to_hdu(bare)
        hdu.name = EXTNAME
        header = hdu.header
        for index, name in enumerate(table.colnames, start=1):
            description = table[name].description
            if description:
                text = _fits_text(description)
                header.comments[f"TTYPE{index}"] = text
                last = f"TUNIT{index}" if f"TUNIT{index}" in header else f"TFORM{index}"
                header.set(f"TCOMM{index}", text, after=last)
        time = _time_info(lc)
        for index, name in enumerate(table.colnames, start=1):
            after = f"TFORM{index}"
            for prefix, value, comment in _column_time_keywords(lc, name, time):
                header.set(f"{prefix}{index}", value, comment, after=after)
                after = f"{prefix}{index}"
        _write_header_keywords(lc, lambda key, value, comment: header.append(fits.Card(key, value, comment), end=True),
                               header.add_comment)
        primary = fits.PrimaryHDU()
        primary.header["OBJECT"] = (_fits_text(str(lc.objectid)), "object identifier")
        primary.header.add_comment(f"the light curve is in the binary table extension {EXTNAME}")
        out = io.BytesIO()
        fits.HDUList([primary, hdu]).writeto(out, output_verify="exception")
    return out.getvalue()


def export_ecsv(lc: LightCurve) -> bytes:
    """Astropy ECSV: units, descriptions, dtypes and the header keywords as YAML meta."""
    out = io.StringIO()
    lightcurve_table(lc).write(out, format="ascii.ecsv")
    return out.getvalue().encode("utf-8")


def export_votable(lc: LightCurve) -> bytes:
    """A VOTable 1.4: one RESOURCE with a TIMESYS element referenced by the time FIELDs,
    an INFO per header keyword (RA/DEC with unit deg) and the TABLE (units, descriptions),
    its rows serialized as BINARY2 (as the TAP service answers by default: values exactly
    as stored, no text to format or parse)."""
    from astropy.io.votable.tree import (
        Info,
        Resource,
        TableElement,
        TimeSys,
        VOTableFile,
    )

    table = lightcurve_table(lc)
    cards, notes = _header_cards(lc)
    bare = table.copy(copy_data=False)
    bare.meta.clear()
    time = _time_info(lc)

    votable = VOTableFile(version="1.4")
    resource = Resource(name=str(lc.objectid))
    votable.resources.append(resource)
    systems: dict[tuple, str] = {}
    column_system = {}
    for name in [time["column"]] + [n for n in lc.time_columns if n != time["column"]]:
        this = time if name is None or name == time["column"] else _column_time(lc, name)
        key = (this["scale"], this["refpos"], this["form"], this["origin"])
        if key not in systems:
            systems[key] = TIMESYS_ID if not systems else f"{TIMESYS_ID}-{len(systems) + 1}"
            votable.time_systems.append(TimeSys(
                ID=systems[key],
                timescale=this["scale"] if this["scale"] and this["scale"] != "LOCAL" else "UNKNOWN",
                refposition=IVOA_REFPOS.get(this["refpos"], "UNKNOWN"),
                timeorigin=_timeorigin(this),
                config=votable._config))
        column_system[name] = systems[key]
    for key, value, comment in cards:
        info = Info(name=key, value=_info_value(value), config=votable._config)
        info.ID = None  # astropy derives IDs from names; they could clash with FIELD IDs
        if key in ("RA", "DEC"):
            info.unit = "deg"
        info.content = comment or None
        resource.infos.append(info)
    for note in notes:
        info = Info(name="COMMENT", value=note, config=votable._config)
        info.ID = None
        resource.infos.append(info)

    element = TableElement.from_table(votable, bare)
    element.name = "lightcurve"
    element.description = f"light curve of {lc.objectid}"
    from .formatinfo import ROLE_UCD

    for field in element.fields:
        if field.datatype == "bit":
            # "boolean" (one byte, T or F): STILTS fails on the lone BINARY2 bit astropy
            # writes (0x08) for a bool column
            field.datatype = "boolean"
        if field.arraysize == "1":
            # astropy writes arraysize="1" for one-character columns, deprecated since VOTable
            # 1.3 (Erratum 3; votlint warns) and warns (W47) when it is left out: "*" (a
            # variable-length string; astropy encodes the rows for it) satisfies both
            field.arraysize = "*"
        if field.name in lc.time_columns:
            field.ref = column_system.get(field.name, TIMESYS_ID)
        role = (lc.column_info.get(field.name) or {}).get("role")
        if role in ROLE_UCD:
            field.ucd = ROLE_UCD[role]
    resource.tables.append(element)

    out = io.BytesIO()
    votable.to_xml(out, tabledata_format="binary2")
    return out.getvalue()


#: the astropy-based writers: the reference the fast ones (lcfast) are tested against,
#: and what writes a light curve the fast ones do not handle
SLOW_WRITERS = {
    "csv": export_csv,
    "csv.gz": export_csv_gz,
    "fits": export_fits,
    "ecsv": export_ecsv,
    "votable": export_votable,
}


def _fast_or_slow(fmt: str):
    def write(lc: LightCurve) -> bytes:
        from .lcfast import FAST_WRITERS

        fast = FAST_WRITERS.get(fmt)
        data = fast(lc) if fast is not None else None
        return data if data is not None else SLOW_WRITERS[fmt](lc)
    write.__name__ = f"write_{fmt.replace('.', '_')}"
    return write


_WRITERS = {fmt: _fast_or_slow(fmt) for fmt in SLOW_WRITERS}


# ---------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------

def _plain_array(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "O":  # mixed Python objects: strings are the one safe form
        arr = np.array(["" if v is None else str(v) for v in arr.tolist()])
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _parse_unit(text):
    """An astropy unit from a column_info unit, or (None, text) when it cannot be parsed."""
    try:
        return _parse_unit_cached(text)
    except TypeError:  # unhashable
        return _parse_unit_cached.__wrapped__(text)


@lru_cache(maxsize=1024)
def _parse_unit_cached(text):
    import astropy.units as u

    if text is None or isinstance(text, u.UnitBase):
        return text, None
    raw = str(text).strip()
    if not raw:
        return None, None
    alias = UNIT_ALIASES.get(raw.lower())
    for candidate in (raw, alias, raw.lower()):
        if candidate is None:
            continue
        if candidate == "":
            return None, None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                unit = u.Unit(candidate)
        except (ValueError, TypeError):
            continue
        try:  # it must be writable in every format
            unit.to_string("fits")
            unit.to_string("vounit")
        except (ValueError, TypeError, u.UnitsError):
            continue
        return unit, None
    return None, raw


def _column_unit_description(lc: LightCurve, name: str) -> tuple[str, str | None]:
    """(unit string, description) of a column, with the defaults for time and mag columns."""
    info = lc.column_info.get(name) or {}
    unit, unparsed = _parse_unit(info.get("unit"))
    fluxes = bool(lc.meta.get("magsarefluxes"))
    if unit is None and unparsed is None:
        if name in lc.time_columns:
            unit, _ = _parse_unit(lc.meta.get("timeunit") or "d")
            unit = unit or _parse_unit("d")[0]
        elif (name in lc.mag_columns or name in lc.err_columns) and not fluxes:
            unit, _ = _parse_unit("mag")
    description = info.get("description") or None
    if description is None:
        if name in lc.time_columns:
            description = "time"
        elif name in lc.mag_columns:
            description = "flux" if fluxes else "magnitude"
        elif name in lc.err_columns:
            description = "flux error" if fluxes else "magnitude error"
    if unparsed:
        description = f"{description or name} (unit: {unparsed})"
    return (_unit_text(unit) if unit is not None else ""), description


@lru_cache(maxsize=1024)
def _unit_text(unit) -> str:
    """A unit's generic text (astropy writes it in ~10 us; a light curve states a handful of units)."""
    return unit.to_string("generic")


# ---------------------------------------------------------------------------
# header keywords
# ---------------------------------------------------------------------------

def _words(value) -> tuple[str, ...]:
    return _upper_words(str(value)) if value is not None else ()


@lru_cache(maxsize=1024)
def _upper_words(text: str) -> tuple[str, ...]:
    return tuple(w for w in re.split(r"[\s_,;/()-]+", text.upper()) if w)


def _meta_time_info(lc: LightCurve) -> dict:
    """The time system stated in ``lc.meta`` (the older, whole-light-curve way)."""
    meta = lc.meta
    stated = (meta.get("timesys"), meta.get("timeref"), meta.get("timeformat"), meta.get("timeoffset"))
    try:
        return dict(_meta_time(*stated))
    except TypeError:  # a value that cannot be a cache key
        return _meta_time.__wrapped__(*stated)


@lru_cache(maxsize=256, typed=True)
def _meta_time(timesys, timeref, timeformat, offset) -> dict:
    """:func:`_meta_time_info` of these four meta values (the same for every light curve
    of a collection, and asked for several times per light curve written)."""
    scale = refpos = form = None
    for value in (timesys, timeref, timeformat):
        for word in _words(value):
            if word in FITS_TIME_SCALES and scale is None:
                scale = word
            elif word in REFPOS and refpos is None:
                refpos = REFPOS[word]
            elif word in TIME_FORMATS:
                form = form or TIME_FORMATS[word][0]
                refpos = refpos or TIME_FORMATS[word][1]
    try:
        offset = float(offset) if offset is not None and offset != "" else None
    except (TypeError, ValueError):
        offset = None
    if offset is not None and not math.isfinite(offset):
        offset = None
    if offset is not None and form is None:
        form = "JD"  # documented: values + timeoffset are Julian Dates
    origin = None if form is None else (offset or 0.0)
    return {"scale": scale, "refpos": refpos, "form": form, "origin": origin}


def _column_time(lc: LightCurve, name: str) -> dict:
    """scale, refpos, form ('JD', 'MJD' or None) and origin of one time column: from its
    column_info (see :mod:`lcpanel.core.objects.formatinfo`) when it states any, else from lc.meta."""
    info = lc.column_info.get(name) or {}
    if not any(k in info for k in ("timescale", "timeorigin", "refpos")):
        return _meta_time_info(lc)
    scale = str(info.get("timescale") or "").upper() or None
    scale = scale if scale in FITS_TIME_SCALES else None
    refpos = REFPOS.get(str(info.get("refpos") or "").upper())
    origin = info.get("timeorigin")
    if origin is None:
        return {"scale": scale, "refpos": refpos, "form": None, "origin": None}
    if float(origin) == 2400000.5:
        return {"scale": scale, "refpos": refpos, "form": "MJD", "origin": 0.0}
    return {"scale": scale, "refpos": refpos, "form": "JD", "origin": float(origin)}


def _primary_time(lc: LightCurve) -> str | None:
    """The time column the global FITS/VOTable keywords describe: the first whose scale is known."""
    known = [n for n in lc.time_columns if n in lc.columns and _column_time(lc, n)["scale"]]
    # astropy reads a column named TIME with a time unit by the global keywords: let it be the one
    known.sort(key=lambda n: n.upper() != "TIME")
    present = [n for n in lc.time_columns if n in lc.columns]
    return (known or present or [None])[0]


def _time_info(lc: LightCurve) -> dict:
    """scale (FITS TIMESYS or None), refpos (FITS TREFPOS or None), form ('JD', 'MJD' or
    None), origin (the JD/MJD of time value 0, or None), unit, column: of the primary time
    column (see :func:`_primary_time`), or of lc.meta when there is none."""
    primary = _primary_time(lc)
    out = _column_time(lc, primary) if primary else _meta_time_info(lc)
    unit = str(lc.meta.get("timeunit") or "")
    if not unit and primary:
        unit = _column_unit_description(lc, primary)[0]
    return {**out, "unit": unit or "d", "column": primary}


def _same_reference(a: dict, b: dict) -> bool:
    return a["form"] == b["form"] and a["origin"] == b["origin"]


def _column_time_keywords(lc: LightCurve, name: str, time: dict) -> list[tuple[str, str, str]]:
    """The FITS 4.0 column time keywords of column ``name`` as (prefix, value, comment):
    TCTYP and, off the topocentre, TRPOS, when it is a time column of known scale with the
    same reference as the primary time column (``time``, see :func:`_time_info`); astropy
    then reads the column as Time in this scale. None otherwise."""
    this = _column_time(lc, name) if name in lc.time_columns else None
    if not (this and this["scale"] and time["scale"] and _same_reference(this, time)):
        return []
    out = [("TCTYP", this["scale"], "time scale of this column")]
    if this["refpos"] and this["refpos"] != "TOPOCENTER":
        out.append(("TRPOS", this["refpos"], "time reference position of this column"))
    return out


def _write_header_keywords(lc: LightCurve, card, comment) -> None:
    """Hand the light curve's header keywords (:func:`_header_cards`) to ``card(keyword,
    value, comment)`` in order, a keyword too long for one HIERARCH card (``card`` raises
    ValueError) and then each note line to ``comment(text)``: the one walk of the FITS
    writers (astropy's here, the direct one in :mod:`lcpanel.core.objects.lcfast`)."""
    cards, notes = _header_cards(lc)
    for key, value, text in cards:
        if isinstance(value, str):
            value = _fits_text(value)
        keyword = key if len(key) <= 8 else f"HIERARCH {key}"
        try:
            card(keyword, value, _fits_text(text))
        except ValueError:  # too long for one HIERARCH card
            comment(_fits_text(f"{key} = {value!r}"))
    for note in notes:
        for line in textwrap.wrap(_fits_text(note), 72):
            comment(line)


def _timeorigin(time: dict):
    if time["form"] == "JD":
        return time["origin"] or "JD-origin"
    if time["form"] == "MJD":
        return 2400000.5 + time["origin"] if time["origin"] else "MJD-origin"
    return None


def _scalar(value):
    """A header-safe Python scalar, or None to leave the value out."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is bool:
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None


def _keyword(key) -> str:
    return _keyword_text(str(key))


@lru_cache(maxsize=4096)
def _keyword_text(key: str) -> str:
    return re.sub(r"[^A-Z0-9_-]", "_", key.strip().upper())


def _header_cards(lc: LightCurve) -> tuple[list[tuple[str, object, str]], list[str]]:
    """(keyword, value, comment) cards and COMMENT notes, in a fixed order."""
    cards: list[tuple[str, object, str]] = []
    notes: list[str] = []
    info, meta = lc.objectinfo or {}, lc.meta or {}

    def add(key, value, comment=""):
        value = _scalar(value)
        if value is not None:
            cards.append((key, value, comment))

    add("OBJECT", str(lc.objectid), "object identifier")
    add("RA", info.get("ra"), "[deg] right ascension")
    add("DEC", info.get("decl", info.get("dec")), "[deg] declination")

    time = _time_info(lc)
    primary = _column_time(lc, time["column"])
    same = [n for n in lc.time_columns if n in lc.columns and _column_time(lc, n) == primary]
    what = f"of the time columns ({', '.join(dict.fromkeys(same))})" if same else "of the times"
    if time["scale"]:
        add("TIMESYS", time["scale"], f"time scale {what}")
    else:
        notes.append("time scale unknown: the source format does not state it, so TIMESYS "
                     "is not written; do not assume UTC")
    add("TIMEUNIT", time["unit"], "unit of the time columns")
    if time["refpos"]:
        add("TREFPOS", time["refpos"], "time reference position")
        add("TIMEREF", OGIP_TIMEREF.get(time["refpos"], time["refpos"]), "time reference (OGIP)")
    if time["form"] == "JD":
        add("JDREF", float(time["origin"]), "time column values + JDREF = Julian Date")
        if time["refpos"] == "BARYCENTER":
            add("BJDREFI", int(math.floor(time["origin"])), "integer part of the BJD of time value 0")
            add("BJDREFF", float(time["origin"] - math.floor(time["origin"])), "fraction of the day of it")
    elif time["form"] == "MJD":
        add("MJDREF", float(time["origin"]), "time column values + MJDREF = MJD")
    else:
        notes.append("time origin unknown: the source format does not say whether times are JD or MJD")
    from .formatinfo import time_sentence

    for name in lc.time_columns:
        if name in lc.columns and name not in same and name in lc.column_info:
            notes.append("other time column " + time_sentence(name, lc.column_info[name])
                         + "; the TIMESYS/JDREF keywords do not describe it")
    for key in ("format", "magcol", "times", "time_conversion", "mask"):
        if key in meta:
            notes.append(f"{key}: {meta[key]}")

    if "magsys" in meta:
        add("MAGSYS", str(meta["magsys"]), "magnitude system")
    if "magsarefluxes" in meta:
        add("MAGSFLUX", bool(meta["magsarefluxes"]), "magnitude columns hold fluxes")
    if "telescope" in meta:
        add("TELESCOP", str(meta["telescope"]), "telescope")
    if "instrument" in meta:
        add("INSTRUME", str(meta["instrument"]), "instrument")

    taken = {key for key, _, _ in cards}
    extra = [(k, v, "objectinfo") for k, v in info.items() if k not in _OBJECTINFO_USED]
    extra += [(k, v, "light-curve metadata") for k, v in meta.items() if k not in _META_USED]
    for key, value, source in extra:
        value = _scalar(value)
        if value is None:
            continue
        keyword, reserved, comment = _extra_card(key, source)
        if reserved or keyword in taken:
            notes.append(f"{source} {key!r} not written: its keyword {keyword!r} is reserved or taken")
            continue
        taken.add(keyword)
        cards.append((keyword, value, comment))
    return cards, notes


@lru_cache(maxsize=4096, typed=True)
def _extra_card(key, source: str) -> tuple[str, bool, str]:
    """The keyword of an objectinfo or meta ``key`` (from ``source``), whether FITS or
    this module reserves it, and its card's comment."""
    keyword = _keyword(key)
    reserved = not keyword or _STRUCTURAL.match(keyword) is not None
    return keyword, reserved, (f"{source} {key}" if keyword != str(key) else source)


# ---------------------------------------------------------------------------
# format details
# ---------------------------------------------------------------------------

def _fits_text(text: str) -> str:
    """Printable ASCII for FITS headers (non-ASCII becomes '?', control characters spaces)."""
    text = str(text)
    if text.isascii() and text.isprintable():  # nearly every header text: nothing to change
        return text
    text = text.encode("ascii", "replace").decode("ascii")
    return re.sub(r"[\x00-\x1f\x7f]", " ", text)


def _info_value(value) -> str:
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
