"""What a light-curve plot says about its axes: the time column and, where known, its
time system; which columns of a light curve are times.

The time system comes from what the light-curve format states: a column's
``column_info`` entry as :mod:`lcpanel.core.objects.formatinfo` writes it (``timescale``,
``refpos``, ``timeorigin``: worded by its ``time_label``), else other keys readers use
(``timesys``/``scale``, ``timeref``/``system``, ``origin``/``jdref``) or the light curve's
``meta`` (``timesys``, ``timeref``); nothing is guessed from a column's name but that it
is a time.
"""

from __future__ import annotations

import re

import numpy as np

#: names of columns that hold times in the formats lcpanel meets (astrobase's HAT, Kepler,
#: TESS readers; CDIPS FITS; the demo formats), compared lowercased
TIME_NAMES = re.compile(r"^(rjd|bjd|hjd|mjd|jd|btjd|time|times|tmid_bjd|tmid_utc|bjd_tdb|hjd_utc|mjd_utc|jd_utc"
                        r"|rbjd|rhjd|bjd_tt)$")
SCALE_KEYS = ("timesys", "scale", "time_scale", "timescale")
SYSTEM_KEYS = ("timeref", "system", "time_system", "reference")
ORIGIN_KEYS = ("origin", "jdref", "time_origin", "timeoffset")
#: FITS TIMEREF values in words
TIMEREF_WORDS = {"SOLARSYSTEM": "barycentric", "HELIOCENTER": "heliocentric", "TOPOCENTER": "topocentric",
                 "GEOCENTER": "geocentric"}


def time_columns(lc) -> list[str]:
    """The time columns of a :class:`~lcpanel.core.objects.lcformats.LightCurve`: those its format
    declares first, then others whose ``column_info`` gives them the role "time" or
    whose name is a usual time column name; only numeric 1-d columns."""
    out = [c for c in getattr(lc, "time_columns", ()) if c in lc.columns]
    for name, info in (getattr(lc, "column_info", None) or {}).items():
        if isinstance(info, dict) and info.get("role") == "time" and name in lc.columns:
            out.append(name)
    out += [c for c in lc.columns if TIME_NAMES.match(c.lower())]
    return [c for c in dict.fromkeys(out) if np.asarray(lc.columns[c]).dtype.kind in "fiu"]


def time_system(column: str, column_info: dict | None = None, meta: dict | None = None) -> str:
    """Words for ``column``'s time system, e.g. "BJD, TDB, JD − 2400000", or "" when the
    format does not say. Per-column statements win over the light curve's."""
    info = (column_info or {}).get(column) or {}
    if not isinstance(info, dict):
        info = {}
    if any(k in info for k in ("timescale", "refpos", "timeorigin")):
        # the format knowledge of lcpanel.core.objects.formatinfo: one wording everywhere
        from .formatinfo import time_label

        return time_label(info)
    meta = meta or {}
    # the light curve's timesys/timeref describe its (first) time column only if it has
    # no per-column statement of its own
    parts = []
    system = _first(info, SYSTEM_KEYS) or _first(meta, SYSTEM_KEYS)
    scale = _first(info, SCALE_KEYS) or _first(meta, SCALE_KEYS)
    origin = _first(info, ORIGIN_KEYS)
    system = TIMEREF_WORDS.get(str(system).upper(), system) if system else system
    for p in (system, scale):
        if p and str(p).upper() not in ("UNKNOWN", "") and str(p) not in parts:
            parts.append(str(p))
    if origin not in (None, "", 0, 0.0):
        parts.append(f"JD − {_num(origin)}" if isinstance(origin, (int, float)) else str(origin))
    return ", ".join(parts)


def time_axis_label(column: str, offset: float = 0.0, column_info: dict | None = None,
                    meta: dict | None = None) -> str:
    """The time axis label: the column's name, the offset subtracted for readable ticks,
    the unit (days) and the time system where known, e.g.
    ``"bjd − 2460473 [d] (BJD, TDB)"``; ``"rjd − 55000 [d] (time system not stated)"``."""
    name = column or "time"
    shift = f" − {_num(offset)}" if offset else ""
    system = time_system(column, column_info, meta)
    return f"{name}{shift} [d] ({system or 'time system not stated'})"


def _first(d: dict, keys):
    for k in keys:
        v = d.get(k)
        if v not in (None, ""):
            return v
    return None


def _num(v) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"
