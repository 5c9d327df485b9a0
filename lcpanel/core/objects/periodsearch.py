"""Period searches on demand: astrobase's period finders run on one object's light curve
when a visitor asks, off the request path, with their results kept in the basedir.

Methods (astrobase 0.5.3, ``astrobase.periodbase``), by code:

=====  ===========================  ======================================
code   method                       astrobase function
=====  ===========================  ======================================
gls    generalized Lomb-Scargle     ``zgls.pgen_lsp``
bls    box least squares            ``kbls.bls_serial_pfind`` (one process)
pdm    phase dispersion (Θ, lower   ``spdm.stellingwerf_pdm``
       is better)
aov    analysis of variance         ``saov.aov_periodfind``
mav    multi-harmonic AoV           ``smav.aovhm_periodfind``
acf    autocorrelation              ``macf.macf_period_find``
win    spectral window function     ``zgls.specwindow_lsp``
=====  ===========================  ======================================

Options (:func:`validate_options`; unknown keys and bad values raise a
:class:`~lcpanel.errors.UserError` naming the field before anything runs):

- ``magcol``, ``timecol``: the light curve's magnitude and time columns (default: the
  collection's first magcol, and the time column the format pairs with it). The error
  column is the one the format pairs with the magcol; without one, points weigh equally.
- ``startp``, ``endp``: the period range in the time column's unit (days for every
  format lcpanel knows); ``stepsize`` (frequency step, 1/day) or ``autofreq`` (astrobase's
  own grid from the time baseline; the default when no stepsize is given);
  ``nbestpeaks``; ``sigclip`` (null, one number of sigmas, or ``[fainter, brighter]``);
  ``magsarefluxes``.
- ``tmin``/``tmax`` (in the time column) and ``magmin``/``magmax`` keep only those points.
- per method: BLS ``mintransitduration``, ``maxtransitduration`` (phase), ``nphasebins``;
  PDM and AoV ``phasebinsize``, ``mindetperbin``; AoV-MH ``nharmonics``; ACF
  ``smoothacf``, ``maxacfpeaks``.

Bounds (``[periodsearch]`` in ``lcpanel.toml``, :class:`lcpanel.config.PeriodSearchSettings`):
a search may use at most ``max_points`` light-curve points and ``max_frequencies`` trial
frequencies (for the ACF: time steps of the regular grid it autocorrelates, the span over
the commonest step), at most ``max_work`` points × frequencies, and runs at most
``time_limit_s`` seconds once the worker has started (then it is stopped and marked
failed). The number of trial
frequencies is computed before the search starts (astrobase's formulas), so an
oversized request is refused at once. Each identity (anonymous visitors: per client
address, as disk quotas count them) may have ``<role>_concurrent`` searches queued or
running at once.

Jobs and results (:class:`PeriodSearchService`): a job row in
``BASEDIR/workbench/periodsearch/jobs.sqlite`` (WAL, shared by every server process)
holds status, progress and the cancel flag; a finished search is a summary
``BASEDIR/workbench/periodsearch/<collection>/<objectid>/<magcol>/<id>.json`` and its
periodogram beside it (``<id>.npz``: float64 ``periods`` and ``lspvals``), written
atomically (path parts percent-encoded), never in the collection's directory, and charged
their exact size to its owner's disk quota first (:mod:`lcpanel.core.access.quotas`, kind
``periodsearch``): one that would not fit is not written and its job fails saying so. Each
search runs in a spawned worker process of its own (at most ``workers`` per server
process, run through a :class:`~lcpanel.core.jobqueue.FairQueue`), which the supervising
thread kills on cancel or time-out. Progress is real for the frequency-by-frequency
methods (GLS, PDM, AoV, AoV-MH, window: astrobase's per-frequency workers run in-process
and are counted); BLS and ACF report "searching" without a fraction.

This module is plain data and processes: no Panel, no Tornado.
"""

from __future__ import annotations

import io
import json
import logging
import math
import multiprocessing
import os
import secrets
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from ...errors import Conflict, Forbidden, NotFound, TooManyRequests, UserError, shown
from ..access.quotas import Ledger, QuotaExceeded
from ..atomic import write_bytes, write_text
from ..clock import now_iso
from ..suggest import did_you_mean
from ..wal import connect_wal
from .record import must_exist

log = logging.getLogger(__name__)

ROOT = Path("workbench") / "periodsearch"
JOBS_FILE = "jobs.sqlite"
#: the kind of a stored result's row in the disk-quota ledger (its item: the job id)
LEDGER_KIND = "periodsearch"
#: a job whose supervisor has not reported for this long is taken as dead (server stopped)
STALE_AFTER_S = 30.0
#: a worker process that has not imported astrobase after this long is taken as failed
STARTUP_LIMIT_S = 120.0
#: fewer points than this cannot give a period worth showing
MIN_POINTS = 10
ACTIVE = ("queued", "running")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id         TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    objectid   TEXT NOT NULL,
    magcol     TEXT NOT NULL,
    method     TEXT NOT NULL,
    who        TEXT NOT NULL,          -- the requester's identity (may cancel)
    owner      TEXT NOT NULL,          -- whose concurrency limit it counts in
    status     TEXT NOT NULL,          -- queued, running, done, failed, cancelled
    stage      TEXT NOT NULL DEFAULT '',
    progress   REAL,                   -- 0..1, NULL when the method cannot tell
    cancel     INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    options    TEXT NOT NULL,
    heartbeat  REAL NOT NULL,
    created    TEXT NOT NULL,
    updated    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, status);
CREATE INDEX IF NOT EXISTS jobs_object ON jobs(collection, objectid);
"""


# --- methods and options --------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    code: str
    label: str
    func: str  # "module:function" in astrobase.periodbase
    grid: str  # "freq": astrobase's frequency grid; "bls": BLS's own; "none": no grid (ACF)
    lower_is_better: bool = False
    extra: dict = field(default_factory=dict)  # option -> (kind, default, lo, hi)
    counted: bool = True  # astrobase maps a per-frequency worker: progress can be counted


METHODS: dict[str, Method] = {m.code: m for m in (
    Method("gls", "Generalized Lomb-Scargle", "astrobase.periodbase.zgls:pgen_lsp", "freq"),
    Method("bls", "Box least squares", "astrobase.periodbase.kbls:bls_serial_pfind", "bls", counted=False,
           extra={"mintransitduration": ("float", 0.01, 1e-4, 0.5), "maxtransitduration": ("float", 0.4, 1e-4, 0.9),
                  "nphasebins": ("int", 200, 10, 2000)}),
    Method("pdm", "Phase dispersion minimization", "astrobase.periodbase.spdm:stellingwerf_pdm", "freq",
           lower_is_better=True,
           extra={"phasebinsize": ("float", 0.05, 0.005, 0.5), "mindetperbin": ("int", 9, 1, 1000)}),
    Method("aov", "Analysis of variance", "astrobase.periodbase.saov:aov_periodfind", "freq",
           extra={"phasebinsize": ("float", 0.05, 0.005, 0.5), "mindetperbin": ("int", 9, 1, 1000)}),
    Method("mav", "Multi-harmonic AoV", "astrobase.periodbase.smav:aovhm_periodfind", "freq",
           extra={"nharmonics": ("int", 6, 1, 20)}),
    Method("acf", "Autocorrelation", "astrobase.periodbase.macf:macf_period_find", "none", counted=False,
           extra={"smoothacf": ("int", 21, 3, 1001), "maxacfpeaks": ("int", 10, 2, 50)}),
    Method("win", "Spectral window", "astrobase.periodbase.zgls:specwindow_lsp", "freq"),
)}

#: options every method takes: name -> (kind, default, lo, hi); kind "float?" may be null
COMMON = {
    "magcol": ("str", None, None, None),
    "timecol": ("str", None, None, None),
    "startp": ("float", None, 1e-4, 1e5),
    "endp": ("float", None, 1e-4, 1e6),
    "stepsize": ("float", None, 1e-9, 10.0),
    "autofreq": ("bool", None, None, None),
    "nbestpeaks": ("int", 5, 1, 20),
    "sigclip": ("sigclip", 10.0, 0.1, 1000.0),
    "magsarefluxes": ("bool", False, None, None),
    "tmin": ("float", None, -1e12, 1e12),
    "tmax": ("float", None, -1e12, 1e12),
    "magmin": ("float", None, -1e12, 1e12),
    "magmax": ("float", None, -1e12, 1e12),
}
#: period range when none is given (days): astrobase BLS's own defaults
DEFAULT_STARTP, DEFAULT_ENDP = 0.1, 100.0
#: options with no effect for a method without a frequency grid
GRID_OPTIONS = ("startp", "endp", "stepsize", "autofreq", "nbestpeaks")


def describe_methods() -> dict:
    """The methods and their options, for forms and ``GET .../periodsearch?schema``."""
    def opt(spec):
        kind, default, lo, hi = spec
        return {"type": kind, "default": default, "min": lo, "max": hi}

    return {"methods": [{"code": m.code, "label": m.label, "function": m.func.replace(":", "."),
                         "lower_is_better": m.lower_is_better,
                         "options": {**{k: opt(v) for k, v in COMMON.items()
                                        if m.grid != "none" or k not in GRID_OPTIONS},
                                     **{k: opt(v) for k, v in m.extra.items()}}}
                        for m in METHODS.values()]}


def _number(name: str, value, kind: str, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name} must be a number, not {json.dumps(value)[:40]}", field=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number", field=name)
    if kind == "int" and isinstance(value, float) and not value.is_integer():
        raise UserError(f"{name} must be a whole number, not {value}", field=name)
    # JSON integers are exact: one too large for a float is compared, never converted
    if lo is not None and not lo <= value <= hi:
        raise UserError(f"{name} must be between {lo:g} and {hi:g}, not {shown(value)}", field=name)
    if kind == "int":
        return int(value)
    try:
        return float(value)
    except OverflowError:
        raise UserError(f"{name} must be a finite number, not {shown(value)}", field=name) from None


def _check(name: str, value, spec):
    kind, _default, lo, hi = spec
    if value is None:
        return None
    if kind == "str":
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise UserError(f"{name} must be a column name", field=name)
        return value.strip()
    if kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false", field=name)
        return value
    if kind == "sigclip":
        if isinstance(value, list):
            if len(value) != 2:
                raise UserError("sigclip must be null, a number of sigmas, or [fainter, brighter]", field=name)
            return [_number(name, v, "float", lo, hi) for v in value]
        return _number(name, value, "float", lo, hi)
    return _number(name, value, kind, lo, hi)


def validate_options(body) -> dict:
    """The search's options with defaults filled in, or a UserError naming the field."""
    if not isinstance(body, dict):
        raise UserError('give a JSON object such as {"method": "gls", "startp": 0.5, "endp": 10}')
    code = body.get("method")
    if not isinstance(code, str) or code.lower() not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}"
                        + (f": {did_you_mean(str(code), METHODS)}" if isinstance(code, str) else ""),
                        field="method")
    method = METHODS[code.lower()]
    specs = {**COMMON, **method.extra}
    for key in body:
        if key != "method" and key not in specs:
            raise UserError(f"{method.code} has no option {key!r}: {did_you_mean(key, specs)}", field=key)
    out = {"method": method.code}
    for key, spec in specs.items():
        value = _check(key, body[key], spec) if key in body else None
        out[key] = spec[1] if value is None and key not in body else value
    if method.code == "acf" and "sigclip" not in body:
        out["sigclip"] = 3.0  # astrobase's ACF default
    if out["autofreq"] is None:
        out["autofreq"] = out["stepsize"] is None
    if out["autofreq"] and out["stepsize"] is not None:
        raise UserError("give either stepsize or autofreq: true, not both", field="stepsize")
    if method.grid != "none" and not out["autofreq"] and out["stepsize"] is None:
        raise UserError("autofreq: false needs a stepsize (the frequency step, 1/days)", field="stepsize")
    if out["startp"] is None:
        out["startp"] = DEFAULT_STARTP
    if out["endp"] is None:
        out["endp"] = DEFAULT_ENDP
    if out["startp"] >= out["endp"]:
        raise UserError(f"startp ({out['startp']:g}) must be below endp ({out['endp']:g})", field="startp")
    for lo, hi in (("tmin", "tmax"), ("magmin", "magmax")):
        if out[lo] is not None and out[hi] is not None and out[lo] >= out[hi]:
            raise UserError(f"{lo} must be below {hi}", field=lo)
    if method.code == "bls" and out["mintransitduration"] >= out["maxtransitduration"]:
        raise UserError("mintransitduration must be below maxtransitduration", field="mintransitduration")
    if method.grid == "none":
        for key in GRID_OPTIONS:
            out.pop(key, None)
    return out


def frequency_count(opts: dict, times: np.ndarray) -> int:
    """How many trial frequencies astrobase will evaluate for these options and times
    (its own formulas; 0 for ACF)."""
    method = METHODS[opts["method"]]
    if method.grid == "none":
        return 0
    baseline = float(times.max() - times.min()) if len(times) > 1 else 0.0
    minf, maxf = 1.0 / opts["endp"], 1.0 / opts["startp"]
    if method.grid == "bls":
        if baseline > 0 and minf < 1.0 / baseline:  # astrobase's endp_timebase_check
            minf = 2.0 / baseline
        step = 0.25 * opts["mintransitduration"] / baseline if opts["autofreq"] and baseline > 0 else opts["stepsize"]
        return int(math.ceil((maxf - minf) / step)) if step else 0
    if opts["autofreq"]:
        if baseline <= 0:
            return 0
        df = 1.0 / baseline / 5  # get_frequency_grid: samplesperpeak=5
        return max(int(math.ceil((maxf - minf) / df)), 0)
    return max(int(math.ceil((maxf - minf) / opts["stepsize"])), 0)


def astrobase_kwargs(opts: dict) -> dict:
    """The keyword arguments of the astrobase function for these options."""
    method = METHODS[opts["method"]]
    kw = {"magsarefluxes": opts["magsarefluxes"], "sigclip": opts["sigclip"], "verbose": False}
    if method.grid != "none":
        kw.update(startp=opts["startp"], endp=opts["endp"], autofreq=opts["autofreq"], nbestpeaks=opts["nbestpeaks"])
        if not opts["autofreq"]:
            kw["stepsize"] = opts["stepsize"]
    for key in method.extra:
        kw[key] = opts[key]
    if method.code == "bls":
        kw["get_stats"] = False
    elif method.grid == "freq":
        kw["nworkers"] = 1
    return kw


# --- the light curve ------------------------------------------------------------------------


@dataclass
class SearchInput:
    """What a search runs on: the chosen columns after the filters, and what was chosen."""

    times: np.ndarray
    mags: np.ndarray
    errs: np.ndarray
    magcol: str
    timecol: str
    errcol: str | None
    npoints_file: int
    nfrequencies: int
    notes: list[str] = field(default_factory=list)


def _paired(spec, magcol: str, index: int) -> str | None:
    """The column an astrobase format's parallel list (timecols 2, errcols 4) pairs with magcol."""
    try:
        return list(spec[index])[list(spec[3]).index(magcol)].replace(".", "_")
    except (TypeError, ValueError, IndexError, AttributeError, KeyError):
        return None


def select_input(lc, fmt, opts: dict, settings, default_magcol: str | None = None) -> SearchInput:
    """The light curve's columns for the search, filtered and checked against the bounds
    (UserError naming the field: unknown column, too few or too many points, too many
    frequencies). ``fmt``: the collection's format object (for the astrobase column
    pairs); ``default_magcol``: the collection's first magcol."""
    from .plotlabels import time_columns

    mags_known = [c for c in (getattr(lc, "mag_columns", ()) or ()) if c in lc.columns]
    wanted = opts.get("magcol") or default_magcol or (mags_known[0] if mags_known else None)
    magcol = wanted.replace(".", "_") if wanted else None
    if magcol not in lc.columns or (mags_known and magcol not in mags_known
                                    and np.asarray(lc.columns[magcol]).dtype.kind not in "f"):
        raise UserError(f"magcol {wanted!r} is not a magnitude column of this light curve; its magnitude columns: "
                        f"{', '.join(mags_known) or 'none'}", field="magcol")
    times_known = time_columns(lc)
    spec = getattr(fmt, "lcformat", None)
    timecol = opts.get("timecol") or _paired(spec, wanted, 2) or (times_known[0] if times_known else None)
    if timecol not in times_known:
        raise UserError(f"timecol {timecol!r} is not a time column of this light curve; its time columns: "
                        f"{', '.join(times_known) or 'none'}", field="timecol")
    errcol = _paired(spec, wanted, 4)
    errs_known = [c for c in (getattr(lc, "err_columns", ()) or ()) if c in lc.columns]
    if errcol not in lc.columns:
        errcol = errs_known[mags_known.index(magcol)] if (magcol in mags_known
                                                          and len(errs_known) == len(mags_known)) else None
    times = np.asarray(lc.columns[timecol], dtype=np.float64)
    mags = np.asarray(lc.columns[magcol], dtype=np.float64)
    notes = []
    if errcol:
        errs = np.asarray(lc.columns[errcol], dtype=np.float64)
    else:
        errs = np.full(len(mags), 1.0)
        notes.append("no error column pairs with this magcol: every point weighs the same")
    keep = np.isfinite(times) & np.isfinite(mags) & np.isfinite(errs)
    if errcol:
        keep &= errs > 0
    nfile = len(times)
    for key, op, arr in (("tmin", np.greater_equal, times), ("tmax", np.less_equal, times),
                         ("magmin", np.greater_equal, mags), ("magmax", np.less_equal, mags)):
        if opts.get(key) is not None:
            keep &= op(arr, opts[key])
    times, mags, errs = times[keep], mags[keep], errs[keep]
    if len(times) > settings.max_points:
        raise UserError(f"{len(times):,} points are left after the filters; a search may use at most "
                        f"{settings.max_points:,}: narrow tmin/tmax", field="tmin")
    if len(times) < MIN_POINTS:
        filters = [k for k in ("tmin", "tmax", "magmin", "magmax") if opts.get(k) is not None]
        raise UserError(f"only {len(times)} usable points are left (of {nfile})"
                        + (f" after {', '.join(filters)}" if filters else f" in {magcol}")
                        + f"; a search needs at least {MIN_POINTS}", field=(filters or ["magcol"])[0])
    order = np.argsort(times, kind="stable")
    times, mags, errs = times[order], mags[order], errs[order]
    if opts["method"] == "acf":
        nfreq = _acf_grid(times, mags, errs, opts, settings)
    else:
        nfreq = frequency_count(opts, times)
    if opts["method"] != "acf" and (nfreq > settings.max_frequencies or nfreq * len(times) > settings.max_work):
        why = (f"{nfreq:,} trial frequencies (the limit is {settings.max_frequencies:,})"
               if nfreq > settings.max_frequencies else
               f"{nfreq:,} frequencies × {len(times):,} points = {nfreq * len(times):.2g} (the limit is "
               f"{settings.max_work:.2g})")
        field_name = "stepsize" if not opts.get("autofreq") else "startp"
        raise UserError(f"this search would take {why}: use a narrower period range (startp/endp) or a coarser "
                        "stepsize", field=field_name)
    return SearchInput(times, mags, errs, magcol, timecol, errcol, nfile, nfreq, notes)


def _acf_grid(times, mags, errs, opts: dict, settings) -> int:
    """The number of time steps of the grid the ACF will autocorrelate (its memory, time
    and result grow with it, not with the points: the span over the commonest step),
    refused over ``max_frequencies``."""
    from .acf import grid_size
    from .astrobase_compat import import_astrobase

    import_astrobase()
    steps, step = grid_size(times, mags, errs, sigclip=opts["sigclip"], magsarefluxes=opts["magsarefluxes"])
    if steps > settings.max_frequencies:
        raise UserError(f"the autocorrelation would run on a grid of {steps:,} time steps (the light curve's "
                        f"commonest step, {step:.4g}, over its span of {float(times.max() - times.min()):.6g}, in "
                        f"the time column's unit); the limit is {settings.max_frequencies:,}: narrow tmin/tmax",
                        field="tmin")
    if opts["smoothacf"] >= steps:  # astrobase's Savitzky-Golay smoothing needs a window inside the ACF
        raise UserError(f"smoothacf ({opts['smoothacf']}) must be below the autocorrelation's {steps:,} lags (one per "
                        f"time step of {step:.4g} over the light curve's span)", field="smoothacf")
    return steps


# --- the worker process ---------------------------------------------------------------------


class _CountingPool:
    """Stands in for ``multiprocessing.Pool`` inside astrobase's period finders: maps the
    per-frequency worker in this process (same function, same order: same results) and
    counts the frequencies done into a shared value."""

    def __init__(self, progress, *args, **kwargs):
        self.progress = progress

    def map(self, func, tasks, chunksize=None):
        out = []
        total = max(len(tasks), 1)
        for i, task in enumerate(tasks):
            out.append(func(task))
            if i % 256 == 0:
                self.progress.value = i / total
        self.progress.value = 1.0
        return out

    def close(self):
        pass

    def join(self):
        pass


def run_method(opts: dict, times, mags, errs, progress=None) -> dict:
    """Call the astrobase function of ``opts['method']`` (in this process); returns its
    result dict. ``progress``: a shared double that receives the fraction done."""
    import importlib

    from .astrobase_compat import import_astrobase

    import_astrobase()
    method = METHODS[opts["method"]]
    module_name, _, name = method.func.partition(":")
    module = importlib.import_module(module_name)
    if progress is not None:
        progress.value = 0.0  # imports done: the search (and its time limit) starts
        if method.counted:
            module.Pool = lambda *a, **k: _CountingPool(progress)
    try:
        return getattr(module, name)(times, mags, errs, **astrobase_kwargs(opts))
    except (IndexError, ValueError) as exc:
        # astrobase's ACF compares its first peaks and fits the lags of the later ones;
        # with fewer it fails deep inside (an index out of range, numpy's polyfit)
        if method.code != "acf":
            raise
        raise UserError(f"the autocorrelation has too few peaks to find a period ({exc}): use more of the light "
                        "curve (tmin/tmax, magmin/magmax) or less smoothing (a smaller smoothacf)") from None


def _child(conn, progress, opts, times, mags, errs) -> None:
    """Worker process entry point: the search's result (or its failure) down the pipe."""
    try:
        result = run_method(opts, times, mags, errs, progress)
        conn.send(("ok", _plain_result(result)))
    except UserError as exc:
        conn.send(("error", str(exc)[:500]))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        from ..products import describe_failure

        conn.send(("error", describe_failure(exc)[:500]))
    finally:
        conn.close()


def _floats(values) -> list:
    arr = np.asarray(values if values is not None else [], dtype=np.float64).reshape(-1)
    return [float(v) if math.isfinite(v) else None for v in arr]


def _plain_result(result: dict) -> dict:
    """The JSON-able part of an astrobase period-finder result."""
    if not isinstance(result, dict):
        raise ValueError("the period finder returned no result")
    best = result.get("bestperiod")
    best = float(best) if best is not None and np.isfinite(best) else None
    return {"bestperiod": best,
            "bestlspval": _floats([result.get("bestlspval")])[0] if result.get("bestlspval") is not None else None,
            "nbestperiods": _floats(result.get("nbestperiods")), "nbestlspvals": _floats(result.get("nbestlspvals")),
            "periods": _array(result.get("periods")), "lspvals": _array(result.get("lspvals"))}


def _array(values) -> np.ndarray:
    """A periodogram column as float64 (NaN where a value is missing or not finite)."""
    arr = np.array(values if values is not None else [], dtype=np.float64).reshape(-1)
    arr[~np.isfinite(arr)] = np.nan
    return arr


# --- storage --------------------------------------------------------------------------------


def path_part(text: str) -> str:
    """A path component for any id: percent-encoded (no '/', no leading '.')."""
    return quote(text, safe="-_+@") or "%00"


def result_dir(basedir, collection_id: str, objectid: str) -> Path:
    return Path(basedir) / ROOT / path_part(collection_id) / path_part(objectid)


#: a stored result's periodogram arrays, kept beside its summary in ``<id>.npz``
ARRAYS = ("periods", "lspvals")


def summary(result: dict) -> dict:
    """A stored result without its periodogram arrays."""
    return {k: v for k, v in result.items() if k not in ARRAYS}


def list_results(basedir, collection_id: str, objectid: str, magcol: str | None = None) -> list[dict]:
    """The object's finished searches (all magcols, or one), oldest first, as summaries
    (their ``<id>.json``: the periodograms are not read)."""
    root = result_dir(basedir, collection_id, objectid)
    pattern = f"{path_part(magcol)}/*.json" if magcol else "*/*.json"
    out = []
    for path in root.glob(pattern):
        try:
            out.append(summary(json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: (r.get("finished") or "", r.get("id") or ""))


def load_result(basedir, collection_id: str, objectid: str, job_id: str) -> dict | None:
    """A stored result with its periodogram (``periods``, ``lspvals``: float64 arrays, NaN
    where astrobase gave no finite value); None if there is none or it cannot be read.
    Results stored before the arrays had a file of their own hold them in the JSON."""
    if not _valid_id(job_id):
        return None
    for path in result_dir(basedir, collection_id, objectid).glob(f"*/{job_id}.json"):
        try:
            result = json.loads(path.read_text())
            if ARRAYS[0] in result:
                return {**result, **{k: _array(result.get(k)) for k in ARRAYS}}
            with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
                return {**result, **{k: arrays[k] for k in ARRAYS}}
        except (OSError, ValueError, KeyError):
            return None
    return None


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def stored_ids(basedir) -> set[str]:
    """The ids of every stored result of the basedir."""
    return {p.stem for p in (Path(basedir) / ROOT).glob("*/*/*/*.json")}


def _valid_id(job_id: str) -> bool:
    return isinstance(job_id, str) and len(job_id) == 16 and all(c in "0123456789abcdef" for c in job_id)


# --- the service ----------------------------------------------------------------------------


class PeriodSearchService:
    """Jobs of one basedir in this process: submit, status, cancel, and the workers."""

    def __init__(self, basedir, settings):
        from ..jobqueue import FairQueue

        self.basedir = Path(basedir)
        self.root = self.basedir / ROOT
        self.settings = settings
        self.queue = FairQueue(workers=settings.workers, per_owner=1, name="lcpanel-periodsearch")
        self._local = threading.local()
        self._procs: dict[str, object] = {}
        self._queued: set[str] = set()  # jobs this process queued that no worker took yet
        self.ledger = Ledger(self.basedir)

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            self.root.mkdir(parents=True, exist_ok=True)
            conn = connect_wal(self.root / JOBS_FILE, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.executescript(SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    # --- requests ---------------------------------------------------------------------------

    def limit(self, role: str) -> int:
        return int(getattr(self.settings, f"{role}_concurrent"))

    def submit(self, collection_id: str, objectid: str, opts: dict, data: SearchInput, viewer, owner: str,
               quota: int = 0) -> dict:
        """Queue a search (``opts`` validated, ``data`` selected): refused with 429 when the
        owner already has its limit of searches queued or running. Its result will be
        charged to ``owner``'s disk ``quota`` (bytes; 0: none) when it is stored."""
        existing = list_results(self.basedir, collection_id, objectid)
        if len(existing) >= self.settings.max_results_per_object:
            raise Conflict(f"this object already has {len(existing)} period searches, the most it may keep; "
                           "their owners may delete some")
        job_id = secrets.token_hex(8)
        limit = self.limit(viewer.role)
        stamp = now_iso()
        record = {k: v for k, v in opts.items() if k != "method"}
        record.update(magcol=data.magcol, timecol=data.timecol)
        conn = self.connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            busy = conn.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('queued', 'running') "
                                "AND heartbeat > ?", (owner, time.time() - STALE_AFTER_S)).fetchone()[0]
            if limit and busy >= limit:
                raise TooManyRequests(f"you already have {busy} period searches queued or running; a "
                                      f"{viewer.role} visitor may run {limit} at once: wait for one to finish or "
                                      "cancel it", retry_after=5.0)
            conn.execute("INSERT INTO jobs (id, collection, objectid, magcol, method, who, owner, status, stage, "
                         "progress, options, heartbeat, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (job_id, collection_id, objectid, data.magcol, opts["method"], viewer.identity, owner,
                          "queued", "waiting for a worker", 0.0, json.dumps(record), time.time(), stamp, stamp))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._queued.add(job_id)
        self.queue.submit(owner, self._supervise, job_id, opts, data, quota)
        return self.status(job_id)

    def job(self, job_id: str) -> sqlite3.Row | None:
        if not _valid_id(job_id):
            return None
        return self.connect().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def status(self, job_id: str) -> dict:
        row = self.job(job_id)
        if row is None:
            raise NotFound(f"no period search {job_id!r}")
        status, error = row["status"], row["error"]
        if status in ACTIVE and time.time() - row["heartbeat"] > STALE_AFTER_S:
            status, error = "failed", "the search stopped without finishing (the server was stopped); run it again"
        return {"id": row["id"], "collection": row["collection"], "objectid": row["objectid"],
                "magcol": row["magcol"], "method": row["method"], "label": METHODS[row["method"]].label,
                "who": row["who"], "status": status, "stage": row["stage"],
                "progress": 1.0 if status == "done" else row["progress"], "error": error,
                "options": json.loads(row["options"]), "created": row["created"], "updated": row["updated"]}

    def jobs_of(self, collection_id: str, objectid: str, active_only: bool = True) -> list[dict]:
        rows = self.connect().execute("SELECT id FROM jobs WHERE collection = ? AND objectid = ? ORDER BY created",
                                      (collection_id, objectid)).fetchall()
        out = [self.status(r["id"]) for r in rows]
        return [s for s in out if s["status"] in ACTIVE] if active_only else out

    def cancel(self, job_id: str, viewer, collection_id: str, objectid: str) -> dict:
        """Stop a queued or running search (its requester or an admin), or delete a finished
        one's result."""
        row = self.job(job_id)
        stored = load_result(self.basedir, collection_id, objectid, job_id)
        if (row is None or row["collection"] != collection_id or row["objectid"] != objectid) and stored is None:
            raise NotFound(f"no period search {job_id!r} for this object")
        who = row["who"] if row is not None else stored.get("who")
        if who != viewer.identity and not viewer.admin:
            raise Forbidden("only who started a period search (or an admin) may cancel or delete it")
        if stored is not None:
            for path in result_dir(self.basedir, collection_id, objectid).glob(f"*/{job_id}.json"):
                path.unlink(missing_ok=True)  # the summary first: what lists the result
                path.with_suffix(".npz").unlink(missing_ok=True)
            self.ledger.forget(LEDGER_KIND, job_id)
            if row is not None:
                self._set(job_id, status="deleted")
            return {"id": job_id, "status": "deleted"}
        if row["status"] in ACTIVE:
            self._set(job_id, cancel=1, status="cancelled" if row["status"] == "queued" else row["status"],
                      stage="cancelled" if row["status"] == "queued" else "cancelling")
        return self.status(job_id)

    def _set(self, job_id: str, **fields) -> None:
        fields.setdefault("heartbeat", time.time())
        fields["updated"] = now_iso()
        cols = ", ".join(f"{k} = ?" for k in fields)
        self.connect().execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    # --- the supervisor (a FairQueue thread) ---------------------------------------------------

    def _keep_queued_alive(self) -> None:
        """Queued jobs waiting for a worker are alive as long as this process is."""
        waiting = list(self._queued)
        if waiting:
            marks = ",".join("?" * len(waiting))
            self.connect().execute(f"UPDATE jobs SET heartbeat = ? WHERE status = 'queued' AND id IN ({marks})",
                                   (time.time(), *waiting))

    def _supervise(self, job_id: str, opts: dict, data: SearchInput, quota: int) -> None:
        self._queued.discard(job_id)
        row = self.job(job_id)
        if row is None or row["cancel"] or row["status"] != "queued":
            return
        ctx = multiprocessing.get_context("spawn")
        progress = ctx.Value("d", -1.0, lock=False)  # -1 until the worker has imported astrobase
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(send, progress, opts, data.times, data.mags, data.errs),
                           name=f"lcpanel-periodsearch-{job_id}", daemon=True)
        started = time.monotonic()
        self._set(job_id, status="running", stage="starting a worker", progress=0.0)
        proc.start()
        send.close()
        self._procs[job_id] = proc
        outcome = None
        searching = None  # when the worker began the search itself
        try:
            last = 0.0
            while outcome is None:
                if receive.poll(0.2):
                    try:
                        outcome = receive.recv()
                    except EOFError:
                        outcome = ("error", "the worker process stopped without an answer")
                    break
                if not proc.is_alive() and not receive.poll(0.05):
                    outcome = ("error", "the worker process stopped without an answer")
                    break
                done = float(progress.value)
                if searching is None and done >= 0:
                    searching = time.monotonic()
                if searching is None and time.monotonic() - started > STARTUP_LIMIT_S:
                    outcome = ("error", f"the worker process did not start within {STARTUP_LIMIT_S:g} s")
                    break
                if searching is not None and time.monotonic() - searching > self.settings.time_limit_s:
                    outcome = ("error", f"stopped after the time limit of {self.settings.time_limit_s:g} s: use a "
                                        "narrower period range or a coarser step")
                    break
                if time.monotonic() - last > 0.5:
                    last = time.monotonic()
                    row = self.job(job_id)
                    if row is not None and row["cancel"]:
                        outcome = ("cancelled", None)
                        break
                    counted = METHODS[opts["method"]].counted
                    if searching is None:
                        self._set(job_id, stage="starting a worker", progress=0.0)
                    else:
                        self._set(job_id, stage="searching", progress=round(done, 4) if counted else None)
                    self._keep_queued_alive()
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=10)
            receive.close()
            self._procs.pop(job_id, None)
        kind, payload = outcome
        if kind == "ok":
            try:
                self._store(job_id, opts, data, payload, time.monotonic() - started, quota)
            except QuotaExceeded as exc:
                self._set(job_id, status="failed", stage="", error=str(exc))
                return
            except Exception as exc:  # disk full, permissions: say so, keep the server
                log.exception("storing period search %s failed", job_id)
                self._set(job_id, status="failed", stage="",
                          error=f"the result could not be stored ({exc.__class__.__name__})")
                return
            self._set(job_id, status="done", stage="done", progress=1.0)
        elif kind == "cancelled":
            self._set(job_id, status="cancelled", stage="cancelled")
        else:
            self._set(job_id, status="failed", stage="", error=str(payload)[:500])

    def _store(self, job_id: str, opts: dict, data: SearchInput, found: dict, elapsed: float, quota: int) -> None:
        """Write the result (its periodogram in ``<id>.npz``, then its summary in
        ``<id>.json``, which lists it), charged both files' exact sizes to the job owner's
        disk ``quota`` first. A periodogram of 199,136 ACF lags: 3.2 MB, against 8.6 MB as JSON."""
        row = self.job(job_id)
        method = METHODS[opts["method"]]
        result = {
            "id": job_id, "collection": row["collection"], "objectid": row["objectid"],
            "method": method.code, "label": method.label, "function": method.func.replace(":", "."),
            "lower_is_better": method.lower_is_better, "status": "done",
            **found,
            "options": {k: v for k, v in opts.items() if k != "method"},
            "magcol": data.magcol, "timecol": data.timecol, "errcol": data.errcol,
            "period_unit": "d (the time column's unit)",
            "npoints": int(len(data.times)), "npoints_file": data.npoints_file,
            "nfrequencies": len(found["periods"]),
            "time_range": [float(data.times.min()), float(data.times.max())],
            "notes": data.notes, "who": row["who"], "created": row["created"], "finished": now_iso(),
            "elapsed_s": round(elapsed, 2),
        }
        folder = result_dir(self.basedir, row["collection"], row["objectid"]) / path_part(data.magcol)
        target = folder / f"{job_id}.json"
        text = json.dumps(summary(result), allow_nan=False)  # ASCII: its length is the file's size
        arrays = _npz({k: result[k] for k in ARRAYS})
        self.ledger.charge(LEDGER_KIND, job_id, row["owner"], len(text) + len(arrays), quota,
                           "storing this period search's result")
        try:
            write_bytes(target.with_suffix(".npz"), arrays)
            write_text(target, text)
        except BaseException:
            target.with_suffix(".npz").unlink(missing_ok=True)
            self.ledger.forget(LEDGER_KIND, job_id)
            raise

    def shutdown(self) -> None:
        """Stop taking searches and kill the running workers (their jobs read as failed)."""
        self.queue.shutdown()
        for proc in list(self._procs.values()):
            try:
                proc.kill()
            except Exception:  # noqa: BLE001
                pass


_services: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_services_lock = threading.Lock()


def service(app) -> PeriodSearchService:
    """The app's period-search service (one per app and process)."""
    with _services_lock:
        found = _services.get(app)
        if found is None or found.queue._pid not in (None, os.getpid()):
            found = PeriodSearchService(app.require_basedir(), app.config.periodsearch)
            _services[app] = found
        return found


def shutdown(app) -> None:
    with _services_lock:
        found = _services.pop(app, None)
    if found is not None:
        found.shutdown()


# --- one call for the API and the page --------------------------------------------------------


def start_search(app, collection_id: str, objectid: str, body, viewer, address: str | None) -> dict:
    """Validate ``body``, read the object's light curve, check the bounds and queue the
    search: the job's status. Every refusal (bad option, unknown object, over a bound or
    the identity's limit) comes before anything is written. Runs on a worker thread."""
    from ..access.quotas import quota_owner
    from .lccache import read_collection_lightcurve
    from .magcols import choose_magcol

    opts = validate_options(body)
    catalog = app.catalogs.get(collection_id)
    info = catalog.info
    path = catalog.object_file(objectid, "lcfname") if "lcfname" in catalog.columns else None
    if path is None:
        must_exist(catalog, objectid)
        raise NotFound(f"object {objectid!r} has no light curve to search")
    if not info.lcformat:
        raise NotFound(f"collection {collection_id!r} names no light-curve format")
    fmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
    lc = read_collection_lightcurve(fmt, info, path)
    try:
        default_magcol = choose_magcol(info.columns, None)
    except UserError:
        default_magcol = None
    data = select_input(lc, fmt, opts, app.config.periodsearch, default_magcol)
    return service(app).submit(collection_id, objectid, opts, data, viewer, quota_owner(viewer, address),
                               app.config.quotas.disk_bytes(viewer.role))
