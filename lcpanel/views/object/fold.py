"""The object page's phase fold (:class:`FoldPanel`): period, epoch and bins inputs; the
light curve folded over two cycles (phase -0.5 to 1.5, minimum light at 0 and 1) with
median magnitudes in phase bins; a status line saying what is shown; candidate periods
kept for this browser session and the periods reviewers adopted.

Changing the period resets the epoch to the time of minimum light for that period
(:func:`minimum_light_epoch`); typing an epoch folds at it, and clearing the field goes
back to minimum light. A bad value shows a message under its field and changes nothing
else.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import panel as pn

from ...core.objects.annotations import history
from ...core.objects.checkplots import check_period, minimum_light_epoch, phase_fold
from ...core.objects.lcanalysis import MAX_ORDER, fourier_fit
from ...core.offload import offloader
from ...errors import UserError
from ..bokeh_edits import edits_plots
from ..theme import esc, section, styled
from .chips import Chip, ChipRow
from .context import ObjectContext
from .style import (
    BIN_COLOR,
    FIT_COLOR,
    FOLD_HEIGHT,
    POINT_COLOR,
    fmt_period,
    mag_range,
    object_html,
    plot_column,
    round_epoch,
    style_figure,
    value_of,
)


class FoldPanel:
    """The "Phase fold" section. ``save_varinfo(changes, message_pane)`` saves the adopted
    period (the review form's save); ``markers`` are the periodograms' spans at the folded
    period."""

    def __init__(self, ctx: ObjectContext, *, save_varinfo):
        self.ctx, self.save_varinfo = ctx, save_varinfo
        self.markers: list = []
        self.candidates: list[tuple[float, float | None]] = []
        self.current_fold = None
        self.fit = None
        self.extra_lists: list = []  # more period lists shown above the candidates (saved periods)
        self._quiet = False  # set while Python changes the fold inputs itself
        self._build()
        self._fold_from_inputs()

    def _initial_period(self) -> tuple[float | None, float | None]:
        adopted = self.ctx.adopted()
        if adopted is not None:
            return adopted, self.ctx.values.get("varepoch")
        for m in self.ctx.summary["pfmethods"]:
            if m["bestperiod"]:
                return m["bestperiod"], None
        return None, None

    def _build(self) -> None:
        from bokeh.models import ColumnDataSource, HoverTool, Range1d
        from bokeh.plotting import figure

        period, epoch = self._initial_period()
        if period is not None and epoch is None and len(self.ctx.times):
            epoch = round_epoch(minimum_light_epoch(self.ctx.times, self.ctx.mags, period))
        self.period_in = styled(pn.widgets.FloatInput(label="Period [d]", value=period, step=1e-4, width=160,
                                                      placeholder="e.g. 0.61367", css_classes=["lcp-fold-period"]))
        self.epoch_in = styled(pn.widgets.FloatInput(label="Epoch (time of minimum light)", value=epoch, step=1e-3,
                                                     width=250, placeholder="blank: minimum light",
                                                     css_classes=["lcp-fold-epoch"]))
        self.bins_in = styled(pn.widgets.IntInput(label="Phase bins (0: none)", value=0, start=0, end=1000,
                                                  width=250, css_classes=["lcp-fold-bins"]))
        self.period_err = object_html("", css_classes=["lcp-period-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.epoch_err = object_html("", css_classes=["lcp-epoch-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.bins_err = object_html("", css_classes=["lcp-bins-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.fold_status = object_html('<p class="lcp-fold-status lcp-stale">not folded yet: type a period</p>',
                                css_classes=["lcp-fold-status-pane"], margin=(6, 10))
        self.half_btn = styled(pn.widgets.Button(label="÷2", width=44, margin=(23, 2, 5, 2), css_classes=["lcp-fold-half"],
                                                 description="fold at half the period"))
        self.double_btn = styled(pn.widgets.Button(label="×2", width=44, margin=(23, 2, 5, 2), css_classes=["lcp-fold-double"],
                                                   description="fold at twice the period"))
        self.half_btn.on_click(lambda _e: self._scale_period(0.5))
        self.double_btn.on_click(lambda _e: self._scale_period(2.0))
        self.has_errs = bool(len(self.ctx.errs)) and bool(np.isfinite(self.ctx.errs).all())
        self.errbars = styled(pn.widgets.Checkbox(label="error bars" if self.has_errs else
                                                  "error bars (the checkplot holds no errors)",
                                                  value=False, disabled=not self.has_errs,
                                                  css_classes=["lcp-fold-errbars"], margin=(8, 10)))
        self.errbars.param.watch(self._on_errbars, "value")
        self.fit_order = styled(pn.widgets.IntInput(label="Fourier order", value=3, start=2, end=MAX_ORDER, width=110,
                                                    css_classes=["lcp-fit-order"]))
        self.fit_btn = styled(pn.widgets.Button(label="Fit", width=70, margin=(23, 5, 5, 5), css_classes=["lcp-fit"],
                                                description="fit a Fourier series at this period (astrobase)",
                                                disabled=not self.has_errs))
        self.fit_btn.on_click(self._fit)
        self.fit_status = object_html("", css_classes=["lcp-fit-status"], margin=(0, 10))
        self.period_in.param.watch(self._on_period, "value")
        self.epoch_in.param.watch(self._on_epoch, "value")
        self.bins_in.param.watch(self._on_bins, "value")

        self.fold_src = ColumnDataSource({"phase": [], "mag": [], "t": [], "err": [], "lower": [], "upper": []})
        self.fit_src = ColumnDataSource({"phase": [], "mag": []})
        self.bin_src = ColumnDataSource({"phase": [], "mag": []})
        fig = figure(height=FOLD_HEIGHT, sizing_mode="stretch_width", x_range=Range1d(-0.5, 1.5, bounds=(-0.6, 1.6)),
                     tools="pan,box_zoom,wheel_zoom,reset,save", toolbar_location="above",
                     x_axis_label="phase (two cycles; minimum light at 0 and 1)",
                     y_axis_label=f"magnitude ({self.ctx.magcol})", output_backend="canvas",
                     y_range=Range1d(*mag_range(self.ctx.mags)[:2]))
        self.err_renderer = fig.segment("phase", "lower", "phase", "upper", source=self.fold_src, color=POINT_COLOR,
                                        alpha=0.35, line_width=1, visible=False)
        pts = fig.scatter("phase", "mag", source=self.fold_src, size=3.5, color=POINT_COLOR, alpha=0.6)
        self.fold_points = pts
        fig.line("phase", "mag", source=self.bin_src, color=BIN_COLOR, line_width=2.5, alpha=0.9)
        fig.line("phase", "mag", source=self.fit_src, color=FIT_COLOR, line_width=2.2, alpha=0.95)
        fig.add_tools(HoverTool(renderers=[pts], tooltips=[("phase", "@phase{0.000}"), ("mag", "@mag{0.0000}"),
                                                           ("time", "@t{0.00000}")]))
        style_figure(fig)
        self.fold_fig = fig
        self.fold_plot = plot_column(fig, "lcp-folded", margin=(0, 10))

        self.fold_msg = object_html("", css_classes=["lcp-fold-message"], margin=(4, 10))
        add = styled(pn.widgets.Button(label="Add to candidates", color="default", width=148,
                                       css_classes=["lcp-add-candidate"]))
        adopt = styled(pn.widgets.Button(label="Adopt period", color="primary", width=118,
                                         css_classes=["lcp-adopt"], visible=self.ctx.may_edit_varinfo,
                                         description="save this period and epoch as the object's varperiod and "
                                                     "varepoch"))
        add.on_click(self._add_candidate)
        adopt.on_click(self._adopt)
        self.fold_buttons = pn.Row(add, adopt, margin=(6, 0))
        self.candidates_box = ChipRow(sizing_mode="stretch_width", css_classes=["lcp-candidates"], margin=(0, 10))
        self.tried_box = ChipRow(sizing_mode="stretch_width", css_classes=["lcp-tried"], margin=(0, 10))

    def panel(self):
        period_row = pn.Row(self.period_in, self.half_btn, self.double_btn, margin=0)
        controls = pn.Column(period_row, self.period_err, self.epoch_in, self.epoch_err, self.bins_in,
                             self.bins_err, self.errbars,
                             pn.Row(self.fit_order, self.fit_btn, margin=0), self.fit_status, self.fold_buttons,
                             width=300, margin=0)
        right = pn.Column(self.fold_status, self.fold_plot, self.fold_msg, sizing_mode="stretch_width", margin=0,
                          styles={"flex": "1 1 320px", "min-width": "0"})
        lists = pn.Column(*self.extra_lists,
                          object_html('<p class="lcp-small-title">Candidates (this session)</p>',
                                      margin=(6, 10, 0, 10)), self.candidates_box,
                          object_html('<p class="lcp-small-title">Periods adopted by reviewers</p>',
                                      margin=(6, 10, 0, 10)), self.tried_box, sizing_mode="stretch_width")
        self._render_candidates()
        self.render_tried()
        body = pn.FlexBox(controls, right, flex_wrap="wrap", gap="0", sizing_mode="stretch_width")
        return section("Phase fold", body, lists,
                       subtitle="Type a period (Enter or Tab applies it), pick a periodogram peak, or click a "
                                "periodogram. A new period resets the epoch to the time of minimum light; type "
                                "an epoch to override it. Bins draw the median magnitude per phase bin; ×2 and ÷2 "
                                "double or halve the period; Fit overlays astrobase's Fourier-series fit.",
                       css_classes=["lcp-fold"])

    def _scale_period(self, factor: float) -> None:
        """×2 / ÷2: fold at a multiple of the current period."""
        if self.current_fold is None:
            self._say_field(self.period_err, "Fold at a period first.")
            return
        self.set_period(float(f"{self.current_fold[0] * factor:.12g}"))

    @edits_plots
    def _on_errbars(self, _event) -> None:
        self.err_renderer.visible = bool(self.errbars.value)

    @edits_plots
    def _clear_fit(self, why: str = "") -> None:
        self.fit = None
        self.fit_src.data = {"phase": [], "mag": []}
        self.fit_status.object = f'<p class="lcp-muted" style="margin:0">{esc(why)}</p>' if why else ""

    async def _fit(self, _event=None) -> None:
        """astrobase's Fourier fit at the fold's period, drawn over the fold; it runs on the
        server's worker threads (seconds for ~10,000 points), the button off meanwhile."""
        if self.current_fold is None:
            self._clear_fit("Fold at a period first.")
            return
        period, epoch = self.current_fold
        order = value_of(self.fit_order)
        self.fit_btn.disabled = True
        self.fit_status.object = '<p class="lcp-muted" style="margin:0">fitting…</p>'
        try:
            fit = await offloader(self.ctx.app).run(fourier_fit, self.ctx.times, self.ctx.mags, self.ctx.errs, period,
                                                    order=int(order or 3))
        except UserError as exc:
            self._clear_fit(exc.message)
            return
        finally:
            self.fit_btn.disabled = not self.has_errs
        self._show_fit(fit, period, epoch)

    @edits_plots
    def _show_fit(self, fit: dict, period: float, epoch) -> None:
        if self.current_fold != (period, epoch):
            self._clear_fit("The fold changed while fitting: press Fit again.")
            return
        ph = ((fit["times"] - (epoch if epoch is not None else fit["fitepoch"])) / period) % 1.0
        ph = np.where(ph >= 0.5, ph - 1.0, ph)
        order_ = np.argsort(ph, kind="stable")
        ph, model = ph[order_], fit["model"][order_]
        self.fit_src.data = {"phase": np.concatenate([ph, ph + 1.0]), "mag": np.concatenate([model, model])}
        self.fit = {"period": period, "epoch": epoch}
        amps = ", ".join(f"{abs(a):.4f}" for a in fit["amplitudes"][1:]) or "none"
        self.fit_status.object = (
            f'<p class="lcp-fit-shown" style="margin:0;font-size:0.9em">Fourier fit (astrobase), order {fit["order"]} '
            f'at P = <span class="lcp-mono">{fmt_period(period)}</span> d: χ² = {fit["chisq"]:.1f}, reduced '
            f'χ² = {fit["redchisq"]:.3f} ({fit["npoints"]:,} points); harmonic amplitudes {amps} mag</p>')

    def set_period(self, period: float) -> None:
        """Fold at ``period`` (a pick, a periodogram click, a candidate): sets the field."""
        if self.period_in.value == period:
            self._on_period(None)
        else:
            self.period_in.value = period

    def _say_field(self, pane, message: str | None) -> None:
        pane.object = f'<p class="lcp-error-text">{esc(message)}</p>' if message else ""

    def _on_period(self, _event) -> None:
        if self._quiet:
            return
        value = value_of(self.period_in)
        if value is None:
            self._say_field(self.period_err, "Type a period in days.")
            return
        try:
            period = check_period(value)
        except UserError as exc:
            self._say_field(self.period_err, exc.message)
            return
        epoch = round_epoch(minimum_light_epoch(self.ctx.times, self.ctx.mags, period)) if len(self.ctx.times) else None
        self._quiet = True
        try:
            self.epoch_in.value = epoch
        finally:
            self._quiet = False
        self._say_field(self.epoch_err, None)
        self._fold_from_inputs()

    def _on_epoch(self, _event) -> None:
        if self._quiet:
            return
        self._fold_from_inputs()

    def _on_bins(self, _event) -> None:
        self._fold_from_inputs()

    def _fold_from_inputs(self) -> None:
        """Fold with the three inputs; a bad one gets a message and nothing else changes."""
        period, epoch, nbins = value_of(self.period_in), value_of(self.epoch_in), value_of(self.bins_in)
        if period is None:
            return
        try:
            period = check_period(period)
        except UserError as exc:
            self._say_field(self.period_err, exc.message)
            return
        self._say_field(self.period_err, None)
        if nbins is None:
            nbins = 0
        if epoch is None and len(self.ctx.times):  # a cleared field: minimum light, shown in the field
            epoch = round_epoch(minimum_light_epoch(self.ctx.times, self.ctx.mags, period))
            self._quiet = True
            try:
                self.epoch_in.value = epoch
            finally:
                self._quiet = False
        try:
            result = phase_fold(self.ctx.times, self.ctx.mags, self.ctx.errs if self.has_errs else None,
                                period=period, epoch=epoch,
                                nbins=int(nbins) if nbins else None)
        except UserError as exc:
            pane = {"epoch": self.epoch_err, "nbins": self.bins_err}.get(exc.field, self.period_err)
            self._say_field(pane, exc.message)
            return
        self._say_field(self.epoch_err, None)
        self._say_field(self.bins_err, None)
        self._show_fold(result, nbins)

    @edits_plots
    def _show_fold(self, result: dict, nbins: int) -> None:
        phase = np.where(result["phase"] >= 0.5, result["phase"] - 1.0, result["phase"])  # [-0.5, 0.5)
        mags2 = np.concatenate([result["mags"], result["mags"]])
        errs2 = (np.concatenate([result["errs"], result["errs"]]) if result.get("errs") is not None
                 else np.zeros(len(mags2)))
        self.fold_src.data = {"phase": np.concatenate([phase, phase + 1.0]), "mag": mags2,
                              "t": np.concatenate([result["times"], result["times"]]), "err": errs2,
                              "lower": mags2 - errs2, "upper": mags2 + errs2}
        if self.fit is not None and (self.fit["period"] != result["period"] or self.fit["epoch"] != result["epoch"]):
            self._clear_fit("The fit was for another fold: press Fit again.")
        if nbins and len(result.get("binphase", [])):
            bp = np.where(result["binphase"] >= 0.5, result["binphase"] - 1.0, result["binphase"])
            order = np.argsort(bp, kind="stable")
            bp, bm = bp[order], result["binmags"][order]
            self.bin_src.data = {"phase": np.concatenate([bp, bp + 1.0]), "mag": np.concatenate([bm, bm])}
        else:
            self.bin_src.data = {"phase": [], "mag": []}
        alpha = 0.3 if nbins else 0.6  # the binned line stands out over fainter points
        self.fold_points.glyph.fill_alpha = self.fold_points.glyph.line_alpha = alpha
        for span in self.markers:
            span.location = result["period"]
        n = len(result["phase"])
        epoch = result["epoch"]
        binned = f", medians in {nbins} bins" if nbins else ""
        adopted = self.ctx.adopted()
        note = ""
        if adopted is not None and abs(adopted - result["period"]) <= 1e-9 * adopted:
            note = " (the adopted period)"
        self.fold_status.object = (
            f'<p class="lcp-fold-status">folded at P = <b class="lcp-mono">{fmt_period(result["period"])}</b> d'
            f'{note}, E = <span class="lcp-mono">{epoch:.6f}</span>, {n:,} points{binned}</p>'
            if epoch is not None else
            f'<p class="lcp-fold-status">folded at P = {fmt_period(result["period"])} d, {n:,} points</p>')
        self.current_fold = (result["period"], epoch)

    def _add_candidate(self, _event=None) -> None:
        fold = self.current_fold
        if fold is None:
            self.fold_msg.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        if not any(abs(fold[0] - p) <= 1e-9 * p for p, _ in self.candidates):
            self.candidates.append(fold)
        self.fold_msg.object = ""
        self._render_candidates()

    def _render_candidates(self) -> None:
        self.candidates_box.show(
            [Chip(f"{p:.8g} d", "lcp-candidate", f"fold at {fmt_period(p)} d, epoch {e}", partial(self.fold_at, p, e))
             for p, e in self.candidates],
            empty='none yet: "Add to candidates" keeps the current fold here while this page is open')

    def render_tried(self) -> None:
        rows = [r for r in history(self.ctx.app.basedir, self.ctx.collection, self.ctx.objectid) if r["field"] == "varperiod"
                and isinstance(r["new_value"], (int, float)) and r["new_value"] > 0]
        chips = []
        adopted = self.ctx.adopted()
        if adopted is not None:
            chips.append(Chip(f"current: {adopted:.8g} d", "lcp-tried-period", "the object's adopted period",
                              partial(self.fold_at, adopted, self.ctx.values.get("varepoch"))))
        for r in reversed(rows[-12:]):
            p = float(r["new_value"])
            label = f"{p:.8g} d · {'you' if r['author'] == self.ctx.viewer.identity else r['author'][:12]}"
            chips.append(Chip(label, "lcp-tried-period", f"adopted {r['time'][:19].replace('T', ' ')} UTC",
                              partial(self.set_period, p)))
        self.tried_box.show(chips, empty='none recorded: "Adopt period" saves the fold\'s period and epoch as the '
                                         "object's varperiod and varepoch")

    def fold_at(self, period: float, epoch: float | None) -> None:
        self._quiet = True
        try:
            self.period_in.value = period
            self.epoch_in.value = epoch
        finally:
            self._quiet = False
        self._fold_from_inputs()

    def _adopt(self, _event=None) -> None:
        fold = self.current_fold
        if fold is None:
            self.fold_msg.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        changes = {"varperiod": fold[0]}
        if fold[1] is not None:
            changes["varepoch"] = fold[1]
        result = self.save_varinfo(changes, self.fold_msg)
        if result is not None:
            done = ("Adopted" if result["changed"] else "Already")
            self.fold_msg.object = (f'<p class="lcp-help">{done} P = {fmt_period(fold[0])} d as this object\'s '
                                    "period.</p>")

