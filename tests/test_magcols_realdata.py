"""Every magnitude column, on the real HATNet light curve of ../shared/realdata: astrobase's
own pipeline (make_lclist, runpf, runcp, add_cpinfo_to_lclist for the first magcol, as a
survey running it once) makes one checkplot per magcol (aep_000, atf_000); ingest keeps
both, and the object page shows either, with the file's rjd and bjd to choose from and the
checkplot's sigma-clipped series next to every stored point.

The format is the hat-csv reader astrobase ships (hatsurveys.hatlc.read_csvlc) registered
under a test key: astrobase's own 'hat-csv' registration passes a keyword its reader no
longer takes. Period finding is GLS on a coarse grid: this tests products, not periods."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

HAT_LC = (Path(__file__).resolve().parent / "realdata"
          / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz")
OID = "HAT-579-0051858"
KEY = "lcpanel-test-hat-csv"
MAGCOLS = ["aep_000", "atf_000"]
READER = '''"""hat-csv light curves through astrobase's own reader."""
from astrobase.hatsurveys.hatlc import read_csvlc


def read_lightcurve(path):
    return read_csvlc(path)
'''


def make_hat_collection(out: Path) -> Path:
    from lcpanel.core.objects.astrobase_compat import import_astrobase, offline

    import_astrobase()
    offline()
    from astrobase.lcproc import register_lcformat
    from astrobase.lcproc.catalogs import add_cpinfo_to_lclist, make_lclist
    from astrobase.lcproc.checkplotgen import runcp
    from astrobase.lcproc.periodsearch import runpf

    for d in ("lightcurves", "periodfinding", "checkplots", "lcformat"):
        (out / d).mkdir(parents=True)
    lcfile = out / "lightcurves" / HAT_LC.name
    shutil.copyfile(HAT_LC, lcfile)
    reader = out / "lcformat" / "hatcsv_reader.py"
    reader.write_text(READER)
    cols = {"timecols": ["rjd", "rjd"], "magcols": MAGCOLS, "errcols": ["aie_000", "aie_000"]}
    assert register_lcformat(KEY, "*-hatlc.csv.gz", cols["timecols"], MAGCOLS, cols["errcols"], str(reader),
                             "read_lightcurve", magsarefluxes=False, overwrite_existing=True,
                             lcformat_dir=str(out / "lcformat"))
    fmt = {"lcformat": KEY, "lcformatdir": str(out / "lcformat")}
    lclist = make_lclist(str(out / "lightcurves"), str(out / "lclist-catalog.pkl"), nworkers=1,
                         columns=["objectid", "objectinfo.ra", "objectinfo.decl", "objectinfo.ndet",
                                  "objectinfo.twomassid", "objectinfo.hatid"], **fmt)
    pf = runpf(str(lcfile), str(out / "periodfinding"), **cols, **fmt, pfmethods=("gls",),
               pfkwargs=({"startp": 0.5, "endp": 10.0, "autofreq": False, "stepsize": 2e-3, "nbestpeaks": 3},),
               nworkers=1, raiseonfail=True)
    cps = runcp(pf, str(out / "checkplots"), str(out / "lightcurves"), **cols, **fmt, fast_mode=True)
    assert cps and len(cps) == 2, cps
    assert add_cpinfo_to_lclist(str(out / "checkplots"), lclist, MAGCOLS[0], lclist, nworkers=1,
                                checkplotglob=f"checkplot-*-{MAGCOLS[0]}.pkl*")
    (out / "collection.json").write_text(json.dumps({
        # lcpanel reads the files with astrobase's built-in hat-csv and its column knowledge
        "name": "HATNet example", "lcformat": {"kind": "astrobase", "formatkey": "hat-csv"}}))
    return out


@pytest.fixture(scope="module")
def hat_app(tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    coll = make_hat_collection(tmp_path_factory.mktemp("hat") / "hat")
    base = Basedir.init(tmp_path_factory.mktemp("hatb") / "basedir")
    add_astrobase_collection(App(base.path), base, coll, collection_id="hat", show_progress=False)
    app = App(base.path)
    yield app, coll
    app.products.shutdown()


def test_both_hat_magcols_survive_ingest(hat_app):
    from lcpanel.core.objects.magcols import collection_magcols
    from lcpanel.core.search import run_search

    app, coll = hat_app
    info = app.catalogs.get("hat").info
    assert collection_magcols(info.columns) == MAGCOLS
    row = run_search(app, {"type": "objectid", "params": {"ids": ["hat-579-0051858 "]}}).rows[0]
    for m in MAGCOLS:
        assert row[f"{m}_cpfname"] == f"checkplots/checkplot-{OID}-{m}.pkl"
        assert (coll / row[f"{m}_cpfname"]).is_file()
    assert "atf_000_stetsonj" in row and row["atf_000_stetsonj"] != pytest.approx(row["aep_000_stetsonj"])
    # its real 2MASS id finds it, typed as people write it
    by_alias = run_search(app, {"type": "objectid", "params": {"ids": ["2MASS J19394601-2544539"]}})
    assert [r["objectid"] for r in by_alias.rows] == [OID]


def test_object_page_shows_either_magcol_with_rjd_and_bjd(hat_app):
    from lcpanel.core.objects.astrobase_compat import import_astrobase
    from lcpanel.views.object_page import ObjectPage

    app, coll = hat_app
    import_astrobase()
    from astrobase.checkplot.pkl_io import _read_checkplot_picklefile
    from astrobase.hatsurveys import hatlc

    lcd = hatlc.read_csvlc(str(HAT_LC))
    for m in MAGCOLS:
        page = ObjectPage(app=app, collection="hat", objectid=OID, magcol=m)
        assert page.rec.error is None and page.rec.magcol == m
        page.__panel__()
        plot = page.lc_plot
        cp = _read_checkplot_picklefile(str(coll / "checkplots" / f"checkplot-{OID}-{m}.pkl"))
        assert np.allclose(plot.src.data["mag"], cp["magseries"]["mags"])  # the checkplot's (clipped) series
        assert plot.stored.time_columns == ["rjd", "bjd"] and plot.timecol.visible
        assert plot.fig.xaxis.axis_label.startswith("rjd − ")
        assert plot.fig.xaxis.axis_label.endswith("[d] (JD - 2400000 (scale not stated))")
        assert "sigma-clipped at 10" in plot.status.object
        plot.series.value = "as stored"
        t, mags = np.asarray(lcd["rjd"]), np.asarray(lcd[m])
        ok = np.isfinite(t) & np.isfinite(mags)
        assert len(plot.src.data["mag"]) == ok.sum() >= len(cp["magseries"]["mags"])  # every drawable point
        assert f"as stored: all {len(t):,} points" in plot.status.object
        plot.timecol.value = "bjd"
        assert plot.fig.xaxis.axis_label.startswith("bjd − ") and plot.fig.xaxis.axis_label.endswith("(BJD_TDB)")
        ok = np.isfinite(np.asarray(lcd["bjd"])) & np.isfinite(mags)
        assert np.allclose(plot.src.data["t"], np.asarray(lcd["bjd"])[ok])
