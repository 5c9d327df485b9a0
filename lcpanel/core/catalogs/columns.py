"""Catalog columns: SQL-safe names, types inferred from arrays, and known metadata.

astrobase's catalog keys (``ra``, ``sdssr``, ``aep_000.varperiod``...) become SQL
column names that are lowercase identifiers (``aep_000_varperiod``). Each column gets a
SQL type, and where the base key is known, a unit, a UCD and a description; TAP, the web
tables and the product summaries all read them from here.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from ...errors import IngestError

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Columns that lcpanel itself adds to every catalog.
SKY_COLUMNS = ("hpx29", "cx", "cy", "cz")
PATH_COLUMNS = ("lcfname", "cpfname", "pffname")
RESERVED = {"rowid", "oid", "_rowid_", "collection", "object_fts", "rank"} | set(SKY_COLUMNS)

# Text columns that identify an object under another catalog's name: object-id search
# looks here too and says which one matched.
ALIAS_COLUMNS = (
    "twomassid", "ticid", "kicid", "epicid", "gaia_id", "gaia_ids_0", "gaiaid",
    "simbad_best_mainid", "simbad_best_allids", "hatid", "tic_id", "source_id",
)

# Columns indexed when present: what people filter and sort on.
COMMON_INDEXED = (
    "ndet", "bmag", "vmag", "rmag", "imag", "jmag", "hmag", "kmag",
    "sdssg", "sdssr", "sdssi", "gaiamag", "tessmag", "objectisvar", "varperiod",
)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    key: str
    sqltype: str
    unit: str = ""
    ucd: str = ""
    description: str = ""
    indexed: bool = False
    fts: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "key": self.key, "sqltype": self.sqltype, "unit": self.unit, "ucd": self.ucd,
                "description": self.description, "indexed": self.indexed, "fts": self.fts}


# base key -> (unit, ucd, description)
KNOWN = {
    "objectid": ("", "meta.id;meta.main", "object identifier in this collection"),
    "ra": ("deg", "pos.eq.ra;meta.main", "right ascension (ICRS)"),
    "decl": ("deg", "pos.eq.dec;meta.main", "declination (ICRS)"),
    "ndet": ("", "meta.number", "number of observations in the light curve"),
    "bmag": ("mag", "phot.mag;em.opt.B", "catalog B magnitude"),
    "vmag": ("mag", "phot.mag;em.opt.V", "catalog V magnitude"),
    "rmag": ("mag", "phot.mag;em.opt.R", "catalog R magnitude"),
    "imag": ("mag", "phot.mag;em.opt.I", "catalog I magnitude"),
    "jmag": ("mag", "phot.mag;em.IR.J", "2MASS J magnitude"),
    "hmag": ("mag", "phot.mag;em.IR.H", "2MASS H magnitude"),
    "kmag": ("mag", "phot.mag;em.IR.K", "2MASS Ks magnitude"),
    "sdssu": ("mag", "phot.mag;em.opt.U", "SDSS u magnitude"),
    "sdssg": ("mag", "phot.mag;em.opt.B", "SDSS g magnitude"),
    "sdssr": ("mag", "phot.mag;em.opt.R", "SDSS r magnitude"),
    "sdssi": ("mag", "phot.mag;em.opt.I", "SDSS i magnitude"),
    "sdssz": ("mag", "phot.mag;em.opt.I", "SDSS z magnitude"),
    "gaiamag": ("mag", "phot.mag;em.opt", "GAIA G magnitude"),
    "tessmag": ("mag", "phot.mag;em.opt", "TESS magnitude"),
    "pmra": ("mas/yr", "pos.pm;pos.eq.ra", "proper motion in RA (times cos dec)"),
    "pmdecl": ("mas/yr", "pos.pm;pos.eq.dec", "proper motion in declination"),
    "propermotion": ("mas/yr", "pos.pm", "total proper motion"),
    "gl": ("deg", "pos.galactic.lon", "galactic longitude"),
    "gb": ("deg", "pos.galactic.lat", "galactic latitude"),
    "gaia_parallax": ("mas", "pos.parallax", "GAIA parallax"),
    "gaia_parallax_err": ("mas", "stat.error;pos.parallax", "GAIA parallax error"),
    "gaia_absmag": ("mag", "phys.magAbs", "absolute G magnitude from GAIA parallax"),
    "twomassid": ("", "meta.id.cross", "2MASS identifier"),
    "ticid": ("", "meta.id.cross", "TESS Input Catalog identifier"),
    "gaia_id": ("", "meta.id.cross", "GAIA source identifier"),
    "objecttags": ("", "meta.note", "tags describing the object"),
    "comments": ("", "meta.note", "reviewer comments"),
    "vartags": ("", "meta.note;src.var", "variability tags"),
    "varperiod": ("d", "src.var;time.period", "adopted variability period"),
    "varepoch": ("d", "time.epoch;src.var", "adopted epoch of the variability ephemeris"),
    "objectisvar": ("", "meta.code;src.var", "variability flag: 0 unreviewed, 1 variable, 2 not variable, 3 can't tell"),
    "varisperiodic": ("", "meta.code;src.var", "periodic variability flag"),
    "lcfname": ("", "meta.ref.url", "light curve file, relative to the collection directory"),
    "cpfname": ("", "meta.ref.url", "checkplot pickle, relative to the collection directory"),
    "pffname": ("", "meta.ref.url", "period-finding results pickle, relative to the collection directory"),
    "hpx29": ("", "pos.healpix", "order-29 nested HEALPix index of (ra, decl)"),
    "cx": ("", "pos.cartesian.x", "unit vector x of (ra, decl)"),
    "cy": ("", "pos.cartesian.y", "unit vector y of (ra, decl)"),
    "cz": ("", "pos.cartesian.z", "unit vector z of (ra, decl)"),
}


def sql_name(key: str) -> str:
    """The SQL column name for a catalog key: lowercase, ``[a-z0-9_]``, not a keyword."""
    name = re.sub(r"[^a-z0-9_]+", "_", str(key).strip().lower()).strip("_")
    if not name:
        raise IngestError(f"catalog key {key!r} has no usable characters for a column name")
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "c_" + name
    name = name[:63]
    if name in RESERVED:
        name = "cat_" + name
    return name


def is_path_column(name: str) -> bool:
    """A column of file paths: light curve, checkplot (``cpfname`` and the per-magcol
    ``<magcol>_cpfname``), period-finding pickle."""
    return name in PATH_COLUMNS or name.endswith("_cpfname")


def base_key(key: str) -> str:
    """The part of a key after any ``<magcol>.`` prefix (``aep_000.varperiod`` -> ``varperiod``)."""
    return str(key).rsplit(".", 1)[-1].lower()


def describe(name: str, key: str, sqltype: str) -> ColumnInfo:
    unit, ucd, description = KNOWN.get(name, KNOWN.get(base_key(key), ("", "", "")))
    if "." in key and base_key(key) in KNOWN and name not in KNOWN:
        description = f"{description} ({key.rsplit('.', 1)[0]})"
    return ColumnInfo(name=name, key=key, sqltype=sqltype, unit=unit, ucd=ucd, description=description)


def to_sql_values(values) -> tuple[str, list]:
    """Infer a SQL type for a 1-d array and return it with a list of Python values.

    Mixed object arrays (None next to numbers, as astrobase writes them) become REAL or
    INTEGER with NULLs; NaN becomes NULL; anything else non-numeric becomes TEXT.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise IngestError(f"expected a 1-d column, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind == "b":
        return "INTEGER", arr.astype(np.int64).tolist()
    if kind in "iu":
        return "INTEGER", arr.astype(np.int64).tolist()
    if kind == "f":
        return "REAL", _nan_to_none(arr.astype(np.float64))
    if kind in "US":
        return "TEXT", [_text(v) for v in arr.tolist()]
    return _infer_object(arr.tolist())


def _nan_to_none(arr: np.ndarray) -> list:
    out = arr.tolist()
    bad = np.flatnonzero(~np.isfinite(arr))
    for i in bad.tolist():
        out[i] = None
    return out


def _text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value)
    return value if value else None


def _infer_object(items: list) -> tuple[str, list]:
    kinds = set()
    for v in items:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            continue
        if isinstance(v, (bool, np.bool_)):
            kinds.add("int")
        elif isinstance(v, (int, np.integer)):
            kinds.add("int")
        elif isinstance(v, (float, np.floating)):
            kinds.add("float")
        else:
            kinds.add("text")
    if kinds <= {"int"}:
        return "INTEGER", [None if v is None or (isinstance(v, float)) else int(v) for v in items]
    if kinds <= {"int", "float"}:
        return "REAL", [None if v is None or not np.isfinite(float(v)) else float(v) for v in items]
    return "TEXT", [_stringify(v) for v in items]


def _stringify(v):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(str(x) for x in v) or None
    return _text(v)
