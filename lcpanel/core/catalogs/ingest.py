"""Ingest: turn a collection directory (astrobase products) or a plain catalog file into
a registered collection of a basedir.

Everything is built in a temporary directory under ``BASEDIR/collections`` and renamed
into place, then registered in one SQLite transaction; on any error the basedir is left
as it was.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ... import __version__
from ...errors import Conflict, IngestError
from ..atomic import atomic_dir
from .basedir import Basedir, CollectionInfo, validate_collection_id
from .build import BATCH_ROWS, Batches, BuiltCatalog, arrow_sqltype, build_catalog
from ..objects import magcols
from ..clock import now_iso
from .columns import sql_name

LCLIST = "lclist-catalog.pkl"
COLLECTION_JSON = "collection.json"
CATALOG_SUFFIXES = {".csv": "ascii.csv", ".fits": "fits", ".fit": "fits", ".fz": "fits", ".gz": None,
                    ".parquet": "parquet", ".pq": "parquet", ".ecsv": "ascii.ecsv", ".vot": "votable",
                    ".xml": "votable"}
ID_NAMES = ("objectid", "object_id", "id", "source_id", "name")
RA_NAMES = ("ra", "ra_deg", "raj2000", "ra_icrs", "radeg")
DEC_NAMES = ("decl", "dec", "dec_deg", "dej2000", "dec_icrs", "de_icrs", "decdeg")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionMeta:
    """What people read about a collection."""

    name: str
    description: str = ""
    project: str = ""
    datarelease: int = 0
    citation: str = ""


def add_astrobase_collection(
    app,
    basedir: Basedir,
    source_dir: str | Path,
    *,
    collection_id: str | None = None,
    meta: dict | None = None,
    lcformat: dict | None = None,
    field_fits: str | Path | None = None,
    index_columns: tuple[str, ...] = (),
    show_progress: bool = True,
) -> CollectionInfo:
    """Ingest an astrobase collection directory (``lclist-catalog.pkl``, ``lightcurves/``,
    ``checkplots/``, ``periodfinding/``, optional field FITS image).

    ``meta`` and ``lcformat`` override what ``collection.json`` in the directory says;
    without either, the format key recorded in the lclist pickle is used.
    """
    source = Path(source_dir).resolve()
    if not source.is_dir():
        raise IngestError(f"{source_dir} is not a directory")
    defaults = _read_collection_json(source)
    collection_id = validate_collection_id(collection_id or collection_slug(source.name))
    check_collection_free(basedir, collection_id)
    lclist = _read_lclist(source)
    objects = {k: np.asarray(v) for k, v in lclist["objects"].items()}
    if not (source / "lightcurves").is_dir():
        raise IngestError(f"{source} has no lightcurves/ directory")
    objects["lcfname"] = _relative_lc_paths(source, objects)
    objectids = [str(o) for o in objects["objectid"].tolist()]
    notes = _add_checkplot_columns(objects, source, objectids, lclist)
    objects["pffname"] = _product_paths(source / "periodfinding", objectids, "periodfinding-", source)

    spec = lcformat or defaults.get("lcformat") or {"kind": "astrobase", "formatkey": lclist.get("lcformat")}
    fmt = _check_lcformat(app, spec, source, source / objects["lcfname"][0])
    declared = _declarations(defaults, source)
    fits = field_fits if field_fits is not None else defaults.get("field_fits")
    fits_path = _check_field_fits(source, fits) if fits else None
    cmeta = _meta(defaults, meta, source.name)
    for note in notes:
        log.warning("ingest of %s: %s", source, note)
    return _build_and_register(
        basedir, collection_id, objects, cmeta, kind="astrobase", source=source,
        lcformat={**fmt.to_spec(), **declared}, field_fits=fits_path, index_columns=index_columns,
        show_progress=show_progress, app=app, notes=notes)


def add_catalog_collection(
    app,
    basedir: Basedir,
    catalog_file: str | Path,
    *,
    collection_id: str | None = None,
    meta: dict | None = None,
    id_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
    index_columns: tuple[str, ...] = (),
    show_progress: bool = True,
) -> CollectionInfo:
    """Ingest a plain catalog (CSV, FITS table, Parquet, ECSV, VOTable) with an object id,
    ra and dec in decimal degrees, and any other columns. It has no light curves."""
    path = Path(catalog_file).resolve()
    if not path.is_file():
        raise IngestError(f"{catalog_file} is not a file")
    stem = path.name.split(".")[0]
    collection_id = validate_collection_id(collection_id or collection_slug(stem))
    check_collection_free(basedir, collection_id)
    arrays = _read_table(path, id_column, ra_column, dec_column)
    cmeta = _meta({}, meta, stem)
    return _build_and_register(
        basedir, collection_id, arrays, cmeta, kind="catalog", source=path, lcformat=None,
        field_fits=None, index_columns=index_columns, show_progress=show_progress, app=app)


def remove_collection(app, basedir: Basedir, collection_id: str) -> None:
    """Unregister a collection and delete its derived catalog files (never the source)."""
    info = basedir.collection(collection_id)
    with closing(basedir.connect(readonly=False)) as conn, conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'collection_objects'").fetchone():
            # a table of every object id that older basedirs have; nothing reads it any more
            conn.execute("DELETE FROM collection_objects WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM collection_columns WHERE collection_id = ?", (collection_id,))
        conn.execute("DELETE FROM collections WHERE collection_id = ?", (collection_id,))
    shutil.rmtree(info.catalog_dir, ignore_errors=True)


# --- reading inputs ---------------------------------------------------------------------


def collection_slug(text: str) -> str:
    """A collection id made from a file or directory name (lower case, ``[a-z0-9_]``, at most 48)."""
    slug = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = "c_" + slug
    return slug[:48]


def check_collection_free(basedir: Basedir, collection_id: str) -> None:
    """Raise :class:`Conflict` when ``collection_id`` is registered; remove a catalog directory
    a crashed ingest left behind under that id."""
    if collection_id in basedir.collection_ids():
        raise Conflict(f"collection {collection_id!r} is already in {basedir.path}; "
                       f"remove it first ('lcpanel remove-collection') or choose another --id")
    leftover = basedir.catalog_dir(collection_id)
    if leftover.exists():
        # a crash between the rename and the registry commit: nothing refers to it
        shutil.rmtree(leftover)


def _read_collection_json(source: Path) -> dict:
    path = source / COLLECTION_JSON
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IngestError(f"{path} must hold a JSON object")
    return data


def _read_lclist(source: Path) -> dict:
    path = source / LCLIST
    if not path.is_file():
        raise IngestError(f"{source} has no {LCLIST} (make it with astrobase lcproc.catalogs.make_lclist "
                          "and add_cpinfo_to_lclist)")
    try:
        with open(path, "rb") as fh:
            lclist = pickle.load(fh)  # the operator's own file, named on the command line
    except Exception as exc:
        raise IngestError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(lclist, dict) or not isinstance(lclist.get("objects"), dict):
        raise IngestError(f"{path} is not an astrobase light-curve catalog (no 'objects' dict)")
    missing = [k for k in ("objectid", "ra", "decl", "lcfname") if k not in lclist["objects"]]
    if missing:
        raise IngestError(f"{path} has no {', '.join(missing)} column(s) in 'objects'")
    return lclist


def _relative_lc_paths(source: Path, objects: dict) -> np.ndarray:
    """Light-curve paths relative to the collection directory (the catalog may have been
    made elsewhere, so fall back to finding the file by name under lightcurves/)."""
    by_name: dict[str, str] = {}
    for root, _dirs, files in os.walk(source / "lightcurves"):
        for f in files:
            by_name.setdefault(f, os.path.relpath(os.path.join(root, f), source))
    out, missing = [], []
    for objectid, lcf in zip(objects["objectid"].tolist(), objects["lcfname"].tolist()):
        lcf = str(lcf)
        candidate = Path(lcf) if os.path.isabs(lcf) else source / lcf
        if candidate.is_file() and candidate.resolve().is_relative_to(source):
            out.append(os.path.relpath(candidate.resolve(), source))
        elif Path(lcf).name in by_name:
            out.append(by_name[Path(lcf).name])
        else:
            missing.append(str(objectid))
    if missing:
        raise IngestError(f"{len(missing)} light curves named in {LCLIST} are not under {source}/lightcurves, "
                          f"e.g. for {', '.join(missing[:5])}")
    return np.array(out, dtype=object)


def _product_paths(directory: Path, objectids: list[str], prefix: str, source: Path) -> np.ndarray:
    """Per-object file (``<prefix><objectid>[-<magcol>].pkl[.gz]``) under ``directory``, or None."""
    known = set(objectids)
    found: dict[str, str] = {}
    if directory.is_dir():
        for path in sorted(directory.rglob(prefix + "*.pkl*")):
            stem = path.name[len(prefix):].split(".pkl")[0]
            candidates = [stem] + [stem.rsplit("-", k)[0] for k in (1, 2)]
            for objectid in candidates:
                if objectid in known:
                    found.setdefault(objectid, os.path.relpath(path, source))
                    break
    return np.array([found.get(o) for o in objectids], dtype=object)


def _add_checkplot_columns(objects: dict, source: Path, objectids: list[str], lclist: dict) -> list[str]:
    """Every checkplot of every object: ``<magcol>.cpfname`` per magcol, ``cpfname`` the
    default (first) magcol's, and per-magcol variability columns for magcols
    ``add_cpinfo_to_lclist`` was not run on (from their checkplots). Returns notes on
    what was left out or filled in (see :mod:`lcpanel.core.objects.magcols`)."""
    found = magcols.discover(source / "checkplots", objectids, "checkplot-", source)
    notes = []
    if found.unmatched:
        notes.append(f"{len(found.unmatched)} checkplot file(s) match no object of {LCLIST} and are left out, "
                     f"e.g. {', '.join(found.unmatched[:3])}")
    preferred = [str(m) for m in (lclist.get("magcols") or [])]
    order = magcols.order_magcols(list(found.paths), preferred)
    for magcol in order:
        paths = found.paths[magcol]
        objects[f"{magcol}{magcols.CPFNAME_SUFFIX}"] = np.array(paths, dtype=object)
        missing = sum(p is None for p in paths)
        if missing:
            notes.append(f"magcol {magcol}: {missing} of {len(paths)} objects have no checkplot")
        if magcol not in preferred:
            nread = magcols.fill_varinfo(objects, magcol, paths, source)
            if nread:
                notes.append(f"magcol {magcol}: variability columns read from its {nread} checkplots "
                             f"(add_cpinfo_to_lclist was not run for it)")
    default = found.paths[order[0]] if order else [None] * len(objectids)
    objects["cpfname"] = np.array([d or p for d, p in zip(default, found.plain)], dtype=object)
    return notes


def ingest_notes(info: CollectionInfo) -> list[str]:
    """What ingest left out or filled in for a collection (stored in its catalog)."""
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT value FROM catalog_info WHERE key = 'ingest_notes'").fetchone()
    return json.loads(row[0]) if row else []


def _check_lcformat(app, spec: dict, source: Path, sample: Path):
    if not isinstance(spec, dict) or "kind" not in spec:
        raise IngestError(f"light-curve format must be a dict with a 'kind', not {spec!r}")
    fmt = app.lc_formats.get(spec["kind"]).from_spec(spec, source)
    fmt.check(sample)
    return fmt


def _declarations(defaults: dict, source: Path) -> dict:
    """collection.json's per-column declarations, quality masks and observatory location
    (see core/formatinfo.py), stored with the light-curve format."""
    from ..objects.formatinfo import check_collection_declarations

    try:
        return check_collection_declarations(defaults)
    except ValueError as exc:
        raise IngestError(f"{source / COLLECTION_JSON}: {exc}") from None


def _check_field_fits(source: Path, fits) -> str:
    from astropy.io import fits as pyfits
    from astropy.wcs import WCS

    path = Path(fits)
    path = path if path.is_absolute() else source / path
    if not path.is_file():
        raise IngestError(f"field image {path} does not exist")
    try:
        with pyfits.open(path) as hdul:
            hdu = next(h for h in hdul if h.data is not None and getattr(h.data, "ndim", 0) == 2)
            wcs = WCS(hdu.header)
    except StopIteration:
        raise IngestError(f"field image {path} has no 2-d image HDU") from None
    except Exception as exc:
        raise IngestError(f"cannot read field image {path}: {exc}") from None
    if not wcs.has_celestial:
        raise IngestError(f"field image {path} has no celestial WCS")
    return str(path.resolve())


def _meta(defaults: dict, overrides: dict | None, fallback_name: str) -> CollectionMeta:
    merged = {k: defaults[k] for k in ("name", "description", "project", "datarelease", "citation") if k in defaults}
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    merged.setdefault("name", fallback_name)
    try:
        merged["datarelease"] = int(merged.get("datarelease", 0))
    except (TypeError, ValueError):
        raise IngestError(f"datarelease must be an integer, not {merged['datarelease']!r}") from None
    for key in ("name", "description", "project", "citation"):
        merged[key] = str(merged.get(key, ""))
    if not merged["name"].strip():
        raise IngestError("the collection needs a name")
    return CollectionMeta(**merged)


def _read_table(path: Path, id_column, ra_column, dec_column) -> dict[str, np.ndarray] | Batches:
    from astropy.table import Table

    suffixes = [s.lower() for s in path.suffixes]
    fmt = None
    for s in reversed(suffixes):
        fmt = CATALOG_SUFFIXES.get(s)
        if fmt:
            break
    if fmt is None:
        raise IngestError(f"cannot tell the format of {path.name}: use .csv, .fits, .parquet, .ecsv or .vot")
    if fmt == "parquet":
        return _parquet_batches(path, id_column, ra_column, dec_column)
    try:
        table = Table.read(path, format=fmt)
    except Exception as exc:
        raise IngestError(f"cannot read {path.name} as {fmt}: {exc}") from None
    picked = _pick_columns(path, table.colnames, id_column, ra_column, dec_column)
    arrays = {}
    for role, col in picked.items():
        arrays[role] = _plain(table[col])
    taken = set(picked.values())
    for col in table.colnames:
        if col in taken or table[col].ndim != 1:
            continue
        arrays[col] = _plain(table[col])
    return arrays


def _pick_columns(path: Path, colnames: list[str], id_column, ra_column, dec_column) -> dict[str, str]:
    """The file's columns for objectid, ra and decl: as named, or the first known name."""
    names = {n.lower(): n for n in colnames}
    picked = {}
    for role, given, choices in (("objectid", id_column, ID_NAMES), ("ra", ra_column, RA_NAMES),
                                 ("decl", dec_column, DEC_NAMES)):
        if given:
            if given not in colnames:
                raise IngestError(f"{path.name} has no column {given!r}; it has {', '.join(colnames[:30])}")
            picked[role] = given
        else:
            match = next((names[c] for c in choices if c in names), None)
            if match is None:
                raise IngestError(f"{path.name} has no {role} column (looked for {', '.join(choices)}); "
                                  f"name it with --{'id' if role == 'objectid' else role if role == 'ra' else 'dec'}-column")
            picked[role] = match
    for col in colnames:
        role = col.lower()
        if role in picked and col != picked[role]:
            raise IngestError(f"{path.name} has a column {col!r} besides {picked[role]!r}, the column read as "
                              f"{role}; rename one of them, or name the {role} column on the command line")
    return picked


def _parquet_batches(path: Path, id_column, ra_column, dec_column) -> Batches:
    """A Parquet file read by pyarrow one batch of rows at a time, strings kept as Arrow
    strings. (astropy's reader made the whole file fixed-width numpy arrays, four bytes per
    character of the longest value: a 1e6-row catalog took 7.8 s and 800 MB through it.)"""
    import pyarrow.parquet as pq

    try:
        # read a column chunk at a time: pre-buffering held the whole file (1e7 rows: 780 MB)
        pfile = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        schema = pfile.schema_arrow
    except Exception as exc:
        raise IngestError(f"cannot read {path.name} as parquet: {exc}") from None
    picked = _pick_columns(path, schema.names, id_column, ra_column, dec_column)
    keys = dict(picked)
    sqltypes = {"objectid": "TEXT", "ra": "REAL", "decl": "REAL"}
    for name in schema.names:
        sqltype = arrow_sqltype(schema.field(name).type)
        if name not in picked.values() and sqltype is not None:
            keys[name], sqltypes[name] = name, sqltype

    def batches():
        try:
            for batch in pfile.iter_batches(batch_size=BATCH_ROWS, columns=list(dict.fromkeys(keys.values()))):
                yield {key: batch.column(name) for key, name in keys.items()}
        except (OSError, pa.ArrowException) as exc:
            raise IngestError(f"cannot read {path.name} as parquet: {exc}") from None

    return Batches(sqltypes, batches(), pfile.metadata.num_rows)


def _plain(column) -> np.ndarray:
    """A numpy array from an astropy column, masked values as NaN or None."""
    data = column
    if getattr(column, "mask", None) is not None and np.any(column.mask):
        if column.dtype.kind == "f":
            return np.asarray(column.filled(np.nan))
        arr = np.asarray(column.data, dtype=object)
        arr[np.asarray(column.mask)] = None
        return arr
    arr = np.asarray(data)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    return arr


# --- building and registering -------------------------------------------------------------


def _build_and_register(basedir: Basedir, collection_id: str, arrays: dict, meta: CollectionMeta, *, kind, source,
                        lcformat, field_fits, index_columns, show_progress, app, notes=()) -> CollectionInfo:
    target = basedir.catalog_dir(collection_id)
    info = {"collection_id": collection_id, **meta.__dict__, "kind": kind, "source": str(source),
            "lcformat": lcformat, "lcpanel_version": __version__, "ingest_notes": list(notes)}
    index_columns = tuple(sql_name(c) for c in index_columns)
    with atomic_dir(target) as tmp:
        built = build_catalog(tmp, arrays, extra_indexed=index_columns, info=info, show_progress=show_progress,
                              kdtree=kind == "astrobase")
    return register_collection(app, basedir, collection_id, built, meta, kind=kind, source=source,
                               lcformat=lcformat, field_fits=field_fits)


def register_collection(app, basedir: Basedir, collection_id: str, built: BuiltCatalog, meta: CollectionMeta, *,
                        kind, source, lcformat, field_fits) -> CollectionInfo:
    """Register the collection whose derived files are in place in
    ``basedir.catalog_dir(collection_id)`` and tell plugins (``collection_added``). If the
    registration fails, that directory is removed: the basedir is as it was."""
    target = basedir.catalog_dir(collection_id)
    try:
        _register(basedir, collection_id, built, meta, kind=kind, source=source, catalog_dir=target,
                  lcformat=lcformat, field_fits=field_fits)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    collection = basedir.collection(collection_id)
    app.notify("collection_added", collection=collection)
    return collection


def _register(basedir: Basedir, collection_id: str, built: BuiltCatalog, meta: CollectionMeta, *, kind, source,
              catalog_dir: Path, lcformat, field_fits) -> None:
    now = now_iso()
    with closing(basedir.connect(readonly=False)) as conn:
        try:
            with conn:
                conn.execute(
                    "INSERT INTO collections VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (collection_id, meta.name, meta.description, meta.project, meta.datarelease, meta.citation,
                     kind, str(source), str(catalog_dir), json.dumps(lcformat) if lcformat else None, field_fits,
                     built.nobjects, built.center_ra, built.center_decl, built.radius_deg,
                     json.dumps(built.footprint), now, __version__))
                conn.executemany(
                    "INSERT INTO collection_columns VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(collection_id, i, c.name, c.key, c.sqltype, c.unit, c.ucd, c.description, int(c.indexed),
                      int(c.fts)) for i, c in enumerate(built.columns)])
        except sqlite3.IntegrityError:
            raise Conflict(f"collection {collection_id!r} was added by another process meanwhile") from None

