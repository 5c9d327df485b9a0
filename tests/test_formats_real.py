"""Real survey light curves (../shared/realdata): astrobase's built-in formats with what
their columns mean, formats described in collection.json (TESS CDIPS), lcc-server format
descriptions, times on request and quality masks. Checked against astropy and astrobase
called directly."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lcpanel.core.objects.lcexport import export_lightcurve
from lcpanel.core.objects.lcrequest import mask_keep, prepare_lightcurve, read_lightcurve
from lcpanel.errors import UserError

REAL = Path(__file__).resolve().parent / "realdata"
HAT = REAL / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"
CDIPS = sorted(REAL.glob("hlsp_cdips_*_llc.fits"))
LAS_CAMPANAS = {"lon": -70.7, "lat": -29.01, "height": 2380.0}

pytestmark = pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")


@pytest.fixture(scope="module")
def hat_lc():
    from lcpanel.plugins.lcformats import AstrobaseFormat

    spec = {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}
    return read_lightcurve(AstrobaseFormat.from_spec(spec, Path(".")), spec, HAT)


@pytest.fixture(scope="module")
def hat_raw():
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    return hatlc.read_csvlc(str(HAT))


# --- astrobase's built-in formats ------------------------------------------------------------

def test_builtin_format_keys_all_have_tables():
    import importlib.resources

    from lcpanel.core.objects.formatinfo import ASTROBASE_FORMATS

    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    keys = {p.name[:-5] for p in importlib.resources.files("astrobase").joinpath("data/lcformats").iterdir()
            if p.name.endswith(".json")}
    assert keys and keys <= set(ASTROBASE_FORMATS), keys - set(ASTROBASE_FORMATS)


def test_hat_columns_carry_astrobase_descriptions_units_roles(hat_lc, hat_raw):
    from astrobase.hatsurveys.hatlc import COLUMNDEFS

    assert set(hat_lc.columns) == set(hat_raw["columns"])
    for name in hat_raw["columns"]:
        info = hat_lc.column_info[name]
        base = name.split("_")[0]
        desc = COLUMNDEFS[base][0]
        assert info["description"] == (desc % name.split("_")[1] if "%s" in desc else desc).strip(), name
        assert info.get("role"), name
    assert hat_lc.column_info["bjd"].items() >= {"role": "time", "timescale": "TDB", "refpos": "BARYCENTER",
                                             "timeorigin": 0.0, "unit": "d"}.items()
    assert hat_lc.column_info["rjd"]["timeorigin"] == 2400000.0 and hat_lc.column_info["rjd"]["timescale"] is None
    assert hat_lc.column_info["aep_000"]["role"] == "mag" and hat_lc.column_info["aie_000"]["role"] == "mag_err"
    assert hat_lc.column_info["aiq_000"]["role"] == "flag"
    assert hat_lc.column_info["xcc"]["unit"] == "pix"


def test_hat_fits_export_times_read_back_as_astropy_time(hat_lc, hat_raw):
    data = export_lightcurve(hat_lc, "fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = Table.read(io.BytesIO(data), format="fits", astropy_native=True)
    bjd = table["bjd"]
    assert bjd.scale == "tdb"
    assert bjd[0].jd == hat_raw["bjd"][0]
    np.testing.assert_array_equal(bjd.jd, hat_raw["bjd"])
    assert not hasattr(table["rjd"], "scale")  # unstated scale: not turned into a Time
    with fits.open(io.BytesIO(data)) as hdul:
        header = hdul[1].header
        assert header["TIMESYS"] == "TDB" and header["JDREF"] == 0.0 and header["TREFPOS"] == "BARYCENTER"
        assert header["BJDREFI"] == 0 and header["BJDREFF"] == 0.0
        comments = " ".join(str(c) for c in header["COMMENT"])
        assert "rjd" in comments and "JD = rjd + 2400000" in comments and "does not state" in comments
        rjd_index = table.colnames.index("rjd") + 1
        assert "Reduced Julian date" in header[f"TCOMM{rjd_index}"]
        assert header[f"TUNIT{rjd_index}"] == "d"


def test_hat_votable_is_votlint_clean_with_timesys_per_time_system(hat_lc, tmp_path):
    from astropy.io.votable import parse

    path = tmp_path / "hat.vot"
    path.write_bytes(export_lightcurve(hat_lc, "votable"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        votable = parse(str(path), verify="exception")
    systems = {ts.ID: ts for ts in votable.time_systems}
    fields = {f.name: f for f in votable.get_first_table().fields}
    bjd_sys = systems[fields["bjd"].ref]
    assert (bjd_sys.timescale, bjd_sys.refposition) == ("TDB", "BARYCENTER")
    rjd_sys = systems[fields["rjd"].ref]
    assert rjd_sys.timescale == "UNKNOWN" and float(rjd_sys.timeorigin) == 2400000.0
    assert fields["aep_000"].ucd == "phot.mag" and fields["aiq_000"].ucd == "meta.code.qual"
    assert fields["bjd"].unit == "d"
    if shutil.which("stilts"):
        out = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True, text=True, timeout=120)
        bad = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith(("WARNING", "ERROR"))]
        assert not bad, bad


def test_text_exports_have_no_float32_noise(hat_lc):
    from dataclasses import replace

    lc = replace(hat_lc, columns={**hat_lc.columns, "aie_000": hat_lc.columns["aie_000"].astype(np.float32)})
    text = export_lightcurve(lc, "csv").decode()
    body = [line for line in text.splitlines() if not line.startswith("#")]
    col = body[0].split(",").index("aie_000")
    values = [row.split(",")[col] for row in body[1:]]
    assert values[0] == str(np.float32(hat_lc.columns["aie_000"][0]))
    assert max(len(v) for v in values) <= 8  # 5 decimals in the source, never 0.0399499991...
    assert "time bjd: bjd: BJD_TDB" in text and "JD = rjd + 2400000" in text
    assert "flags aiq_000: G = good" in text


# --- quality masks -------------------------------------------------------------------------

def test_hat_quality_mask_applied_on_request_and_counted(hat_lc, hat_raw):
    flags = np.char.strip(np.asarray(hat_raw["aiq_000"]).astype(str))
    expected_bad = int((flags != "G").sum())
    assert expected_bad > 0
    masked = prepare_lightcurve(hat_lc, masks="aiq_000_good")
    assert len(masked) == len(hat_lc) - expected_bad
    assert f"{expected_bad} of {len(hat_lc)} points removed" in masked.meta["mask"]
    assert "aiq_000" in masked.columns  # raw flags kept
    assert prepare_lightcurve(hat_lc) is hat_lc  # nothing unless asked
    with pytest.raises(UserError, match="aiq_000_good"):
        prepare_lightcurve(hat_lc, masks="nosuchmask")
    csv_text = export_lightcurve(masked, "csv").decode()
    assert f"{expected_bad} of {len(hat_lc)} points removed" in csv_text


def test_tess_quality_bits_mask():
    from lcpanel.core.objects.formatinfo import TESS_DEFAULT_BITS, format_masks
    from lcpanel.core.objects.lcformats import LightCurve

    q = np.array([0, 1, 4096, 32, 0, 128 | 2048], dtype=np.int32)
    lc = LightCurve("t", {"time": np.arange(6.0), "quality": q})
    lc.masks = format_masks("tess-fits", lc.columns)
    np.testing.assert_array_equal(mask_keep(lc, "default"), (q & TESS_DEFAULT_BITS) == 0)
    np.testing.assert_array_equal(mask_keep(lc, "hardest"), q == 0)


# --- times on request ------------------------------------------------------------------------

def test_times_on_request_match_astropy(hat_lc, hat_raw):
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord, solar_system_ephemeris
    from astropy.time import Time

    bjd = prepare_lightcurve(hat_lc, times="BJD_TDB")
    np.testing.assert_array_equal(bjd.columns["time_bjd_tdb"], hat_raw["bjd"])
    assert "from bjd (BJD_TDB)" in bjd.meta["time_conversion"]
    from lcpanel.core.objects.formatinfo import time_columns

    assert [(c["name"], c["label"]) for c in time_columns({"kind": "astrobase", "formatkey": "hat-sql"})] == [
        ("bjd", "bjd (BJD_TDB)"), ("rjd", "rjd (JD - 2400000 (scale not stated))")]

    jd = prepare_lightcurve(hat_lc, times="JD_UTC", location=LAS_CAMPANAS)
    utc = jd.columns["time_jd_utc"]
    # independent check: astropy forward from the result must give back the file's BJD_TDB
    site = EarthLocation.from_geodetic(LAS_CAMPANAS["lon"] * u.deg, LAS_CAMPANAS["lat"] * u.deg,
                                       LAS_CAMPANAS["height"] * u.m)
    sky = SkyCoord(hat_lc.objectinfo["ra"] * u.deg, hat_lc.objectinfo["decl"] * u.deg)
    with solar_system_ephemeris.set("builtin"):
        t = Time(utc[:200], format="jd", scale="utc", location=site)
        back = (t.tdb + t.light_travel_time(sky, "barycentric")).jd
        hjd = (t + t.light_travel_time(sky, "heliocentric")).utc.jd
    np.testing.assert_allclose(back, hat_raw["bjd"][:200], rtol=0, atol=2e-9)  # < 0.2 ms
    mjd = prepare_lightcurve(hat_lc, times="MJD_UTC", location=LAS_CAMPANAS).columns["time_mjd_utc"]
    np.testing.assert_allclose(mjd, utc - 2400000.5, rtol=0, atol=1e-9)
    hj = prepare_lightcurve(hat_lc, times="HJD_UTC", location=LAS_CAMPANAS).columns["time_hjd_utc"]
    np.testing.assert_allclose(hj[:200], hjd, rtol=0, atol=2e-9)
    fits_data = export_lightcurve(jd, "fits")
    with fits.open(io.BytesIO(fits_data)) as hdul:
        comments = " ".join(str(c) for c in hdul[1].header["COMMENT"])
    assert "time_jd_utc = JD_UTC from bjd" in comments and "accuracy" in comments


def test_times_refused_naming_what_is_missing(hat_lc):
    with pytest.raises(UserError, match="location"):
        prepare_lightcurve(hat_lc, times="JD_UTC")
    with pytest.raises(UserError, match="spacecraft TESS"):
        prepare_lightcurve(hat_lc, times="HJD_UTC", location={"spacecraft": "TESS"})
    from dataclasses import replace

    only_rjd = replace(hat_lc, time_columns=("rjd",))
    with pytest.raises(UserError, match="rjd: its time scale is not stated"):
        prepare_lightcurve(only_rjd, times="BJD_TDB", location=LAS_CAMPANAS)
    with pytest.raises(UserError, match="times must be one of"):
        prepare_lightcurve(hat_lc, times="GPS_TAI")


def test_no_iers_download_attempted(hat_lc, monkeypatch):
    import socket

    from astropy.utils import iers

    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network access attempted")

    from astropy.coordinates import solar_system_ephemeris
    from astropy.time import Time

    seen = []
    original = Time.light_travel_time

    def spy(self, *args, **kwargs):
        seen.append((iers.conf.auto_download, solar_system_ephemeris.get()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(Time, "light_travel_time", spy)
    monkeypatch.setattr(iers.conf, "auto_download", True)  # the astropy default; the conversion turns it off
    for target in ("JD_UTC", "HJD_UTC"):
        prepare_lightcurve(hat_lc, times=target, location=LAS_CAMPANAS)
    assert attempts == []
    assert seen and set(seen) == {(False, "builtin")}
    assert iers.conf.auto_download is True  # restored after the conversion


# --- a format astrobase does not know: TESS CDIPS described in collection.json ---------------

def _example():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "cdips_collection.py"
    spec = importlib.util.spec_from_file_location("cdips_collection_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_cdips_collection(root: Path) -> Path:
    return _example().make_cdips_collection(root / "cdips_s6", CDIPS)


@pytest.mark.skipif(len(CDIPS) < 2, reason="no CDIPS files")
def test_cdips_collection_from_collection_json(basedir, tmp_path):
    from lcpanel.app import App
    from lcpanel.core.objects.formatinfo import time_columns
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    app = App(basedir.path)
    info = add_astrobase_collection(app, basedir, make_cdips_collection(tmp_path), show_progress=False)
    assert info.lcformat["kind"] == "fits-table" and info.lcformat["location"] == {"spacecraft": "TESS"}
    cols = time_columns(info)
    assert {c["name"]: c["scale"] for c in cols} == {"TMID_UTC": "UTC", "TMID_BJD": None}  # TMID_BJD's: in the file
    assert cols[1]["label"] == "TMID_BJD (system stated in each file)"
    fmt = app.lc_formats.get("fits-table").from_spec(info.lcformat, Path(info.source))
    lc = read_lightcurve(fmt, info.lcformat, Path(info.source) / "lightcurves" / CDIPS[0].name)
    assert lc.column_info["TMID_BJD"].items() >= {"timescale": "TDB", "refpos": "BARYCENTER", "timeorigin": 0.0}.items()
    assert lc.column_info["IRM1"]["role"] == "mag" and lc.column_info["IRM1"]["unit"] == "mag"
    assert lc.column_info["IRM1"]["description"] == "Instrumental mag in aperture 1"
    with fits.open(CDIPS[0]) as hdul:
        raw = hdul[1].data
        bjd, utc = np.array(raw["TMID_BJD"], dtype=float), np.array(raw["TMID_UTC"], dtype=float)
    assert [(c["name"], c["label"]) for c in time_columns(info, lc)] == [
        ("TMID_BJD", "TMID_BJD (BJD_TDB)"), ("TMID_UTC", "TMID_UTC (JD_UTC)")]
    data = export_lightcurve(lc, "fits")
    table = Table.read(io.BytesIO(data), format="fits", astropy_native=True)
    assert table["TMID_BJD"].scale == "tdb"
    np.testing.assert_array_equal(table["TMID_BJD"].jd, bjd)
    # times on request: JD_UTC from the file's own UTC column, BJD_TDB from its BJD column
    np.testing.assert_array_equal(prepare_lightcurve(lc, times="JD_UTC").columns["time_jd_utc"], utc)
    np.testing.assert_array_equal(prepare_lightcurve(lc, times="BJD_TDB").columns["time_bjd_tdb"], bjd)
    with pytest.raises(UserError, match="spacecraft TESS"):
        prepare_lightcurve(lc, times="HJD_UTC")
    masked = prepare_lightcurve(lc, masks="irq1_good")
    assert "0 of 985 points removed" in masked.meta["mask"]


def test_collection_json_declarations_are_checked(tmp_path):
    from lcpanel.core.objects.formatinfo import check_collection_declarations

    with pytest.raises(ValueError, match="role must be one of"):
        check_collection_declarations({"columns": {"t": {"role": "clock"}}})
    with pytest.raises(ValueError, match="timescale"):
        check_collection_declarations({"columns": {"t": {"timescale": "MARS"}}})
    with pytest.raises(ValueError, match="location lat"):
        check_collection_declarations({"location": {"lon": 10, "lat": 100}})
    assert check_collection_declarations({"columns": {"t": {"timescale": "tdb", "timeorigin": 2457000}}}) == \
        {"columns": {"t": {"timescale": "TDB", "timeorigin": 2457000.0, "role": "time"}}}


# --- lcc-server format descriptions ---------------------------------------------------------

READER = '''
import os, numpy as np
def read_lightcurve(lcfile, objectinfo_catalog=None):
    assert os.path.exists(objectinfo_catalog), objectinfo_catalog
    n = 5
    return {"objectid": "OBJ-1", "objectinfo": {"ra": 10.0, "decl": -5.0, "ndet": n, "jmag": 12.5},
            "rjd": 55000.0 + np.arange(n), "stf": np.ones(n, dtype=int), "xcc": np.zeros(n), "ycc": np.zeros(n),
            "aim_000": np.full(n, 12.0), "aie_000": np.full(n, 0.01), "aep_000": np.full(n, 11.9),
            "aim_001": np.full(n, 12.1), "aie_001": np.full(n, 0.02), "aep_001": np.full(n, 12.0),
            "aim_002": np.full(n, 12.2), "aie_002": np.full(n, 0.03), "aep_002": np.full(n, 12.1),
            "catalog_used": objectinfo_catalog}
def normalize_lcdict(lcdict, timecol=None, magcol=None):
    assert timecol == "rjd" and magcol == "aep_000"
    return lcdict
'''


def lcc_description() -> dict:
    """lcc-server's docs/lcformat-desc-example.json, as that project documents it."""
    return {
        "lc_formatkey": "example-lcs", "lc_fileglob": "*-lc.csv",
        "lc_readermodule": "{{collection_dir}}/lcreadermodule.py", "lc_readerfunc": "read_lightcurve",
        "lc_readerfunc_kwargs": {"objectinfo_catalog": "{{collection_dir}}/object-db.csv"},
        "lc_normalizemodule": "{{collection_dir}}/lcreadermodule.py", "lc_normalizefunc": "normalize_lcdict",
        "lc_normalizefunc_kwargs": {"timecol": "rjd", "magcol": "aep_000"},
        "unaffiliated_cols": ["rjd", "stf", "xcc", "ycc"],
        "mag_apertures": ["000", "001", "002"], "aperture_joiner": "_", "per_aperture_cols": ["aim", "aie", "aep"],
        "metadata_keys": {"objectid": ["object ID", "%s", "str"], "objectinfo.ra": ["RA [deg]", "%.7f", "float"],
                          "objectinfo.decl": ["Dec [deg]", "%.7f", "float"],
                          "objectinfo.ndet": ["Number of observations", "%i", "int"],
                          "objectinfo.jmag": ["2MASS J [mag]", "%.5f", "float"]},
        "column_keys": {
            "rjd": ["time of observation in Reduced Julian date (JD = 2400000.0 + RJD)", "%.7f", "f8"],
            "stf": ["the telescope ID of the observing station", "%i", "i8"],
            "xcc": ["x coordinate of the object on the CCD", "%.3f", "f8"],
            "ycc": ["y coordinate of the object on the CCD", "%.3f", "f8"],
            "aim": ["instrument magnitude measured in aperture %s", "%.5f", "f8"],
            "aie": ["error associated with instrumental magnitude in aperture %s", "%.5f", "f8"],
            "aep": ["EPD magnitude measured in aperture %s", "%.5f", "f8"]},
    }


def test_lcc_server_description_read_as_lcc_server_does(tmp_path):
    from lcpanel.plugins.lcformats import DescriptionFormat

    coll = tmp_path / "lcc-collection"
    coll.mkdir()
    (coll / "lcreadermodule.py").write_text(READER)
    (coll / "object-db.csv").write_text("objectid\nOBJ-1\n")
    (coll / "lcformat-description.json").write_text(json.dumps(lcc_description()))
    (coll / "a-lc.csv").write_text("x")
    fmt = DescriptionFormat.from_spec({"kind": "lcc-description", "path": "lcformat-description.json"}, coll)
    lc = fmt.check(coll / "a-lc.csv")  # also runs the normalisation function, as lcc-server does
    assert fmt.reader_kwargs == {"objectinfo_catalog": str(coll / "object-db.csv")}
    assert set(lc.columns) == {"rjd", "stf", "xcc", "ycc"} | {f"{c}_{a}" for c in ("aim", "aie", "aep")
                                                            for a in ("000", "001", "002")}
    assert lc.column_info["aim_001"] == {"description": "instrument magnitude measured in aperture 001",
                                         "format": "%.5f"}
    assert lc.objectinfo["jmag"] == 12.5 and lc.objectid == "OBJ-1"


def test_lcc_description_home_dir_substitution(tmp_path, monkeypatch):
    from lcpanel.plugins.lcformats import DescriptionFormat

    home = tmp_path / "home"
    (home / "readers").mkdir(parents=True)
    (home / "readers" / "lcreadermodule.py").write_text(READER)
    (home / "object-db.csv").write_text("objectid\n")
    monkeypatch.setenv("HOME", str(home))
    desc = lcc_description()
    desc["lc_readermodule"] = "{{home_dir}}/readers/lcreadermodule.py"
    desc["lc_normalizemodule"] = "{{home_dir}}/readers/lcreadermodule.py"
    desc["lc_readerfunc_kwargs"] = {"objectinfo_catalog": "{{home_dir}}/object-db.csv"}
    path = tmp_path / "desc.json"
    path.write_text(json.dumps(desc))
    fmt = DescriptionFormat(path)
    (tmp_path / "x-lc.csv").write_text("x")
    assert len(fmt.check(tmp_path / "x-lc.csv")) == 5
    assert fmt.reader_kwargs["objectinfo_catalog"] == str(home / "object-db.csv")


# --- an lcc-server installation, made by lcc-server's own code ---------------------------------

@pytest.fixture(scope="session")
def lccserver_code(tmp_path_factory):
    """lccserver 0.2.7 installed with --no-deps into its own directory (not this venv)."""
    import os
    import sys

    given = os.environ.get("LCPANEL_TEST_LCCSERVER")
    if given and (Path(given) / "lccserver").is_dir():
        return Path(given)
    target = tmp_path_factory.mktemp("lccserver")
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                          "lccserver==0.2.7"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0 or not (target / "lccserver").is_dir():
        pytest.skip(f"cannot install lccserver 0.2.7: {out.stderr[-300:]}")
    return target


@pytest.mark.slow
def test_import_lccserver_basedir_made_by_lccserver(lccserver_code, basedir, tmp_path):
    import os
    import sys

    from lcpanel.cli import main

    lcc = tmp_path / "lcc"
    lcc.mkdir()
    builder = Path(__file__).parent / "support" / "lccserver_basedir.py"
    env = {**os.environ, "PYTHONPATH": str(lccserver_code)}
    out = subprocess.run([sys.executable, str(builder), str(lcc), str(HAT)], capture_output=True, text=True,
                         timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    before = sorted(p.relative_to(lcc) for p in lcc.rglob("*"))

    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["import-lccserver", str(lcc), str(basedir.path), "-q"])
    text = buf.getvalue()
    assert rc == 0, text
    assert basedir.collection_ids() == ["hatnet_real"]
    info = basedir.collection("hatnet_real")
    assert (info.name, info.description, info.project, info.datarelease, info.citation) == (
        "HATSouth field G579", "one real HATSouth light curve", "HATSouth", 3, "Bakos et al. 2013, PASP 125, 154")
    assert "not imported: hatnet-private: visibility 'private'" in text
    assert "not brought over:" in text and "API keys" in text
    assert sorted(p.relative_to(lcc) for p in lcc.rglob("*")) == before  # nothing written or copied there
    assert info.lcformat["kind"] == "lcc-description"

    # the light curve reads through lcc-server's description, with HAT's time knowledge
    from lcpanel.app import App

    app = App(basedir.path)
    fmt = app.lc_formats.get("lcc-description").from_spec(info.lcformat, Path(info.source))
    lc = read_lightcurve(fmt, info.lcformat, next((lcc / "hatnet-real" / "lightcurves").iterdir()))
    assert lc.column_info["bjd"]["timescale"] == "TDB"
    assert lc.column_info["aie_001"]["description"] == "aperture photometry raw instrumental mag error in aperture 001"


@pytest.mark.slow
@pytest.mark.skipif(len(CDIPS) < 2, reason="no CDIPS files")
def test_api_and_client_give_times_and_masks_on_request(basedir, tmp_path):
    from support.servers import running_server

    from lcpanel.app import App
    from lcpanel.client import Client, ClientError
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    add_astrobase_collection(App(basedir.path), basedir, make_cdips_collection(tmp_path), collection_id="cdips",
                             show_progress=False)
    objectid = "3007171311355035136"
    with fits.open(CDIPS[0]) as hdul:
        utc = np.array(hdul[1].data["TMID_UTC"], dtype=float)
    with running_server(basedir.path) as (url, _proc):
        client = Client(url)
        path = client.object_file("cdips", objectid, "lightcurve", format="fits", times="JD_UTC",
                                  mask=["irq1_good"], dest_dir=tmp_path / "dl")
        with fits.open(path) as hdul:
            table = hdul[1].data
            np.testing.assert_array_equal(table["time_jd_utc"], utc)
            comments = " ".join(str(c) for c in hdul[1].header["COMMENT"])
        assert "time_jd_utc = JD_UTC from TMID_UTC" in comments
        assert "0 of 985 points removed by mask irq1_good" in comments
        text = client.object_file("cdips", objectid, "lightcurve", format="csv", dest_dir=tmp_path / "dl2").read_text()
        assert "time TMID_BJD: TMID_BJD: BJD_TDB" in text and "time_jd_utc" not in text
        with pytest.raises(ClientError) as err:
            client.object_file("cdips", objectid, "lightcurve", format="csv", times="HJD_UTC", dest_dir=tmp_path)
        assert err.value.status == 400 and err.value.field == "times" and "spacecraft TESS" in str(err.value)
        with pytest.raises(ClientError) as err:
            client.object_file("cdips", objectid, "lightcurve", format="csv", mask="nope", dest_dir=tmp_path)
        assert err.value.status == 400 and err.value.field == "mask" and "irq1_good" in str(err.value)
        with pytest.raises(ClientError) as err:
            client.object_file("cdips", objectid, "lightcurve", times="BJD_TDB", dest_dir=tmp_path)
        assert err.value.status == 400 and err.value.field == "format"


def test_every_builtin_astrobase_format_loads_by_key_alone():
    """``--lcformat KEY`` for each format astrobase registers by default (astrobase's own
    hat-csv passes a keyword its reader refuses; binned-hat/hp name a missing module)."""
    from lcpanel.plugins.lcformats import AstrobaseFormat

    for key in ("hat-sql", "hat-csv", "hp-txt", "hp-pkl", "kep-fits", "kep-pkl", "tess-fits", "tess-pkl",
                "binned-hat", "binned-hp", "binned-kep", "binned-tess"):
        fmt = AstrobaseFormat.from_spec({"kind": "astrobase", "formatkey": key}, Path("."))
        assert callable(fmt.lcformat[1]), key


def test_binned_hat_pickle_reads_with_hat_knowledge(tmp_path, hat_raw):
    from lcpanel.plugins.lcformats import AstrobaseFormat

    n = 50
    binned = {"objectid": "HAT-579-0051858", "objectinfo": hat_raw["objectinfo"], "binned": {
        mc: {"times": hat_raw["rjd"][:n], "mags": hat_raw[mc][:n], "errs": hat_raw["aie_000"][:n]}
        for mc in ("aep_000", "atf_000")}}
    import pickle

    path = tmp_path / "HAT-579-0051858-binned-hat.pkl"
    path.write_bytes(pickle.dumps(binned))
    spec = {"kind": "astrobase", "formatkey": "binned-hat"}
    lc = read_lightcurve(AstrobaseFormat.from_spec(spec, Path(".")), spec, path)
    times = lc.column_info["binned_aep_000_times"]
    assert times["role"] == "time" and times["timeorigin"] == 2400000.0 and times["timescale"] is None
    assert lc.column_info["binned_aep_000_mags"]["role"] == "mag"
    assert lc.column_info["binned_aep_000_errs"]["role"] == "mag_err"


def test_times_on_request_match_astropy_at_every_point_and_fast(hat_lc, hat_raw):
    """Every one of the HAT light curve's ~10,000 points, not only the first 200: lcpanel
    computes light-travel times on a grid of at most 0.02 d and interpolates (astropy per
    point took ~5 s per light curve); the answer must still be astropy's to 0.1 ms."""
    import time

    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord, solar_system_ephemeris
    from astropy.time import Time

    started = time.perf_counter()
    utc = prepare_lightcurve(hat_lc, times="JD_UTC", location=LAS_CAMPANAS).columns["time_jd_utc"]
    hj = prepare_lightcurve(hat_lc, times="HJD_UTC", location=LAS_CAMPANAS).columns["time_hjd_utc"]
    print(f"JD_UTC + HJD_UTC for {len(utc)} points: {time.perf_counter() - started:.2f} s")
    site = EarthLocation.from_geodetic(LAS_CAMPANAS["lon"] * u.deg, LAS_CAMPANAS["lat"] * u.deg,
                                       LAS_CAMPANAS["height"] * u.m)
    sky = SkyCoord(hat_lc.objectinfo["ra"] * u.deg, hat_lc.objectinfo["decl"] * u.deg)
    ok = np.isfinite(utc)
    assert ok.sum() > 5000
    with solar_system_ephemeris.set("builtin"):
        t = Time(utc[ok], format="jd", scale="utc", location=site)
        back = (t.tdb + t.light_travel_time(sky, "barycentric")).jd
        hjd = (t + t.light_travel_time(sky, "heliocentric")).utc.jd
    day_s = 86400.0
    assert np.max(np.abs(back - np.asarray(hat_raw["bjd"], dtype=float)[ok])) * day_s < 1e-4
    assert np.max(np.abs(hj[ok] - hjd)) * day_s < 1e-4
