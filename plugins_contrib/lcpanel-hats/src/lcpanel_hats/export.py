"""Export an lcpanel collection to HATS: partitioned Parquet keyed by the same order-29
HEALPix id (``_healpix_29`` = lcpanel's ``hpx29``), with a margin cache for cross-matches.

The collection's catalog is streamed out of its SQLite file in row order (which is
HEALPix order) into Parquet chunks, then ``hats-import`` partitions them on a Dask
cluster into a HATS *collection*: the catalog, its margin cache (default: the basedir's
maximum cross-match radius) and ``collection.properties``. ``lcpanel-columns.json``
beside them keeps lcpanel's column descriptions (units, UCDs, indexed columns), which
``hats-add`` reads back.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN
from lcpanel.plugin_api import Basedir, Conflict, progress_bar, UserError

from . import KIND

COLUMNS_FILE = "lcpanel-columns.json"
CHUNK_ROWS = 500_000
#: lcpanel's derived position columns that HATS does not need (``hpx29`` becomes ``_healpix_29``)
DROPPED = ("cx", "cy", "cz", "hpx29")
_ARROW = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}


def export_collection(basedir: str | Path, collection_id: str, out_dir: str | Path, *,
                      margin_arcsec: float | None = None, pixel_threshold: int = 1_000_000,
                      highest_order: int = 10, client=None, workers: int = 2,
                      show_progress: bool = True) -> Path:
    """Write collection ``collection_id`` of ``basedir`` as a HATS collection in ``out_dir``.

    ``margin_arcsec`` defaults to the basedir's ``xmatch_max_radius_arcsec``; ``client``
    is a ``distributed.Client`` (default: a LocalCluster of ``workers`` processes for
    the duration of the export). Returns ``out_dir``. Refuses an existing ``out_dir``.
    """
    from lcpanel.plugin_api import App

    base = Basedir(basedir)
    info = base.collection(collection_id)  # NotFound with a suggestion
    if info.kind == KIND:
        raise UserError(f"collection {collection_id!r} is already a HATS catalog ({info.source})")
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise Conflict(f"{out_dir} exists and is not empty; choose another output directory")
    settings = App(base.path, load_entrypoints=False).config.search
    margin = float(margin_arcsec if margin_arcsec is not None else settings.xmatch_max_radius_arcsec)
    if not margin > 0:
        raise UserError(f"the margin must be a positive number of arcsec, not {margin_arcsec!r}")
    columns = [c for c in info.columns if c.name not in DROPPED]
    with tempfile.TemporaryDirectory(prefix="lcpanel-hats-", dir=out_dir.parent) as tmp:
        staging = Path(tmp) / "input"
        staging.mkdir()
        files = _stream_parquet(info, columns, staging, show_progress)
        _run_import(files, Path(tmp) / "build", collection_id, margin, pixel_threshold, highest_order,
                    info.nobjects, client, workers, show_progress)
        built = Path(tmp) / "build" / collection_id
        (built / COLUMNS_FILE).write_text(json.dumps({
            "collection_id": collection_id, "name": info.name, "description": info.description,
            "project": info.project, "datarelease": info.datarelease, "citation": info.citation,
            "ra_column": "ra", "dec_column": "decl", "id_column": "objectid",
            "columns": [c.to_dict() for c in columns]}, indent=1))
        if out_dir.exists():
            out_dir.rmdir()
        shutil.move(str(built), str(out_dir))
    return out_dir


def _stream_parquet(info, columns, staging: Path, show_progress: bool) -> list[Path]:
    """The catalog's rows in row order, ``_healpix_29`` first, as Parquet chunks."""
    schema = pa.schema([(SPATIAL_INDEX_COLUMN, pa.int64())] + [(c.name, _ARROW.get(c.sqltype, pa.string()))
                                                              for c in columns])
    names = ", ".join(["hpx29"] + [f'"{c.name}"' for c in columns])
    uri = f"file:{info.catalog_sqlite}?mode=ro"
    files = []
    with closing(sqlite3.connect(uri, uri=True)) as conn, \
            progress_bar(total=info.nobjects, desc="reading catalog", unit="obj", disable=not show_progress) as bar:
        cursor = conn.execute(f"SELECT {names} FROM object_catalog ORDER BY row_id")
        while True:
            rows = cursor.fetchmany(CHUNK_ROWS)
            if not rows:
                break
            table = pa.Table.from_arrays([pa.array(list(col), type=field.type)
                                          for col, field in zip(zip(*rows), schema)], schema=schema)
            path = staging / f"part-{len(files):05d}.parquet"
            pq.write_table(table, path)
            files.append(path)
            bar.update(len(rows))
    return files


def _run_import(files, build_dir: Path, name: str, margin: float, pixel_threshold: int, highest_order: int,
                nobjects: int, client, workers: int, show_progress: bool) -> None:
    from hats_import.collection.arguments import CollectionArguments
    from hats_import.pipeline import pipeline_with_client

    from .jitcache import cache_hats_kernels, cache_on_workers

    cache_hats_kernels()

    args = (
        CollectionArguments(output_artifact_name=name, output_path=build_dir, progress_bar=show_progress,
                            resume=False, tmp_dir=build_dir / "tmp")
        .catalog(input_file_list=[str(f) for f in files], file_reader="parquet", ra_column="ra",
                 dec_column="decl", use_healpix_29=True, add_healpix_29=False,
                 pixel_threshold=pixel_threshold, highest_healpix_order=highest_order,
                 expected_total_rows=nobjects)
        .add_margin(margin_threshold=margin, is_default=True)
    )
    if client is not None:
        pipeline_with_client(args, client)
        return
    import logging

    from distributed import Client

    from .runtime import local_cluster

    logging.getLogger("distributed").setLevel(logging.WARNING)  # progress bars say enough
    with local_cluster(workers) as cluster, Client(cluster) as own:
        cache_on_workers(own)
        pipeline_with_client(args, own)
