"""Photometric series (magcols) of the real survey files of tests/realdata, as the VO serves
them (one ObsCore row and DataLink ID each): the HATNet file's apertures and the CDIPS
files' IRM/TFA/PCA columns, each exported with its own errors and flags only. Checked
against astrobase's own HAT reader and astropy's FITS reader."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table

from lcpanel.core.objects.lcexport import export_lightcurve
from lcpanel.core.objects.lcrequest import prepare_lightcurve, read_lightcurve
from lcpanel.core.objects.lcseries import select_series, series_columns
from lcpanel.errors import UserError

REAL = Path(__file__).resolve().parent / "realdata"
HAT = REAL / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"
CDIPS = sorted(REAL.glob("hlsp_cdips_*_llc.fits"))

pytestmark = pytest.mark.skipif(not HAT.exists() or len(CDIPS) < 2, reason="no tests/realdata")


@pytest.fixture(scope="module")
def hat():
    from lcpanel.core.objects.astrobase_compat import import_astrobase
    from lcpanel.plugins.lcformats import AstrobaseFormat

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    spec = {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}
    return read_lightcurve(AstrobaseFormat.from_spec(spec, Path(".")), spec, HAT), hatlc.read_csvlc(str(HAT))


def _values(table, name):
    col = table[name]
    return np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)


def test_hat_series_are_its_magnitude_columns_with_their_aperture(hat):
    lc, raw = hat
    from astrobase.hatsurveys.hatlc import COLUMNDEFS

    # astrobase's column definitions: the magnitudes (raw aim, reduced arm, EPD aep, TFA atf) per aperture
    mags = {c for c in raw["columns"] if c.split("_")[0] in ("aim", "arm", "aep", "atf")
            and "mag" in COLUMNDEFS[c.split("_")[0]][0].lower()}
    assert len(mags) == 12 and set(series_columns(lc)) == mags
    for name in ("aep_001", "atf_002", "aim_000"):
        aperture = name[-3:]
        one = select_series(lc, name)
        assert one.meta["magcol"] == name
        assert set(one.columns) & mags == {name}
        errors_flags = {c for c in one.columns if c.startswith(("aie_", "aiq_"))}
        assert errors_flags == {f"aie_{aperture}", f"aiq_{aperture}"}
        assert {"rjd", "bjd"} <= set(one.columns)
        table = parse_single_table(io.BytesIO(export_lightcurve(one, "votable"))).to_table()
        assert name in table.colnames and not (set(table.colnames) & (mags - {name}))
        np.testing.assert_array_equal(_values(table, name), np.asarray(raw[name], dtype=float))
        np.testing.assert_array_equal(_values(table, f"aie_{aperture}"), np.asarray(raw[f"aie_{aperture}"], float))
        np.testing.assert_array_equal(_values(table, "bjd"), np.asarray(raw["bjd"], dtype=float))


def test_cdips_series_are_irm_tfa_pca_of_each_aperture(tmp_path):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from test_formats_real import make_cdips_collection

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    info = add_astrobase_collection(app, base, make_cdips_collection(tmp_path), show_progress=False)
    fmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
    for path in CDIPS:
        lc = read_lightcurve(fmt, info.lcformat, Path(info.source) / "lightcurves" / path.name)
        with fits.open(path) as hdul:
            data = hdul[1].data
            names = list(data.columns.names)
            expected = [n for n in names if re.fullmatch(r"(IRM|TFA|PCA)[1-3]", n)]
            assert len(expected) == 9 and sorted(series_columns(lc)) == sorted(expected)
            one = prepare_lightcurve(lc, magcol="TFA2")
            assert set(one.columns) & set(expected) == {"TFA2"}
            assert {c for c in one.columns if re.fullmatch(r"IR[EQ]\d", c)} == {"IRE2", "IRQ2"}
            table = parse_single_table(io.BytesIO(export_lightcurve(one, "votable"))).to_table()
            np.testing.assert_array_equal(_values(table, "TFA2"), np.asarray(data["TFA2"], dtype=float))
            np.testing.assert_array_equal(_values(table, "TMID_BJD"), np.asarray(data["TMID_BJD"], dtype=float))
    with pytest.raises(UserError, match="IRM1"):
        prepare_lightcurve(lc, magcol="nope")


def test_obscore_series_rows_count_and_span_each_series_points(hat):
    """One row per series; t_xel and t_min/t_max over the points where that series has a
    value (bjd: BJD_TDB, origin 0; rows in MJD)."""
    from types import SimpleNamespace

    from lcpanel.core.vo.obscore import _series

    lc, raw = hat
    info = SimpleNamespace(lcformat={"kind": "astrobase", "formatkey": "hat-csv"}, columns=[])
    rows = {r[0]: r for r in _series(info, lc)}
    assert set(rows) == set(series_columns(lc))
    t = np.asarray(raw["bjd"], dtype=float)  # the time column with a stated system: BJD_TDB, origin 0
    for name, (_n, words, ucd, npts, t_min, t_max) in rows.items():
        mag = np.asarray(raw[name], dtype=float)
        ok = np.isfinite(mag) & np.isfinite(t)
        assert ucd == "phot.mag" and npts == int(np.isfinite(mag).sum()) and words
        assert t_min == pytest.approx(t[ok].min() - 2400000.5, abs=1e-9)
        assert t_max == pytest.approx(t[ok].max() - 2400000.5, abs=1e-9)
