"""A dataset's files as download URLs, one per line, for wget or curl
(``GET /api/datasets/<id>/urls``).

Each object gets a line per file it has, in the order of :data:`FILE_KINDS`: its light
curve (``?format=`` when converted on download), its checkplot (one per magnitude column
when the collection keeps a checkplot per column) and its period-finding results.
"""

from __future__ import annotations

from collections.abc import Callable

from .objects.magcols import checkplot_column
from .urls import objects_path, segment

#: file kind -> the catalog column naming the object's file of that kind
FILE_KINDS = {"lightcurve": "lcfname", "checkplot": "cpfname", "periodfinding": "pffname"}


def url_manifest(ds, base_url: str, magcols_of: Callable[[str], list[str]], kinds=tuple(FILE_KINDS),
                 fmt: str = "original") -> str:
    """The manifest of dataset ``ds`` (a :class:`~lcpanel.core.datasets.Dataset`) under
    ``base_url`` (``http://host:port``). ``magcols_of(collection_id)``: the collection's
    magnitude columns with checkplots of their own; ``kinds``: which files to list;
    ``fmt``: the light curves' format (``original``: as the survey wrote them)."""
    none = [None] * ds.nobjects
    wanted = [(kind, ds.data.get(column) or none) for kind, column in FILE_KINDS.items() if kind in kinds]
    lc_suffix = "" if fmt == "original" else f"?format={segment(fmt)}"
    per_collection: dict[str, tuple[str, list[tuple[str, list]]]] = {}
    lines: list[str] = []
    for i, (cid, oid) in enumerate(zip(ds.data["collection"], ds.data["objectid"])):
        known = per_collection.get(cid)
        if known is None:
            known = per_collection[cid] = (base_url + objects_path(cid), [
                (f"?magcol={segment(m)}", ds.data.get(checkplot_column(m)) or none) for m in magcols_of(cid)])
        objects, per_magcol = known
        obj = f"{objects}/{segment(oid)}/"
        for kind, files in wanted:
            if kind == "checkplot" and any(paths[i] for _q, paths in per_magcol):
                lines += [f"{obj}checkplot{q}" for q, paths in per_magcol if paths[i]]
            elif files[i]:
                lines.append(obj + kind + (lc_suffix if kind == "lightcurve" else ""))
    return "\n".join(lines) + "\n"
