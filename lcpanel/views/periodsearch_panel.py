"""The object page's "Period search" panel: run astrobase's period finders on demand
(:mod:`lcpanel.core.objects.periodsearch`) and see each result as a periodogram with
pick/fold exactly like the checkplot's.

- A form: method (GLS, BLS, PDM, AoV, AoV-MH, ACF, spectral window), magcol, time
  column, period range (days), frequency step (blank: astrobase's automatic grid), best
  peaks, sigma clip (blank: none) and time / magnitude ranges (blank: all points). It is
  made when the visitor first asks for it ("Set up a search"): its 40-odd models were a
  tenth of every object page view's build, and most visitors never run a search.
- "Run search" spends one request of the visitor's budget and queues the search as the
  JSON API does (the same validation, bounds and per-identity limit; a bad value shows a
  message under its field and starts nothing). Each search of this session shows its
  stage, a progress bar (indeterminate for BLS and ACF) and a Cancel button.
- Finished searches of this object (everyone's: results are visible to every visitor),
  of the magcol shown, appear as periodogram rows built by the page's own
  ``_method_row`` (so a pick button or a click folds the light curve below).

:meth:`ObjectPage.periodogram_panels` adds it; this module only uses the page's public-ish
helpers (the checkplot periodograms' ``_method_row``, the fold's ``set_period``) and never
writes the survey's directory.
"""

from __future__ import annotations

import logging

import panel as pn

from ..core.objects import periodsearch as ps
from ..core.objects.checkplots import downsample_periodogram
from ..core.offload import offloader
from ..errors import UserError
from .budget import spend
from .periodic import every
from ..visitor import client_address
from .theme import PANE_CSS, esc, html, section, styled
from .stylesheets import stylesheet

log = logging.getLogger(__name__)

#: finished searches shown on the page at most (newest first); the JSON API lists all
MAX_SHOWN = 12
POLL_MS = 700
FIELDS = ("method", "magcol", "timecol", "startp", "endp", "stepsize", "nbestpeaks", "sigclip", "tmin", "tmax",
          "magmin", "magmax")
#: a search's state line: the shared pane CSS and its own, one file
CSS = stylesheet("period-search", PANE_CSS + """
.lcp-ps-job { display: flex; gap: 10px; align-items: center; font-size: 0.93em; }
.lcp-ps-job .lcp-ps-state { color: #17476a; }
.lcp-ps-job.lcp-failed .lcp-ps-state { color: #b42318; }
""")


class PeriodSearchPanel:
    """The panel of one object page: ``ctx`` its :class:`~lcpanel.views.object.context.ObjectContext`,
    ``on_period``/``markers`` the fold's (as for the checkplot's periodograms), ``stored``
    the page's :class:`~lcpanel.views.lightcurve_plot.StoredLightCurve` (its time columns)."""

    def __init__(self, ctx, *, on_period, markers: list, stored=None):
        from .object.periodograms import CheckplotPeriodograms

        self.page = ctx
        self.app = ctx.app
        self.stored = stored
        self.rows = CheckplotPeriodograms(ctx, on_period=on_period, markers=markers)  # the same rows, pick/fold
        self.magcol = ctx.rec.magcol or None
        self.active: dict[str, dict] = {}  # job id -> its widgets
        self.shown: set[str] = set()
        self._poller = None
        self.inputs: dict = {}  # the form's widgets, once opened
        self.message = html("", css_classes=["lcp-ps-message"], margin=(4, 10))
        self.open_button = styled(pn.widgets.Button(label="Set up a search", color="primary", width=150,
                                                    css_classes=["lcp-ps-open"]))
        self.open_button.on_click(self.open_form)
        self.form_box = pn.Column(pn.Row(self.open_button, margin=(4, 10)), sizing_mode="stretch_width", margin=0,
                                  css_classes=["lcp-ps-form-box"])
        self.jobs_box = pn.Column(sizing_mode="stretch_width", margin=(0, 10), css_classes=["lcp-ps-jobs"])
        self.results_box = pn.Column(sizing_mode="stretch_width", margin=0, css_classes=["lcp-ps-results"])
        self._show_stored()

    # --- the form ---------------------------------------------------------------------------

    def open_form(self, _event=None) -> None:
        """Make the form and show it in place of the button that asked for it (once)."""
        if self.inputs:
            return
        self._build_form()
        form = pn.FlexBox(*(self._field(n) for n in FIELDS), sizing_mode="stretch_width", margin=(0, 10),
                          css_classes=["lcp-ps-form"])
        self.form_box.objects = [form, pn.Row(self.run, margin=(4, 10))]

    def _build_form(self) -> None:
        methods = {m.label: m.code for m in ps.METHODS.values()}
        stored = self.stored
        mag_options = list(self.page.rec.magcols) or ([self.magcol] if self.magcol else [])
        time_options = ["(the magcol's)"] + list(getattr(stored, "time_columns", []) or [])
        w = 150
        self.inputs = {
            "method": pn.widgets.Select(label="Method", options=methods, value="gls", width=270),
            "magcol": pn.widgets.Select(label="Magnitude column", options=mag_options or ["(default)"],
                                        value=self.magcol if self.magcol in mag_options else None, width=w),
            "timecol": pn.widgets.Select(label="Time column", options=time_options, value=time_options[0], width=w),
            "startp": pn.widgets.FloatInput(label="Shortest period [d]", value=0.1, width=w),
            "endp": pn.widgets.FloatInput(label="Longest period [d]", value=10.0, width=w),
            "stepsize": pn.widgets.FloatInput(label="Frequency step [1/d]", value=None, placeholder="auto", width=w),
            "nbestpeaks": pn.widgets.IntInput(label="Best peaks", value=5, start=1, end=20, width=w),
            "sigclip": pn.widgets.FloatInput(label="Sigma clip", value=10.0, placeholder="none", width=w),
            "tmin": pn.widgets.FloatInput(label="Time from", value=None, placeholder="all", width=w),
            "tmax": pn.widgets.FloatInput(label="Time to", value=None, placeholder="all", width=w),
            "magmin": pn.widgets.FloatInput(label="Magnitude from", value=None, placeholder="all", width=w),
            "magmax": pn.widgets.FloatInput(label="Magnitude to", value=None, placeholder="all", width=w),
        }
        for name, widget in self.inputs.items():
            widget.css_classes = [f"lcp-ps-{name}"]
            styled(widget)
        self.errors = {name: html("", css_classes=[f"lcp-ps-{name}-error"], width=w + 80, sizing_mode=None,
                                  margin=(0, 10)) for name in FIELDS}
        self.run = styled(pn.widgets.Button(label="Run search", color="primary", width=130,
                                            css_classes=["lcp-ps-run"]))
        self.run.on_click(self._on_run)

    def _field(self, name: str):
        return pn.Column(self.inputs[name], self.errors[name], margin=0)

    def _body(self) -> dict:
        body = {"method": self.inputs["method"].value}
        magcol = self.inputs["magcol"].value
        if magcol and magcol != "(default)":
            body["magcol"] = magcol
        timecol = self.inputs["timecol"].value
        if timecol and not timecol.startswith("("):
            body["timecol"] = timecol
        for name in ("startp", "endp", "stepsize", "nbestpeaks", "tmin", "tmax", "magmin", "magmax"):
            value = self.inputs[name].value
            if value is not None:
                body[name] = value
        body["sigclip"] = self.inputs["sigclip"].value
        if body["method"] == "acf":
            for name in ps.GRID_OPTIONS:
                body.pop(name, None)
        return body

    def _clear_errors(self) -> None:
        for pane in self.errors.values():
            pane.object = ""
        self.message.object = ""

    async def _on_run(self, _event=None) -> None:
        self._clear_errors()
        viewer = self.page.viewer
        refused = spend(self.app, viewer)
        if refused:
            self.message.object = f'<p class="lcp-error-text">{esc(refused)}</p>'
            return
        body = self._body()
        self.run.disabled = True
        try:
            job = await offloader(self.app).run(ps.start_search, self.app, self.page.collection,
                                                self.page.objectid, body, viewer, client_address())
        except UserError as exc:
            target = self.errors.get(exc.field or "")
            text = f'<p class="lcp-error-text">{esc(exc.message)}</p>'
            if target is not None:
                target.object = text
            else:
                self.message.object = text
            return
        finally:
            self.run.disabled = False
        self._track(job)

    # --- jobs of this session -----------------------------------------------------------------

    def _track(self, job: dict) -> None:
        state = html("", css_classes=["lcp-ps-state-pane"], margin=(0, 4), sheet=CSS)
        bar = pn.indicators.Progress(value=0, max=1000, width=180, bar_color="info", margin=(6, 4))
        cancel = styled(pn.widgets.Button(label="Cancel", color="default", width=80,
                                          css_classes=["lcp-ps-cancel"]))
        row = pn.Row(state, bar, cancel, margin=(2, 0), css_classes=["lcp-ps-job-row"])
        cancel.on_click(lambda _e, jid=job["id"]: self._cancel(jid))
        self.active[job["id"]] = {"state": state, "bar": bar, "cancel": cancel, "row": row}
        self.jobs_box.append(row)
        self._render_job(job)
        if self._poller is None:
            self._poller = every(self._poll, POLL_MS)

    def _render_job(self, job: dict) -> None:
        w = self.active.get(job["id"])
        if w is None:
            return
        label = f'{esc(job["label"])} on {esc(job["magcol"])}'
        status = job["status"]
        words = {"queued": "waiting for a worker", "running": job.get("stage") or "running",
                 "done": "done", "cancelled": "cancelled",
                 "failed": f'failed: {job.get("error") or "unknown error"}'}.get(status, status)
        css = "lcp-ps-job lcp-failed" if status == "failed" else "lcp-ps-job"
        w["state"].object = (f'<div class="{css}"><span>{label}</span> <span class="lcp-ps-state" '
                             f'data-status="{esc(status)}">{esc(words)}</span></div>')
        progress = job.get("progress")
        w["bar"].value = -1 if progress is None and status == "running" else int(1000 * (progress or 0))
        w["bar"].visible = status in ps.ACTIVE
        w["cancel"].visible = status in ps.ACTIVE

    def _poll(self) -> None:
        service = ps.service(self.app)
        for job_id in list(self.active):
            try:
                job = service.status(job_id)
            except UserError:
                self.active.pop(job_id, None)
                continue
            self._render_job(job)
            if job["status"] not in ps.ACTIVE:
                if job["status"] == "done":
                    result = ps.load_result(self.app.basedir, self.page.collection, self.page.objectid, job_id)
                    if result is not None:
                        self._add_result(result)
                self.active.pop(job_id, None)
        if not self.active and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def _cancel(self, job_id: str) -> None:
        try:
            job = ps.service(self.app).cancel(job_id, self.page.viewer, self.page.collection, self.page.objectid)
        except UserError as exc:
            self.message.object = f'<p class="lcp-error-text">{esc(exc.message)}</p>'
            return
        self._render_job({**ps.service(self.app).status(job_id), **{k: v for k, v in job.items() if k == "status"}})

    # --- results ------------------------------------------------------------------------------

    def _show_stored(self) -> None:
        stored = ps.list_results(self.app.basedir, self.page.collection, self.page.objectid, self.magcol)
        for item in stored[-MAX_SHOWN:]:
            result = ps.load_result(self.app.basedir, self.page.collection, self.page.objectid, item["id"])
            if result is not None:
                self._add_result(result)

    def _add_result(self, result: dict) -> None:
        if result["id"] in self.shown:
            return
        self.shown.add(result["id"])
        method, entry = as_method(result, self.page.viewer)
        try:
            row = self.rows._method_row(method, entry)
        except Exception:  # a result the plot cannot show must not break the page
            log.exception("period search %s could not be shown", result.get("id"))
            return
        row.css_classes = [*row.css_classes, "lcp-ps-result"]
        self.results_box.insert(0, row)  # newest first

    def panel(self):
        return section("Period search", self.form_box, self.message, self.jobs_box,
                       self.results_box, css_classes=["lcp-periodsearch"],
                       subtitle="Run astrobase's period finders on this light curve. Periods in days; the "
                                "frequency step in 1/day (blank: astrobase's automatic grid). Results are kept "
                                "for everyone who sees this object; pick a peak or click a periodogram to fold.")


def who_words(who: str | None, viewer) -> str:
    """Who ran a search, for the page: "you", "an anonymous visitor" or the account."""
    if not who:
        return "unknown"
    if who == getattr(viewer, "identity", None):
        return "you"
    if who.startswith("anon:"):
        return "an anonymous visitor"
    name = who.split(":", 1)[-1]
    return name if len(name) <= 18 else name[:17] + "…"


def as_method(result: dict, viewer=None) -> tuple[dict, dict]:
    """A stored result as the object page's (method, entry) pair of a periodogram row
    (the row's title escapes the label)."""
    code = result["method"]
    lower = bool(result.get("lower_is_better"))
    periods, lspvals = downsample_periodogram(result.get("periods"), result.get("lspvals"),
                                              lower_is_better=lower)
    when = (result.get("finished") or "")[:16].replace("T", " ")
    method = {
        "key": f"0-{code}", "method": code,
        "label": f"{result.get('label', code)} · {result.get('magcol')} vs {result.get('timecol')} · "
                 f"by {who_words(result.get('who'), viewer)}, {when} UTC",
        "bestperiod": result.get("bestperiod"), "nbestperiods": result.get("nbestperiods") or [],
        "nbestlspvals": result.get("nbestlspvals") or [], "lower_is_better": lower,
        "npoints": len(result["periods"]) if result.get("periods") is not None else 0,
        "periods": periods.tolist(), "lspvals": lspvals.tolist(),
        "phased": [],
    }
    return method, {"periods": result.get("periods"), "lspvals": result.get("lspvals")}
