"""Two product builders: a CSV of period-finding results and a PDF of phased light curves.

A product builder is a :class:`lcpanel.core.products.ProductBuilder`: ``plan`` turns the
chosen rows of a dataset into the zip's members (:class:`lcpanel.core.products.Entry`);
lcpanel derives the content key from them (identical inputs reuse the zip), writes the
zip in a worker process with a ``SHA256SUMS`` manifest and records its SHA256.

``plan`` runs in the web request, so it only lists inputs: both members are ``call``
entries that lcpanel's worker processes run (``periodfinding_csv`` and
``phased_pdf`` below), with the pickles they read as ``inputs`` (an edited pickle makes
a new zip). A PDF is bounded by ``[plugin.periodsearch] phased_pdf_max_objects`` in
``lcpanel.toml`` (default 500).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from lcpanel.plugin_api import (
    adopted_period, CheckplotError, Entry, magseries, method_label, pf_entries, phase_fold, ProductBuilder,
    read_checkplot_bytes, UserError)

from .pfindex import pf_results, read_pfpickle

CSV_COLUMNS = ("collection", "objectid", "magcol", "method", "bestperiod_days", "bestpeak",
               "nbestperiods_days", "nbestpeaks", "pffname")
DEFAULT_PDF_MAX_OBJECTS = 500


def _object_file(app, dataset, i: int, column: str):
    cid = dataset.data["collection"][i]
    relpath = dataset.data.get(column, [None] * dataset.nobjects)[i]
    return app.catalogs.get(cid).info.object_file(relpath)


def _num(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return ""
    return f"{number:.10g}" if math.isfinite(number) else ""


def _nums(values) -> str:
    if not isinstance(values, (list, tuple, np.ndarray)):
        return ""
    return " ".join(_num(v) for v in values)


def periodfinding_rows(cid: str, objectid: str, pffname: str, pf: dict) -> list[list[str]]:
    """The CSV rows of one period-finding pickle: one per magcol and method."""
    return [[cid, objectid, magcol, method, _num(entry.get("bestperiod")), _num(entry.get("bestlspval")),
             _nums(entry.get("nbestperiods")), _nums(entry.get("nbestlspvals")), pffname]
            for magcol, method, entry in pf_results(pf)]


class PeriodfindingCSV(ProductBuilder):
    name = "periodfinding_csv"
    title = "Period-finding table (CSV)"
    description = ("periodfinding.csv: one row per object and period-finding method with the best period, its "
                   "periodogram value and the next best periods (space-separated), read from the astrobase "
                   "period-finding pickles.")

    def plan(self, app, dataset, rows, options):
        objects = [[dataset.data["collection"][i], dataset.data["objectid"][i], dataset.data["pffname"][i],
                    str(path)] for i in rows if (path := _object_file(app, dataset, i, "pffname")) is not None]
        if not objects:
            return []  # lcpanel answers: the product would be empty
        return [Entry(arcname="periodfinding.csv", kind="call", func=f"{__name__}:periodfinding_csv",
                      args={"objects": objects}, inputs=tuple(o[3] for o in objects))]


def periodfinding_csv(objects: list[list[str]]) -> bytes:
    """The CSV member (run in a worker): ``objects`` are [collection, objectid, pffname, path]."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cid, objectid, pffname, path in objects:
        try:
            pf = read_pfpickle(Path(path))
        except CheckplotError as exc:
            raise ValueError(f"cannot read the period-finding results of {objectid}: {exc.message}") from None
        writer.writerows(periodfinding_rows(cid, objectid, pffname, pf))
    return out.getvalue().encode()


# --- phased light curves ------------------------------------------------------------------


def _periods(cp: dict) -> list[tuple[str, float]]:
    """(label, period) to fold at: the adopted period first, then each method's best."""
    out = []
    adopted = adopted_period(cp)
    if adopted is not None:
        out.append(("adopted", adopted))
    for key, entry in pf_entries(cp):
        try:
            period = float(entry.get("bestperiod"))
        except (TypeError, ValueError):
            continue
        if math.isfinite(period) and period > 0:
            out.append((method_label(key), period))
    return out[:4]


def render_page(pdf, title: str, cp: dict) -> None:
    """One PDF page: the light curve folded at each of its periods (two cycles)."""
    from matplotlib.figure import Figure

    times, mags, _errs = magseries(cp)
    periods = _periods(cp)
    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.suptitle(title, fontsize=13)
    if not len(times) or not periods:
        ax = fig.add_subplot(1, 1, 1)
        ax.axis("off")
        ax.text(0.5, 0.5, "no light curve or no period to fold at", ha="center", va="center")
    for n, (label, period) in enumerate(periods if len(times) else []):
        ax = fig.add_subplot(len(periods), 1, n + 1)
        folded = phase_fold(times, mags, period=period, nbins=50)
        for shift in (0.0, 1.0):
            ax.plot(folded["phase"] + shift, folded["mags"], ".", ms=2, color="0.45", rasterized=True)
            ax.plot(folded["binphase"] + shift, folded["binmags"], "-", lw=1.4, color="#c0392b")
        ax.set_xlim(0, 2)
        ax.invert_yaxis()
        ax.set_ylabel("mag")
        ax.set_title(f"{label}: P = {period:.6f} d, epoch {folded['epoch']:.5f}", fontsize=10)
    if periods and len(times):
        ax.set_xlabel("phase")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    pdf.savefig(fig)


class PhasedPDF(ProductBuilder):
    name = "phased_pdf"
    title = "Phased light curves (PDF)"
    description = ("phased-lightcurves.pdf: one page per object with its light curve folded at the adopted "
                   "period and at each period-finding method's best period (from the checkplots).")

    def plan(self, app, dataset, rows, options):
        settings = app.config.plugin.get("periodsearch", {})
        cap = int(settings.get("phased_pdf_max_objects", DEFAULT_PDF_MAX_OBJECTS))
        targets = [(i, p) for i in rows if (p := _object_file(app, dataset, i, "cpfname")) is not None]
        if len(targets) > cap:
            raise UserError(f"a phased PDF holds at most {cap} objects and {len(targets)} are chosen: select "
                            f"fewer (the operator sets the limit: [plugin.periodsearch] phased_pdf_max_objects)",
                            field="objects")
        if not targets:
            return []
        pages = [[f"{dataset.data['collection'][i]} / {dataset.data['objectid'][i]}", str(path)]
                 for i, path in targets]
        return [Entry(arcname="phased-lightcurves.pdf", kind="call", func=f"{__name__}:phased_pdf",
                      args={"pages": pages}, inputs=tuple(p for _, p in pages))]


def phased_pdf(pages: list[list[str]]) -> bytes:
    """The PDF member (run in a worker): one page per [title, checkplot path]."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages

    out = io.BytesIO()
    # no creation date: the same objects give the same bytes
    with PdfPages(out, metadata={"CreationDate": None, "Creator": "lcpanel-periodsearch"}) as pdf:
        for title, path in pages:
            path = Path(path)
            try:
                cp, _gz, _proto = read_checkplot_bytes(path.read_bytes(), path.name)
            except CheckplotError as exc:
                raise ValueError(f"{title}: {exc.message}") from None
            render_page(pdf, title, cp)
    return out.getvalue()
