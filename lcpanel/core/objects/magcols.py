"""Magnitude columns (astrobase "magcols"): one checkplot per object and magcol.

astrobase's pipeline makes ``checkplot-<objectid>-<magcol>.pkl`` for every magcol it
processed (e.g. HATNet's ``aep_000`` and ``atf_000``) and ``add_cpinfo_to_lclist`` adds
per-magcol catalog columns ``<magcol>.objectisvar``, ``<magcol>.varperiod`` ... for each
magcol it was run on. A collection keeps them all:

- catalog column ``<magcol>.cpfname`` (SQL ``<magcol>_cpfname``) per magcol: that magcol's
  checkplot; ``cpfname`` stays the default (first) magcol's, so older readers keep working;
- per-magcol variability columns (``<magcol>.objectisvar`` ...) for every magcol with
  checkplots: those ``add_cpinfo_to_lclist`` did not make are filled from the
  checkplots' ``varinfo`` and ``comments`` here;
- the collection's magcols, in order, are the keys of its ``*.cpfname`` columns
  (:func:`collection_magcols`); the first is the default.

Nothing here imports astrobase: checkplots are read with
:func:`lcpanel.core.objects.checkplots.load_checkplot`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..catalogs.columns import sql_name

CPFNAME_SUFFIX = ".cpfname"
#: per-magcol variability keys astrobase's add_cpinfo_to_lclist makes (CPINFO_DEFAULTKEYS
#: with first level False), as (checkplot location, catalog key suffix)
VARINFO_KEYS = (("comments", "comments"), ("varinfo.vartags", "vartags"), ("varinfo.varperiod", "varperiod"),
                ("varinfo.varepoch", "varepoch"), ("varinfo.varisperiodic", "varisperiodic"),
                ("varinfo.objectisvar", "objectisvar"))
FEATURE_KEYS = ("median", "mad", "stdev", "mag_iqr", "skew", "kurtosis", "stetsonj", "stetsonk", "eta_normal",
                "linear_fit_slope", "magnitude_ratio", "beyond1std")


@dataclass
class Discovered:
    """Checkplots found under a directory: per magcol, one relative path (or None) per
    object; files that could not be matched to an object, and objects with no magcol
    in their checkplot name."""

    paths: dict[str, list] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    plain: list = field(default_factory=list)  # checkplot-<objectid>.pkl (no magcol), one per object or None


def discover(directory: Path, objectids: list[str], prefix: str, source: Path) -> Discovered:
    """Every ``<prefix><objectid>[-<magcol>].pkl[.gz]`` under ``directory``.

    The object id is the longest leading part of the stem that is a known id (ids may
    contain dashes), the rest after its dash the magcol."""
    known = set(objectids)
    index = {o: i for i, o in enumerate(objectids)}
    found = Discovered(plain=[None] * len(objectids))
    if not directory.is_dir():
        return found
    for path in sorted(directory.rglob(prefix + "*.pkl*")):
        stem = path.name[len(prefix):].split(".pkl")[0]
        rel = os.path.relpath(path, source)
        if stem in known:
            found.plain[index[stem]] = found.plain[index[stem]] or rel
            continue
        parts = stem.split("-")
        for k in range(len(parts) - 1, 0, -1):
            objectid, magcol = "-".join(parts[:k]), "-".join(parts[k:])
            if objectid in known:
                column = found.paths.setdefault(magcol, [None] * len(objectids))
                column[index[objectid]] = column[index[objectid]] or rel
                break
        else:
            found.unmatched.append(rel)
    return found


def order_magcols(found: list[str], preferred: list[str]) -> list[str]:
    """``found`` magcols with those in ``preferred`` (the lclist's ``magcols``, then the
    format's) first, in that order, then the rest sorted."""
    first = [m for m in dict.fromkeys(preferred) if m in found]
    return first + sorted(m for m in found if m not in first)


def fill_varinfo(objects: dict, magcol: str, paths: list, source: Path) -> int:
    """Add ``<magcol>.<key>`` variability columns (add_cpinfo_to_lclist's per-magcol keys)
    that ``objects`` lacks, read from the magcol's checkplots; returns how many
    checkplots were read. Objects without a checkplot get None."""
    from .checkplots import CheckplotError, load_checkplot

    wanted = [(loc, f"{magcol}.{key}") for loc, key in VARINFO_KEYS if f"{magcol}.{key}" not in objects]
    wanted += [(f"varinfo.features.{k}", f"{magcol}.{k}") for k in FEATURE_KEYS if f"{magcol}.{k}" not in objects]
    if not wanted:
        return 0
    columns = {key: [None] * len(paths) for _loc, key in wanted}
    nread = 0
    for i, rel in enumerate(paths):
        if rel is None:
            continue
        try:
            cp = load_checkplot(source / rel)
        except (CheckplotError, OSError):
            continue
        nread += 1
        for loc, key in wanted:
            columns[key][i] = _plain(_dig(cp, loc))
    for key, values in columns.items():
        if any(v is not None for v in values):
            objects[key] = np.array(values, dtype=object)
    return nread


def _dig(d, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def _plain(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v if isinstance(v, (str, int, float)) or v is None else str(v)


# --- reading a collection's magcols -----------------------------------------------------------


def checkplot_column(magcol: str) -> str:
    """The catalog (SQL) column holding ``magcol``'s checkplot paths."""
    return sql_name(magcol + CPFNAME_SUFFIX)


def collection_magcols(columns) -> list[str]:
    """A collection's magcols with checkplots, default first, from its
    :class:`~lcpanel.core.catalogs.columns.ColumnInfo` list."""
    return [c.key[:-len(CPFNAME_SUFFIX)] for c in columns
            if isinstance(c.key, str) and c.key.endswith(CPFNAME_SUFFIX) and c.key != CPFNAME_SUFFIX]


def is_checkplot_column(name: str) -> bool:
    return name == "cpfname" or name.endswith("_cpfname")


def choose_magcol(columns, requested: str | None) -> str | None:
    """The magcol to show: ``requested`` when the collection has it, the default (first)
    when ``requested`` is empty; None for collections without per-magcol checkplots
    (then ``requested`` must be empty). Raises UserError naming the choices."""
    magcols = collection_magcols(columns)
    requested = (requested or "").strip()
    if not requested:
        return magcols[0] if magcols else None
    if requested in magcols:
        return requested
    choices = ", ".join(magcols) if magcols else "none (this collection has one checkplot per object)"
    raise UserError(f"no magnitude column {requested!r}; this collection has: {choices}", field="magcol")
