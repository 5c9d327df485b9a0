"""The object page's periodograms: one row per period-finding method of the checkplot
(:class:`CheckplotPeriodograms`): its periodogram (log period axis; a click folds at the
best peak within 1% of it), its best periods as "pick" buttons, and the checkplot's own
phased light curve of its best period.

Each periodogram draws a marker (a dashed :class:`bokeh.models.Span`) at the period the
fold panel shows: the page passes the fold's ``markers`` list and ``set_period``. Other
periodogram panels (e.g. period searches run on demand) take the same two and are added
in :meth:`lcpanel.views.object_page.ObjectPage.periodogram_panels`.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import panel as pn

from ...core.objects.checkplots import method_plots, periodogram_peaks, pf_entries, png_dimensions
from ...errors import UserError
from ..escaping import HIDE_BROKEN_FIGURE, handler
from ..theme import ACCENT, esc, section
from .chips import Chip, ChipRow
from .context import ObjectContext
from .style import (
    BIN_COLOR,
    CANDIDATE_COLOR,
    NPICKS,
    PERIODOGRAM_HEIGHT,
    PHASED_PNG_WIDTH,
    POWER_LABELS,
    fmt_period,
    object_html,
    plot_column,
    style_figure,
)


class CheckplotPeriodograms:
    """The "Period finding" section: the checkplot's periodograms.

    ``on_period(period)`` folds at a period; ``markers`` collects the spans that show
    the folded period on every periodogram."""

    def __init__(self, ctx: ObjectContext, *, on_period, markers: list):
        self.ctx, self.on_period, self.markers = ctx, on_period, markers

    def _peaks(self, method: dict, entry: dict) -> list[float]:
        """The method's best periods, then more distinct periodogram peaks, up to NPICKS."""
        picks = [p for p in method["nbestperiods"] if p is not None and p > 0]
        try:
            more = periodogram_peaks(entry.get("periods"), entry.get("lspvals"), method["key"], n=NPICKS)
        except UserError:
            more = []
        for p in more:
            if len(picks) >= NPICKS:
                break
            if all(abs(p - q) > 0.01 * p for q in picks):
                picks.append(p)
        return picks[:NPICKS]

    def _periodogram_plot(self, method: dict, entry: dict):
        from bokeh.events import Tap
        from bokeh.models import ColumnDataSource, CustomJSTickFormatter, HoverTool, LogTicker, Span
        from bokeh.plotting import figure

        fig = figure(height=PERIODOGRAM_HEIGHT, sizing_mode="stretch_width", x_axis_type="log",
                     tools="pan,box_zoom,wheel_zoom,reset,save,tap", toolbar_location="above",
                     x_axis_label="period [d]", y_axis_label=POWER_LABELS.get(method["method"], "power"),
                     output_backend="canvas")
        # arrays, not lists: Bokeh sends them as binary buffers, not as JSON numbers in text
        src = ColumnDataSource({"period": np.asarray(method["periods"], dtype=np.float64),
                                "power": np.asarray(method["lspvals"], dtype=np.float64)})
        line = fig.line("period", "power", source=src, color=ACCENT, line_width=1.3)
        best = [(p, v) for p, v in zip(method["nbestperiods"], method["nbestlspvals"]) if p and v is not None]
        if best:
            fig.scatter([p for p, _ in best], [v for _, v in best], marker="inverted_triangle", size=9,
                        color=BIN_COLOR, legend_label="best periods")
            fig.legend.location = "top_left"
            fig.legend.label_text_font_size = "11px"
            fig.legend.background_fill_alpha = 0.7
            fig.legend.padding = 4
        fig.add_tools(HoverTool(renderers=[line], tooltips=[("period", "@period{0.000000} d"),
                                                            ("power", "@power{0.0000}")], mode="vline"))
        fig.xaxis.ticker = LogTicker(mantissas=[1, 2, 5], desired_num_ticks=10)
        fig.xaxis.formatter = CustomJSTickFormatter(code="return String(parseFloat(tick.toPrecision(6)))")
        span = Span(location=None, dimension="height", line_color=CANDIDATE_COLOR, line_dash="dashed",
                    line_width=1.5)
        fig.add_layout(span)
        self.markers.append(span)
        style_figure(fig)

        full_p = np.asarray(entry.get("periods") if entry.get("periods") is not None else [], dtype=float)
        full_v = np.asarray(entry.get("lspvals") if entry.get("lspvals") is not None else [], dtype=float)
        n = min(len(full_p), len(full_v))
        full_p, full_v = full_p[:n], full_v[:n]
        lower = method["lower_is_better"]

        def on_tap(event):
            x = event.x
            if x is None or not math.isfinite(x) or x <= 0 or not n:
                return
            near = np.isfinite(full_p) & np.isfinite(full_v) & (np.abs(full_p - x) <= 0.01 * x)
            if not near.any():
                i = int(np.nanargmin(np.abs(np.log(np.where(full_p > 0, full_p, np.nan)) - math.log(x))))
                chosen = float(full_p[i])
            else:
                idx = np.flatnonzero(near)
                score = -full_v[idx] if lower else full_v[idx]
                chosen = float(full_p[idx[int(np.argmax(score))]])
            self.on_period(chosen)

        fig.on_event(Tap, on_tap)
        return plot_column(fig, "lcp-periodogram", margin=0)

    def _phased_image(self, n: int, label: str, plot: dict) -> str:
        """The checkplot's phased light curve of the n-th method as an ``<img>`` of the API's
        ``tiles/method-<n>.png``: the browser fetches it beside the page (the page's
        document stays small), sized from the PNG's header so nothing moves when it
        arrives."""
        size = png_dimensions(plot["png"])
        height = f' height="{round(PHASED_PNG_WIDTH * size[1] / size[0])}"' if size and size[0] > 0 else ""
        src = f"{self.ctx.api_base()}/tiles/method-{n}.png{self.ctx.magcol_query()}"
        return (f'<figure style="margin:0"><img src="{esc(src)}" width="{PHASED_PNG_WIDTH}"{height} '
                f'style="max-width:100%;height:auto" '
                f'alt="{esc(label)} phased light curve" onerror="{handler(HIDE_BROKEN_FIGURE)}">'
                f'<figcaption class="lcp-muted" style="font-size:0.85em">checkplot: phased at its best period '
                f'{fmt_period(plot["period"])} d</figcaption></figure>')

    def _method_row(self, method: dict, entry: dict, n: int = 0, plot: dict | None = None):
        """One method's row; ``plot`` (the checkplot's phased plot of the n-th method) beside it when given."""
        peaks = self._peaks(method, entry)
        picks = ChipRow(lead=["pick"], sizing_mode="stretch_width", margin=(4, 0, 0, 0), css_classes=["lcp-picks"])
        picks.show([Chip(f"{p:.6g} d", "lcp-pick", f"fold at {fmt_period(p)} d", partial(self.on_period, p))
                    for p in peaks])
        npts = f"{method['npoints']:,} trial periods"
        best = method["bestperiod"]
        title = object_html(f'<p class="lcp-method-title">{esc(method["label"])}'
                     f'<span>best {fmt_period(best) if best else "—"} d · {npts}</span></p>', margin=(0, 0, 4, 0))
        left = pn.Column(title, self._periodogram_plot(method, entry), picks, sizing_mode="stretch_width",
                         margin=(0, 10))
        if plot is not None and plot["png"] is not None:
            right = object_html(self._phased_image(n, method["label"], plot), sizing_mode=None,
                                width=PHASED_PNG_WIDTH + 10, margin=(0, 10, 0, 0), css_classes=["lcp-phased-png"])
            left.styles = {"flex": "1 1 420px", "min-width": "0"}  # the PNG goes below on a narrow screen
            return pn.FlexBox(left, right, flex_wrap="wrap", gap="0", sizing_mode="stretch_width",
                              css_classes=["lcp-method"], margin=(0, 0, 14, 0))
        return pn.Row(left, sizing_mode="stretch_width", css_classes=["lcp-method"], margin=(0, 0, 14, 0))

    def panel(self):
        cp = self.ctx.rec.checkplot
        # each method key's (entry, n, plot): n names its image, tiles/method-<n>.png
        found = {key: (entry, n, plot) for n, ((key, entry), plot) in enumerate(zip(pf_entries(cp), method_plots(cp)))}
        rows = [self._method_row(m, *found[m["key"]]) for m in self.ctx.summary["pfmethods"] if m["key"] in found]
        if not rows:
            return section("Period finding", object_html('<p class="lcp-empty">The checkplot has no period-finding '
                                                  'results.</p>', margin=(0, 10)))
        return section("Period finding", *rows,
                       subtitle="Periodograms of each method (log period axis; the red dashed line is the "
                                "period folded below). A pick button, or a click on a periodogram (the best "
                                "peak within 1%), folds the light curve at that period.")

