"""The object page, ``/objects/<collection>/<objectid>``: a checkplot view in the spirit of
astrobase's checkplotserver.

What it shows
-------------
- **Header**: objectid, collection (with a link back), position (decimal and
  sexagesimal, galactic when known), magnitudes and cross-ids (2MASS, TIC, Gaia,
  SIMBAD), the reviewed variability info (objectisvar in words, period, epoch, tags),
  the comments, the finder chart from the checkplot (an ``<img>`` of the JSON API's
  ``tiles/finder.png``, so it loads asynchronously) and download links for the object's
  files (light curve as stored, CSV, FITS, VOTable; checkplot; period-finding pickle).
- **Light curve**: the unphased light curve as a Bokeh scatter (magnitude axis
  inverted, time relative to a whole day so the ticks stay readable).
- **Period finding**: one row per method in the checkplot: its periodogram (Bokeh line,
  log period axis, from :func:`~lcpanel.core.objects.checkplots.object_summary`'s downsampled
  arrays that keep every peak), its best periods as "pick" buttons, and the checkplot's
  own phased light curve of its best period (decoded from the pickle's base64 PNG).
  Clicking a periodogram folds at the best peak within 1% of the click.
- **Phase fold**: period, epoch and bins inputs; the folded light curve is drawn over two
  cycles (phase -0.5 to 1.5, each point twice, minimum light at phase 0 and 1), with
  median magnitudes in phase bins as a line when bins > 0. A status line says what is
  shown ("folded at P = 0.6968028 d, E = ..., 476 points"). A bad value shows a message
  under its field and changes nothing else. Changing the period resets the epoch to
  the time of minimum light for that period (:func:`minimum_light_epoch`); typing an
  epoch folds at it, and clearing the field goes back to minimum light.
- **Review**: a form for objectisvar, varperiod, varepoch and vartags (staff) and a new
  comment (everyone), saved with :mod:`lcpanel.core.objects.reviews` in the basedir (author: the
  visitor's identity, the same cookie identity as the JSON API); the comments, each with
  its author and time (a delete button on one's own, on all for admins), and the
  object's edit history. Each save or delete spends one request of the visitor's budget
  (:mod:`lcpanel.views.budget`), like an HTTP request; a spent budget shows a message and
  writes nothing. The survey's checkplot is never written.

Candidate periods: a choice
---------------------------
``lcpanel.core.objects.annotations`` has no field for candidate periods, and this page does not
invent storage in core. So:

- "Add to candidates" keeps the fold's (period, epoch) in a list for this browser
  session only, shown as buttons that fold again at them;
- "Adopt period" saves the fold's period and epoch as the object's ``varperiod`` and
  ``varepoch`` (what checkplotserver's "set period" does), so it reaches the reviews,
  the catalog searches read, and the history;
- "Periods adopted by reviewers" lists every ``varperiod`` value in the object's edit
  history (who, when), also as buttons: the persistent record of periods tried.

Who may edit
------------
Staff and admins may edit variability info (:func:`lcpanel.core.objects.reviews.can_edit_varinfo`
is the single place of that rule); everyone may comment. Visitors who may not edit see the form locked, with
a link to log in.

Like every page it never shows a traceback: an unknown collection or object, an object
without a checkplot (a plain catalog) or an unreadable checkplot each give a short
message page with a link back.

Views do not import plugins: the checkplot is found here from the catalog row's
``cpfname`` inside the collection directory, with the same inside-the-directory check as
the JSON API's file routes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from urllib.parse import quote

import numpy as np
import panel as pn
import param

from ..core.objects import reviews
from ..core.objects.annotations import OBJECTISVAR, history, validate_changes, validate_comment, varinfo_columns
from ..core.objects.checkplots import (
    CheckplotError,
    check_period,
    decode_png,
    load_checkplot,
    magseries,
    minimum_light_epoch,
    object_summary,
    pf_entries,
    periodogram_peaks,
    phase_fold,
)
from ..core.objects.magcols import checkplot_column, choose_magcol, collection_magcols
from ..errors import UserError
from .budget import spend
from .escaping import HIDE_BROKEN_FIGURE, handler, md
from .lightcurve_plot import LightCurvePlot, read_stored
from .theme import ACCENT, DANGER, MUTED, esc, html, login_url, page, section, session_viewer, styled

log = logging.getLogger(__name__)

#: how many "pick" buttons a periodogram gets at most
NPICKS = 5
#: periodogram y-axis labels by astrobase method code
POWER_LABELS = {
    "gls": "Lomb-Scargle power", "bls": "BLS power", "pdm": "PDM Θ (lower is better)",
    "aov": "AoV Θ", "mav": "AoVMH Θ", "acf": "autocorrelation", "sls": "Lomb-Scargle power",
    "tls": "TLS SDE",
}
#: (label, objectinfo key) of the magnitudes shown in the header, in wavelength order
MAGNITUDES = (("u", "sdssu"), ("B", "bmag"), ("g", "sdssg"), ("V", "vmag"), ("r", "sdssr"), ("R", "rmag"),
              ("G", "gaiamag"), ("i", "sdssi"), ("I", "imag"), ("T", "tessmag"), ("z", "sdssz"),
              ("J", "jmag"), ("H", "hmag"), ("Ks", "kmag"))
#: (label, objectinfo keys) of cross-identifications
CROSS_IDS = (("2MASS", ("twomassid",)), ("TIC", ("ticid",)), ("Gaia", ("gaiaid", "gaia_id")),
             ("SIMBAD", ("simbad_best_mainid",)))
ISVAR_BADGE = {0: "off", 1: "public", 2: "", 3: "mine"}
LC_HEIGHT = 300
PERIODOGRAM_HEIGHT = 230
FOLD_HEIGHT = 360
PHASED_PNG_WIDTH = 390
POINT_COLOR = ACCENT
BIN_COLOR = "#d55e00"
CANDIDATE_COLOR = DANGER

OBJECT_CSS = f"""
.lcp-object-head {{ display: grid; grid-template-columns: 1fr auto; gap: 18px; align-items: start; }}
.lcp-object-head h1 {{ font-size: 1.6em; font-weight: 600; margin: 0; color: #1d2a33;
                       font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }}
.lcp-object-head .lcp-sub {{ color: {MUTED}; margin: 2px 0 10px 0; }}
.lcp-object-head .lcp-facts {{ grid-template-columns: 130px 1fr; row-gap: 5px; font-size: 0.95em; }}
.lcp-object-head figure {{ margin: 0; text-align: center; }}
.lcp-object-head figure img {{ width: 231px; height: 231px; border: 1px solid #dde3e8; border-radius: 6px;
                               background: #fafbfc; display: block; }}
.lcp-object-head figcaption {{ color: {MUTED}; font-size: 0.85em; margin-top: 3px; }}
.lcp-downloads {{ display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; }}
.lcp-downloads a {{ border: 1px solid #c9dbe8; border-radius: 6px; padding: 2px 10px; font-size: 0.9em;
                    background: #f7fafc; }}
.lcp-comments-text {{ white-space: pre-wrap; margin: 0; }}
.lcp-mono {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em; }}
.lcp-fold-status {{ margin: 0; padding: 6px 10px; background: {'#e8f0f6'}; border-radius: 6px; color: #17476a;
                    font-size: 0.93em; line-height: 1.4; }}
.lcp-fold-status.lcp-stale {{ background: #f3f4f6; color: {MUTED}; }}
.lcp-method-title {{ font-weight: 600; font-size: 1.05em; color: #1d2a33; margin: 0; }}
.lcp-method-title span {{ font-weight: 400; color: {MUTED}; font-size: 0.9em; margin-left: 8px; }}
.lcp-small-title {{ font-weight: 600; color: #34414b; margin: 6px 0 2px 0; font-size: 0.95em; }}
"""
PICK_CSS = """
.bk-btn { font-size: 12.5px; padding: 2px 9px; font-variant-numeric: tabular-nums; border-radius: 999px;
          border: 1px solid #c9dbe8; background: #f3f8fb; color: #17476a; }
.bk-btn:hover { background: #dcebf5; }
"""


def can_edit_varinfo(viewer, collection) -> bool:
    """Whether ``viewer`` may change the variability info (objectisvar, varperiod,
    varepoch, vartags) of ``collection``'s objects.

    Staff and admins only (comments stay open to everyone): the rule of
    :func:`lcpanel.core.objects.reviews.can_edit_varinfo`.
    """
    return reviews.can_edit_varinfo(viewer)


# --- finding the object ---------------------------------------------------------------------


@dataclass
class ObjectRecord:
    """What the page knows about one object: its catalog row and, when it has one, its
    checkplot (or why it could not be read)."""

    collection_id: str
    objectid: str
    catalog: object = None
    row: dict | None = None
    checkplot: dict | None = None
    error: str | None = None  # why there is no page ("no such object"...)
    no_checkplot: str | None = None  # why there is no checkplot view
    varcols: dict = field(default_factory=dict)  # editable field -> catalog column
    magcol: str | None = None  # the magcol shown (None: the collection has one checkplot per object)
    magcols: list = field(default_factory=list)  # the collection's magcols, default first
    varprefix: str = ""  # the catalog prefix of the variability columns edited here

    @property
    def info(self):
        return self.catalog.info


def find_object(app, collection_id: str, objectid: str, magcol: str = "") -> ObjectRecord:
    """The object's catalog row and checkplot (of ``magcol``, default the collection's
    first); never raises for a visitor's mistake."""
    rec = ObjectRecord(collection_id, objectid)
    try:
        rec.catalog = app.catalogs.get(collection_id)
    except UserError:
        rec.error = f"There is no collection {collection_id!r}"
        return rec
    rec.magcols = collection_magcols(rec.catalog.info.columns)
    try:
        rec.magcol = choose_magcol(rec.catalog.info.columns, magcol)
    except UserError as exc:
        rec.error = exc.message
        return rec
    names = list(rec.catalog.columns)
    cols = ", ".join(f'"{n}"' for n in names)
    rows = rec.catalog.query(f"SELECT {cols} FROM object_catalog WHERE objectid = ?", (objectid,))
    if not rows:
        rec.error = f"There is no object {objectid!r} in {rec.catalog.info.name}"
        return rec
    rec.row = dict(zip(names, rows[0]))
    cpfname = rec.row.get(checkplot_column(rec.magcol) if rec.magcol else "cpfname")
    rec.varprefix, rec.varcols = varinfo_columns(names, cpfname, objectid)
    path = rec.info.object_file(cpfname)
    if path is None:
        rec.no_checkplot = ("This collection is a plain catalog: its objects have no checkplots."
                            if rec.info.kind != "astrobase" or "cpfname" not in rec.catalog.columns
                            else "There is no checkplot for this object.")
        return rec
    try:
        rec.checkplot = load_checkplot(path)
    except CheckplotError as exc:
        rec.no_checkplot = f"The checkplot of this object cannot be read: {exc.message}"
    except OSError as exc:
        rec.no_checkplot = f"The checkplot of this object cannot be read: {exc.strerror or exc}"
    return rec


# --- formatting -----------------------------------------------------------------------------


def sexagesimal(ra: float, dec: float) -> str:
    """'19h22m12.83s +44°37′43.7″' (RA to 0.01 s, Dec to 0.1″)."""
    total = round((ra % 360.0) / 15.0 * 3600.0 * 100)  # hundredths of a second of time
    total %= 24 * 3600 * 100
    h, rest = divmod(total, 3600 * 100)
    m, s = divmod(rest, 60 * 100)
    sign = "-" if dec < 0 else "+"
    tenths = round(abs(dec) * 3600.0 * 10)
    d, rest = divmod(tenths, 3600 * 10)
    dm, ds = divmod(rest, 60 * 10)
    return f"{h:02d}h{m:02d}m{s / 100:05.2f}s {sign}{d:02d}°{dm:02d}′{ds / 10:04.1f}″"


def _value(widget):
    """A numeric input's value, None when blank (a cleared Spinner may send NaN)."""
    v = widget.value
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _round_epoch(epoch: float) -> float:
    """An epoch to 1e-6 d (0.09 s): far below any phase-bin width, and readable."""
    return round(float(epoch), 6)


def fmt_period(value) -> str:
    return "" if value is None else f"{value:.10g}"


def _num(value, digits: int) -> str:
    if value is None or isinstance(value, bool):
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else "—"


def _who(author: str, viewer) -> str:
    if author == viewer.identity:
        return "you"
    return esc(author if len(author) <= 18 else author[:17] + "…")


def _value_text(field_name: str, value) -> str:
    if value is None or value == "":
        return '<span class="lcp-muted">—</span>'
    if field_name == "objectisvar":
        try:
            return esc(OBJECTISVAR.get(int(value), value))
        except (TypeError, ValueError):
            return esc(value)
    if field_name in ("varperiod", "varepoch") and isinstance(value, (int, float)):
        text = fmt_period(value) if field_name == "varperiod" else f"{value:.6f}"
        return f'<span class="lcp-mono">{esc(text)}</span>'
    text = str(value)
    return esc(text if len(text) <= 120 else text[:119] + "…")


def _style(fig) -> None:
    fig.toolbar.logo = None
    fig.toolbar.autohide = True
    fig.background_fill_color = "#fbfcfd"
    fig.border_fill_color = "#ffffff"
    fig.outline_line_color = "#c9d2d9"
    fig.grid.grid_line_color = "#e3e8ec"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.axis_label_text_color = "#34414b"
    fig.axis.axis_label_text_font_size = "13px"
    fig.axis.major_label_text_color = MUTED
    fig.axis.major_label_text_font_size = "12px"
    fig.axis.axis_line_color = "#c9d2d9"
    fig.axis.major_tick_line_color = "#c9d2d9"
    fig.axis.minor_tick_line_color = "#dfe4e8"
    fig.min_border_left = 60


def _html(text: str, **kwargs) -> pn.pane.HTML:
    """:func:`theme.html` with this page's extra classes."""
    pane = html(text, **kwargs)
    pane.stylesheets = [*pane.stylesheets, OBJECT_CSS]
    return pane


def mag_range(mags) -> tuple[float, float, int]:
    """(faint, bright, number of points outside) for a magnitude axis: the 0.5-99.5
    percentile range padded by 15%, so a few wild points do not squash the variability.
    Pan or zoom out to see the rest."""
    mags = np.asarray(mags, dtype=float)
    if not len(mags):
        return 1.0, 0.0, 0
    lo, hi = np.percentile(mags, [0.5, 99.5])
    pad = max(0.15 * (hi - lo), 0.01)
    lo, hi = float(lo - pad), float(hi + pad)
    outside = int(np.count_nonzero((mags < lo) | (mags > hi)))
    if outside == 0:
        lo, hi = float(mags.min()) - pad, float(mags.max()) + pad
    return hi, lo, outside


def _plot(fig, css: str, margin) -> pn.Column:
    """A Bokeh figure in a column carrying ``css`` (a Bokeh pane's own classes do not
    reach the page's DOM)."""
    return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width", margin=0), sizing_mode="stretch_width",
                     margin=margin, css_classes=[css])


def _pick_button(label: str, css: str, tooltip: str = "") -> pn.widgets.Button:
    kwargs = {"description": tooltip} if tooltip else {}
    return pn.widgets.Button(name=label, button_type="light", css_classes=[css], margin=(2, 3),
                             stylesheets=[PICK_CSS], **kwargs)


# --- the page -------------------------------------------------------------------------------


class ObjectPage(pn.viewable.Viewer):
    """One object of one collection (see the module docstring)."""

    app = param.Parameter()
    collection = param.String()
    objectid = param.String()
    magcol = param.String(default="", doc="the magnitude column to show ('': the collection's first)")

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self.rec = find_object(self.app, self.collection, self.objectid, self.magcol)
        if self.rec.error or self.rec.no_checkplot:
            return
        cp = self.rec.checkplot
        self.summary = object_summary(cp)
        self.times, self.mags, self.errs = magseries(cp)
        self.magcol = (self.rec.magcol or self.rec.varcols.get("objectisvar", "")[:-len("_objectisvar")]
                       or "mag")
        self.values = self._current_values()
        self.may_edit_varinfo = can_edit_varinfo(self.viewer, self.rec.info)
        self.candidates: list[tuple[float, float | None]] = []
        self._spans = []
        self._quiet = False  # set while Python changes the fold inputs itself
        self.header = _html("", css_classes=["lcp-object-header"])
        self._render_header()
        self._build_fold()
        self._build_review()
        self._fold_from_inputs()

    # --- values -------------------------------------------------------------------------

    def _current_values(self) -> dict:
        """The variability info as searches see it (the catalog: reviews merged over the
        survey's values), the checkplot's varinfo where the catalog has no column; and
        the checkplot's own comment (reviewers' comments are listed apart)."""
        vi = self.summary["varinfo"]
        values = {"objectisvar": vi.get("objectisvar"), "varperiod": vi.get("varperiod"),
                  "varepoch": vi.get("varepoch"), "vartags": vi.get("vartags"),
                  "comments": self.summary.get("comments")}
        cols = {f: c for f, c in self.rec.varcols.items() if f != "comments"}
        if cols:
            names = list(cols.values())
            quoted = ", ".join(f'"{c}"' for c in names)
            rows = self.rec.catalog.query(f"SELECT {quoted} FROM object_catalog WHERE objectid = ?",
                                          (self.objectid,))
            if rows:
                for (f, _c), v in zip(cols.items(), rows[0]):
                    values[f] = v if v != "" else None
        if values["objectisvar"] is not None:
            try:
                values["objectisvar"] = int(values["objectisvar"])
            except (TypeError, ValueError):
                values["objectisvar"] = None
        for f in ("varperiod", "varepoch"):
            try:
                values[f] = float(values[f]) if values[f] is not None else None
            except (TypeError, ValueError):
                values[f] = None
        return values

    def _adopted(self) -> float | None:
        p = self.values.get("varperiod")
        return p if self.values.get("objectisvar") == 1 and p is not None and p > 0 else None

    # --- header -------------------------------------------------------------------------

    def _info(self, key):
        v = self.rec.row.get(key) if self.rec.row else None
        if v is None and self.rec.checkplot is not None:
            v = self.summary["objectinfo"].get(key)
        return v

    def _facts(self, with_var: bool = True) -> str:
        rows = []
        ra, dec = self._info("ra"), self._info("decl")
        if ra is not None and dec is not None:
            rows.append(("position", (f'<span class="lcp-position lcp-mono">{ra:.6f}, {dec:+.6f}</span> '
                                      f'<span class="lcp-muted">deg (ICRS)</span><br>'
                                      f'<span class="lcp-mono">{sexagesimal(ra, dec)}</span>')))
        gl, gb = self._info("gl"), self._info("gb")
        if gl is not None and gb is not None:
            rows.append(("galactic", f'<span class="lcp-mono">l {gl:.4f}, b {gb:+.4f}</span>'))
        mags = [f'{esc(label)} <b>{self._info(key):.3f}</b>' for label, key in MAGNITUDES
                if isinstance(self._info(key), (int, float)) and not isinstance(self._info(key), bool)
                and math.isfinite(self._info(key))]
        if mags:
            rows.append(("magnitudes", " · ".join(mags)))
        ids = []
        for label, keys in CROSS_IDS:
            value = next((self._info(k) for k in keys if self._info(k) not in (None, "")), None)
            if value is not None:
                ids.append(f'{esc(label)} <span class="lcp-mono">{esc(value)}</span>')
        if ids:
            rows.append(("identifiers", " · ".join(ids)))
        pmra, pmdec = self._info("pmra"), self._info("pmdecl")
        if pmra is not None and pmdec is not None:
            rows.append(("proper motion", f"{_num(pmra, 2)}, {_num(pmdec, 2)} mas/yr"))
        if self.rec.magcols:
            rows.append(("magnitude column", self._magcol_chooser()))
        if with_var and len(self.times):
            span = float(self.times.max() - self.times.min())
            rows.append(("light curve", f"{len(self.times):,} points over {span:.1f} d ({esc(self.magcol)})"))
        if with_var:
            v = self.values
            isvar = v.get("objectisvar")
            words = OBJECTISVAR.get(isvar, "unreviewed") if isvar is not None else "unreviewed"
            badge = f'<span class="lcp-badge {ISVAR_BADGE.get(isvar, "off")} lcp-isvar">{esc(words)}</span>'
            period = (f' · period <b class="lcp-mono lcp-varperiod">{fmt_period(v["varperiod"])}</b> d'
                      if v.get("varperiod") is not None else "")
            epoch = (f' · epoch <span class="lcp-mono">{v["varepoch"]:.6f}</span>'
                     if v.get("varepoch") is not None else "")
            rows.append(("variability", badge + period + epoch))
            tags = [t.strip() for t in (v.get("vartags") or "").split(",") if t.strip()]
            rows.append(("tags", '<span class="lcp-badges lcp-vartags" style="display:inline-flex">'
                         + "".join(f'<span class="lcp-badge">{esc(t)}</span>' for t in tags) + "</span>"
                         if tags else '<span class="lcp-muted">none</span>'))
            comments = v.get("comments")
            rows.append(("comments", f'<p class="lcp-comments-text lcp-comments">{esc(comments)}</p>' if comments
                         else '<span class="lcp-muted lcp-comments">none from the survey</span>'))
        return '<dl class="lcp-facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"

    def _api_base(self) -> str:
        return f"/api/collections/{quote(self.collection, safe='')}/objects/{quote(self.objectid, safe='')}"

    def _magcol_query(self) -> str:
        return f"?magcol={quote(self.rec.magcol, safe='')}" if self.rec.magcol else ""

    def _magcol_chooser(self) -> str:
        """Links to this page for each of the collection's magcols (the URL names it)."""
        here = f"/objects/{quote(self.collection, safe='')}/{quote(self.objectid, safe='')}"
        items = []
        for m in self.rec.magcols:
            if m == self.rec.magcol:
                items.append(f'<b class="lcp-mono lcp-magcol-current" aria-current="page">{esc(m)}</b>')
            else:
                items.append(f'<a class="lcp-mono lcp-magcol-choice" href="{esc(here)}?magcol={quote(m, safe="")}">'
                             f'{esc(m)}</a>')
        default = ' <span class="lcp-muted">(default)</span>' if self.rec.magcol == self.rec.magcols[0] else ""
        return '<span class="lcp-magcols">' + " · ".join(items) + "</span>" + default

    def _downloads(self) -> str:
        base = self._api_base()
        row = self.rec.row or {}
        links = []
        if row.get("lcfname"):
            links += [(f"{base}/lightcurve", "light curve (as stored)"), (f"{base}/lightcurve?format=csv", "CSV"),
                      (f"{base}/lightcurve?format=fits", "FITS"), (f"{base}/lightcurve?format=votable", "VOTable")]
        if row.get("cpfname"):
            links.append((f"{base}/checkplot{self._magcol_query()}",
                          f"checkplot ({self.rec.magcol})" if self.rec.magcol else "checkplot"))
        if row.get("pffname"):
            links.append((f"{base}/periodfinding", "period finding"))
        if not links:
            return ""
        return ('<div class="lcp-downloads"><span class="lcp-muted">Download</span>'
                + "".join(f'<a href="{esc(href)}" download>{esc(label)}</a>' for href, label in links) + "</div>")

    def _back(self) -> str:
        info = self.rec.catalog.info if self.rec.catalog is not None else None
        name = esc(info.name) if info is not None else "the collections"
        api = (f' · <a href="/api/collections/{quote(self.collection, safe="")}">collection (JSON)</a>'
               if info is not None else "")
        return f'in <a class="lcp-back" href="/">{name}</a>{api}'

    def _render_header(self) -> None:
        finder = ""
        if self.rec.checkplot is not None and self.rec.checkplot.get("finderchart") is not None:
            finder = (f'<figure><img class="lcp-finder" alt="finder chart of {esc(self.objectid)}" '
                      f'src="{self._api_base()}/tiles/finder.png{self._magcol_query()}" onerror="{handler(HIDE_BROKEN_FIGURE)}">'
                      '<figcaption>finder chart (from the checkplot)</figcaption></figure>')
        self.header.object = (
            f'<div class="lcp-object-head"><div><h1 class="lcp-objectid">{esc(self.objectid)}</h1>'
            f'<p class="lcp-sub">{self._back()}</p>{self._facts()}{self._downloads()}</div>{finder}</div>')

    # --- light curve --------------------------------------------------------------------

    def _lightcurve(self):
        if not len(self.times):
            return section("Light curve", _html('<p class="lcp-empty">The checkplot holds no light-curve points.</p>',
                                               margin=(0, 10)))
        stored = read_stored(self.app, self.rec.info, self.rec.row, self.rec.magcol or self.magcol)
        self.lc_plot = LightCurvePlot(self.times, self.mags, magcol=self.magcol, stored=stored,
                                      sigclip=self.rec.checkplot.get("sigclip"), style=_style, mag_range=mag_range,
                                      plot_column=_plot, height=LC_HEIGHT)
        return section("Light curve", self.lc_plot.panel(),
                       subtitle="Brighter is up. Drag to pan, scroll to zoom. The checkplot's series is what "
                                "period finding used; 'as stored' is every point of the light-curve file.")

    # --- period finding -----------------------------------------------------------------

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
        src = ColumnDataSource({"period": method["periods"], "power": method["lspvals"]})
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
        self._spans.append(span)
        _style(fig)

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
            self.set_period(chosen)

        fig.on_event(Tap, on_tap)
        return _plot(fig, "lcp-periodogram", margin=0)

    def _method_row(self, method: dict, entry: dict):
        peaks = self._peaks(method, entry)
        buttons = []
        for i, p in enumerate(peaks):
            btn = _pick_button(f"{p:.6g} d", "lcp-pick", f"fold at {fmt_period(p)} d")
            btn.on_click(lambda _e, p=p: self.set_period(p))
            buttons.append(btn)
        picks = pn.Row(_html('<span class="lcp-muted">pick</span>', sizing_mode=None, width=34, margin=(7, 4, 0, 0)),
                       *buttons, margin=(4, 0, 0, 0), css_classes=["lcp-picks"])
        npts = f"{method['npoints']:,} trial periods"
        best = method["bestperiod"]
        title = _html(f'<p class="lcp-method-title">{esc(method["label"])}'
                     f'<span>best {fmt_period(best) if best else "—"} d · {npts}</span></p>', margin=(0, 0, 4, 0))
        left = pn.Column(title, self._periodogram_plot(method, entry), picks, sizing_mode="stretch_width",
                         margin=(0, 10))
        png = decode_png((entry.get(0) or {}).get("plot")) if isinstance(entry.get(0), dict) else None
        if png is not None:
            ph = entry[0]
            cap = _html(f'<p class="lcp-muted" style="font-size:0.85em;margin:0">checkplot: phased at its best '
                       f'period {fmt_period(ph.get("period"))} d</p>', sizing_mode=None, width=PHASED_PNG_WIDTH)
            right = pn.Column(pn.pane.PNG(png, width=PHASED_PNG_WIDTH, margin=0, css_classes=["lcp-phased-png"],
                                          alt_text=f"{method['label']} phased light curve"),
                              cap, width=PHASED_PNG_WIDTH + 10, margin=(0, 10, 0, 0))
            return pn.Row(left, right, sizing_mode="stretch_width", css_classes=["lcp-method"],
                          margin=(0, 0, 14, 0))
        return pn.Row(left, sizing_mode="stretch_width", css_classes=["lcp-method"], margin=(0, 0, 14, 0))

    def _period_finding(self):
        entries = dict(pf_entries(self.rec.checkplot))
        rows = [self._method_row(m, entries[m["key"]]) for m in self.summary["pfmethods"] if m["key"] in entries]
        if not rows:
            return section("Period finding", _html('<p class="lcp-empty">The checkplot has no period-finding '
                                                  'results.</p>', margin=(0, 10)))
        return section("Period finding", *rows,
                       subtitle="Periodograms of each method (log period axis; the red dashed line is the "
                                "period folded below). A pick button, or a click on a periodogram (the best "
                                "peak within 1%), folds the light curve at that period.")

    # --- phase fold ---------------------------------------------------------------------

    def _initial_period(self) -> tuple[float | None, float | None]:
        adopted = self._adopted()
        if adopted is not None:
            return adopted, self.values.get("varepoch")
        for m in self.summary["pfmethods"]:
            if m["bestperiod"]:
                return m["bestperiod"], None
        return None, None

    def _build_fold(self) -> None:
        from bokeh.models import ColumnDataSource, HoverTool, Range1d
        from bokeh.plotting import figure

        period, epoch = self._initial_period()
        if period is not None and epoch is None and len(self.times):
            epoch = _round_epoch(minimum_light_epoch(self.times, self.mags, period))
        self.period_in = styled(pn.widgets.FloatInput(name="Period [d]", value=period, step=1e-4, width=250,
                                                      placeholder="e.g. 0.61367", css_classes=["lcp-fold-period"]))
        self.epoch_in = styled(pn.widgets.FloatInput(name="Epoch (time of minimum light)", value=epoch, step=1e-3,
                                                     width=250, placeholder="blank: minimum light",
                                                     css_classes=["lcp-fold-epoch"]))
        self.bins_in = styled(pn.widgets.IntInput(name="Phase bins (0: none)", value=0, start=0, end=1000,
                                                  width=250, css_classes=["lcp-fold-bins"]))
        self.period_err = _html("", css_classes=["lcp-period-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.epoch_err = _html("", css_classes=["lcp-epoch-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.bins_err = _html("", css_classes=["lcp-bins-error"], width=250, sizing_mode=None, margin=(0, 10))
        self.fold_status = _html('<p class="lcp-fold-status lcp-stale">not folded yet: type a period</p>',
                                css_classes=["lcp-fold-status-pane"], margin=(6, 10))
        self.period_in.param.watch(self._on_period, "value")
        self.epoch_in.param.watch(self._on_epoch, "value")
        self.bins_in.param.watch(self._on_bins, "value")

        self.fold_src = ColumnDataSource({"phase": [], "mag": [], "t": []})
        self.bin_src = ColumnDataSource({"phase": [], "mag": []})
        fig = figure(height=FOLD_HEIGHT, sizing_mode="stretch_width", x_range=Range1d(-0.5, 1.5, bounds=(-0.6, 1.6)),
                     tools="pan,box_zoom,wheel_zoom,reset,save", toolbar_location="above",
                     x_axis_label="phase (two cycles; minimum light at 0 and 1)",
                     y_axis_label=f"magnitude ({self.magcol})", output_backend="canvas",
                     y_range=Range1d(*mag_range(self.mags)[:2]))
        pts = fig.scatter("phase", "mag", source=self.fold_src, size=3.5, color=POINT_COLOR, alpha=0.6)
        self.fold_points = pts
        fig.line("phase", "mag", source=self.bin_src, color=BIN_COLOR, line_width=2.5, alpha=0.9)
        fig.add_tools(HoverTool(renderers=[pts], tooltips=[("phase", "@phase{0.000}"), ("mag", "@mag{0.0000}"),
                                                           ("time", "@t{0.00000}")]))
        _style(fig)
        self.fold_fig = fig
        self.fold_plot = _plot(fig, "lcp-folded", margin=(0, 10))

        self.fold_msg = _html("", css_classes=["lcp-fold-message"], margin=(4, 10))
        add = styled(pn.widgets.Button(name="Add to candidates", button_type="default", width=148,
                                       css_classes=["lcp-add-candidate"]))
        adopt = styled(pn.widgets.Button(name="Adopt period", button_type="primary", width=118,
                                         css_classes=["lcp-adopt"], visible=self.may_edit_varinfo,
                                         description="save this period and epoch as the object's varperiod and "
                                                     "varepoch"))
        add.on_click(self._add_candidate)
        adopt.on_click(self._adopt)
        self.fold_buttons = pn.Row(add, adopt, margin=(6, 0))
        self.candidates_box = pn.FlexBox(sizing_mode="stretch_width", css_classes=["lcp-candidates"],
                                         margin=(0, 10))
        self.tried_box = pn.FlexBox(sizing_mode="stretch_width", css_classes=["lcp-tried"], margin=(0, 10))

    def _fold_section(self):
        controls = pn.Column(self.period_in, self.period_err, self.epoch_in, self.epoch_err, self.bins_in,
                             self.bins_err, self.fold_buttons, width=300, margin=0)
        right = pn.Column(self.fold_status, self.fold_plot, self.fold_msg, sizing_mode="stretch_width", margin=0)
        lists = pn.Column(_html('<p class="lcp-small-title">Candidates (this session)</p>', margin=(6, 10, 0, 10)), self.candidates_box,
                          _html('<p class="lcp-small-title">Periods adopted by reviewers</p>', margin=(6, 10, 0, 10)), self.tried_box, sizing_mode="stretch_width")
        self._render_candidates()
        self._render_tried()
        return section("Phase fold", pn.Row(controls, right, sizing_mode="stretch_width"), lists,
                       subtitle="Type a period (Enter or Tab applies it), pick a periodogram peak, or click a "
                                "periodogram. A new period resets the epoch to the time of minimum light; type "
                                "an epoch to override it. Bins draw the median magnitude per phase bin.",
                       css_classes=["lcp-fold"])

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
        value = _value(self.period_in)
        if value is None:
            self._say_field(self.period_err, "Type a period in days.")
            return
        try:
            period = check_period(value)
        except UserError as exc:
            self._say_field(self.period_err, exc.message)
            return
        epoch = _round_epoch(minimum_light_epoch(self.times, self.mags, period)) if len(self.times) else None
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
        period, epoch, nbins = _value(self.period_in), _value(self.epoch_in), _value(self.bins_in)
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
        if epoch is None and len(self.times):  # a cleared field: minimum light, shown in the field
            epoch = _round_epoch(minimum_light_epoch(self.times, self.mags, period))
            self._quiet = True
            try:
                self.epoch_in.value = epoch
            finally:
                self._quiet = False
        try:
            result = phase_fold(self.times, self.mags, None, period=period, epoch=epoch,
                                nbins=int(nbins) if nbins else None)
        except UserError as exc:
            pane = {"epoch": self.epoch_err, "nbins": self.bins_err}.get(exc.field, self.period_err)
            self._say_field(pane, exc.message)
            return
        self._say_field(self.epoch_err, None)
        self._say_field(self.bins_err, None)
        self._show_fold(result, nbins)

    def _show_fold(self, result: dict, nbins: int) -> None:
        phase = np.where(result["phase"] >= 0.5, result["phase"] - 1.0, result["phase"])  # [-0.5, 0.5)
        self.fold_src.data = {"phase": np.concatenate([phase, phase + 1.0]),
                              "mag": np.concatenate([result["mags"], result["mags"]]),
                              "t": np.concatenate([result["times"], result["times"]])}
        if nbins and len(result.get("binphase", [])):
            bp = np.where(result["binphase"] >= 0.5, result["binphase"] - 1.0, result["binphase"])
            order = np.argsort(bp, kind="stable")
            bp, bm = bp[order], result["binmags"][order]
            self.bin_src.data = {"phase": np.concatenate([bp, bp + 1.0]), "mag": np.concatenate([bm, bm])}
        else:
            self.bin_src.data = {"phase": [], "mag": []}
        alpha = 0.3 if nbins else 0.6  # the binned line stands out over fainter points
        self.fold_points.glyph.fill_alpha = self.fold_points.glyph.line_alpha = alpha
        for span in self._spans:
            span.location = result["period"]
        n = len(result["phase"])
        epoch = result["epoch"]
        binned = f", medians in {nbins} bins" if nbins else ""
        adopted = self._adopted()
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
        fold = getattr(self, "current_fold", None)
        if fold is None:
            self.fold_msg.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        if not any(abs(fold[0] - p) <= 1e-9 * p for p, _ in self.candidates):
            self.candidates.append(fold)
        self.fold_msg.object = ""
        self._render_candidates()

    def _render_candidates(self) -> None:
        items = []
        for p, e in self.candidates:
            btn = _pick_button(f"{p:.8g} d", "lcp-candidate", f"fold at {fmt_period(p)} d, epoch {e}")
            btn.on_click(lambda _ev, p=p, e=e: self._fold_at(p, e))
            items.append(btn)
        self.candidates_box.objects = items or [
            _html('<span class="lcp-muted">none yet: "Add to candidates" keeps the current fold here while this '
                 'page is open</span>', sizing_mode=None, width=600)]

    def _render_tried(self) -> None:
        rows = [r for r in history(self.app.basedir, self.collection, self.objectid) if r["field"] == "varperiod"
                and isinstance(r["new_value"], (int, float)) and r["new_value"] > 0]
        items = []
        adopted = self._adopted()
        if adopted is not None:
            btn = _pick_button(f"current: {adopted:.8g} d", "lcp-tried-period", "the object's adopted period")
            epoch = self.values.get("varepoch")
            btn.on_click(lambda _ev, p=adopted, e=epoch: self._fold_at(p, e))
            items.append(btn)
        for r in reversed(rows[-12:]):
            p = float(r["new_value"])
            label = f"{p:.8g} d · {'you' if r['author'] == self.viewer.identity else r['author'][:12]}"
            btn = _pick_button(label, "lcp-tried-period", f"adopted {r['time'][:19].replace('T', ' ')} UTC")
            btn.on_click(lambda _ev, p=p: self.set_period(p))
            items.append(btn)
        self.tried_box.objects = items or [
            _html('<span class="lcp-muted">none recorded: "Adopt period" saves the fold\'s period and epoch as the '
                 "object's varperiod and varepoch</span>", sizing_mode=None, width=600)]

    def _fold_at(self, period: float, epoch: float | None) -> None:
        self._quiet = True
        try:
            self.period_in.value = period
            self.epoch_in.value = epoch
        finally:
            self._quiet = False
        self._fold_from_inputs()

    def _adopt(self, _event=None) -> None:
        fold = getattr(self, "current_fold", None)
        if fold is None:
            self.fold_msg.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        changes = {"varperiod": fold[0]}
        if fold[1] is not None:
            changes["varepoch"] = fold[1]
        result = self._save(changes, self.fold_msg)
        if result is not None:
            done = ("Adopted" if result["changed"] else "Already")
            self.fold_msg.object = (f'<p class="lcp-help">{done} P = {fmt_period(fold[0])} d as this object\'s '
                                    "period.</p>")

    # --- review -------------------------------------------------------------------------

    def _build_review(self) -> None:
        v = self.values
        options = {label: code for code, label in OBJECTISVAR.items()}
        isvar = v.get("objectisvar") if v.get("objectisvar") in OBJECTISVAR else 0
        lock = not self.may_edit_varinfo
        self.f_isvar = styled(pn.widgets.Select(name="Variability", options=options, value=isvar, width=170,
                                                disabled=lock, css_classes=["lcp-edit-isvar"]))
        self.f_period = styled(pn.widgets.FloatInput(name="Period [d]", value=v.get("varperiod"), width=170,
                                                     step=1e-4, disabled=lock, css_classes=["lcp-edit-period"]))
        self.f_epoch = styled(pn.widgets.FloatInput(name="Epoch", value=v.get("varepoch"), width=190, step=1e-3,
                                                    disabled=lock, css_classes=["lcp-edit-epoch"]))
        self.f_tags = styled(pn.widgets.TextInput(name="Tags (comma-separated)", value=v.get("vartags") or "",
                                                  max_length=500, sizing_mode="stretch_width", disabled=lock,
                                                  placeholder="e.g. RR Lyrae, RRab", css_classes=["lcp-edit-tags"]))
        max_chars = self.app.config.reviews.max_comment_chars
        self.f_comments = styled(pn.widgets.TextAreaInput(
            name="Add a comment", value="", max_length=max_chars, height=90, sizing_mode="stretch_width",
            placeholder="kept with your name and the time; everyone sees it", css_classes=["lcp-edit-comments"]))
        self.f_save = styled(pn.widgets.Button(name="Save", button_type="primary", width=100,
                                               css_classes=["lcp-save-review"]))
        self.f_save.on_click(self._save_form)
        self.review_msg = pn.pane.Alert("", visible=False, alert_type="info", sizing_mode="stretch_width",
                                        css_classes=["lcp-review-message"], margin=(4, 10))
        self.comment_list = pn.Column(sizing_mode="stretch_width", css_classes=["lcp-comment-list"], margin=(0, 10))
        self.history_pane = _html("", css_classes=["lcp-history"], margin=(0, 10))
        self._render_comments()
        self._render_history()

    def _review_section(self):
        here = f"/objects/{quote(self.collection, safe='')}/{quote(self.objectid, safe='')}"
        who = ("You may change the variability info (staff) and comment." if self.may_edit_varinfo else
               "Only the collection's staff may change the variability info (<a href=\""
               f"{esc(login_url(here))}\">log in</a>); "
               "everyone may comment.")
        varinfo = pn.FlexBox(self.f_isvar, self.f_period, self.f_epoch, flex_wrap="wrap", gap="0",
                             sizing_mode="stretch_width", margin=0)
        form = pn.Column(varinfo, self.f_tags, self.f_comments, pn.Row(self.f_save), self.review_msg,
                         sizing_mode="stretch_width", styles={"flex": "1 1 460px"}, margin=0)
        hist = pn.Column(_html('<p class="lcp-small-title">Comments</p>', margin=(0, 10)), self.comment_list,
                         _html('<p class="lcp-small-title">History</p>', margin=(0, 10)),
                         self.history_pane, sizing_mode="stretch_width", styles={"flex": "1 1 460px"}, margin=0)
        return section("Review", pn.FlexBox(form, hist, gap="16px", sizing_mode="stretch_width"),
                       subtitle=who + " Reviews are kept by this server with who made them and when (searches "
                                "see them at once); the survey's own files are never changed.",
                       css_classes=["lcp-review"])

    def _render_comments(self) -> None:
        items = []
        for c in reviews.comments(self.app.basedir, self.collection, self.objectid):
            edited = " · edited" if c["edited"] else ""
            text = (f'<div class="lcp-comment-item"><p class="lcp-muted" style="margin:0">'
                    f'<b>{_who(c["author"], self.viewer)}</b> · '
                    f'{esc(c["time"][:16].replace("T", " "))} UTC{edited}</p>'
                    f'<p class="lcp-comments-text">{esc(c["text"])}</p></div>')
            row = [_html(text, sizing_mode="stretch_width")]
            if reviews.can_change_comment(self.viewer, c):
                btn = pn.widgets.Button(name="delete", button_type="light", width=70, margin=(2, 3),
                                        css_classes=["lcp-delete-comment"])
                btn.on_click(lambda _ev, cid=c["comment_id"]: self._delete_comment(cid))
                row.append(btn)
            items.append(pn.Row(*row, sizing_mode="stretch_width", margin=0))
        self.comment_list.objects = items or [_html('<p class="lcp-muted">No comments yet.</p>')]

    def _render_history(self) -> None:
        rows = history(self.app.basedir, self.collection, self.objectid, limit=200)
        if not rows:
            self.history_pane.object = '<p class="lcp-muted">No edits yet.</p>'
            return

        def change(r) -> str:
            if r["field"] != "comment":
                return f'{_value_text(r["field"], r["old_value"])} → {_value_text(r["field"], r["new_value"])}'
            if r["old_value"] is None:
                return "added: " + _value_text("comment", r["new_value"])
            if r["new_value"] is None:
                return "deleted: " + _value_text("comment", r["old_value"])
            return f'{_value_text("comment", r["old_value"])} → {_value_text("comment", r["new_value"])}'

        body = "".join(
            f'<tr><td class="lcp-mono" style="white-space:nowrap">{esc(r["time"][:19].replace("T", " "))}</td>'
            f'<td>{_who(r["author"], self.viewer)}</td><td>{esc(r["field"])}</td><td>{change(r)}</td></tr>'
            for r in reversed(rows))
        self.history_pane.object = (
            '<div style="overflow-x:auto"><table class="lcp-table"><tr><th>when (UTC)</th><th>who</th>'
            f'<th>field</th><th>change</th></tr>{body}</table></div>')

    def _form_changes(self) -> dict:
        if not self.may_edit_varinfo:
            return {}
        wanted = {"objectisvar": self.f_isvar.value, "varperiod": _value(self.f_period),
                  "varepoch": _value(self.f_epoch), "vartags": self.f_tags.value}
        new = validate_changes(wanted)  # UserError on a bad value: nothing is saved
        return {f: val for f, val in new.items() if val != self.values.get(f)}

    def _save_form(self, _event=None) -> None:
        text = (self.f_comments.value or "").strip()
        try:
            changes = self._form_changes()
            if text:
                validate_comment(text, self.app.config.reviews.max_comment_chars)
        except UserError as exc:
            self._say(md(exc.message), "danger")
            return
        if not changes and not text:
            self._say("Nothing changed.", "info")
            return
        if changes and self._save(changes, None) is None:
            return
        if text:
            if not self._write(lambda: reviews.add_comment(self.app.basedir, self.rec.info, self.objectid,
                                                           self.viewer, text, settings=self.app.config.reviews),
                               None, spent=bool(changes)):
                return
            self.f_comments.value = ""
            self._render_comments()
            self._render_history()
        self._say("Saved: " + ", ".join([*changes, *(["comment"] if text else [])]), "success")

    def _delete_comment(self, comment_id: int) -> None:
        if self._write(lambda: reviews.delete_comment(self.app.basedir, self.rec.info, self.objectid, comment_id,
                                                      self.viewer), None):
            self._say("Comment deleted.", "success")
            self._render_comments()
            self._render_history()

    def _write(self, action, message_pane, *, spent: bool = False):
        """Run a write ``action`` after taking one request from the visitor's budget (the
        same as the JSON API's; ``spent``: already taken for this click); its result, or
        None after showing why it did not happen."""

        def fail(text: str) -> None:
            if message_pane is None:
                self._say(md(text), "danger")
            else:
                message_pane.object = f'<p class="lcp-error-text">{esc(text)}</p>'

        refused = None if spent else spend(self.app, self.viewer)
        if refused is not None:
            fail(refused)
            return None
        try:
            return action() or True
        except UserError as exc:
            fail(exc.message)
        except Exception:  # a bug or a broken file: logged, never shown as a traceback
            log.exception("saving %s/%s failed", self.collection, self.objectid)
            fail("Saving failed; the error is in the server's log.")
        return None

    def _save(self, changes: dict, message_pane) -> dict | None:
        """Save variability info ``changes`` and refresh the page's values; the edit's
        result, or None after showing why it failed. The values this page showed are
        the ``expect``-ed ones, so a concurrent edit is a Conflict, not lost."""
        expect = {f: self.values.get(f) for f in changes
                  if f in self.rec.varcols and not (f == "objectisvar" and self.values.get(f) is None)}
        magcol = self.rec.varprefix.rstrip("_") or None
        result = self._write(lambda: reviews.set_varinfo(self.app.basedir, self.rec.info, self.objectid, self.viewer,
                                                         changes, expect=expect or None, magcol=magcol), message_pane)
        if result is None:
            return None
        self._refresh()
        return result

    def _refresh(self) -> None:
        """Re-read the edited values and show them everywhere."""
        self.values = self._current_values()
        v = self.values
        self.f_isvar.value = v.get("objectisvar") if v.get("objectisvar") in OBJECTISVAR else 0
        self.f_period.value = v.get("varperiod")
        self.f_epoch.value = v.get("varepoch")
        self.f_tags.value = v.get("vartags") or ""
        self._render_header()
        self._render_history()
        self._render_tried()

    def _say(self, text: str, kind: str = "info") -> None:
        self.review_msg.object = text
        self.review_msg.alert_type = kind
        self.review_msg.visible = True

    # --- layout -------------------------------------------------------------------------

    def _message_page(self):
        if self.rec.error:
            title = "No such object"
            body = (f'<p class="lcp-empty lcp-object-missing">{esc(self.rec.error)}. The link may be mistyped. '
                    '<a href="/">Back to the collections</a>.</p>')
            return section(title, _html(body, margin=(0, 10)))
        facts = self._facts(with_var=False) if self.rec.row else ""
        body = (f'<div class="lcp-object-head" style="display:block"><h1 class="lcp-objectid">'
                f'{esc(self.objectid)}</h1><p class="lcp-sub">{self._back()}</p>{facts}{self._downloads()}</div>'
                f'<p class="lcp-empty lcp-no-checkplot" style="margin-top:10px">No checkplot for this object. '
                f'{esc(self.rec.no_checkplot)} <a href="/">Back to the collections</a>.</p>')
        return section("Object", _html(body, margin=(0, 10)))

    def __panel__(self):
        if self.rec.error or self.rec.no_checkplot:
            return pn.Column(self._message_page(), sizing_mode="stretch_width")
        head = section("Object", self.header, css_classes=["lcp-object"])
        self.header.margin = (0, 10)
        return pn.Column(head, self._lightcurve(), self._period_finding(), self._fold_section(),
                         self._review_section(), sizing_mode="stretch_width")

    def servable_page(self):
        if self.rec.error:
            title = "No such object"
        else:
            title = f"{self.objectid} · {self.rec.info.name}"
        return page(title, [self], self.app)
