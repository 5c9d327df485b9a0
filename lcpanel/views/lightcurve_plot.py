"""The object page's unphased light-curve plot, saying what it shows.

Two series can be shown:

- **checkplot**: the light curve the checkplot holds: what period finding used, after
  astrobase's sigma clipping (the checkplot's ``sigclip``) and its removal of non-finite
  points, in the time column the checkplot was made with;
- **as stored**: every point of the light-curve file, read with the collection's format,
  in any of the file's time columns (a chooser when there are several, e.g. ``rjd`` and
  ``bjd``). Points without a finite time or magnitude are counted, not drawn. Where the
  format names quality masks (HAT ``aiq_*`` flags, Kepler/TESS ``QUALITY`` bits:
  :func:`lcpanel.core.objects.lcrequest.mask_keep`), a mask chooser hides the points a
  mask rejects, or shows them in grey, and the status line counts them.

The time axis names the column, the offset subtracted for readable ticks, and the time
system where the format states it (:func:`lcpanel.core.objects.plotlabels.time_axis_label`); the
magnitude axis names the magnitude column.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import panel as pn

from ..core.objects.lccache import read_collection_lightcurve
from ..core.objects.lcrequest import mask_keep
from ..core.objects.plotlabels import time_axis_label, time_columns
from .bokeh_edits import edits_plots
from .theme import ACCENT, esc, html, styled

log = logging.getLogger(__name__)

CHECKPLOT, STORED = "checkplot", "as stored"
NO_MASK = "no mask (all points)"
MASKED_COLOR = "#9aa5ae"


@dataclass
class StoredLightCurve:
    """The object's light curve as its file holds it (or why it could not be read)."""

    lc: object = None
    time_columns: list[str] = field(default_factory=list)
    mag_column: str | None = None
    checkplot_time_column: str | None = None  # the format's time column for the magcol
    error: str | None = None


def read_stored(app, info, row: dict, magcol: str | None) -> StoredLightCurve:
    """Read the object's light-curve file with the collection's format; never raises."""
    out = StoredLightCurve()
    path = info.object_file(row.get("lcfname")) if row else None
    if path is None or not info.lcformat:
        out.error = "the collection has no light-curve file for this object"
        return out
    try:
        fmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
        lc = read_collection_lightcurve(fmt, info, path)  # with the format's column and time facts
    except Exception as exc:  # a broken file or reader: say so, keep the checkplot view
        log.warning("reading %s failed: %s", path, exc)
        out.error = f"the light-curve file could not be read ({type(exc).__name__})"
        return out
    out.lc = lc
    out.time_columns = time_columns(lc)
    mags = list(getattr(lc, "mag_columns", ()) or ())
    wanted = magcol.replace(".", "_") if magcol else None
    out.mag_column = wanted if wanted in lc.columns else (mags[0] if mags else None)
    out.checkplot_time_column = _format_time_column(fmt, magcol) or (out.time_columns[0] if out.time_columns
                                                                     else None)
    if out.mag_column is None or not out.time_columns:
        out.error = "the light-curve file has no time or magnitude column the format names"
    return out


def _format_time_column(fmt, magcol: str | None) -> str | None:
    """The time column an astrobase format pairs with ``magcol`` (its timecols and
    magcols lists are parallel), else None."""
    spec = getattr(fmt, "lcformat", None)
    try:
        timecols, magcols = list(spec[2]), list(spec[3])
        return timecols[magcols.index(magcol)].replace(".", "_")
    except (TypeError, ValueError, IndexError, AttributeError):
        return None


class LightCurvePlot:
    """The plot, its series and time-column choosers and a line saying what is shown."""

    def __init__(self, times, mags, *, magcol: str, stored: StoredLightCurve, sigclip, style, mag_range,
                 plot_column, height: int):
        from bokeh.models import ColumnDataSource, HoverTool, Range1d
        from bokeh.plotting import figure

        self.cp_times, self.cp_mags = np.asarray(times, float), np.asarray(mags, float)
        self.magcol, self.stored, self.sigclip = magcol, stored, sigclip
        self._mag_range = mag_range
        self.src = ColumnDataSource({"x": [], "t": [], "mag": []}, name="lcp-lc-points")
        self.masked_src = ColumnDataSource({"mx": [], "mt": [], "mmag": []}, name="lcp-lc-masked")
        self.yrange = Range1d(1, 0)
        self.fig = figure(height=height, sizing_mode="stretch_width", tools="pan,box_zoom,wheel_zoom,reset,save",
                          toolbar_location="above", y_axis_label=f"magnitude ({magcol})", output_backend="canvas",
                          y_range=self.yrange)  # fainter (larger) magnitudes at the bottom
        self.masked_points = self.fig.scatter("mx", "mmag", source=self.masked_src, size=3.5, color=MASKED_COLOR,
                                              alpha=0.6, marker="x", visible=False)
        self.fig.scatter("x", "mag", source=self.src, size=3.5, color=ACCENT, alpha=0.7)
        self.fig.add_tools(HoverTool(tooltips=[("time", "@t{0.00000}"), ("mag", "@mag{0.0000}")]))
        style(self.fig)
        options = [CHECKPLOT] + ([STORED] if stored.error is None else [])
        self.series = styled(pn.widgets.RadioButtonGroup(label="Series", options=options, value=CHECKPLOT,
                                                         color="light", css_classes=["lcp-lc-series"]))
        self.timecol = styled(pn.widgets.Select(label="Time column", options=stored.time_columns or ["time"],
                                                value=stored.checkplot_time_column or (stored.time_columns or
                                                                                       ["time"])[0],
                                                width=160, css_classes=["lcp-lc-timecol"],
                                                visible=len(stored.time_columns) > 1))
        masks = list(getattr(stored.lc, "masks", None) or {}) if stored.lc is not None else []
        self.mask = styled(pn.widgets.Select(label="Quality mask", options=[NO_MASK, *masks], value=NO_MASK, width=190,
                                             css_classes=["lcp-lc-mask"], visible=bool(masks)))
        self.show_masked = styled(pn.widgets.Checkbox(label="show masked points (grey ×)", value=False,
                                                      css_classes=["lcp-lc-show-masked"], visible=bool(masks),
                                                      margin=(28, 10, 5, 10)))
        self.status = html("", css_classes=["lcp-lc-status"], margin=(4, 10))
        self.mask.param.watch(self._update, "value")
        self.show_masked.param.watch(self._update, "value")
        self.series.param.watch(self._update, "value")
        self.timecol.param.watch(self._update, "value")
        self.plot = plot_column(self.fig, "lcp-unphased", margin=(0, 10))
        self._update()

    def _series(self):
        """(times, mags, time column, words, masked times, masked mags) of the chosen series."""
        st = self.stored
        none = np.empty(0)
        if self.series.value == STORED and st.lc is not None:
            col = self.timecol.value if self.timecol.value in st.lc.columns else st.time_columns[0]
            t = np.asarray(st.lc.columns[col], float)
            m = np.asarray(st.lc.columns[st.mag_column], float)
            ok = np.isfinite(t) & np.isfinite(m)
            words = (f"as stored: all {len(t):,} points of the light-curve file"
                     + (f" ({int((~ok).sum()):,} without a finite time or magnitude are not drawn)"
                        if (~ok).any() else ""))
            if self.mask.value != NO_MASK:
                keep = mask_keep(st.lc, self.mask.value)
                rejected = ok & ~keep
                about = st.lc.masks[self.mask.value].get("description", "")
                words += (f"; mask <span class=\"lcp-mono\">{esc(self.mask.value)}</span> ({esc(about)}) rejects "
                          f'<span class="lcp-lc-masked-count">{int(rejected.sum()):,}</span> of them, '
                          + ("shown as grey ×" if self.show_masked.value else "hidden"))
                return t[ok & keep], m[ok & keep], col, words, t[rejected], m[rejected]
            return t[ok], m[ok], col, words, none, none
        clip = self.sigclip
        clipped = f"sigma-clipped at {esc(clip)}" if clip not in (None, False, 0) else "not sigma-clipped"
        more = ""
        if st.lc is not None and st.mag_column:
            more = f" of the file's {len(st.lc.columns[st.mag_column]):,}"
        words = f"checkplot: the {len(self.cp_times):,} points{more} period finding used ({clipped})"
        return self.cp_times, self.cp_mags, st.checkplot_time_column, words, none, none

    @edits_plots
    def _update(self, *_events) -> None:
        times, mags, col, words, mtimes, mmags = self._series()
        self.timecol.disabled = self.series.value != STORED
        self.mask.disabled = self.show_masked.disabled = self.series.value != STORED
        info = getattr(self.stored.lc, "column_info", None) if self.stored.lc is not None else None
        meta = None
        if self.stored.lc is not None and col == (list(self.stored.lc.time_columns) or [None])[0]:
            meta = self.stored.lc.meta  # the file's timesys/timeref: about its (first) declared time column
        t0 = float(math.floor(times.min())) if len(times) else 0.0
        self.fig.xaxis.axis_label = time_axis_label(col or "time", t0, info, meta)
        self.src.data = {"x": times - t0, "t": times, "mag": mags}
        self.masked_src.data = {"mx": mtimes - t0, "mt": mtimes, "mmag": mmags}
        self.masked_points.visible = bool(self.show_masked.value) and len(mtimes) > 0
        faint, bright, outside = self._mag_range(mags)
        self.yrange.start, self.yrange.end = faint, bright
        span = float(times.max() - times.min()) if len(times) else 0.0
        note = (f" {outside} outlying point{'s' if outside > 1 else ''} beyond the plotted magnitude range: "
                "scroll out to see them." if outside else "")
        stored_note = (f' <span class="lcp-muted">(as stored: {esc(self.stored.error)})</span>'
                       if self.stored.error else "")
        self.status.object = (f'<p class="lcp-lc-shown" style="margin:0">{words}, over {span:.1f} days; '
                              f'magnitude column <span class="lcp-mono">{esc(self.magcol)}</span>, time column '
                              f'<span class="lcp-mono lcp-lc-time">{esc(col or "not stated")}</span>.'
                              f'{note}{stored_note}</p>')

    def panel(self) -> pn.Column:
        controls = pn.FlexBox(self.series, self.timecol, self.mask, self.show_masked, flex_wrap="wrap", gap="0",
                              margin=(0, 10), sizing_mode="stretch_width")
        return pn.Column(controls, self.status, self.plot, sizing_mode="stretch_width", margin=0)
