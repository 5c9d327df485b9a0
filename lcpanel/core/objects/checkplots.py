"""What the web UI's tiles and object page need from an astrobase checkplot pickle.

A checkplot pickle (``checkplot-<objectid>-<magcol>.pkl``, plain or gzipped) holds the
object's info, a finder chart, the light curve and its plot, one dict per period-finding
method (``0-gls``, ``1-bls``...: periodogram arrays, best periods and phased light
curves under integer keys 0, 1, 2 with base64 PNG plots), and the reviewer's
``varinfo`` and ``comments``. See ``/work/shared/ASTROBASE.md``, "Shapes of the files".

astrobase is never imported here. Pickles are read with a restricted unpickler that only
rebuilds plain Python containers and numpy arrays/scalars (a checkplot holds nothing
else), so a tampered pickle cannot run code; anything else raises
:class:`CheckplotError`. Callers resolve and check the path (inside the collection
directory) before calling :func:`load_checkplot`.

Functions:

- :func:`load_checkplot` - read a pickle, cached per process by file identity
  (path, inode, size, mtime) in a small LRU. The dict returned is shared: do not mutate.
- :func:`tiles` - finder chart, unphased and phased light-curve PNGs for a tile.
- :func:`object_summary` - JSON-able facts for the object page, with periodograms
  downsampled for plotting (keeping the peaks).
- :func:`magseries`, :func:`phase_fold`, :func:`periodogram_peaks` - numbers for
  interactive re-folding and "pick a period from the periodogram peaks".

Conventions (astrobase's): periods and epochs in days (the light curve's time system);
magnitudes, so larger is fainter; the epoch of a phased light curve is the time of
*minimum light*, i.e. of the *maximum* magnitude; PDM periodograms store Stellingwerf's
theta, where the *lowest* value is the best period (every other method: highest).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import pickle
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..gunzip import GZIP_ERRORS, gunzip

CACHE_SIZE = 8
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_POINTS = 1000
MAX_NBINS = 1000
# astrobase's period-finder method codes -> short labels (astrobase.plotbase.METHODSHORTLABELS
# is longer; these fit a tile)
METHOD_LABELS = {
    "gls": "GLS", "bls": "BLS", "pdm": "PDM", "aov": "AoV", "mav": "AoVMH", "acf": "ACF",
    "win": "SWin", "sls": "SLS", "tls": "TLS", "ext": "External",
}
# methods whose periodogram value is best when lowest (astrobase.periodbase.spdm: theta)
LOWER_IS_BETTER = frozenset({"pdm"})
# a finalized object's best phased plot "matches" its adopted period within this fraction
PERIOD_MATCH_RTOL = 0.01
VARINFO_KEYS = ("objectisvar", "varperiod", "varepoch", "vartags", "varisperiodic")

_METHOD_KEY = re.compile(r"^(\d+)-(\w+)$")


class CheckplotError(UserError):
    """A checkplot pickle that cannot be read (corrupt, not a checkplot, or holding
    objects other than plain containers and numpy data)."""

    status = 422


# --- reading ------------------------------------------------------------------------------

_ALLOWED_GLOBALS = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy.ma.core", "_mareconstruct"), ("numpy.ma.core", "MaskedArray"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("builtins", "range"), ("builtins", "bytearray"), ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("__builtin__", "complex"), ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"),
}


class _CheckplotUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a checkplot should not contain {module}.{name}")


def _unpickle(data: bytes):
    try:
        return _CheckplotUnpickler(io.BytesIO(data)).load()
    except UnicodeDecodeError:
        # written by Python 2 (astrobase's own reader does the same)
        return _CheckplotUnpickler(io.BytesIO(data), encoding="latin1").load()


def read_checkplot_bytes(raw: bytes, name: str = "checkplot") -> tuple[dict, bool, int]:
    """Decode a checkplot file's bytes: (dict, was it gzipped, pickle protocol)."""
    gzipped = raw[:2] == GZIP_MAGIC
    try:
        data = gunzip(raw) if gzipped else raw
        protocol = data[1] if data[:1] == b"\x80" and len(data) > 1 else 0
        cp = _unpickle(data)
    except (OSError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError,
            pickle.UnpicklingError, MemoryError, *GZIP_ERRORS) as exc:
        raise CheckplotError(f"cannot read {name}: {type(exc).__name__}: {exc}") from None
    if not isinstance(cp, dict) or "objectid" not in cp:
        raise CheckplotError(f"{name} is not an astrobase checkplot (no objectid)")
    return cp, gzipped, protocol


_cache: OrderedDict[tuple, dict] = OrderedDict()
_cache_lock = threading.Lock()


def load_checkplot(path: str | Path) -> dict:
    """The checkplot pickle at ``path`` (gzipped or not, told by its first bytes).

    ``path`` must already be resolved and checked by the caller. Results are cached per
    process by (path, inode, size, mtime): a rewritten file is read again. The returned
    dict is shared with the cache: treat it as read-only. Raises :class:`CheckplotError`
    for an unreadable file and ``FileNotFoundError`` for a missing one.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _cache_lock:
        cp = _cache.get(key)
        if cp is not None:
            _cache.move_to_end(key)
            return cp
    cp, _gz, _proto = read_checkplot_bytes(path.read_bytes(), path.name)
    with _cache_lock:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]
        _cache[key] = cp
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return cp


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# --- plain values -------------------------------------------------------------------------

_SKIP = object()


def scalar(value, default=_SKIP):
    """A JSON-able Python scalar for ``value`` (numpy scalars and one-element arrays
    unwrapped, non-finite floats -> None, bytes decoded), or ``default`` if it is not a
    scalar."""
    if isinstance(value, np.ndarray):
        if value.size != 1 or value.ndim > 1:
            return default
        value = value.reshape(-1)[0]
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return default


def _float(value) -> float | None:
    v = scalar(value, None)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _scalars(mapping) -> dict:
    if not isinstance(mapping, dict):
        return {}
    out = {}
    for k, v in mapping.items():
        s = scalar(v)
        if s is not _SKIP:
            out[str(k)] = s
    return out


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        value = ", ".join(str(scalar(v, v)) for v in value)
    s = scalar(value, None)
    if s is None:
        return None
    s = str(s)
    return s or None


def decode_png(value) -> bytes | None:
    """PNG bytes from a checkplot's base64 image (str or bytes; raw PNG passes through),
    or None when absent or not a PNG."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)) and bytes(value[:8]) == PNG_MAGIC:
        return bytes(value)
    if not isinstance(value, (str, bytes, bytearray)):
        return None
    try:
        data = base64.b64decode(value)
    except (binascii.Error, ValueError):
        return None
    return data if data[:8] == PNG_MAGIC else None


# --- period-finding entries ---------------------------------------------------------------


def method_code(key: str) -> str:
    """'0-gls' -> 'gls' (older checkplots use the bare method name as the key)."""
    m = _METHOD_KEY.match(str(key))
    return (m.group(2) if m else str(key)).lower()


def method_label(key: str) -> str:
    code = method_code(key)
    return METHOD_LABELS.get(code, code.upper())


def pf_entries(cp: dict) -> list[tuple[str, dict]]:
    """(key, entry) of each period-finding method, in the checkplot's ``pfmethods`` order."""
    keys = cp.get("pfmethods")
    if not isinstance(keys, (list, tuple)):
        keys = sorted((k for k in cp if isinstance(k, str) and _METHOD_KEY.match(k)),
                      key=lambda k: int(k.split("-", 1)[0]))
    return [(str(k), cp[k]) for k in keys if isinstance(cp.get(k), dict)]


def _phased(entry: dict) -> list[tuple[int, dict]]:
    return sorted(((k, v) for k, v in entry.items()
                   if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and isinstance(v, dict)),
                  key=lambda kv: int(kv[0]))


def _phased_tile(key: str, index: int, ph: dict) -> dict:
    return {
        "key": key,
        "method": method_code(key),
        "label": method_label(key),
        "index": int(index),
        "period": _float(ph.get("period")),
        "epoch": _float(ph.get("epoch")),
        "png": decode_png(ph.get("plot")),
    }


def adopted_period(cp: dict) -> float | None:
    """The reviewed period: varinfo's varperiod when the object is marked variable
    (objectisvar == 1) and the period is a positive number; else None."""
    varinfo = cp.get("varinfo") or {}
    isvar = scalar(varinfo.get("objectisvar"), None)
    if isinstance(isvar, str):  # astrobase's checkplotserver may store form values as text
        isvar = int(isvar) if isvar.strip().isdigit() else None
    period = _float(varinfo.get("varperiod"))
    if period is None and isinstance(varinfo.get("varperiod"), str):
        try:
            period = float(varinfo["varperiod"])
        except ValueError:
            period = None
        period = period if period is not None and math.isfinite(period) else None
    if isvar == 1 and not isinstance(isvar, bool) and period is not None and period > 0:
        return period
    return None


def method_plots(cp: dict) -> list[dict | None]:
    """Per period-finding method, in :func:`pf_entries` order, the checkplot's own phased
    light curve at the method's best period (its phased entry 0) as a
    ``{key, method, label, index, period, epoch, png}`` (png None when the entry holds no
    PNG); None for a method without a phased entry. Position n is the API's
    ``tiles/method-<n>.png``."""
    return [_phased_tile(key, 0, entry[0]) if isinstance(entry.get(0), dict) else None
            for key, entry in pf_entries(cp)]


def png_dimensions(png: bytes) -> tuple[int, int] | None:
    """(width, height) of PNG bytes, from their IHDR chunk; None when it is not there."""
    if len(png) < 24 or png[:8] != PNG_MAGIC or png[12:16] != b"IHDR":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def tiles(cp: dict) -> dict:
    """PNG images for the object's tile.

    ``finder`` and ``unphased`` are PNG bytes (or None). ``phased`` is a list of
    ``{key, method, label, index, period, epoch, png}``: when the review is finalized
    (objectisvar == 1 and varperiod set, see :func:`adopted_period`) it holds one entry,
    the phased plot (of any method, any of its best periods) whose period is closest to
    varperiod, with ``matches_varperiod`` telling whether it is within 1%; otherwise one
    entry per method (its best period, key 0), in ``pfmethods`` order.
    """
    entries = pf_entries(cp)
    varperiod = adopted_period(cp)
    phased: list[dict] = []
    if varperiod is not None:
        best = None
        for key, entry in entries:
            for index, ph in _phased(entry):
                p = _float(ph.get("period"))
                if p is None:
                    continue
                diff = abs(p - varperiod) / varperiod
                if best is None or diff < best[0]:
                    best = (diff, key, index, ph)
        if best is None:
            first = next(((k, e) for k, e in entries if _phased(e)), None)
            if first is not None:
                index, ph = _phased(first[1])[0]
                best = (math.inf, first[0], index, ph)
        if best is not None:
            tile = _phased_tile(best[1], best[2], best[3])
            tile["matches_varperiod"] = bool(best[0] <= PERIOD_MATCH_RTOL)
            phased.append(tile)
    else:
        phased = [tile for tile in method_plots(cp) if tile is not None]
    ms = cp.get("magseries") or {}
    return {
        "objectid": _text(cp.get("objectid")),
        "finder": decode_png(cp.get("finderchart")),
        "unphased": decode_png(ms.get("plot") if isinstance(ms, dict) else None),
        "phased": phased,
        "finalized": varperiod is not None,
        "varperiod": varperiod,
    }


# --- summary ------------------------------------------------------------------------------


def finite_periodogram(periods, lspvals) -> tuple[np.ndarray, np.ndarray]:
    """A stored periodogram as two equal-length float arrays, keeping only the points with
    a finite positive period and a finite value (None reads as empty)."""
    p = np.asarray(periods if periods is not None else [], dtype=np.float64).reshape(-1)
    v = np.asarray(lspvals if lspvals is not None else [], dtype=np.float64).reshape(-1)
    n = min(len(p), len(v))
    p, v = p[:n], v[:n]
    ok = np.isfinite(p) & np.isfinite(v) & (p > 0)
    return p[ok], v[ok]


def downsample_periodogram(periods, lspvals, max_points: int = DEFAULT_MAX_POINTS,
                           lower_is_better: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` (period, value) pairs for plotting: the finite points split
    into ``max_points`` runs in their stored order (astrobase grids are uniform in
    frequency) and the best value of each run kept (highest; lowest when
    ``lower_is_better``), so every peak of the periodogram survives, the global best too."""
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 2:
        raise UserError(f"max_points must be an integer >= 2, not {max_points!r}", field="max_points")
    p, v = finite_periodogram(periods, lspvals)
    n = len(p)
    if n <= max_points:
        return p, v
    score = -v if lower_is_better else v
    starts = np.linspace(0, n, int(max_points) + 1).astype(np.int64)[:-1]
    starts = np.unique(starts)
    segbest = np.maximum.reduceat(score, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    hits = np.flatnonzero(score == segbest[seg])
    _, first = np.unique(seg[hits], return_index=True)
    keep = hits[first]
    return p[keep], v[keep]


def lower_is_better(method: str) -> bool:
    return method_code(method) in LOWER_IS_BETTER


def object_summary(cp: dict, max_points: int = DEFAULT_MAX_POINTS) -> dict:
    """JSON-able facts about the object: objectid, objectinfo (scalars only), varinfo
    (objectisvar, varperiod, varepoch, vartags, varisperiodic; features as scalars),
    comments, status, and per period-finding method its best periods and periodogram
    (at most ``max_points`` points, see :func:`downsample_periodogram`).

    Non-finite numbers become None (strict JSON). ``lower_is_better`` marks
    periodograms whose best value is the minimum (PDM)."""
    varinfo = cp.get("varinfo") if isinstance(cp.get("varinfo"), dict) else {}
    vi = {
        "objectisvar": scalar(varinfo.get("objectisvar"), None),
        "varperiod": _float(varinfo.get("varperiod")),
        "varepoch": _float(varinfo.get("varepoch")),
        "vartags": _text(varinfo.get("vartags")),
        "varisperiodic": scalar(varinfo.get("varisperiodic"), None),
        "features": _scalars(varinfo.get("features")),
    }
    methods = []
    for key, entry in pf_entries(cp):
        lower = lower_is_better(key)
        periods, lspvals = downsample_periodogram(entry.get("periods"), entry.get("lspvals"), max_points, lower)
        nbest = entry.get("nbestperiods")
        nbestvals = entry.get("nbestlspvals")
        methods.append({
            "key": key,
            "method": method_code(key),
            "label": method_label(key),
            "bestperiod": _float(entry.get("bestperiod")),
            "nbestperiods": [_float(x) for x in nbest] if isinstance(nbest, (list, tuple, np.ndarray)) else [],
            "nbestlspvals": [_float(x) for x in nbestvals]
            if isinstance(nbestvals, (list, tuple, np.ndarray)) else [],
            "lower_is_better": lower,
            "npoints": int(np.size(entry.get("periods"))) if entry.get("periods") is not None else 0,
            "periods": periods.tolist(),
            "lspvals": lspvals.tolist(),
            "phased": [{"index": int(i), "period": _float(ph.get("period")), "epoch": _float(ph.get("epoch"))}
                       for i, ph in _phased(entry)],
        })
    status = cp.get("status")
    return {
        "objectid": _text(cp.get("objectid")),
        "objectinfo": _scalars(cp.get("objectinfo")),
        "varinfo": vi,
        "comments": _text(cp.get("comments")),
        "pfmethods": methods,
        "status": _text(status) if not isinstance(status, dict) else _scalars(status),
    }


# --- light curves -------------------------------------------------------------------------


def magseries(cp: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, mags, errs) from the checkplot's ``magseries``, float64, keeping only points
    where all three are finite. A checkplot without errors gives errs of NaN (and keeps
    every point with finite time and magnitude)."""
    ms = cp.get("magseries")
    if not isinstance(ms, dict) or ms.get("times") is None or ms.get("mags") is None:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty.copy(), empty.copy()
    times = np.asarray(ms["times"], dtype=np.float64).reshape(-1)
    mags = np.asarray(ms["mags"], dtype=np.float64).reshape(-1)
    n = min(len(times), len(mags))
    times, mags = times[:n], mags[:n]
    if ms.get("errs") is None:
        errs = np.full(n, np.nan)
        ok = np.isfinite(times) & np.isfinite(mags)
    else:
        errs = np.asarray(ms["errs"], dtype=np.float64).reshape(-1)
        if len(errs) < n:
            errs = np.concatenate([errs, np.full(n - len(errs), np.nan)])
        errs = errs[:n]
        ok = np.isfinite(times) & np.isfinite(mags) & np.isfinite(errs)
    return times[ok], mags[ok], errs[ok]


def _check_number(value, name: str) -> float:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{name} must be a number, not {value!r}", field=name)
    value = float(value)
    if not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, not {value!r}", field=name)
    return value


def check_period(period) -> float:
    """``period`` as a float; :class:`UserError` unless it is a finite number > 0."""
    value = _check_number(period, "period")
    if value <= 0:
        raise UserError(f"period must be greater than 0 days, not {value!r}", field="period")
    return value


def minimum_light_epoch(times, mags, period: float) -> float:
    """astrobase's epoch convention, robustly: the time of minimum light (the faintest,
    i.e. largest, magnitude) of the light curve folded at ``period``.

    Instead of the single faintest point (often one bad frame) it folds from the first
    time, takes median magnitudes in phase bins (about 10 points a bin, 4 to 200 bins;
    bins with at least 3 points when any has), and returns the first time plus the
    faintest bin's central phase times the period."""
    times = np.asarray(times, dtype=np.float64)
    mags = np.asarray(mags, dtype=np.float64)
    if len(times) == 0:
        raise UserError("the light curve has no finite points to fold", field="times")
    t0 = float(times.min())
    nb = int(np.clip(len(times) // 10, 4, 200))
    phase = np.mod((times - t0) / period, 1.0)
    idx = np.minimum((phase * nb).astype(np.int64), nb - 1)
    counts = np.bincount(idx, minlength=nb)
    order = np.argsort(idx, kind="stable")
    groups = np.split(mags[order], np.cumsum(counts)[:-1])
    medians = np.array([np.median(g) if len(g) else -np.inf for g in groups])
    enough = counts >= 3
    if enough.any():
        medians[~enough] = -np.inf
    k = int(np.argmax(medians))
    return t0 + (k + 0.5) / nb * period


def phase_fold(times, mags, errs=None, period=None, epoch=None, nbins: int | None = None) -> dict:
    """Fold a light curve at ``period`` (days).

    Returns ``period, epoch`` (the epoch used: given, or :func:`minimum_light_epoch`;
    None for a light curve with no finite points),
    ``phase`` in [0, 1) sorted ascending with ``times, mags, errs`` in the same order
    (errs None when not given), and with ``nbins`` (2..1000) the binned light curve:
    ``binphase`` (centres of the non-empty bins), ``binmags`` (median magnitude),
    ``bincounts``. Non-finite points are dropped. Raises :class:`UserError` for a period
    that is not a finite number > 0, a non-finite epoch or a bad ``nbins``.
    """
    period = check_period(period)
    if epoch is not None:
        epoch = _check_number(epoch, "epoch")
    if nbins is not None and (isinstance(nbins, (bool, np.bool_)) or not isinstance(nbins, (int, np.integer))
                              or not 2 <= nbins <= MAX_NBINS):
        raise UserError(f"nbins must be an integer from 2 to {MAX_NBINS}, not {nbins!r}", field="nbins")
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    mags = np.asarray(mags, dtype=np.float64).reshape(-1)
    if len(times) != len(mags) or (errs is not None and len(np.reshape(errs, -1)) != len(times)):
        raise UserError("times, mags and errs must have the same length", field="times")
    ok = np.isfinite(times) & np.isfinite(mags)
    if errs is not None:
        errs = np.asarray(errs, dtype=np.float64).reshape(-1)
        ok &= np.isfinite(errs)
        errs = errs[ok]
    times, mags = times[ok], mags[ok]
    if epoch is None and len(times):
        epoch = minimum_light_epoch(times, mags, period)
    phase = np.mod((times - (epoch if epoch is not None else 0.0)) / period, 1.0)
    phase[phase >= 1.0] = 0.0  # np.mod(-tiny, 1.0) rounds to 1.0
    order = np.argsort(phase, kind="stable")
    out = {
        "period": period,
        "epoch": float(epoch) if epoch is not None else None,
        "phase": phase[order],
        "times": times[order],
        "mags": mags[order],
        "errs": errs[order] if errs is not None else None,
    }
    if nbins is not None:
        nbins = int(nbins)
        idx = np.minimum((out["phase"] * nbins).astype(np.int64), nbins - 1)
        counts = np.bincount(idx, minlength=nbins)
        groups = np.split(out["mags"], np.cumsum(counts)[:-1])  # phases are sorted, so bins are runs
        filled = np.flatnonzero(counts)
        out["binphase"] = (filled + 0.5) / nbins
        out["binmags"] = np.array([np.median(groups[i]) for i in filled], dtype=np.float64)
        out["bincounts"] = counts[filled]
    return out


def periodogram_peaks(periods, lspvals, method: str, n: int = 5, periodepsilon: float = 0.1) -> list[float]:
    """Up to ``n`` periods of the best, distinct peaks of a periodogram, best first.

    Peaks are local maxima of the stored values (local minima for methods where lower is
    better: PDM's theta). As astrobase does for its ``nbestperiods``, a peak is skipped
    when its period is within ``periodepsilon`` (a fraction of the period) of a better
    one already chosen, so aliases of one peak's side lobes are not offered twice.
    ``method`` is the method code or checkplot key ('pdm', '2-pdm')."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 100:
        raise UserError(f"n must be an integer from 1 to 100, not {n!r}", field="n")
    if not (isinstance(periodepsilon, (int, float)) and 0 <= periodepsilon < 1):
        raise UserError(f"periodepsilon must be a fraction from 0 to 1, not {periodepsilon!r}",
                        field="periodepsilon")
    p, v = finite_periodogram(periods, lspvals)
    if len(p) == 0:
        return []
    score = -v if lower_is_better(method) else v
    left = np.concatenate([[-np.inf], score[:-1]])
    right = np.concatenate([score[1:], [-np.inf]])
    cand = np.flatnonzero((score >= left) & (score >= right))
    cand = cand[np.argsort(-score[cand], kind="stable")]
    chosen: list[float] = []
    for i in cand.tolist():
        period = float(p[i])
        if all(abs(period - q) > periodepsilon * period for q in chosen):
            chosen.append(period)
            if len(chosen) == n:
                break
    return chosen
