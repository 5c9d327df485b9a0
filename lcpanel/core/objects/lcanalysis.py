"""Analyses of one light curve on demand, by astrobase's own code: a Fourier-series fit
at a period (:func:`fourier_fit`, astrobase's ``lcfit.sinusoidal.fourier_fit_magseries``)
and the non-periodic variability features (:func:`variability_features`, astrobase's
``varclass.varfeatures.all_nonperiodic_features``; its ``linear_fit_slope`` is left out:
astrobase 0.5.3 returns the fit's intercept under that name). Both take magnitudes (not fluxes)
and their errors, in the light curve's own time column; points with a non-finite time,
magnitude or error, or a zero error, are left out, as astrobase does. Bounded: at most
:data:`MAX_POINTS` points, Fourier order at most :data:`MAX_ORDER`.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import UserError
from .astrobase_compat import import_astrobase

MAX_POINTS = 200_000
MAX_ORDER = 8  # astrobase's fit of ~10,000 points takes ~5 s at order 3, ~18 s at 8 (2 loaded cores)
#: (key, words, unit) of the features shown, in astrobase's names
FEATURES = (
    ("ndet", "points used", ""),
    ("median", "median magnitude", "mag"),
    ("wmean", "weighted mean magnitude", "mag"),
    ("mad", "median absolute deviation", "mag"),
    ("stdev", "robust σ (1.483 × MAD)", "mag"),
    ("skew", "skewness", ""),
    ("kurtosis", "kurtosis", ""),
    ("mag_iqr", "interquartile range", "mag"),
    ("eta_normal", "von Neumann η", ""),
    ("stetsonj", "Stetson J", ""),
    ("stetsonk", "Stetson K", ""),
    ("beyond1std", "fraction beyond 1σ", ""),
    ("amplitude", "half range (max - min) / 2", "mag"),
    ("timelength", "time span", "d"),
)


def _clean(times, mags, errs):
    t, m = np.asarray(times, float), np.asarray(mags, float)
    e = np.asarray(errs, float) if errs is not None else np.full(len(t), np.nan)
    if not (len(t) == len(m) == len(e)):
        raise UserError("times, magnitudes and errors must have the same length")
    if len(t) > MAX_POINTS:
        raise UserError(f"the light curve has {len(t):,} points; at most {MAX_POINTS:,} are analysed")
    ok = np.isfinite(t) & np.isfinite(m) & np.isfinite(e) & (e != 0)
    if ok.sum() < 10:
        raise UserError(f"{int(ok.sum())} points have a finite time, magnitude and error; at least 10 are needed")
    return t[ok], m[ok], e[ok]


def fourier_fit(times, mags, errs, period: float, *, order: int = 3, sigclip: float | None = None) -> dict:
    """astrobase's Fourier-series fit of order ``order`` at the fixed ``period`` (days):
    ``{"period", "order", "chisq", "redchisq", "npoints", "amplitudes", "phases",
    "param_errs", "times", "model", "fitepoch"}`` where ``model`` are the model
    magnitudes at ``times`` (the points fitted, in astrobase's phase order) and
    ``amplitudes``/``phases`` the cosine series' coefficients (mag, rad) about the median
    magnitude: model = median + sum over k = 0 .. order-1 of a_k cos(2 pi k phase + phi_k),
    phase measured from ``fitepoch`` (the first time). That is astrobase's series: its
    term k = 0 is a constant, so order N holds harmonics 1 .. N-1."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= MAX_ORDER:
        raise UserError(f"the Fourier order must be a whole number from 1 to {MAX_ORDER}, not {order!r}",
                        field="order")
    if not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise UserError(f"period must be a number of days > 0, not {period!r}", field="period")
    t, m, e = _clean(times, mags, errs)
    import_astrobase()
    from astrobase.lcfit.sinusoidal import fourier_fit_magseries

    out = fourier_fit_magseries(t, m, e, float(period), fourierorder=int(order), sigclip=sigclip, verbose=False)
    info = out.get("fitinfo") or {}
    params = info.get("finalparams")
    if params is None or out.get("fitchisq") is None or not np.isfinite(out.get("fitchisq")):
        raise UserError("the Fourier fit did not converge at this period")
    params = np.asarray(params, float)
    perrs = info.get("finalparamerrs")
    return {"period": float(period), "order": int(order), "chisq": float(out["fitchisq"]),
            "redchisq": float(out["fitredchisq"]), "npoints": int(len(out["magseries"]["times"])),
            "amplitudes": params[:order].tolist(), "phases": params[order:].tolist(),
            "param_errs": None if perrs is None else np.asarray(perrs, float)[1:].tolist(),  # [0]: the period
            "times": np.asarray(out["magseries"]["times"], float), "model": np.asarray(info["fitmags"], float),
            "fitepoch": float(np.asarray(info.get("fitepoch", t.min())).ravel()[0])}


def variability_features(times, mags, errs) -> dict:
    """astrobase's non-periodic variability features of the light curve: ``{key: value}``
    of :data:`FEATURES` (plain floats; None where astrobase gives none)."""
    t, m, e = _clean(times, mags, errs)
    import_astrobase()
    from astrobase.varclass.varfeatures import all_nonperiodic_features

    raw = all_nonperiodic_features(t, m, e)
    out = {}
    for key, _words, _unit in FEATURES:
        v = raw.get(key)
        try:
            v = float(np.asarray(v).ravel()[0]) if v is not None else None
        except (TypeError, ValueError, IndexError):
            v = None
        out[key] = v if v is None or math.isfinite(v) else None
    return out
