"""Light-curve times in another system on request: BJD_TDB, HJD_UTC, MJD_UTC or JD_UTC.

Computed with ``astropy.time`` offline: the built-in ERFA ephemeris
(``solar_system_ephemeris.set('builtin')``) and no IERS or leap-second download
(``iers.conf.auto_download = False`` for the duration of the call). The source is one of
the light curve's time columns whose scale and origin are stated (see
:mod:`lcpanel.core.objects.formatinfo`); barycentric and heliocentric corrections need the
collection's observatory (``location`` in collection.json) and the object's ra/dec.
A conversion that needs something missing is refused with a message naming it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from ...errors import UserError

TARGETS = {
    "BJD_TDB": "Barycentric Julian Date, TDB scale",
    "HJD_UTC": "Heliocentric Julian Date, UTC scale",
    "MJD_UTC": "Modified Julian Date (JD - 2400000.5) at the observatory, UTC scale",
    "JD_UTC": "Julian Date at the observatory, UTC scale",
}
# spacecraft whose position lcpanel cannot compute offline
SPACECRAFT = {"TESS", "KEPLER", "K2", "SPITZER", "CHEOPS", "COROT", "GAIA", "HST", "JWST"}
POSITION_ACCURACY = ("about 2.4 ms per arcsecond of error in the object's position (proper motion is not "
                     "applied); the built-in ERFA ephemeris adds well under 0.1 ms")


def check_location(loc) -> dict:
    """A collection's observatory: ``{"lon": deg, "lat": deg, "height": m}`` (an
    optional ``"name"``) or a spacecraft, ``"TESS"`` / ``{"spacecraft": "TESS"}``."""
    if isinstance(loc, str):
        loc = {"spacecraft": loc}
    if not isinstance(loc, dict):
        raise ValueError("'location' must be {lon, lat, height} in degrees and metres, or a spacecraft name")
    if "spacecraft" in loc:
        return {"spacecraft": str(loc["spacecraft"])}
    out = {}
    for key, lo, hi in (("lon", -360, 360), ("lat", -90, 90), ("height", -500, 10000)):
        value = loc.get(key, 0.0 if key == "height" else None)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                or not lo <= value <= hi:
            raise ValueError(f"location {key} must be a number in [{lo}, {hi}]"
                             + (" (metres)" if key == "height" else " (degrees)"))
        out[key] = float(value)
    if loc.get("name"):
        out["name"] = str(loc["name"])
    return out


@contextmanager
def offline_astropy():
    """Built-in ephemeris and no IERS/leap-second downloads inside the block."""
    from astropy.coordinates import solar_system_ephemeris
    from astropy.utils import iers

    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("iers_degraded_accuracy", "warn"), \
            solar_system_ephemeris.set("builtin"):
        yield


def _earth_location(loc: dict | None, need: str):
    from astropy.coordinates import EarthLocation
    import astropy.units as u

    if not loc:
        raise UserError(f"{need} needs the observatory's position: the collection's collection.json has no "
                        "'location' (site lon/lat/height, or a spacecraft name)", field="times")
    if "spacecraft" in loc:
        raise UserError(f"{need} needs the position of the spacecraft {loc['spacecraft']} at each time, "
                        "which lcpanel cannot compute offline", field="times")
    return EarthLocation.from_geodetic(loc["lon"] * u.deg, loc["lat"] * u.deg, loc.get("height", 0.0) * u.m)


def _sky(ra, dec, need: str):
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        ra = dec = float("nan")
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise UserError(f"{need} needs the object's ra and dec, which its light curve does not give",
                        field="times")
    return SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")


def _sources(lc) -> list[tuple[str, dict]]:
    """(name, time facts) of each time column: its column info, else what lc.meta states
    for the whole light curve (read the same way as the exporters do)."""
    from .lcexport import _column_time

    out = []
    for name in lc.time_columns:
        info = lc.column_info.get(name) or {}
        if not any(k in info for k in ("timescale", "timeorigin", "refpos")):
            t = _column_time(lc, name)
            origin = None if t["origin"] is None else t["origin"] + (2400000.5 if t["form"] == "MJD" else 0.0)
            info = {**info, "timescale": t["scale"], "refpos": t["refpos"], "timeorigin": origin}
        out.append((name, info))
    return out


#: grid step (days) of the light-travel times that are interpolated: consecutive grid times
#: are at most twice this apart, and the error of linear interpolation is then below
#: (2 h)^2 / 8 x |ltt''| ~ 50 microseconds (ltt'' < 1 s/day^2: the site's daily turn and
#: the Earth's orbit)
LTT_GRID_DAYS = 0.01


def _grid(jd: np.ndarray) -> np.ndarray:
    """Indices (into sorted ``jd``) of grid times: the first and last, every time at least
    :data:`LTT_GRID_DAYS` after the last grid time, and each time before a gap wider than that."""
    n = len(jd)
    keep = []
    last = -np.inf
    for i in range(n):
        if jd[i] - last >= LTT_GRID_DAYS or i == n - 1 or jd[i + 1] - jd[i] > LTT_GRID_DAYS:
            keep.append(i)
            last = jd[i]
    return np.asarray(keep, dtype=np.intp)


def light_travel_time(t, sky, kind: str):
    """astropy's ``t.light_travel_time(sky, kind)`` (a TimeDelta, seconds), computed on a
    grid of the times and interpolated linearly: astropy's per-time site transforms take
    ~0.5 ms a point (5 s for a 10,000-point light curve), the grid a few hundred."""
    import astropy.units as u
    from astropy.time import Time, TimeDelta

    jd = np.asarray(t.jd, dtype=np.float64)
    finite = np.isfinite(jd)
    if finite.sum() < 64:
        return t.light_travel_time(sky, kind)
    order = np.argsort(jd[finite], kind="stable")
    sorted_jd = jd[finite][order]
    nodes = _grid(sorted_jd)
    node_jd = sorted_jd[nodes]
    node_t = Time(node_jd, format="jd", scale=t.scale, location=t.location)
    node_s = node_t.light_travel_time(sky, kind).to_value(u.s)
    seconds = np.full(jd.shape, np.nan)
    seconds[finite] = np.interp(jd[finite], node_jd, node_s)
    return TimeDelta(seconds, format="sec")


def convert_times(lc, target: str, location: dict | None = None) -> tuple[np.ndarray, dict]:
    """(values, note) of ``lc``'s times in ``target`` (a key of :data:`TARGETS`). The note
    has ``source`` (column and system), ``conversion`` and ``accuracy`` sentences."""
    from astropy.time import Time

    from .formatinfo import time_label

    target = str(target).upper()
    if target not in TARGETS:
        raise UserError(f"times must be one of {', '.join(TARGETS)}, not {target!r}", field="times")
    reasons = []
    sources = _sources(lc)
    # barycentric sources first for BJD, others first for UTC targets
    sources.sort(key=lambda s: (s[1].get("refpos") == "BARYCENTER") != (target == "BJD_TDB"))
    ra = (lc.objectinfo or {}).get("ra")
    dec = (lc.objectinfo or {}).get("decl", (lc.objectinfo or {}).get("dec"))
    for name, info in sources:
        scale, origin, refpos = info.get("timescale"), info.get("timeorigin"), info.get("refpos")
        if scale is None or origin is None:
            reasons.append(f"{name}: its time {'scale' if scale is None else 'origin'} is not stated")
            continue
        if refpos in ("HELIOCENTER",):
            reasons.append(f"{name}: heliocentric source times are not converted")
            continue
        values = np.asarray(lc.columns[name], dtype=np.float64)
        label = f"{name} ({time_label(info)})"
        need = f"{target} from {label}"
        try:
            with offline_astropy():
                t = Time(origin, values, format="jd", scale=scale.lower())
                if refpos == "BARYCENTER":
                    if target == "BJD_TDB":
                        return t.tdb.jd, {"source": label, "conversion": "change of origin and scale (TDB)",
                                          "accuracy": "exact (double precision)"}
                    # back to the observatory: t_obs = t_bary - ltt(t_obs), two fixed-point steps
                    site, sky = _earth_location(location, need), _sky(ra, dec, need)
                    tb = Time(t.tdb, location=site)
                    tobs = tb - light_travel_time(tb, sky, "barycentric")
                    tobs = Time(tb - light_travel_time(Time(tobs, location=site), sky, "barycentric"), location=site)
                    what = "barycentric light-travel time removed (astropy, built-in ephemeris) for the site"
                    if target == "HJD_UTC":
                        out = (tobs + light_travel_time(tobs, sky, "heliocentric")).utc
                        what += ", heliocentric light-travel time added"
                    else:
                        out = tobs.utc
                    return _form(out, target), {"source": label, "conversion": what, "accuracy": POSITION_ACCURACY}
                # topocentric (or unstated position: the observatory's) source times
                if target in ("JD_UTC", "MJD_UTC"):
                    return _form(t.utc, target), {"source": label, "conversion": f"time scale {scale} to UTC (ERFA)",
                                                  "accuracy": "exact to a microsecond (leap seconds from astropy's "
                                                              "bundled table)"}
                site, sky = _earth_location(location, need), _sky(ra, dec, need)
                t = Time(t, location=site)
                kind = "barycentric" if target == "BJD_TDB" else "heliocentric"
                out = t + light_travel_time(t, sky, kind)
                out = out.tdb if target == "BJD_TDB" else out.utc
                return out.jd, {"source": label,
                                "conversion": f"{kind} light-travel time for the site added (astropy, built-in "
                                              f"ephemeris), scale {scale} to {target.split('_')[1]}",
                                "accuracy": POSITION_ACCURACY}
        except UserError as exc:
            reasons.append(str(exc))
    raise UserError(f"cannot give times as {target}: " + ("; ".join(reasons) if reasons else
                    "the light curve has no time column"), field="times")


def _form(t, target: str) -> np.ndarray:
    return t.mjd if target.startswith("MJD") else t.jd
