"""What the light-curve request options (``magcol``, ``times``, ``mask``; see
:mod:`lcpanel.core.objects.lcrequest`) can name for a dataset: read from the first light
curve of each of its collections, which stands for the collection's format.

Used to check a product's options before any work (a name the light curves lack is
refused, naming the collection) and to offer the choices in the dataset page's form.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .lccache import read_collection_lightcurve
from .lcrequest import apply_request
from .timeconv import TARGETS

#: points of the first light curve the request is tried on before a build
CHECK_POINTS = 16


def first_lightcurves(app, dataset, rows=None):
    """(collection id, light curve) of the first object with a light-curve file of each
    collection among ``rows`` (default: every row); collections without a light-curve
    format are left out."""
    rows = range(dataset.nobjects) if rows is None else rows
    files = dataset.data.get("lcfname", [None] * dataset.nobjects)
    seen = set()
    for i in rows:
        cid = dataset.data["collection"][i]
        if cid in seen:
            continue
        info = app.catalogs.get(cid).info
        path = info.object_file(files[i])
        if path is None or info.lcformat is None:
            continue
        seen.add(cid)
        reader = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
        yield cid, read_collection_lightcurve(reader, info, path)


def check_request(app, dataset, rows, request: dict) -> None:
    """Refuse (UserError naming the field and the collection) a request the first light
    curve of one of the collections cannot give."""
    from dataclasses import replace

    for cid, lc in first_lightcurves(app, dataset, rows):
        # a few points answer whether it can be done; converting all of them can take seconds
        head = replace(lc, columns={k: v[:CHECK_POINTS] for k, v in lc.columns.items()})
        try:
            apply_request(head, request)
        except UserError as exc:
            raise UserError(f"collection {cid!r}: {exc.message}", field=exc.field) from None


def request_choices(app, dataset) -> dict[str, list[str]]:
    """The values each option can take for every collection of the dataset (names a
    collection lacks are left out): magnitude columns, time columns and systems, masks."""
    per = [lc for _cid, lc in first_lightcurves(app, dataset)]
    if not per:
        return {"magcol": [], "times": [], "mask": []}

    def common(values):
        first = list(dict.fromkeys(values(per[0])))
        return [v for v in first if all(v in values(lc) for lc in per[1:])]

    return {"magcol": common(lambda lc: lc.mag_columns),
            "times": common(lambda lc: lc.time_columns) + list(TARGETS),
            "mask": common(lambda lc: list(lc.masks))}
