"""A dataset's light curves as one Parquet file, for data-science users (pandas, pyarrow,
astropy): a long table with ``collection``, ``objectid`` and every light-curve column
(the union over the dataset's collections; a column a light curve lacks is null there),
one row per point, written in row groups of :data:`ROW_GROUP_OBJECTS` objects.

What the columns mean travels in the schema:

- each field's metadata: ``unit``, ``description``, ``role`` and, for time columns,
  ``timescale``, ``refpos``, ``timeorigin`` (as in :mod:`lcpanel.core.objects.formatinfo`);
- the schema metadata ``lcpanel``: JSON with per collection its columns' facts, time
  systems and flag meanings (``column_info``), and the format's notes;
- ``table_meta_yaml``: the header astropy's own Parquet writer adds, so
  ``astropy.table.Table.read(path)`` gives columns with units and descriptions.

Output is deterministic (no timestamps; pyarrow's ``created_by`` names its version).
"""

from __future__ import annotations

import io
import json

import numpy as np

ROW_GROUP_OBJECTS = 256
SUFFIX = ".parquet"
_FIELD_KEYS = ("role", "timescale", "refpos", "timeorigin", "flags", "bits")


def dataset_parquet(objects: list[list[str]], collections: dict[str, dict], sink=None,
                    request: dict | None = None) -> bytes | None:
    """The Parquet of ``objects`` ([collection, objectid, source file] each) written into
    ``sink`` (a binary file object), or returned as bytes without one; ``collections``:
    collection id -> {"lcformat": spec, "base": directory, "reader": "module:Class", and
    optionally "cache": its light-curve cache directory (:mod:`lcpanel.core.objects.lccache`)};
    ``request``: the light-curve options (:func:`lcpanel.core.objects.lcrequest.apply_request`).
    (A product ``stream`` entry, so the worker's memory holds one row group at a time:
    see :class:`lcpanel.core.products.Entry`.)"""
    if sink is not None:
        write_parquet(objects, collections, sink, request)
        return None
    out = io.BytesIO()
    write_parquet(objects, collections, out, request)
    return out.getvalue()


def _read_all(objects, collections, request=None):
    from .lccache import cached_read, worker_reader
    from .lcrequest import apply_request

    readers = {}
    for cid, objectid, source in objects:
        about = collections[cid]
        if cid not in readers:
            readers[cid] = worker_reader(about["reader"], about["lcformat"], about["base"], about.get("cache"))
        fmt, lccache, token = readers[cid]
        lc = cached_read(fmt, about["lcformat"], source, lccache, token)
        yield cid, objectid, apply_request(lc, request) if request else lc


def _arrow_type(arr: np.ndarray):
    import pyarrow as pa

    if arr.dtype.kind == "U" or arr.dtype.kind == "O":
        return pa.string()
    return pa.from_numpy_dtype(arr.dtype)


def write_parquet(objects, collections, sink, request: dict | None = None) -> None:
    """Stream the light curves into ``sink`` (a path or a binary file): the schema from
    the first light curve of each collection, then one row group per object batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .lcexport import _column_unit_description

    # the schema: the first light curve of each collection states its columns
    firsts = {}
    for cid, objectid, source in objects:
        firsts.setdefault(cid, [cid, objectid, source])
    fields: dict[str, pa.Field] = {}
    about: dict[str, dict] = {}
    units: dict[str, tuple[str, str | None]] = {}
    for cid, _oid, lc in _read_all(list(firsts.values()), collections, request):
        about[cid] = {"column_info": lc.column_info, "time_columns": list(lc.time_columns),
                      "masks": lc.masks, "format": lc.meta.get("format"),
                      **{k: lc.meta[k] for k in ("magcol", "times", "time_conversion") if k in lc.meta}}
        for name, values in lc.columns.items():
            if name in ("collection", "objectid") or name in fields:
                continue
            unit, description = _column_unit_description(lc, name)
            units[name] = (unit, description)
            info = lc.column_info.get(name) or {}
            meta = {"unit": unit, "description": description or ""}
            meta.update({k: json.dumps(info[k]) if not isinstance(info[k], str) else info[k]
                         for k in _FIELD_KEYS if k in info and info[k] is not None})
            if name in lc.time_columns:  # the system as the FITS/VOTable exports state it
                meta.update(_time_fields(lc, name))
            fields[name] = pa.field(name, _arrow_type(np.asarray(values)), nullable=True,
                                    metadata={k: str(v) for k, v in meta.items()})
    schema = pa.schema([pa.field("collection", pa.string(), nullable=False,
                                 metadata={"description": "collection id"}),
                        pa.field("objectid", pa.string(), nullable=False,
                                 metadata={"description": "object id in its collection"}),
                        *fields.values()],
                       metadata={"table::len::collection": str(max(len(str(o[0])) for o in objects)),
                                 "table::len::objectid": str(max(len(str(o[1])) for o in objects)),
                                 "lcpanel": json.dumps({"collections": about, **({"request": request} if request else {})},
                                                       sort_keys=True, default=str),
                                 "table_meta_yaml": _astropy_yaml(schema_fields=fields, units=units)})
    with pq.ParquetWriter(sink, schema, compression="zstd", write_statistics=True) as writer:
        batch: dict[str, list] = {name: [] for name in schema.names}
        count = 0
        for cid, objectid, lc in _read_all(objects, collections, request):
            n = len(lc)
            batch["collection"].append((cid, n))
            batch["objectid"].append((objectid, n))
            for name, field in fields.items():
                if name in lc.columns:
                    values = np.asarray(lc.columns[name])
                    batch[name].append(pa.array(values.tolist() if values.dtype.kind in "UO" else values,
                                                type=field.type, from_pandas=False))
                else:
                    batch[name].append(pa.nulls(n, field.type))
            count += 1
            if count % ROW_GROUP_OBJECTS == 0:
                _flush(writer, schema, batch)
        _flush(writer, schema, batch)


def _time_fields(lc, name: str) -> dict:
    from .lcexport import _column_time

    t = _column_time(lc, name)
    out = {"role": "time", "timescale": t["scale"] or "UNKNOWN"}
    if t["refpos"]:
        out["refpos"] = t["refpos"]
    if t["form"] is not None:
        out["timeorigin"] = repr(float(t["origin"]) + (2400000.5 if t["form"] == "MJD" else 0.0))
    return out


def _flush(writer, schema, batch: dict[str, list]) -> None:
    import pyarrow as pa

    if not batch["objectid"]:
        return
    columns = {name: pa.chunked_array(parts, schema.field(name).type) for name, parts in batch.items()
               if name not in ("collection", "objectid")}
    for name in ("collection", "objectid"):  # (value, rows) per light curve, repeated in one take
        values, counts = zip(*batch[name])
        columns[name] = pa.array(values, pa.string()).take(np.repeat(np.arange(len(values)), counts))
    table = pa.table(columns, schema=schema)
    writer.write_table(table.combine_chunks(), row_group_size=max(1, table.num_rows))
    for parts in batch.values():
        parts.clear()


def _astropy_yaml(schema_fields: dict, units: dict) -> str:
    """The ``table_meta_yaml`` astropy's Parquet writer stores (made by astropy from an
    empty table of the same columns): units, descriptions and dtypes for
    ``Table.read(..., format='parquet')``."""
    from astropy.table.meta import get_yaml_from_table
    from astropy.table import Column, Table

    table = Table()
    table["collection"] = Column(np.array([], dtype=str), description="collection id")
    table["objectid"] = Column(np.array([], dtype=str), description="object id in its collection")
    for name, field in schema_fields.items():
        unit, description = units[name]
        dtype = str if str(field.type) == "string" else field.type.to_pandas_dtype()
        table[name] = Column(np.array([], dtype=dtype), unit=unit or None, description=description)
    return "\n".join(get_yaml_from_table(table))
