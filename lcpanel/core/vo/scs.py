"""Simple Cone Search 1.03 over one collection or all of them.

``RA``, ``DEC`` and ``SR`` are in degrees (ICRS); ``SR=0`` answers with the columns and
no rows. ``VERB`` chooses the columns: 1 the identifier, position and distance; 2 also
the principal columns (magnitudes, number of detections...); 3 every column. Rows come
from the sky index (HEALPix ranges and the exact angular cut), nearest first, at most
``MAXREC`` (more: ``overflow``). The identifier and position columns carry the UCD1
words SCS 1.03 requires (``ID_MAIN``, ``POS_EQ_RA_MAIN``, ``POS_EQ_DEC_MAIN``), which
pyvo's ``SCSRecord.pos`` and ``.id`` read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...errors import UserError
from .tap_schema import TapColumn, collection_table
from .votable import VOField

SCS_UCDS = {"objectid": "ID_MAIN", "ra": "POS_EQ_RA_MAIN", "decl": "POS_EQ_DEC_MAIN"}
DIST_FIELD = VOField(name="dist_deg", datatype="double", unit="deg", ucd="pos.angDistance",
                     description="distance from the cone centre")
COLLECTION_FIELD = VOField(name="collection", datatype="char", arraysize="*", ucd="meta.dataset",
                           description="collection the object belongs to")
ID_FIELD = VOField(name="id", datatype="unicodeChar", arraysize="*", ucd="ID_MAIN",
                   description="collection/objectid: unique over all collections")


@dataclass(frozen=True)
class ConeRequest:
    ra: float
    dec: float
    sr: float
    verb: int
    maxrec: int


def _number(params: dict, name: str, *, required: bool = True, default=None) -> float | None:
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        if required:
            raise UserError(f"the {name} parameter is required (decimal degrees)", field=name)
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise UserError(f"{name} must be a number, not {str(raw)[:40]!r}", field=name) from None
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number", field=name)
    return value


def parse_request(params: dict, *, max_sr_deg: float, default_maxrec: int, max_maxrec: int) -> ConeRequest:
    """Validate SCS parameters (``params``: upper-case names -> strings)."""
    ra = _number(params, "RA")
    dec = _number(params, "DEC")
    sr = _number(params, "SR")
    if not -90.0 <= dec <= 90.0:
        raise UserError(f"DEC must be between -90 and 90 degrees, not {dec:g}", field="DEC")
    if not -360.0 <= ra <= 360.0:
        raise UserError(f"RA must be between 0 and 360 degrees, not {ra:g}", field="RA")
    if sr < 0:
        raise UserError("SR must not be negative", field="SR")
    if sr > max_sr_deg:
        raise UserError(f"SR {sr:g} deg is over this service's maximum of {max_sr_deg:g} deg", field="SR")
    verb = _number(params, "VERB", required=False, default=2)
    if verb not in (1, 2, 3):
        raise UserError("VERB must be 1, 2 or 3", field="VERB")
    maxrec = _number(params, "MAXREC", required=False, default=default_maxrec)
    if maxrec < 0 or maxrec != int(maxrec):
        raise UserError("MAXREC must be a non-negative integer", field="MAXREC")
    return ConeRequest(ra=ra % 360.0, dec=dec, sr=sr, verb=int(verb), maxrec=min(int(maxrec), max_maxrec))


def _columns(catalogs_infos, verb: int) -> list[TapColumn]:
    """The columns shown at ``verb``, shared by every collection searched."""
    tables = [collection_table(info) for info in catalogs_infos]
    common = set.intersection(*({c.name for c in t.columns} for t in tables)) if tables else set()
    columns = [c for c in tables[0].columns if c.name in common] if tables else []
    if verb == 1:
        return [c for c in columns if c.name in SCS_UCDS]
    if verb == 2:
        return [c for c in columns if c.name in SCS_UCDS or c.principal]
    return columns


def cone_search(catalogs, collection_ids: list[str], request: ConeRequest):
    """(fields, rows, overflow) of one cone over the given collections."""
    cats = [catalogs.get(c) for c in collection_ids]
    columns = _columns([c.info for c in cats], request.verb)
    names = [c.name for c in columns]
    fields = [replace(c.vofield(), ucd=SCS_UCDS.get(c.name, c.ucd)) for c in columns]
    several = len(cats) > 1
    if several:
        fields = [ID_FIELD, COLLECTION_FIELD] + [replace(f, ucd="meta.id") if f.ucd == "ID_MAIN" else f
                                                 for f in fields]
    fields.append(DIST_FIELD)
    if request.sr == 0:
        return fields, [], False
    found = []
    for cat in cats:
        rows, dist = cat.skyindex.cone(request.ra, request.dec, request.sr)
        rows, dist = rows[: request.maxrec + 1], dist[: request.maxrec + 1]
        values = cat.fetch_values(rows.tolist(), names)
        for d, vals in zip(dist.tolist(), values):
            found.append((d, cat.collection_id, vals))
    found.sort(key=lambda item: item[0])
    overflow = len(found) > request.maxrec
    found = found[: request.maxrec]
    out = []
    oid = names.index("objectid") if "objectid" in names else None
    for d, cid, vals in found:
        if several:
            ident = f"{cid}/{vals[oid]}" if oid is not None else cid
            out.append((ident, cid, *vals, d))
        else:
            out.append((*vals, d))
    return fields, out, overflow
