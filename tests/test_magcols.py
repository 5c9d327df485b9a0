"""Every magnitude column of an astrobase collection survives ingest (issue 14, finding 1):
one checkplot per object and magcol, per-magcol variability columns, a default magcol,
products holding every checkplot, per-object URLs naming the magcol, and a report of
what ingest leaves out.

The collection is made by the example generator with two processed apertures
(``aep_000``, ``aep_001``), add_cpinfo_to_lclist run for the first only, as a survey
running it once would."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import urllib.request
import zipfile

import pytest

from lcpanel.core.datasets import Principal
from lcpanel.core.search import run_search
from support.data import example_collection

pytestmark = pytest.mark.slow
MAGCOLS = ["aep_000", "aep_001"]
ALICE = Principal("anon:alice")


@pytest.fixture(scope="module")
def two_magcols(tmp_path_factory):
    return example_collection(tmp_path_factory, "two_magcols", nobjects=6, seed=5, workers=2, nmagcols=2,
                              progress=False)


@pytest.fixture(scope="module")
def app2(two_magcols, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = Basedir.init(tmp_path_factory.mktemp("b2") / "basedir")
    add_astrobase_collection(App(base.path), base, two_magcols, collection_id="two", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


def _rows(app, cols):
    cat = app.catalogs.get("two")
    quoted = ", ".join(f'"{c}"' for c in cols)
    return {r[0]: dict(zip(cols, r[1:])) for r in cat.query(f"SELECT objectid, {quoted} FROM object_catalog")}


def _read_cp(path):
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.checkplot.pkl_io import _read_checkplot_picklefile

    return _read_checkplot_picklefile(str(path))


def test_every_magcols_checkplot_is_kept(app2, two_magcols):
    from lcpanel.core.objects.magcols import collection_magcols

    info = app2.catalogs.get("two").info
    assert collection_magcols(info.columns) == MAGCOLS
    rows = _rows(app2, ["cpfname", "aep_000_cpfname", "aep_001_cpfname"])
    assert len(rows) == 6
    for oid, row in rows.items():
        for magcol in MAGCOLS:
            expected = two_magcols / "checkplots" / f"checkplot-{oid}-{magcol}.pkl"
            assert expected.is_file()
            assert row[f"{magcol}_cpfname"] == f"checkplots/checkplot-{oid}-{magcol}.pkl"
        assert row["cpfname"] == row["aep_000_cpfname"]  # the default magcol: old readers keep working


def test_second_magcols_variability_columns_come_from_its_checkplots(app2, two_magcols):
    fields = ["objectisvar", "varperiod", "varepoch", "vartags", "stetsonj"]
    cols = [f"{m}_{f}" for m in MAGCOLS for f in fields]
    rows = _rows(app2, cols)
    with open(two_magcols / "lclist-catalog.pkl", "rb") as fh:
        lclist = pickle.load(fh)
    assert "aep_001.objectisvar" not in lclist["objects"]  # the regression: nothing to copy for aep_001
    ids = [str(o) for o in lclist["objects"]["objectid"]]
    for oid, row in rows.items():
        cp = _read_cp(two_magcols / "checkplots" / f"checkplot-{oid}-aep_001.pkl")
        vi = cp["varinfo"]
        assert row["aep_001_objectisvar"] == vi.get("objectisvar")
        assert row["aep_001_varperiod"] == (None if vi.get("varperiod") is None else pytest.approx(vi["varperiod"]))
        assert row["aep_001_stetsonj"] == pytest.approx(vi["features"]["stetsonj"])
        i = ids.index(oid)
        assert row["aep_000_stetsonj"] == pytest.approx(float(lclist["objects"]["aep_000.stetsonj"][i]))
    # the two apertures are different data: their features differ
    assert any(r["aep_000_stetsonj"] != pytest.approx(r["aep_001_stetsonj"]) for r in rows.values())


def test_ingest_reports_what_it_leaves_out(two_magcols, tmp_path, basedir, app_factory, caplog):
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, ingest_notes

    copy = tmp_path / "copy"
    shutil.copytree(two_magcols, copy)
    stray = copy / "checkplots" / "checkplot-NOT-AN-OBJECT-aep_000.pkl"
    shutil.copy(next((copy / "checkplots").glob("checkplot-*-aep_001.pkl")), stray)
    one = sorted((copy / "checkplots").glob("checkplot-*-aep_001.pkl"))[0]
    one.unlink()
    info = add_astrobase_collection(app_factory(basedir.path), basedir, copy, collection_id="c",
                                    show_progress=False)
    notes = ingest_notes(info)
    assert any("checkplot-NOT-AN-OBJECT-aep_000.pkl" in n and "left out" in n for n in notes), notes
    assert any(n.startswith("magcol aep_001: 1 of 6 objects have no checkplot") for n in notes), notes
    assert any("aep_001" in n and "add_cpinfo_to_lclist was not run" in n for n in notes), notes
    assert "NOT-AN-OBJECT" in caplog.text


def test_add_collection_cli_prints_the_notes(two_magcols, tmp_path, capsys):
    from lcpanel.cli import main

    copy = tmp_path / "copy"
    shutil.copytree(two_magcols, copy)
    shutil.copy(next((copy / "checkplots").glob("checkplot-*-aep_001.pkl")),
                copy / "checkplots" / "checkplot-STRAY-aep_001.pkl")
    assert main(["init", str(tmp_path / "b")]) == 0
    assert main(["add-collection", str(tmp_path / "b"), str(copy), "--id", "c", "-q"]) == 0
    out = capsys.readouterr()
    assert "checkplot-STRAY-aep_001.pkl" in out.out + out.err


@pytest.mark.parametrize("builder", ["checkplots", "dataset"])
def test_zips_hold_every_magcols_checkplot(app2, builder):
    res = run_search(app2, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 100})
    ds = app2.datasets.create(res, ALICE.identity)
    status = app2.products.request(app2, ds, builder, {}, wait=True)
    assert status["status"] == "done", status
    zf = zipfile.ZipFile(io.BytesIO(app2.products.file_path(status["key"], status["builder"]).read_bytes()))
    names = sorted(n for n in zf.namelist() if n.startswith("checkplots/"))
    expected = sorted(f"checkplots/two/checkplot-{oid}-{m}.pkl" for oid in ds.data["objectid"] for m in MAGCOLS)
    assert names == expected


@pytest.fixture(scope="module")
def server2(app2):
    from support.servers import running_server

    with running_server(app2.basedir) as (url, _proc):
        yield url


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read()


def test_object_urls_name_the_magcol(server2, two_magcols):
    oid = "LCP-000000"
    base = f"{server2}/api/collections/two/objects/{oid}"
    for magcol in MAGCOLS:
        data = _get(f"{base}/checkplot?magcol={magcol}")
        assert data == (two_magcols / "checkplots" / f"checkplot-{oid}-{magcol}.pkl").read_bytes()
    # old URLs keep working: the default magcol
    assert _get(f"{base}/checkplot") == (two_magcols / "checkplots" / f"checkplot-{oid}-aep_000.pkl").read_bytes()
    tiles = json.loads(_get(f"{base}/tiles?magcol=aep_001"))
    assert tiles["magcol"] == "aep_001" and "magcol=aep_001" in tiles["unphased"]
    a, b = _get(f"{base}/tiles/unphased.png?magcol=aep_000"), _get(f"{base}/tiles/unphased.png?magcol=aep_001")
    assert a[:8] == b[:8] == b"\x89PNG\r\n\x1a\n" and a != b
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{base}/checkplot?magcol=nope")
    assert err.value.code == 400 and b"aep_000, aep_001" in err.value.read()


def test_editing_a_magcol_changes_its_columns_and_export_writes_its_own_checkplot(two_magcols, tmp_path, basedir,
                                                                                   app_factory):
    """Reviews of one magcol go to its catalog columns (never to the survey's files while
    serving); ``lcpanel reviews export`` writes them into that magcol's own checkplot."""
    from lcpanel.core.objects.annotations import edit_object
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.objects.reviews import export_reviews

    copy = tmp_path / "copy"
    shutil.copytree(two_magcols, copy)
    info = add_astrobase_collection(app_factory(basedir.path), basedir, copy, collection_id="c",
                                    show_progress=False)
    oid = "LCP-000002"
    before0 = (copy / "checkplots" / f"checkplot-{oid}-aep_000.pkl").read_bytes()
    before1 = (copy / "checkplots" / f"checkplot-{oid}-aep_001.pkl").read_bytes()
    result = edit_object(basedir.path, info, oid, {"vartags": "second aperture only"}, author="anon:x",
                         magcol="aep_001")
    assert result["magcol"] == "aep_001", result
    assert (copy / "checkplots" / f"checkplot-{oid}-aep_001.pkl").read_bytes() == before1
    app = app_factory(basedir.path)
    row = app.catalogs.get("c").query(
        "SELECT aep_000_vartags, aep_001_vartags FROM object_catalog WHERE objectid = ?", (oid,))[0]
    assert row[1] == "second aperture only" and row[0] != row[1]
    [item] = export_reviews(basedir.path, "c")
    assert item["path"] == f"checkplots/checkplot-{oid}-aep_001.pkl"
    assert _read_cp(copy / "checkplots" / f"checkplot-{oid}-aep_001.pkl")["varinfo"]["vartags"] == \
        "second aperture only"
    assert (copy / "checkplots" / f"checkplot-{oid}-aep_000.pkl").read_bytes() == before0


def test_dataset_url_list_names_every_magcols_checkplot(server2, app2):
    res = run_search(app2, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 100})
    ds = app2.datasets.create(res, ALICE.identity)
    text = _get(f"{server2}/api/datasets/{ds.dataset_id}/urls").decode()
    cps = [line for line in text.splitlines() if "/checkplot" in line]
    assert len(cps) == 2 * ds.nobjects
    for line in cps[:4]:
        magcol = line.rsplit("magcol=", 1)[1]
        oid = line.split("/objects/")[1].split("/")[0]
        assert _get(line) == _get(f"{server2}/api/collections/two/objects/{oid}/checkplot?magcol={magcol}")
