"""A PNG plot of a light curve as stored (DataLink's ``#preview``): the first time column
against the first magnitude (or flux) column, error bars where the format names them,
magnitudes drawn brighter-up. Thread-safe like :mod:`lcpanel.core.objects.finder`: a private
``Figure`` on an Agg canvas, never pyplot."""

from __future__ import annotations

import io

import numpy as np

from .lcformats import LightCurve

#: at most this many points are drawn (evenly thinned): a preview, not the data
MAX_POINTS = 20_000


def _pick(lc: LightCurve) -> tuple[str, str, str | None]:
    time_col = next((c for c in lc.time_columns if c in lc.columns), None)
    mag_col = next((c for c in lc.mag_columns if c in lc.columns), None)
    numeric = [c for c, v in lc.columns.items() if np.asarray(v).dtype.kind in "fiu"]
    if time_col is None:
        time_col = numeric[0] if numeric else None
    if mag_col is None:
        mag_col = next((c for c in numeric if c != time_col), None)
    if time_col is None or mag_col is None:
        raise ValueError(f"light curve {lc.objectid} has no numeric time and value columns to plot")
    err_col = None
    if lc.err_columns:
        idx = list(lc.mag_columns).index(mag_col) if mag_col in lc.mag_columns else 0
        errs = [c for c in lc.err_columns if c in lc.columns]
        err_col = errs[idx] if idx < len(errs) else (errs[0] if errs else None)
    return time_col, mag_col, err_col


def preview_png(lc: LightCurve, *, title: str = "", width_px: int = 800, height_px: int = 360) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    time_col, mag_col, err_col = _pick(lc)
    t = np.asarray(lc.columns[time_col], dtype=float)
    y = np.asarray(lc.columns[mag_col], dtype=float)
    e = np.asarray(lc.columns[err_col], dtype=float) if err_col else None
    ok = np.isfinite(t) & np.isfinite(y)
    step = max(1, int(ok.sum()) // MAX_POINTS)
    keep = np.flatnonzero(ok)[::step]
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if e is not None:
        ax.errorbar(t[keep], y[keep], yerr=np.where(np.isfinite(e[keep]), e[keep], 0), fmt=".", ms=2,
                    color="#1f77b4", ecolor="#9ecae1", elinewidth=0.5)
    else:
        ax.plot(t[keep], y[keep], ".", ms=2, color="#1f77b4")
    info = lc.column_info.get(time_col, {})
    ax.set_xlabel(f"{time_col}" + (f" [{info['unit']}]" if info.get("unit") else ""))
    yinfo = lc.column_info.get(mag_col, {})
    ax.set_ylabel(f"{mag_col}" + (f" [{yinfo['unit']}]" if yinfo.get("unit") else ""))
    if mag_col in lc.mag_columns and str(yinfo.get("unit", "mag")).lower() in ("mag", ""):
        ax.invert_yaxis()
    shown = f"{len(keep)} of {len(t)} points" + (f" (every {step}th)" if step > 1 else "")
    ax.set_title(f"{title or lc.objectid}: {shown}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
