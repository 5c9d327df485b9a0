"""What the object page's parts share: sizes, colours, the page's CSS and small
formatting and plotting helpers."""

from __future__ import annotations

import math

import numpy as np
import panel as pn

from ...core.objects.annotations import OBJECTISVAR
from ..theme import ACCENT, DANGER, MUTED, PANE_CSS, esc, html, plot_look
from ..stylesheets import stylesheet

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
FIT_COLOR = "#009e73"
CANDIDATE_COLOR = DANGER

#: the object page's panes: the shared pane CSS and the page's own, one file
OBJECT_CSS = stylesheet("object", PANE_CSS + f"""
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
""")


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


def value_of(widget):
    """A numeric input's value, None when blank (a cleared Spinner may send NaN)."""
    v = widget.value
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def round_epoch(epoch: float) -> float:
    """An epoch to 1e-6 d (0.09 s): far below any phase-bin width, and readable."""
    return round(float(epoch), 6)


def fmt_period(value) -> str:
    return "" if value is None else f"{value:.10g}"


def num(value, digits: int) -> str:
    if value is None or isinstance(value, bool):
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return esc(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else "—"


def who(author: str, viewer) -> str:
    if author == viewer.identity:
        return "you"
    return esc(author if len(author) <= 18 else author[:17] + "…")


def value_text(field_name: str, value) -> str:
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


def style_figure(fig) -> None:
    """The shared plot look (:func:`lcpanel.views.theme.plot_look`), plus what the object
    page's plots add: a toolbar that hides, 12 px tick labels and room for magnitudes."""
    plot_look(fig, "#34414b")
    fig.toolbar.autohide = True
    fig.axis.major_label_text_font_size = "12px"
    fig.min_border_left = 60


def object_html(text: str, **kwargs) -> pn.pane.HTML:
    """:func:`theme.html` with this page's extra classes."""
    return html(text, sheet=OBJECT_CSS, **kwargs)


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


def plot_column(fig, css: str, margin) -> pn.Column:
    """A Bokeh figure in a column carrying ``css`` (a Bokeh pane's own classes do not
    reach the page's DOM)."""
    return pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width", margin=0), sizing_mode="stretch_width",
                     margin=margin, css_classes=[css])


class NumberField(pn.widgets.FloatInput):
    """A FloatInput whose blank value stays blank in the browser: Panel sends a Python
    None as NaN, which Bokeh's spinner shows as the text "NaN"; this sends null."""

    def _process_param_change(self, params):
        blank = [k for k in ("value", "value_throttled") if k in params and params[k] is None]
        out = super()._process_param_change(params)
        for k in blank:
            out[k] = None
        return out
