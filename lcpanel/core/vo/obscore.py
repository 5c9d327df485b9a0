"""ObsCore 1.1: the ``ivoa.obscore`` table, one row per photometric series of every object
light curve of every collection with light curves (``dataproduct_type = 'timeseries'``), so
that a VO client can find time series by position, time range and collection across the
service.

One row per series, not per file: a HATNet file holds 12 series (raw, EPD and TFA
magnitudes of three apertures), a CDIPS file 9 (IRM, TFA, PCA of three apertures). ObsCore
makes a row a *dataset* with its own ``obs_publisher_did``, which a client passes to
DataLink to get *that* dataset as ``#this``; a client plotting ``#this`` expects one
observable, and DaCHS serves the bands of a Gaia light curve as separate rows the same
way. So each series (:mod:`lcpanel.core.objects.lcseries`) is a row: ``obs_id`` and
``target_name`` are the object id (shared by the rows of one file, as ObsCore's
``obs_id`` groups the products of one observation), ``obs_publisher_did`` is
``ivo://lcpanel/<collection>?<objectid>/<magcol>``, the extra column ``magcol`` and
``obs_title`` name the series, ``o_ucd`` says magnitude or flux, ``t_xel``, ``t_min`` and
``t_max`` count and span the points where that series has a value.

Each collection's rows are computed once (reading every light curve for its time range
and point count) into ``BASEDIR/vo/obscore/<collection>-<digest>.sqlite`` when it is added
(the ``collection_added`` hook) or, for collections added before, when the TAP model is
first built. The table TAP queries is their union, ``BASEDIR/vo/obscore-<digest>.sqlite``,
rebuilt (by copying rows, not reading light curves) whenever the set of collections
changes. Both are written atomically.

``t_min``/``t_max`` are MJD in the time scale the light curve's first time column states
(ObsCore does not fix a scale; the column description says which); they are null when the
format states no time origin. ``access_url`` leads to the series' DataLink document
(:mod:`lcpanel.core.vo.datalink`), ``obs_publisher_did`` is its DataLink ID.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from ..atomic import atomic_path
from .datalink import LINKS_MIME, publisher_did

log = logging.getLogger(__name__)

SCHEMA = "ivoa"
TABLE = "obscore"
OBSCORE_DIR = "vo/obscore"
DATA_MODEL = ("ivo://ivoa.net/std/ObsCore#core-1.1", "ObsCore-1.1")
MJD_JD = 2400000.5
#: changes when the rows computed change meaning; parts made before are recomputed
ROWS_VERSION = 2

#: (name, datatype, unit, ucd, utype, description) as ObsCore 1.1 (table 5 and appendix) gives them
COLUMNS = (
    ("dataproduct_type", "char", "", "meta.code.class", "obscore:ObsDataset.dataProductType",
     "data product type: timeseries"),
    ("calib_level", "int", "", "meta.code;obs.calib", "obscore:ObsDataset.calibLevel",
     "calibration level: 2, science-ready light curves"),
    ("obs_collection", "char", "", "meta.id", "obscore:DataID.Collection", "the lcpanel collection"),
    ("obs_id", "char", "", "meta.id", "obscore:DataID.observationID", "the object id in its collection"),
    ("obs_publisher_did", "char", "", "meta.ref.ivoid", "obscore:Curation.PublisherDID",
     "DataLink ID of the series: ivo://lcpanel/<collection>?<objectid>/<magcol>"),
    ("obs_title", "char", "", "meta.title;obs", "obscore:DataID.Title", "the object and series in words"),
    ("access_url", "char", "", "meta.ref.url", "obscore:Access.Reference", "the series' DataLink document"),
    ("access_format", "char", "", "meta.code.mime", "obscore:Access.Format", "MIME type of access_url"),
    ("access_estsize", "long", "kbyte", "phys.size;meta.file", "obscore:Access.Size",
     "size of the stored light-curve file"),
    ("target_name", "char", "", "meta.id;src", "obscore:Target.Name", "the object id"),
    ("s_ra", "double", "deg", "pos.eq.ra", "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1",
     "right ascension (ICRS)"),
    ("s_dec", "double", "deg", "pos.eq.dec",
     "obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2", "declination (ICRS)"),
    ("s_fov", "double", "deg", "phys.angSize;instr.fov", "obscore:Char.SpatialAxis.Coverage.Bounds.Extent.diameter",
     "field of view (unknown for a point source's light curve)"),
    ("s_region", "char", "", "pos.outline;obs.field", "obscore:Char.SpatialAxis.Coverage.Support.Area",
     "region covered (unknown)"),
    ("s_resolution", "double", "arcsec", "pos.angResolution", "obscore:Char.SpatialAxis.Resolution.Refval.value",
     "spatial resolution (unknown)"),
    ("s_xel1", "long", "", "meta.number", "obscore:Char.SpatialAxis.numBins1", "pixels along axis 1: none"),
    ("s_xel2", "long", "", "meta.number", "obscore:Char.SpatialAxis.numBins2", "pixels along axis 2: none"),
    ("t_xel", "long", "", "meta.number", "obscore:Char.TimeAxis.numBins",
     "number of points with a value of the series"),
    ("t_min", "double", "d", "time.start;obs.exposure", "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime",
     "first point with a value, MJD in the scale of the light curve's first time column"),
    ("t_max", "double", "d", "time.end;obs.exposure", "obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime",
     "last point with a value, MJD in the scale of the light curve's first time column"),
    ("t_exptime", "double", "s", "time.duration;obs.exposure", "obscore:Char.TimeAxis.Coverage.Support.Extent",
     "exposure time where the light curve says it"),
    ("t_resolution", "double", "s", "time.resolution", "obscore:Char.TimeAxis.Resolution.Refval.value",
     "time resolution (unknown)"),
    ("em_min", "double", "m", "em.wl;stat.min", "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit",
     "shortest wavelength of the band (unknown unless the collection states its filter)"),
    ("em_max", "double", "m", "em.wl;stat.max", "obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit",
     "longest wavelength of the band (unknown unless the collection states its filter)"),
    ("em_res_power", "double", "", "spect.resolution", "obscore:Char.SpectralAxis.Resolution.ResolPower.refVal",
     "spectral resolving power (not applicable)"),
    ("em_xel", "long", "", "meta.number", "obscore:Char.SpectralAxis.numBins", "spectral bins: none"),
    ("o_ucd", "char", "", "meta.ucd", "obscore:Char.ObservableAxis.ucd",
     "what the values are: phot.mag or phot.flux"),
    ("pol_states", "char", "", "meta.code;phys.polarization", "obscore:Char.PolarizationAxis.stateList",
     "polarization states: none"),
    ("pol_xel", "long", "", "meta.number", "obscore:Char.PolarizationAxis.numBins", "polarization bins: none"),
    ("facility_name", "char", "", "meta.id;instr.tel", "obscore:Provenance.ObsConfig.Facility.name",
     "the project that made the collection"),
    ("instrument_name", "char", "", "meta.id;instr", "obscore:Provenance.ObsConfig.Instrument.name",
     "instrument (unknown)"),
    ("magcol", "char", "", "meta.id", None,
     "lcpanel: the light-curve column of this series (astrobase magcol, e.g. an aperture's magnitudes)"),
)
NAMES = tuple(c[0] for c in COLUMNS)
_SQLTYPE = {"char": "TEXT", "int": "INTEGER", "long": "INTEGER", "double": "REAL"}


def _create(conn: sqlite3.Connection) -> None:
    conn.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{n} {_SQLTYPE[t]}' for n, t, *_ in COLUMNS)})")


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _mjd_offset(time_info: dict | None) -> float | None:
    origin = (time_info or {}).get("origin")
    try:
        return float(origin) - MJD_JD if origin is not None else None
    except (TypeError, ValueError):
        return None


def object_rows(catalog, info, read_lightcurve) -> list[tuple]:
    """The ObsCore rows of one collection: one per series of every object with a
    light-curve file (one row without a series when the file cannot be read).
    ``access_url`` is stored relative to the service root; answers make it absolute with
    the request's URL."""
    if "lcfname" not in catalog.columns:
        return []
    rows = []
    for objectid, ra, dec, lcfname in catalog.query(
            "SELECT objectid, ra, decl, lcfname FROM object_catalog WHERE lcfname IS NOT NULL ORDER BY row_id"):
        path = info.object_file(lcfname)
        if path is None:
            continue
        size = path.stat().st_size if path.is_file() else None
        common = dict(objectid=objectid, ra=float(ra), dec=float(dec), info=info,
                      size=None if size is None else int(math.ceil(size / 1024)))
        try:
            series = list(_series(info, read_lightcurve(path)))
        except Exception as exc:  # a broken file: the row stays, without what the file would tell
            log.warning("obscore: cannot read the light curve of %s in %s: %s", objectid, info.collection_id, exc)
            series = []
        for magcol, words, ucd, npts, t_min, t_max in series or [(None, None, None, None, None, None)]:
            rows.append(_row(**common, magcol=magcol, words=words, o_ucd=ucd, npts=npts, t_min=t_min, t_max=t_max))
    return rows


def _series(info, lc):
    """(magcol, description, o_ucd, points, t_min, t_max) of every series of ``lc``."""
    import numpy as np

    from ..objects.formatinfo import time_columns
    from ..objects.lcseries import series_columns

    times = [t for t in time_columns(info, lc) if t["name"] in lc.columns]
    offset = _mjd_offset(times[0]) if times else None
    t = np.asarray(lc.columns[times[0]["name"]], dtype=float) if times else None
    for name in series_columns(lc):
        column_info = lc.column_info.get(name) or {}
        values = np.asarray(lc.columns[name], dtype=float)
        has = np.isfinite(values) & (np.isfinite(t) if t is not None else True)
        t_min = t_max = None
        if t is not None and offset is not None and has.any():
            t_min, t_max = float(t[has].min()) + offset, float(t[has].max()) + offset
        ucd = "phot.flux" if column_info.get("role") == "flux" else "phot.mag"
        yield name, column_info.get("description"), ucd, int(np.isfinite(values).sum()), t_min, t_max


def _row(*, objectid, ra, dec, info, size, magcol, words, o_ucd, npts, t_min, t_max) -> tuple:
    did = publisher_did(info.collection_id, objectid, magcol)
    title = f"{objectid} in {info.name or info.collection_id}" + (f", {magcol}" if magcol else "") + (
        f": {words}" if words else "")
    values = dict(dataproduct_type="timeseries", calib_level=2, obs_collection=info.collection_id, obs_id=objectid,
                  obs_publisher_did=did, obs_title=title, access_url=f"/datalink?ID={quote(did, safe='')}",
                  access_format=LINKS_MIME, access_estsize=size, target_name=objectid, s_ra=ra, s_dec=dec,
                  t_xel=npts, t_min=t_min, t_max=t_max, o_ucd=o_ucd, facility_name=info.project or None,
                  magcol=magcol)
    return tuple(values.get(name) for name in NAMES)


def write_part(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with closing(sqlite3.connect(tmp)) as conn:
            _create(conn)
            conn.executemany(f"INSERT INTO {TABLE} VALUES ({','.join('?' * len(COLUMNS))})", rows)
            conn.execute(f"CREATE INDEX {TABLE}_obs_id ON {TABLE}(obs_id)")
            conn.commit()


def part_path(basedir: Path, info) -> Path:
    """Where one collection's rows are kept (named by its id and when it was added)."""
    return Path(basedir) / OBSCORE_DIR / f"{info.collection_id}-{_digest(info.collection_id, info.added_at, ROWS_VERSION)}.sqlite"


def combined(basedir: Path, parts: list[Path]) -> Path:
    """The union of the collections' parts: the file ``ivoa.obscore`` is read from."""
    path = Path(basedir) / "vo" / f"obscore-{_digest(*[p.name for p in parts])}.sqlite"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with closing(sqlite3.connect(tmp)) as conn:
            _create(conn)
            for i, part in enumerate(parts):
                conn.execute(f"ATTACH DATABASE ? AS p{i}", (str(part),))
                conn.execute(f"INSERT INTO {TABLE} SELECT * FROM p{i}.{TABLE}")
                conn.commit()
                conn.execute(f"DETACH DATABASE p{i}")
            conn.execute(f"CREATE INDEX {TABLE}_obs_id ON {TABLE}(obs_collection, obs_id)")
            conn.execute(f"CREATE INDEX {TABLE}_did ON {TABLE}(obs_publisher_did)")
            conn.execute(f"CREATE INDEX {TABLE}_t_min ON {TABLE}(t_min)")
            conn.commit()
    return path


def obscore_file(basedir: Path, collections) -> Path | None:
    """The file ``ivoa.obscore`` is read from, for ``collections``: (info, catalog,
    read_lightcurve) triples; parts missing for a collection are computed now. None when
    no collection has light curves."""
    parts = []
    for info, catalog, read in collections:
        if "lcfname" not in catalog.columns:
            continue
        path = part_path(basedir, info)
        if not path.is_file():
            write_part(path, object_rows(catalog, info, read))
        parts.append(path)
    return combined(basedir, parts) if parts else None


def series_of(basedir: Path, info, objectids) -> dict[str, list[str]] | None:
    """``objectid -> [magcol, ...]`` for these objects of a collection, from its ObsCore
    part; None when the part has not been computed."""
    path = part_path(basedir, info)
    if not path.is_file():
        return None
    out: dict[str, list[str]] = {}
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        for oid, magcol in conn.execute(f"SELECT obs_id, magcol FROM {TABLE} WHERE obs_id IN "
                                        "(SELECT value FROM json_each(?)) AND magcol IS NOT NULL",
                                        (json.dumps(list(objectids)),)):
            out.setdefault(oid, []).append(magcol)
    return out


def served_collections(catalogs, lc_formats):
    """(info, catalog, read_lightcurve) of every collection with a light-curve format."""
    from functools import partial

    from ..objects.lccache import read_collection_lightcurve

    for cid in catalogs.ids():
        catalog = catalogs.get(cid)
        info = catalog.info
        if not info.lcformat:
            continue
        fmt = lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
        yield info, catalog, partial(read_collection_lightcurve, fmt, info)
