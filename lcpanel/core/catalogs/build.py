"""Write one collection's derived catalog files from column arrays.

Input is a mapping of catalog key -> 1-d array (astrobase's ``lclist['objects']``, or a
plain table's columns as numpy or pyarrow arrays), or :class:`Batches` of rows read from
a file. Output, in one directory:

- ``catalog-objectinfo.sqlite``: table ``object_catalog`` (``row_id`` 0-based integer
  primary key, every column, and the order-29 HEALPix id ``hpx29``), rows sorted by
  ``hpx29`` so a sky region is a few contiguous row ranges; an FTS5 table ``object_fts``
  over the text columns; the normalised id index ``object_ids`` and its column numbers
  ``object_id_columns`` (:mod:`lcpanel.core.catalogs.idindex`; it also answers equality on
  an alias id column of text, which gets no index of its own); indexes on the object id
  and commonly filtered columns;
  tables ``catalog_info`` and ``catalog_columns`` so the file describes itself. (Catalogs
  built by earlier versions also hold the unit vector ``cx, cy, cz`` and an index on ``hpx29``:
  nothing reads them, the sky index has both.)
- ``catalog-skyindex.npy``: the sky index (:mod:`lcpanel.core.catalogs.skyindex`), read by
  server processes through the file cache; every position search uses it.
- ``catalog-kdtree.pkl`` (astrobase collections only): a scipy cKDTree on the unit
  vectors, tree index = ``row_id``, for astrobase tools that expect one next to an
  lclist. Plain catalogs have no astrobase tools and do not get one (at 1e7 objects it
  was 7% of the disk and 5-9 s of the ingest).

Ingest streams: batches of rows (a Parquet file's row groups, or slices of columns in
memory) become their SQL values as Arrow arrays in a helper thread and are staged in file
order; every row's rank in sky order comes from the positions staged with them, and the
rows come back in that order, a bucket of ranks at a time
(:mod:`lcpanel.core.catalogs.skyorder`), to be inserted into ``object_catalog`` once; a
large catalog's later half of them by a second process, into a file of its own, then
appended (:mod:`lcpanel.core.catalogs.rowsapart`).
The sky index is written from the staged positions in the same order (a stable sort by
``hpx29``). Memory is one batch, then one bucket, and for the sort 24 bytes per object
(its keys, their order and the ranks: 240 MB at 1e7 objects). The table written, a copy
of the file is read by two threads that build the full-text index and the id index on
the other core (:mod:`lcpanel.core.catalogs.apart`) while this one builds the column
indexes; both are then copied in.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.spatial import cKDTree

from ...errors import IngestError
from ..atomic import atomic_path
from . import skyindex
from .basedir import CATALOG_KDTREE, CATALOG_SKYINDEX, CATALOG_SQLITE
from .columns import (ALIAS_COLUMNS, COMMON_INDEXED, ColumnInfo, describe, is_path_column, sql_name,
                      to_sql_values)
from .ahead import ahead
from .apart import PRAGMAS
from .ftsapart import FTSApart
from .idapart import IdIndexApart
from .idindex import btree_of_its_own, id_columns
from .rowsapart import RowsApart, insert_rows, second_writer_from
from .skyorder import ARROW_TYPES, SkyOrderStaging
from .timeline import Step, Timeline
from ..progress import progress_bar

#: rows per batch written (and per chunk read back for the sky index)
BATCH_ROWS = 50_000
#: at most about this many bytes of staged rows per batch written into the catalog: made
#: Python values (a few times larger), two are in memory at once; a batch of the all-sky
#: benchmark's rows is ~9 MB
WRITE_BATCH_BYTES = 10 << 20
#: numpy kinds whose SQL type follows from the dtype alone: such a column stays a numpy
#: array until written, turned into Python values one batch at a time (a whole catalog as
#: Python objects took ~1 KB per object); other columns (astrobase's mixed object arrays)
#: need every value to know their type
CHUNKED_KINDS = "biufUS"
STAGING_PREFIX = "staging"
SNAPSHOT_FILE = "staging-catalog.sqlite"
POSITIONS_FILE = "staging-positions.bin"
FTS_APART_FILE = "fts-apart.sqlite"
IDS_APART_FILE = "ids-apart.sqlite"
ROWS_APART_FILE = "rows-apart.sqlite"
FOOTPRINT_MAX_CELLS = 768
#: rows ANALYZE reads per index (SQLite's ``analysis_limit``): enough for the planner
ANALYSIS_LIMIT = 2000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltCatalog:
    columns: tuple[ColumnInfo, ...]
    nobjects: int
    center_ra: float
    center_decl: float
    radius_deg: float
    footprint: dict
    #: when each step of the build ran (:mod:`lcpanel.core.catalogs.timeline`)
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Batches:
    """A catalog read in batches: ``sqltypes`` maps every key (``objectid``, ``ra`` and
    ``decl`` among them) to its SQL type; ``batches`` yields dicts with those keys whose
    values are 1-d numpy arrays, pyarrow arrays or lists of SQL values, all of one length;
    ``nrows`` is the number of rows, when known (for progress)."""

    sqltypes: dict[str, str]
    batches: Iterator[dict]
    nrows: int | None = None


def build_catalog(
    out_dir: Path,
    arrays: dict | Batches,
    *,
    extra_indexed: tuple[str, ...] = (),
    info: dict | None = None,
    show_progress: bool = True,
    kdtree: bool = True,
) -> BuiltCatalog:
    """Write the catalog files into ``out_dir`` (which must exist).

    ``arrays`` is a :class:`Batches` or a mapping of catalog keys to 1-d numpy or pyarrow
    arrays; ``objectid``, ``ra`` and ``decl`` are required, every other key becomes a
    column (keys of arrays that are not 1-d are left out). ``kdtree`` writes
    ``catalog-kdtree.pkl`` (astrobase collections; see the module docstring). Raises
    :class:`IngestError` on anything that would make a broken catalog.
    """
    source = arrays if isinstance(arrays, Batches) else in_memory_batches(arrays)
    columns = _columns(source.sqltypes, extra_indexed)
    timeline = Timeline()
    path, snapshot = out_dir / CATALOG_SQLITE, out_dir / SNAPSHOT_FILE
    fts = ids = index = None
    sky = _StagedPositions(out_dir / POSITIONS_FILE)
    pool = ThreadPoolExecutor(1, thread_name_prefix="sky-index")
    try:
        with closing(sqlite3.connect(path)) as conn:
            # no sort helper threads (SQLite's default): a single-column index sorts no
            # faster with one (1e7 rows: 5.3 s either way) and spends 3.4 s more CPU, which
            # the builds apart on the other core need
            for pragma in PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")

            idcols = id_columns(c.name for c in columns)
            plain = _PlainIds(c.name for c in columns if c.name in idcols and c.sqltype == "TEXT")
            n, apart_rss_mb = _write_rows(conn, out_dir, columns, source, show_progress, sky, plain, timeline)
            # the builds apart read the rows from a copy: this connection writes the catalog meanwhile
            with timeline.step("copy for the builds apart"):
                shutil.copyfile(path, snapshot)
            fts = FTSApart(out_dir / FTS_APART_FILE, snapshot, [c.name for c in columns if c.fts], timeline)
            ids = IdIndexApart(out_dir / IDS_APART_FILE, snapshot, idcols, timeline, plain=plain.columns)

            def write_sky() -> skyindex.SkyIndex | None:
                # on the core the full-text build frees, while this thread still builds
                # indexes (started at once, beside the full-text build, it saved nothing
                # at 1e7: both cores were busy)
                fts.wait()
                with timeline.step("sky index"):
                    return sky.write_index(out_dir / CATALOG_SKYINDEX)

            skywriter = pool.submit(write_sky)
            _write_indexes(conn, columns, info or {}, fts, ids, show_progress, timeline)
            conn.execute("PRAGMA journal_mode=DELETE")
        index = skywriter.result()
    finally:
        sky.abandon()  # a refused catalog's sky index is not written (if not begun)
        for apart in (fts, ids):
            if apart is not None:
                apart.close()
        pool.shutdown(wait=True)  # the sky index is written before its scratch file goes
        if index is None:
            (out_dir / CATALOG_SKYINDEX).unlink(missing_ok=True)
        snapshot.unlink(missing_ok=True)
        sky.close()
    footprint = sky.cells.footprint()
    if kdtree:
        with timeline.step("kd-tree"), open(out_dir / CATALOG_KDTREE, "wb") as fh:
            pickle.dump(cKDTree(np.array(index.xyz)), fh, protocol=pickle.HIGHEST_PROTOCOL)
    center_ra, center_decl, radius = _bounding_circle(index.xyz)
    total = time.perf_counter() - timeline.origin
    log.debug("catalog of %d objects built in %.1f s: %s", n, total, timeline.summary(),
              extra={"steps": tuple(timeline.steps), "rows_apart_peak_rss_mb": apart_rss_mb})
    return BuiltCatalog(columns=tuple(columns), nobjects=n, center_ra=center_ra, center_decl=center_decl,
                        radius_deg=radius, footprint=footprint, steps=tuple(timeline.steps))


def in_memory_batches(arrays: dict, rows: int = BATCH_ROWS) -> Batches:
    """:class:`Batches` of columns held in memory (numpy or pyarrow arrays)."""
    missing = [k for k in ("objectid", "ra", "decl") if k not in arrays]
    if missing:
        raise IngestError(f"the catalog has no {', '.join(missing)} column; these are required")
    n = len(arrays["objectid"])
    for key, arr in arrays.items():
        if len(arr) != n:
            raise IngestError(f"column {key!r} has {len(arr)} values but objectid has {n}")
    sqltypes, sources = {}, {}
    for key, values in arrays.items():
        if key in ("objectid", "ra", "decl"):
            sqltypes[key], sources[key] = "TEXT" if key == "objectid" else "REAL", values
            continue
        sqltype, source = _source(values)
        if sqltype is not None:
            sqltypes[key], sources[key] = sqltype, source
    batches = ({k: v[start:start + rows] for k, v in sources.items()} for start in range(0, n, rows))
    return Batches(sqltypes, batches, n)


def arrow_sqltype(typ) -> str | None:
    """The SQL type of a pyarrow column type; None for types a catalog column cannot hold
    (nested, binary)."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_boolean(typ) or pa.types.is_integer(typ):
        return "INTEGER"
    if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "REAL"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_temporal(typ):
        return "TEXT"
    return None


def _source(values):
    """(SQL type, values to batch) of one in-memory column; a None type for a column a
    catalog cannot hold (not 1-d; a pyarrow type :func:`arrow_sqltype` has no SQL type for)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):  # the rule of a Parquet file's columns
        return arrow_sqltype(values.type), values
    arr = np.asarray(values)
    if arr.ndim != 1:
        return None, None
    if arr.dtype.kind in CHUNKED_KINDS:
        return to_sql_values(arr[:0])[0], arr
    return to_sql_values(arr)


def _columns(sqltypes: dict[str, str], extra_indexed: tuple[str, ...]) -> list[ColumnInfo]:
    columns: list[ColumnInfo] = []
    seen: dict[str, str] = {}
    first = ["objectid", "ra", "decl"]
    for key in first + [k for k in sqltypes if k not in first]:
        name = sql_name(key)
        if name in seen:
            raise IngestError(f"catalog keys {seen[name]!r} and {key!r} both become column {name!r}")
        seen[name] = key
        columns.append(describe(name, key, sqltypes[key]))
    unknown = [c for c in extra_indexed if c not in seen]
    if unknown:
        raise IngestError(f"cannot index unknown column(s) {', '.join(unknown)}")
    names = set(seen)
    indexed = {"objectid"} | (names & set(ALIAS_COLUMNS)) | (names & set(COMMON_INDEXED)) | set(extra_indexed)
    indexed |= {c.name for c in columns if c.name.rsplit("_", 1)[-1] in ("varperiod", "objectisvar")}
    out = []
    for c in columns:
        fts = c.sqltype == "TEXT" and not is_path_column(c.name)
        out.append(ColumnInfo(**{**c.to_dict(), "indexed": c.name in indexed, "fts": fts}))
    return out


def _write_rows(conn, out_dir: Path, columns: list[ColumnInfo], source: Batches, show_progress: bool,
                sky: _StagedPositions, plain: _PlainIds, timeline: Timeline) -> tuple[int, float]:
    """Stage every row in input order (:mod:`lcpanel.core.catalogs.skyorder`; ``plain``
    checks the id columns as they go), then write
    them into ``object_catalog`` in sky order (``hpx29``, then input order), a large
    catalog's later half by a second process (:mod:`lcpanel.core.catalogs.rowsapart`);
    returns the number of rows and that process's peak RSS in MB (0 if none ran)."""
    decl = ", ".join(f'"{c.name}" {c.sqltype}' for c in columns) + ', "hpx29" INTEGER'
    create = f"CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, {decl})"
    conn.execute(create)
    schema = pa.schema([pa.field(f"c{i}", ARROW_TYPES[c.sqltype]) for i, c in enumerate(columns)]
                       + [pa.field("hpx29", pa.int64())])
    staging = SkyOrderStaging(out_dir, STAGING_PREFIX, schema)
    offset = 0
    apart: RowsApart | None = None

    def arrays(batch: dict) -> pa.RecordBatch:
        nonlocal offset
        values = _batch_arrays(batch, columns, schema, offset, sky)
        plain.check(columns, values)
        offset += values.num_rows
        return values

    try:
        with progress_bar(total=source.nrows, desc="staging catalog", unit="obj", disable=not show_progress) as bar:
            with timeline.step("stage rows"), closing(ahead(source.batches, arrays)) as batches:
                for batch in batches:
                    staging.add(batch)
                    bar.update(batch.num_rows)
                if offset == 0:
                    raise IngestError("the catalog has no objects")
        with timeline.step("sort into sky order"):
            staging.sort(sky.ranks())
        names = ", ".join(f'"{c.name}"' for c in columns)
        insert = f"INSERT INTO object_catalog ({names}, hpx29) VALUES ({','.join('?' * (len(columns) + 1))})"
        batch_rows = max(1, min(BATCH_ROWS, int(WRITE_BATCH_BYTES / staging.row_bytes)))
        split = second_writer_from(offset, len(staging.buckets()))
        with progress_bar(total=offset, desc="writing catalog", unit="obj", disable=not show_progress) as bar:
            mine = 0

            def written(n: int) -> None:
                nonlocal mine
                mine += n
                bar.update(mine + (apart.rows_written if apart else 0) - bar.n)

            with timeline.step("write rows"):
                if split is not None:
                    apart = RowsApart(out_dir / ROWS_APART_FILE, staging.buckets(split), staging.bucket_rows,
                                      batch_rows, create, insert, split * staging.bucket_rows)
                insert_rows(conn, insert, staging.sorted_batches(batch_rows, 0, split), 0, written)
            if apart is not None:
                apart.append_to(conn, timeline, lambda: written(0))
    finally:
        conn.rollback()  # nothing when committed; a refused catalog's partial rows otherwise
        if apart is not None:
            apart.close()
        staging.close()
    return offset, apart.peak_rss_mb if apart else 0.0


def _batch_arrays(batch: dict, columns: list[ColumnInfo], schema: pa.Schema, offset: int,
                  sky: _StagedPositions) -> pa.RecordBatch:
    """One batch's columns as their SQL values, and its ``hpx29``, after checking its
    object ids and positions (``offset``: the batch's first row number); the positions go
    to ``sky`` too."""
    objectids = _id_strings(batch["objectid"])
    empty = pc.or_kleene(pc.is_null(objectids), pc.equal(pc.utf8_length(objectids), 0))
    if pc.any(empty).as_py():
        first = offset + int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
        raise IngestError(f"objects have an empty objectid (first at row {first})")
    ra, decl = (_float64(batch[k]) for k in ("ra", "decl"))
    bad = ~np.isfinite(ra) | ~np.isfinite(decl) | (decl < -90) | (decl > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IngestError(
            f"objects have missing or invalid coordinates, e.g. {objectids[i].as_py()!r} (row {offset + i}) "
            f"at ra={float(ra[i])!r}, decl={float(decl[i])!r}")
    hpx = skyindex.radec_to_hpx29(np.mod(ra, 360.0), decl)
    sky.add(hpx, ra, decl)
    values = [objectids.cast(pa.string())]
    for c in columns[1:]:
        try:
            values.append(_sql_array(batch[c.key], c.sqltype))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise IngestError(f"column {c.key!r} has a value that is not {c.sqltype} (rows {offset} to "
                              f"{offset + len(hpx) - 1}): {exc}") from None
    return pa.RecordBatch.from_arrays(values + [pa.array(hpx, pa.int64())], schema=schema)


def _flat(values):
    """A pyarrow column as one plain array (chunks combined, dictionary decoded); numpy
    arrays and lists as they are."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    return values


def _id_strings(values) -> pa.Array:
    """Object ids as trimmed pyarrow strings (numbers as Python writes them, bytes as UTF-8)."""
    values = _flat(values)
    if not (isinstance(values, pa.Array) and (pa.types.is_string(values.type)
                                              or pa.types.is_large_string(values.type))):
        items = values.to_pylist() if isinstance(values, pa.Array) else np.asarray(values).tolist()
        values = pa.array([None if v is None else v.decode() if isinstance(v, bytes) else str(v) for v in items],
                          type=pa.string())
    return pc.utf8_trim_whitespace(values)


def _float64(values) -> np.ndarray:
    values = _flat(values)
    try:
        if isinstance(values, pa.Array):
            return pc.fill_null(values.cast(pa.float64()), np.nan).to_numpy()
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise IngestError("ra and decl must be numbers in decimal degrees") from None


def _sql_array(values, sqltype: str) -> pa.Array:
    """One batch of one column as its SQL values (``sqltype``'s Arrow type; null for NaN,
    infinities, nulls and empty strings)."""
    typ = ARROW_TYPES[sqltype]
    if isinstance(values, list):  # SQL values already (columns.to_sql_values)
        return pa.array(values, typ)
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "b":
            return pa.array(values.astype(np.int64), typ)
        if values.dtype.kind in "iu":  # Arrow's cast refuses a uint64 over int64's range
            return pa.array(values.astype(values.dtype.newbyteorder("="), copy=False)).cast(typ)
        if values.dtype.kind == "f":
            values = values.astype(np.float64)
            return pa.array(values, typ, mask=~np.isfinite(values))
        return pa.array(to_sql_values(values)[1], typ)
    values = _flat(values)
    if pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
        floats = pc.fill_null(values.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        return pa.array(floats, typ, mask=~np.isfinite(floats))
    if pa.types.is_boolean(values.type) or pa.types.is_integer(values.type):
        return values.cast(typ)
    values = values.cast(typ)  # text, or dates and times written as text
    return pc.if_else(pc.equal(pc.utf8_length(values), 0), pa.scalar(None, typ), values)


def _write_indexes(conn, columns: list[ColumnInfo], info: dict, fts: FTSApart, ids: IdIndexApart,
                   show_progress: bool, timeline: Timeline) -> None:
    """The unique objectid index, the column indexes, the id index and FTS (built apart by
    ``ids`` and ``fts`` meanwhile, copied in) and the tables that describe the catalog; a
    progress bar counts the steps."""
    indexed = [c.name for c in columns if c.indexed and c.name != "objectid" and btree_of_its_own(c.name, c.sqltype)]
    with progress_bar(total=len(indexed) + 4, desc="indexing catalog", unit="step",
                      disable=not show_progress) as bar:
        bar.set_postfix_str("objectid")
        try:
            with timeline.step("index objectid"):
                conn.execute('CREATE UNIQUE INDEX object_catalog_objectid ON object_catalog(objectid)')
        except sqlite3.IntegrityError:
            ndup, = conn.execute("SELECT count(*) FROM (SELECT 1 FROM object_catalog GROUP BY objectid "
                                 "HAVING count(*) > 1)").fetchone()
            dups = [r[0] for r in conn.execute("SELECT objectid FROM object_catalog GROUP BY objectid "
                                               "HAVING count(*) > 1 ORDER BY objectid LIMIT 5")]
            raise IngestError(f"{ndup} objectids occur more than once, e.g. {', '.join(dups)}") from None
        bar.update()
        for name in indexed:
            bar.set_postfix_str(name)
            with timeline.step(f"index {name}"):
                conn.execute(f'CREATE INDEX "object_catalog_{name}" ON object_catalog("{name}")')
            bar.update()
        bar.set_postfix_str("id index")
        ids.copy_into(conn)
        bar.update()
        bar.set_postfix_str("full text")
        fts.copy_into(conn)  # its wait is not a step: the build apart is one
        bar.update()
        bar.set_postfix_str("statistics")
        conn.execute("CREATE TABLE catalog_info (key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany("INSERT INTO catalog_info VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.items()])
        conn.execute("CREATE TABLE catalog_columns (position INTEGER, name TEXT PRIMARY KEY, key TEXT, "
                     "sqltype TEXT, unit TEXT, ucd TEXT, description TEXT, indexed INTEGER, fts INTEGER)")
        conn.executemany(
            "INSERT INTO catalog_columns VALUES (?,?,?,?,?,?,?,?,?)",
            [(i, c.name, c.key, c.sqltype, c.unit, c.ucd, c.description, int(c.indexed), int(c.fts))
             for i, c in enumerate(columns)])
        # statistics from a sample of each index: the planner needs their shape, not exact counts
        with timeline.step("statistics"):
            conn.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
            conn.execute("ANALYZE")
            conn.commit()
        bar.update()


class _PlainIds:
    """Which of the id columns ``names`` hold only plain ids (printable ASCII without
    spaces, :func:`~lcpanel.core.catalogs.idindex.is_plain`), checked batch by batch as
    the rows are staged: the id index then normalises them in SQLite without checking each
    value (at 1e7 objects, ~0.1 s of Arrow here against ~10 s of SQL there)."""

    def __init__(self, names):
        self._unsure = set(names)
        self._mixed: set[str] = set()

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(self._unsure - self._mixed)

    def check(self, columns: list[ColumnInfo], batch: pa.RecordBatch) -> None:
        """Look at one staged batch (its columns in ``columns``' order)."""
        for i, c in enumerate(columns):
            if c.name in self._unsure and c.name not in self._mixed and not _all_plain(batch.column(i)):
                self._mixed.add(c.name)


def _all_plain(values: pa.Array) -> bool:
    """Whether every string of ``values`` (nulls aside) is printable ASCII without spaces
    (``ascii_is_printable`` is false for any other byte, space aside)."""
    values = pc.drop_null(values)
    return bool(pc.all(pc.ascii_is_printable(values)).as_py() is not False
                and pc.max(pc.find_substring(values, " ")).as_py() in (None, -1))


class _StagedPositions:
    """The rows' positions as they are staged (input order), appended to a scratch file;
    :meth:`write_index` writes the sky index from them in the rows' order in
    ``object_catalog`` (``hpx29``, then input order: a stable sort), without reading the
    catalog back (at 1e7 objects that read was 9 s of the ingest), and ``cells`` counts the
    footprint (:func:`footprint_cells`) as they come."""

    DTYPE = np.dtype([("hpx29", "<i8"), ("ra", "<f8"), ("decl", "<f8")])

    def __init__(self, path: Path):
        self.path = path
        self.n = 0
        self.cells = _FootprintCounter()
        self.abandoned = False
        self._order: np.ndarray | None = None
        self._fh = open(path, "wb")

    def add(self, hpx29: np.ndarray, ra: np.ndarray, decl: np.ndarray) -> None:
        part = np.empty(len(hpx29), self.DTYPE)
        part["hpx29"], part["ra"], part["decl"] = hpx29, ra, decl
        self._fh.write(part.tobytes())
        self.cells.add(hpx29)
        self.n += len(part)

    def order(self) -> np.ndarray:
        """The rows' input numbers in sky order (``hpx29``, then input order); once every
        row is added."""
        if self._order is None:
            self._fh.close()
            staged = np.memmap(self.path, dtype=self.DTYPE, mode="r", shape=(self.n,))
            self._order = np.argsort(staged["hpx29"], kind="stable")
            del staged
        return self._order

    def ranks(self) -> np.ndarray:
        """Each row's position in sky order, by input number."""
        order = self.order()
        ranks = np.empty_like(order)
        ranks[order] = np.arange(len(order))
        return ranks

    def write_index(self, path: Path) -> skyindex.SkyIndex | None:
        """Write the sky index (chunk by chunk into the memory-mapped file); return it,
        mapped read-only; None when :meth:`abandon` came first."""
        if self.abandoned:
            return None
        order = self.order()
        staged = np.memmap(self.path, dtype=self.DTYPE, mode="r", shape=(self.n,))
        with atomic_path(path) as tmp:
            records = np.lib.format.open_memmap(tmp, mode="w+", dtype=skyindex.RECORD_DTYPE, shape=(self.n,))
            for start in range(0, self.n, BATCH_ROWS):
                rows = staged[order[start:start + BATCH_ROWS]]
                part = records[start:start + len(rows)]
                part["hpx29"] = rows["hpx29"]
                part["x"], part["y"], part["z"] = skyindex.radec_to_xyz(rows["ra"], rows["decl"]).T
                part["row"] = np.arange(start, start + len(rows))
            records.flush()
            del records
        del staged
        return skyindex.SkyIndex.load(path)

    def abandon(self) -> None:
        """The catalog is not wanted: a :meth:`write_index` not yet begun writes nothing."""
        self.abandoned = True

    def close(self) -> None:
        """Close and delete the scratch file."""
        self._fh.close()
        self.path.unlink(missing_ok=True)


def _bounding_circle(xyz: np.ndarray) -> tuple[float, float, float]:
    """A centre (mean direction) and the radius that contains every object, in degrees."""
    step = BATCH_ROWS * 4
    mean = sum(np.asarray(xyz[i:i + step]).sum(axis=0) for i in range(0, len(xyz), step)) / len(xyz)
    norm = np.linalg.norm(mean)
    if norm < 1e-9:
        return 0.0, 0.0, 180.0
    centre = mean / norm
    lowest = min(float((np.asarray(xyz[i:i + step]) @ centre).min()) for i in range(0, len(xyz), step))
    radius = float(np.degrees(np.arccos(np.clip(lowest, -1.0, 1.0))))
    ra = float(np.degrees(np.arctan2(centre[1], centre[0])) % 360.0)
    dec = float(np.degrees(np.arcsin(np.clip(centre[2], -1.0, 1.0))))
    return ra, dec, radius


def footprint_cells(hpx29: np.ndarray) -> dict:
    """The HEALPix cells (nested) that hold objects, at the deepest order giving at most
    ``FOOTPRINT_MAX_CELLS`` cells, with the object count in each."""
    counter = _FootprintCounter()
    counter.add(np.asarray(hpx29, dtype=np.int64))
    return counter.footprint()


class _FootprintCounter:
    """:func:`footprint_cells` of positions added chunk by chunk: counts per cell at order
    12, coarsened an order at a time while there are more than ``FOOTPRINT_MAX_CELLS``
    cells (the answer is then coarser still), so it stays small whatever is added."""

    def __init__(self):
        self.order = 12
        self.cells = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, hpx29: np.ndarray) -> None:
        cells, counts = np.unique(hpx29 >> np.int64(2 * (29 - self.order)), return_counts=True)
        self._merge(np.concatenate([self.cells, cells]), np.concatenate([self.counts, counts]))
        while len(self.cells) > FOOTPRINT_MAX_CELLS and self.order > 0:
            self.order -= 1
            self._merge(self.cells >> np.int64(2), self.counts)

    def _merge(self, cells: np.ndarray, counts: np.ndarray) -> None:
        self.cells, inverse = np.unique(cells, return_inverse=True)
        self.counts = np.bincount(inverse, weights=counts, minlength=len(self.cells)).astype(np.int64)

    def footprint(self) -> dict:
        return {"order": self.order, "cells": self.cells.tolist(), "counts": self.counts.tolist()}
