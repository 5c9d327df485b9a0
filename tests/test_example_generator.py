"""Tests of examples/make_collection.py and lcpanel.core.objects.astrobase_compat.

One tiny collection (12 objects) is built per module and shared by the tests.
"""

import csv
import json
import pickle

import numpy as np
import pytest

NOBJECTS = 12
FORMATKEYS = ("lcpanel-demo-csv", "lcpanel-demo-fits")

import make_collection as mc  # examples/, installed (pip install -e examples)

from lcpanel.core.objects.astrobase_compat import import_astrobase, offline


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("collection")
    summary = mc.make_collection(outdir, nobjects=NOBJECTS, seed=7,
                                 workers=2, progress=False)
    return outdir, summary


@pytest.fixture(scope="module")
def truth(collection):
    outdir, _ = collection
    with open(outdir / "truth.csv") as infd:
        return {row["objectid"]: row for row in csv.DictReader(infd)}


@pytest.fixture(scope="module")
def lclist(collection):
    outdir, _ = collection
    with open(outdir / "lclist-catalog.pkl", "rb") as infd:
        return pickle.load(infd)


def _read_checkplot(path):
    import_astrobase()
    from astrobase.checkplot.pkl_io import _read_checkplot_picklefile

    return _read_checkplot_picklefile(str(path))


def test_layout(collection):
    outdir, summary = collection
    magcol = mc.PROCESSED_MAGCOLS[0]
    assert len(list((outdir / "lightcurves").glob("LCP-*-lc.csv.gz"))) == NOBJECTS
    assert len(list((outdir / "periodfinding").glob(
        "periodfinding-LCP-*.pkl"))) == NOBJECTS
    assert len(list((outdir / "checkplots").glob(
        "checkplot-LCP-*-%s.pkl" % magcol))) == NOBJECTS
    assert summary["ncheckplots"] == NOBJECTS
    for name in ("lclist-catalog.pkl", "field.fits", "truth.csv",
                 "lcformat/lcpanel-demo-csv.json",
                 "lcformat/lcpanel_demo_csv.py"):
        assert (outdir / name).is_file(), name

    meta = json.loads((outdir / "collection.json").read_text())
    assert {"name", "description", "project", "datarelease", "citation",
            "lcformat", "field_fits"} <= set(meta)
    assert meta["lcformat"] == {"kind": "astrobase",
                                "formatkey": "lcpanel-demo-csv",
                                "lcformat_dir": "lcformat"}
    assert meta["field_fits"] == "field.fits"
    spec = json.loads((outdir / "lcformat/lcpanel-demo-csv.json").read_text())
    assert spec["lcreader_module"] == str(outdir / "lcformat/lcpanel_demo_csv.py")


def test_truth_has_variables_of_several_kinds(truth):
    kinds = [row["vartype"] for row in truth.values()]
    assert len(kinds) == NOBJECTS
    nvar = sum(kind != "none" for kind in kinds)
    assert 0.2 * NOBJECTS <= nvar <= 0.3 * NOBJECTS
    assert len({kind for kind in kinds if kind != "none"}) == nvar


def test_lclist_positions_match_truth(lclist, truth):
    objects = lclist["objects"]
    assert len(objects["objectid"]) == NOBJECTS
    for index, objectid in enumerate(objects["objectid"]):
        row = truth[str(objectid)]
        assert objects["ra"][index] == pytest.approx(float(row["ra"]))
        assert objects["decl"][index] == pytest.approx(float(row["decl"]))
    assert lclist["magcols"] == ["aep_000"]
    assert lclist["kdtree"].n == NOBJECTS
    for key in ("aep_000.objectisvar", "aep_000.varperiod", "aep_000.vartags",
                "aep_000.ndet", "aep_001.ndet", "twomassid", "ticid",
                "gaiaid", "objecttags", "vmag", "sdssr"):
        assert len(objects[key]) == NOBJECTS, key


def test_checkplots_carry_review(collection, lclist, truth):
    outdir, _ = collection
    objects = lclist["objects"]
    reviewed = 0
    for index, objectid in enumerate(objects["objectid"]):
        cpd = _read_checkplot(
            outdir / "checkplots" / ("checkplot-%s-aep_000.pkl" % objectid))
        row = truth[str(objectid)]
        varinfo = cpd["varinfo"]
        assert cpd["finderchart"] is not None
        assert cpd["pfmethods"] == ["0-gls", "1-bls"]
        assert cpd["objectinfo"]["gaiaid"] == objects["gaiaid"][index]
        if varinfo["objectisvar"] in (1, 3):
            reviewed += 1
            assert varinfo["vartags"] == mc.VARTAGS[row["vartype"]]
            if varinfo["varisperiodic"]:
                assert varinfo["varperiod"] == pytest.approx(float(row["period"]))
                assert varinfo["varepoch"] == pytest.approx(float(row["epoch"]))
                assert objects["aep_000.varperiod"][index] == pytest.approx(
                    float(row["period"]))
        elif varinfo["objectisvar"] == 2:
            assert row["vartype"] == "none"
        assert objects["aep_000.objectisvar"][index] == (
            varinfo["objectisvar"] or 0)
    assert reviewed >= 1


def test_clear_periodic_signals_are_recovered(collection, lclist, truth):
    """Periodic variables with a peak-to-peak amplitude above twice the
    per-point noise show their period (or half/double) among the top peaks."""
    outdir, _ = collection
    objects = lclist["objects"]
    checked = 0
    for index, objectid in enumerate(objects["objectid"]):
        row = truth[str(objectid)]
        period = float(row["period"])
        noise = mc._noise_sigma(float(objects["sdssr"][index]), 1.0)
        if not np.isfinite(period) or float(row["amplitude"]) < 2 * noise:
            continue
        cpd = _read_checkplot(
            outdir / "checkplots" / ("checkplot-%s-aep_000.pkl" % objectid))
        found = [p for method in cpd["pfmethods"]
                 for p in cpd[method]["nbestperiods"][:3]]
        assert any(abs(p * k / period - 1) < 0.02
                   for p in found for k in (0.5, 1, 2)), (row, found)
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("formatkey", FORMATKEYS)
def test_formats_read_back_through_astrobase(tmp_path, formatkey):
    import_astrobase()
    from astrobase.lcproc import get_lcformat

    catalog = mc.simulate_catalog(3, seed=3)
    infos = mc._objectinfos(catalog, 3)
    schedule = mc.simulate_schedule(3)
    truth = mc.simulate_variability(3, 3, schedule["times"])
    paths = mc.write_lightcurves(tmp_path, formatkey, infos, truth, schedule,
                                 3, catalog, (290.0, 45.0, 0.6), False)
    lcformat_dir = mc.register_lcformat(tmp_path, formatkey)

    fileglob, reader, timecols, magcols, errcols, fluxes, _ = get_lcformat(
        formatkey, use_lcformat_dir=str(lcformat_dir))
    assert sorted(p.name for p in tmp_path.glob(fileglob)) == sorted(
        p.name for p in paths)
    assert magcols == ["aep_000", "aep_001"] and not fluxes
    for path, info in zip(paths, infos):
        lcdict = reader(str(path))
        assert lcdict["objectid"] == info["objectid"]
        assert lcdict["objectinfo"]["ra"] == pytest.approx(info["ra"])
        assert lcdict["objectinfo"]["gaiaid"] == info["gaiaid"]
        assert lcdict["timesys"] == "TDB" and lcdict["timeformat"] == "BJD"
        assert lcdict["column_info"]["bjd"]["unit"] == "d"
        ntimes = len(lcdict[timecols[0]])
        assert lcdict["objectinfo"]["ndet"] == ntimes > 400
        for magcol, errcol in zip(magcols, errcols):
            assert len(lcdict[magcol]) == len(lcdict[errcol]) == ntimes
        flagged = lcdict["qflag"] != 0
        assert np.all(np.isnan(lcdict["aep_000"][flagged]))


def test_both_formats_hold_the_same_data(tmp_path):
    values = {}
    for formatkey in FORMATKEYS:
        catalog = mc.simulate_catalog(2, seed=5)
        infos = mc._objectinfos(catalog, 5)
        schedule = mc.simulate_schedule(5)
        truth = mc.simulate_variability(2, 5, schedule["times"])
        directory = tmp_path / formatkey
        directory.mkdir()
        (path, _) = mc.write_lightcurves(directory, formatkey, infos, truth,
                                         schedule, 5, catalog,
                                         (290.0, 45.0, 0.6), False)
        reader = mc._load_format_module(formatkey).read_lightcurve
        values[formatkey] = reader(str(path))
    csvlc, fitslc = (values[key] for key in FORMATKEYS)
    assert csvlc["objectinfo"] == fitslc["objectinfo"]
    for column in ("bjd", "aep_000", "aie_001", "qflag"):
        np.testing.assert_allclose(csvlc[column], fitslc[column], rtol=1e-6)


def test_field_image_wcs_contains_every_object(collection, truth):
    from astropy.io import fits
    from astropy.wcs import WCS

    outdir, _ = collection
    with fits.open(outdir / "field.fits") as hdulist:
        header = hdulist[0].header
        image = hdulist[0].data
    wcs = WCS(header)
    assert wcs.has_celestial
    ra = [float(row["ra"]) for row in truth.values()]
    decl = [float(row["decl"]) for row in truth.values()]
    x, y = wcs.all_world2pix(ra, decl, 0)
    ny, nx = image.shape
    assert np.all((x >= 0) & (x < nx) & (y >= 0) & (y < ny))
    # the stars are there: each object's pixel is well above the sky
    assert np.all(image[np.round(y).astype(int), np.round(x).astype(int)]
                  > mc.FIELD_SKY + 50)


def test_same_seed_same_catalog_and_lightcurves(tmp_path):
    first, second = (mc.simulate_catalog(50, seed=11) for _ in range(2))
    for key in mc.CATALOG_COLUMNS:
        np.testing.assert_array_equal(first[key], second[key])
    other = mc.simulate_catalog(50, seed=12)
    assert not np.array_equal(first["ra"], other["ra"])

    contents = []
    for run in ("a", "b"):
        catalog = mc.simulate_catalog(3, seed=11)
        infos = mc._objectinfos(catalog, 11)
        schedule = mc.simulate_schedule(11)
        truth = mc.simulate_variability(3, 11, schedule["times"])
        directory = tmp_path / run
        directory.mkdir()
        paths = []
        for formatkey in FORMATKEYS:
            paths += mc.write_lightcurves(directory, formatkey, infos, truth,
                                          schedule, 11, catalog,
                                          (290.0, 45.0, 0.6), False)
        contents.append([path.read_bytes() for path in paths])
    assert contents[0] == contents[1]


def test_collection_catalog_matches_simulation(lclist):
    catalog = mc.simulate_catalog(NOBJECTS, seed=7)
    objects = lclist["objects"]
    order = np.argsort(objects["objectid"])
    np.testing.assert_array_equal(objects["objectid"][order],
                                  np.char.decode(catalog["objectid"]))
    np.testing.assert_allclose(objects["vmag"][order].astype(float),
                               catalog["vmag"])
    np.testing.assert_array_equal(objects["twomassid"][order],
                                  np.char.decode(catalog["twomassid"]))


def test_catalog_only_parquet(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "catalog.parquet"
    assert mc.main(["--catalog-only", "2000", str(path), "--seed", "3"]) == 0
    table = pq.read_table(path)
    assert table.num_rows == 2000
    assert table.column_names == list(mc.CATALOG_COLUMNS)
    ra = table["ra"].to_numpy()
    decl = table["decl"].to_numpy()
    offsets = mc._angular_offsets_deg(ra, decl, 290.0, 45.0)
    assert np.all(offsets <= 0.6 + 1e-9)
    for key in ("objectid", "twomassid", "ticid", "gaia_id"):
        values = table[key].to_pylist()
        assert all(isinstance(v, str) and v for v in values)
        assert len(set(values)) == 2000, key


@pytest.mark.parametrize("suffix", [".csv", ".fits"])
def test_catalog_only_allsky_other_formats(tmp_path, suffix):
    from astropy.table import Table

    path = tmp_path / ("catalog" + suffix)
    assert mc.make_plain_catalog(path, 500, seed=1, allsky=True) == 500
    table = Table.read(path)
    assert len(table) == 500
    assert np.all((table["ra"] >= 0) & (table["ra"] < 360))
    assert np.all(np.abs(table["decl"]) <= 90)
    assert table["decl"].min() < -30 and table["decl"].max() > 30


def test_offline_lookups_never_touch_the_network(monkeypatch):
    offline()
    from astrobase.checkplot import pkl_utils
    from astrobase.services import dust, gaia, simbad

    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("an offline look-up tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    assert gaia.objectlist_conesearch(290.0, 45.0, 60.0) is None
    assert simbad.objectnames_conesearch(290.0, 45.0, 60.0) is None
    assert dust.extinction_query(290.0, 45.0) is None
    assert pkl_utils.tic_conesearch(290.0, 45.0) is None
    with pytest.raises(OSError):
        pkl_utils.skyview_stamp(290.0, 45.0)


def test_offline_finder_stamp_from_field_image(collection):
    outdir, _ = collection
    stamps = mc.FieldStamps(outdir / "field.fits")
    offline(finder_stamp=stamps)
    from astrobase.checkplot import pkl_utils
    from astropy.wcs import WCS

    image, header = pkl_utils.skyview_stamp(290.1, 45.1, flip=False)
    assert image.shape == (mc.FINDER_SIZE_PIX, mc.FINDER_SIZE_PIX)
    x, y = WCS(header).all_world2pix(290.1, 45.1, 0)
    assert abs(x - 149.5) < 1 and abs(y - 149.5) < 1
    offline()
