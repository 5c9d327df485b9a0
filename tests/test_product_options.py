"""Light-curve products of real survey data with the options a user needs: ``magcol`` (which
apertures), ``times`` (which time column, or a system to convert to) and ``mask`` /
``masked`` (the format's quality masks: drop the points or keep them flagged), through
the product store, the JSON API, the notebook client and the CLI. Checked against
astrobase's and astropy's own reading of the files in tests/realdata."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lcpanel.core.datasets import Principal
from lcpanel.core.search import run_search
from lcpanel.errors import UserError

REAL = Path(__file__).resolve().parent / "realdata"
HAT = REAL / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"
CDIPS = sorted(REAL.glob("hlsp_cdips_*_llc.fits"))
LAS_CAMPANAS = {"lon": -70.7, "lat": -29.01, "height": 2380.0}  # HATSouth ('HS' network)
ALICE = Principal("anon:alice")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not HAT.exists() or len(CDIPS) < 2, reason="no realdata")]


def make_hat_collection(root: Path) -> Path:
    """The real HAT light curve as a collection read with astrobase's hat-csv format (no
    checkplots: light-curve products need none)."""
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    lcd = hatlc.read_csvlc(str(HAT))
    (root / "lightcurves").mkdir(parents=True)
    shutil.copyfile(HAT, root / "lightcurves" / HAT.name)
    objects = {"objectid": np.array([lcd["objectid"]]), "ra": np.array([lcd["objectinfo"]["ra"]]),
               "decl": np.array([lcd["objectinfo"]["decl"]]), "lcfname": np.array([f"lightcurves/{HAT.name}"]),
               "ndet": np.array([len(lcd["rjd"])])}
    with open(root / "lclist-catalog.pkl", "wb") as fh:
        pickle.dump({"objects": objects, "columns": list(objects), "lcformat": "hat-csv"}, fh)
    (root / "collection.json").write_text(json.dumps({
        "name": "HATSouth example", "lcformat": {"kind": "astrobase", "formatkey": "hat-csv"},
        "location": LAS_CAMPANAS}))
    return root


@pytest.fixture(scope="module")
def real_app(tmp_path_factory):
    import importlib.util

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    spec = importlib.util.spec_from_file_location(
        "cdips_collection_example", Path(__file__).resolve().parents[1] / "examples" / "cdips_collection.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    src = tmp_path_factory.mktemp("real")
    base = Basedir.init(src / "basedir")
    add_astrobase_collection(App(base.path), base, make_hat_collection(src / "hat"), collection_id="hat",
                             show_progress=False)
    add_astrobase_collection(App(base.path), base, example.make_cdips_collection(src / "cdips", CDIPS),
                             collection_id="cdips", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


def _dataset(app, collection: str):
    res = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": [collection],
                           "limit": 100})
    return app.datasets.create(res, ALICE.identity, visibility="unlisted")


@pytest.fixture(scope="module")
def hat_ds(real_app):
    return _dataset(real_app, "hat")


@pytest.fixture(scope="module")
def cdips_ds(real_app):
    return _dataset(real_app, "cdips")


@pytest.fixture(scope="module")
def hat_raw():
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    return hatlc.read_csvlc(str(HAT))


def build(app, ds, **options) -> tuple[dict, zipfile.ZipFile]:
    status = app.products.request(app, ds, "lightcurves", options, wait=True)
    assert status["status"] == "done", status
    return status, zipfile.ZipFile(app.products.file_path(status["key"], "lightcurves"))


def member(zf, suffix: str) -> bytes:
    [name] = [n for n in zf.namelist() if n.startswith("lightcurves/") and n.endswith(suffix)]
    return zf.read(name)


def csv_body(text: str) -> list[list[str]]:
    import csv

    return list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))


# --- times -------------------------------------------------------------------------------------

def test_hat_times_bjd_fits_equals_astrobase_reading(real_app, hat_ds, hat_raw):
    status, zf = build(real_app, hat_ds, format="fits", times="bjd")
    assert status["options"] == {"format": "fits", "times": "bjd"}
    table = Table.read(io.BytesIO(member(zf, ".fits")), format="fits", astropy_native=True)
    assert "rjd" not in table.colnames  # the one time column asked for
    assert table["bjd"].scale == "tdb"
    np.testing.assert_array_equal(table["bjd"].jd, np.asarray(hat_raw["bjd"], dtype=float))
    with fits.open(io.BytesIO(member(zf, ".fits"))) as hdul:
        assert hdul[1].header["TIMESYS"] == "TDB"
    readme = zf.read("README.txt").decode()
    assert "times=bjd" in readme and "the only time column kept is bjd" in readme


def test_hat_times_converted_to_jd_utc_matches_astropy(real_app, hat_ds, hat_raw):
    import astropy.units as u
    from astropy.coordinates import EarthLocation, SkyCoord, solar_system_ephemeris
    from astropy.time import Time

    _status, zf = build(real_app, hat_ds, format="csv", times="jd_utc")  # case as people type it
    text = member(zf, ".csv").decode()
    rows = csv_body(text)
    assert rows[0][0] == "time_jd_utc" and "rjd" in rows[0] and "bjd" in rows[0]  # stored ones kept
    utc = np.array([float(r[0]) for r in rows[1:201]])
    # independently: forward from the result with astropy must give the file's BJD_TDB back
    site = EarthLocation.from_geodetic(LAS_CAMPANAS["lon"] * u.deg, LAS_CAMPANAS["lat"] * u.deg,
                                       LAS_CAMPANAS["height"] * u.m)
    sky = SkyCoord(hat_raw["objectinfo"]["ra"] * u.deg, hat_raw["objectinfo"]["decl"] * u.deg)
    with solar_system_ephemeris.set("builtin"):
        t = Time(utc, format="jd", scale="utc", location=site)
        back = (t.tdb + t.light_travel_time(sky, "barycentric")).jd
    np.testing.assert_allclose(back, np.asarray(hat_raw["bjd"][:200], dtype=float), rtol=0, atol=2e-9)
    assert "# time_conversion: time_jd_utc = JD_UTC from bjd" in text
    assert "times=JD_UTC" in zf.read("README.txt").decode()


# --- masks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("aperture", ["000", "002"])
def test_hat_mask_drop_removes_exactly_the_flagged_points(real_app, hat_ds, hat_raw, aperture):
    flags = np.char.strip(np.asarray(hat_raw[f"aiq_{aperture}"]).astype(str))
    bad = int((~np.isin(flags, ["G", "0"])).sum())  # HAT: G (or 0) good, anything else not
    assert bad > 0
    _status, zf = build(real_app, hat_ds, format="csv", mask=f"aiq_{aperture}_good")
    text = member(zf, ".csv").decode()
    rows = csv_body(text)
    assert len(rows) - 1 == len(flags) - bad
    col = rows[0].index(f"aiq_{aperture}")
    assert {r[col].strip() for r in rows[1:]} <= {"G", "0"}  # raw flags kept, only good ones left
    assert f"{bad} of {len(flags)} points removed by mask aiq_{aperture}_good" in text
    readme = zf.read("README.txt").decode()
    assert f"mask=aiq_{aperture}_good" in readme and "masked=drop" in readme


def test_hat_mask_flag_keeps_every_point_and_marks_the_flagged(real_app, hat_ds, hat_raw):
    flags = np.char.strip(np.asarray(hat_raw["aiq_002"]).astype(str))
    expected = ~np.isin(flags, ["G", "0"])
    _status, zf = build(real_app, hat_ds, format="votable", mask="aiq_002_good", masked="flag")
    table = Table.read(io.BytesIO(member(zf, ".vot")), format="votable")
    assert len(table) == len(flags)
    np.testing.assert_array_equal(np.asarray(table["masked"], dtype=bool), expected)


# --- magcol ------------------------------------------------------------------------------------

def test_hat_magcol_keeps_that_aperture_only(real_app, hat_ds, hat_raw):
    _status, zf = build(real_app, hat_ds, format="csv", magcol="atf_000")
    text = member(zf, ".csv").decode()
    rows = csv_body(text)
    header = rows[0]
    assert {"atf_000", "aie_000", "aiq_000", "rjd", "bjd", "xcc"} <= set(header)  # its error, flag, times, frame
    left_out = {"aep_000", "aim_000", "aim_001", "aie_001", "aiq_001", "atf_002"}
    assert not left_out & set(header)
    col = header.index("atf_000")
    values = [float(r[col]) if r[col] else np.nan for r in rows[1:]]  # the CSV writes NaN as empty
    np.testing.assert_array_equal(values, np.asarray(hat_raw["atf_000"], dtype=float))
    assert "# magcol: atf_000" in text


# --- CDIPS FITS ------------------------------------------------------------------------------

def test_cdips_fits_with_every_option(real_app, cdips_ds):
    status, zf = build(real_app, cdips_ds, format="fits", magcol="TFA1", times="tmid_bjd", mask="irq1_good",
                       masked="flag")
    names = sorted(n for n in zf.namelist() if n.endswith(".fits"))
    assert len(names) == 2
    for path in CDIPS:
        with fits.open(path) as hdul:
            raw = hdul[1].data
            bjd = np.array(raw["TMID_BJD"], dtype=float)
            tfa1 = np.array(raw["TFA1"], dtype=float)
            flagged = ~np.isin(np.char.strip(np.asarray(raw["IRQ1"]).astype(str)), ["G", "0"])
            oid = str(hdul[0].header["OBJECT"])
        data = zf.read(f"lightcurves/cdips/{oid}.fits")
        table = Table.read(io.BytesIO(data), format="fits", astropy_native=True)
        assert table["TMID_BJD"].scale == "tdb"
        np.testing.assert_array_equal(table["TMID_BJD"].jd, bjd)
        np.testing.assert_array_equal(np.asarray(table["TFA1"], dtype=float), tfa1)
        np.testing.assert_array_equal(np.asarray(table["masked"], dtype=bool), flagged)
        assert {"IRE1", "IRQ1"} <= set(table.colnames)
        assert not {"TMID_UTC", "IRM1", "TFA2", "PCA1", "IRQ2"} & set(table.colnames)
        with fits.open(io.BytesIO(data)) as hdul:
            comments = " ".join(str(c) for c in hdul[1].header["COMMENT"])
        assert "TFA1" in comments and "irq1_good" in comments
    assert status["options"] == {"format": "fits", "magcol": "TFA1", "times": "tmid_bjd", "mask": "irq1_good",
                                 "masked": "flag"}


def test_cdips_parquet_with_options(real_app, cdips_ds):
    import pyarrow.parquet as pq

    _status, zf = build(real_app, cdips_ds, format="parquet", magcol="PCA2", times="BJD_TDB")
    table = pq.read_table(io.BytesIO(zf.read("lightcurves.parquet")))
    assert table.column_names[:3] == ["collection", "objectid", "time_bjd_tdb"]
    assert "PCA2" in table.column_names and "PCA1" not in table.column_names
    about = json.loads(table.schema.metadata[b"lcpanel"])
    assert about["request"] == {"magcol": "PCA2", "times": "BJD_TDB"}
    assert "time_bjd_tdb = BJD_TDB from TMID_BJD" in about["collections"]["cdips"]["time_conversion"]
    with fits.open(CDIPS[0]) as hdul:
        bjd = np.array(hdul[1].data["TMID_BJD"], dtype=float)
        oid = str(hdul[0].header["OBJECT"])
    rows = table.filter(table["objectid"].to_numpy(zero_copy_only=False) == oid)
    np.testing.assert_array_equal(rows["time_bjd_tdb"].to_numpy(), bjd)


# --- keys and refusals -------------------------------------------------------------------------

def test_options_are_part_of_the_product_key(real_app, hat_ds):
    plain = real_app.products.request(real_app, hat_ds, "lightcurves", {"format": "csv"}, wait=True)
    bjd = real_app.products.request(real_app, hat_ds, "lightcurves", {"format": "csv", "times": "bjd"}, wait=True)
    rjd = real_app.products.request(real_app, hat_ds, "lightcurves", {"format": "csv", "times": "rjd"}, wait=True)
    assert len({plain["key"], bjd["key"], rjd["key"]}) == 3
    # the same request written differently is the same product
    a = real_app.products.request(real_app, hat_ds, "lightcurves",
                                  {"format": "csv", "mask": "aiq_001_good,aiq_000_good", "masked": "drop"}, wait=True)
    b = real_app.products.request(real_app, hat_ds, "lightcurves",
                                  {"format": "csv", "mask": " aiq_000_good, aiq_001_good "}, wait=True)
    assert a["key"] == b["key"]
    keys = {p["key"] for p in real_app.products.for_dataset(hat_ds.dataset_id)}
    assert {plain["key"], bjd["key"], rjd["key"], a["key"]} <= keys


@pytest.mark.parametrize("options,field,match", [
    ({"format": "csv", "magcol": "aep_999"}, "magcol", "no magnitude or flux column 'aep_999'.*aep_000"),
    ({"format": "csv", "magcol": "aep_000,atf_000"}, "magcol", "one product per magcol"),
    ({"format": "csv", "times": "tmid_bjd"}, "times", "time column of this light curve.*bjd.*not 'tmid_bjd'"),
    ({"format": "csv", "times": "GPS_TAI"}, "times", "times must be one of BJD_TDB"),
    ({"format": "csv", "mask": "irq1_good"}, "mask", "no mask 'irq1_good'.*aiq_000_good"),
    ({"format": "csv", "masked": "flag"}, "masked", "name the mask"),
    ({"format": "csv", "mask": "aiq_000_good", "masked": "hide"}, "masked", "drop or flag"),
    ({"format": "csv", "magcol": "a<script>"}, "magcol", "not a column or mask name"),
    ({"format": "csv", "times": 5}, "times", "time column"),
    ({"format": "original", "times": "bjd"}, "times", "converted light curves"),
    ({"format": "csv", "time": "bjd"}, "time", "did you mean"),
])
def test_bad_options_are_refused_before_any_work(real_app, hat_ds, options, field, match):
    before = real_app.products.for_dataset(hat_ds.dataset_id)
    with pytest.raises(UserError, match=match) as info:
        real_app.products.request(real_app, hat_ds, "lightcurves", options)
    assert info.value.field == field and info.value.status == 400
    assert real_app.products.for_dataset(hat_ds.dataset_id) == before


def test_times_needing_what_a_collection_lacks_is_refused(real_app, cdips_ds):
    with pytest.raises(UserError, match="collection 'cdips'.*spacecraft TESS") as info:
        real_app.products.request(real_app, cdips_ds, "lightcurves", {"format": "csv", "times": "HJD_UTC"})
    assert info.value.field == "times"


# --- over HTTP: the JSON API and the notebook client; the CLI ----------------------------------

@pytest.fixture(scope="module")
def real_server(real_app):
    from support.servers import running_server

    with running_server(real_app.basedir) as (url, _proc):
        yield url


def test_api_400s_and_client_round_trip(real_server, real_app, hat_ds, hat_raw, tmp_path):
    import urllib.error
    import urllib.request

    from lcpanel.client import Client, ClientError

    client = Client(real_server)
    ds = client.search("filter", where="ndet > 0", collections=["hat"], limit=10)
    url = f"{real_server}/api/datasets/{ds.dataset_id}/products"
    for options, field in (({"format": "csv", "magcol": "nope"}, "magcol"),
                           ({"format": "csv", "masked": "sometimes", "mask": "aiq_000_good"}, "masked")):
        req = urllib.request.Request(url, data=json.dumps({"builder": "lightcurves", "options": options}).encode(),
                                     headers={"Content-Type": "application/json", "Origin": real_server},
                                     method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=60)
        assert err.value.code == 400
        assert json.loads(err.value.read())["field"] == field
    with pytest.raises(ClientError) as err:
        client.product(ds.dataset_id, "lightcurves", format="csv", times="GPS_TAI")
    assert err.value.status == 400 and err.value.field == "times"
    described = {b["name"]: b for b in client.builders()}["lightcurves"]
    assert set(described["request_options"]) == {"magcol", "times", "mask", "masked"}
    # the notebook helper: Parquet with the options, read back as a table
    frame = client.lightcurves(ds.dataset_id, magcol="aep_000", times="bjd", mask="aiq_002_good",
                               masked="flag", dest_dir=tmp_path)
    flags = np.char.strip(np.asarray(hat_raw["aiq_002"]).astype(str))
    assert len(frame) == len(flags) and int(frame["masked"].sum()) == int((~np.isin(flags, ["G", "0"])).sum())
    np.testing.assert_array_equal(frame["bjd"].to_numpy(), np.asarray(hat_raw["bjd"], dtype=float))
    assert "rjd" not in frame.columns and "atf_000" not in frame.columns
    # the object API applies the same options the same way: the file equals the product's member
    query = "format=csv&magcol=aep_000&times=bjd&mask=aiq_002_good&masked=flag"
    with urllib.request.urlopen(f"{real_server}/api/collections/hat/objects/HAT-579-0051858/lightcurve?{query}",
                                timeout=120) as resp:
        single = resp.read()
    status = client.product(ds.dataset_id, "lightcurves", format="csv", magcol="aep_000", times="bjd",
                            mask="aiq_002_good", masked="flag")
    with zipfile.ZipFile(client.download(ds.dataset_id, status, tmp_path / "csv")) as zf:
        assert zf.read("lightcurves/hat/HAT-579-0051858.csv") == single
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{real_server}/api/collections/hat/objects/HAT-579-0051858/lightcurve"
                               "?format=csv&masked=flag", timeout=60)
    assert err.value.code == 400 and json.loads(err.value.read())["field"] == "masked"


def test_cli_build_with_options(real_app, hat_ds, hat_raw, tmp_path):
    def lcpanel(*args, check=True):
        out = subprocess.run([sys.executable, "-m", "lcpanel", *map(str, args)], capture_output=True, text=True)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    built = lcpanel("product", "build", real_app.basedir, hat_ds.dataset_id, "lightcurves", "--format", "csv",
                    "--magcol", "aep_000", "--times", "bjd", "--mask", "aiq_000_good", "-q").stdout.split()
    lcpanel("product", "get", real_app.basedir, hat_ds.dataset_id, built[0], "--output", tmp_path / "lc.zip")
    with zipfile.ZipFile(tmp_path / "lc.zip") as zf:
        header = csv_body(member(zf, ".csv").decode())[0]
        assert "bjd" in header and "rjd" not in header and "atf_000" not in header
        assert "mask=aiq_000_good" in zf.read("README.txt").decode()
    bad = lcpanel("product", "build", real_app.basedir, hat_ds.dataset_id, "lightcurves", "--format", "csv",
                  "--times", "nope", check=False)
    assert bad.returncode == 2 and "not 'nope'" in bad.stderr
