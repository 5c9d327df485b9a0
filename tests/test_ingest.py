"""Ingest of astrobase collections and plain catalogs into a basedir, and every way it
can be refused without changing anything."""

from __future__ import annotations

import csv
import json
import pickle
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from support.data import random_catalog, snapshot, write_table

from lcpanel.app import App
from lcpanel.core.catalogs.basedir import Basedir
from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection, remove_collection
from lcpanel.core.catalogs.skyindex import SkyIndex, radec_to_hpx29
from lcpanel.errors import Conflict, UserError


def catalog_rows(info) -> dict[str, dict]:
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return {r["objectid"]: dict(r) for r in conn.execute("SELECT * FROM object_catalog")}


def fts_objectids(info, query: str) -> set[str]:
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        return {r[0] for r in conn.execute(
            "SELECT object_catalog.objectid FROM object_fts JOIN object_catalog ON row_id = object_fts.rowid "
            "WHERE object_fts MATCH ?", (query,))}


def truth(collection: Path) -> dict[str, dict]:
    with open(collection / "truth.csv") as fh:
        return {r["objectid"]: r for r in csv.DictReader(fh)}


def lclist(collection: Path) -> dict:
    with open(collection / "lclist-catalog.pkl", "rb") as fh:
        return pickle.load(fh)


# --- astrobase collections ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("which", ["csv_collection", "fits_collection"])
def test_astrobase_collection_ingest(which, request, basedir):
    source: Path = request.getfixturevalue(which)
    app = App(basedir.path)
    info = add_astrobase_collection(app, basedir, source, show_progress=False)

    expected = truth(source)
    rows = catalog_rows(info)
    assert set(rows) == set(expected)
    assert info.nobjects == len(expected)
    for oid, row in rows.items():
        assert row["ra"] == pytest.approx(float(expected[oid]["ra"]), abs=1e-9)
        assert row["decl"] == pytest.approx(float(expected[oid]["decl"]), abs=1e-9)
        assert row["hpx29"] == int(radec_to_hpx29(row["ra"], row["decl"])[0])
        # every object has its files, and they exist
        for col in ("lcfname", "cpfname", "pffname"):
            assert row[col], f"{oid} has no {col}"
            assert (source / row[col]).is_file()

    # rows are sorted by HEALPix id and the sky index and kd-tree use the same row ids
    by_row = sorted(rows.values(), key=lambda r: r["row_id"])
    assert [r["hpx29"] for r in by_row] == sorted(r["hpx29"] for r in by_row)
    index = SkyIndex.load(info.skyindex_npy)
    assert index.order.tolist() == list(range(len(rows)))
    with open(info.kdtree_pkl, "rb") as fh:
        tree = pickle.load(fh)
    from astropy.coordinates import SkyCoord

    xyz = SkyCoord([r["ra"] for r in by_row], [r["decl"] for r in by_row], unit="deg").cartesian.xyz.value.T
    np.testing.assert_allclose(tree.data, xyz, atol=1e-12)
    np.testing.assert_allclose(index.xyz, xyz, atol=1e-12)
    assert index.hpx29.tolist() == [r["hpx29"] for r in by_row]

    # every column of the lclist is in the catalog, typed, and listed in the registry
    objects = lclist(source)["objects"]
    names = {c.name for c in info.columns}
    from lcpanel.core.catalogs.columns import sql_name

    assert {sql_name(k) for k in objects} <= names
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        table_cols = [r[1] for r in conn.execute("PRAGMA table_info(object_catalog)")]
    assert set(table_cols) == names | {"row_id", "hpx29"}
    assert {"objectid", "ra", "decl", "lcfname", "cpfname", "pffname"} <= names
    assert info.column_names()[:3] == ["objectid", "ra", "decl"]
    assert next(c for c in info.columns if c.name == "ra").unit == "deg"
    fts_cols = {c.name for c in info.columns if c.fts}
    assert "objectid" in fts_cols and "lcfname" not in fts_cols

    # full text finds an object by its id, its 2MASS alias, its variability tags and comments
    some = sorted(rows)[3]
    assert fts_objectids(info, f'"{some}"') == {some}
    twomass = rows[some]["twomassid"]
    assert fts_objectids(info, f'"{twomass}"') == {some}
    tagged = {oid for oid, r in rows.items() if r.get(_vartags_column(rows)) and "RR Lyrae" in r[_vartags_column(rows)]}
    assert tagged, "the generator tags RR Lyrae variables"
    assert fts_objectids(info, '"RR Lyrae"') >= tagged

    # the light-curve format was recorded and reads every light curve
    fmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, source)
    lc = fmt.read(source / rows[some]["lcfname"])
    assert lc.objectid == some and len(lc) > 100

    # the registry lists the collection and its columns; its objects are found in its catalog
    with closing(basedir.connect()) as conn:
        union = {r["name"]: r for r in conn.execute("SELECT * FROM column_union")}
    assert set(union) == names
    assert basedir.find_objects([some]) == [(info.collection_id, some)]
    assert sorted(basedir.find_objects(sorted(expected) + ["no-such-object"])) == \
        sorted((info.collection_id, o) for o in expected)


def _vartags_column(rows) -> str:
    first = next(iter(rows.values()))
    return next(c for c in first if c.endswith("vartags"))


@pytest.mark.slow
def test_two_collections_share_a_basedir(csv_collection, fits_collection, basedir):
    app = App(basedir.path)
    a = add_astrobase_collection(app, basedir, csv_collection, show_progress=False)
    b = add_astrobase_collection(app, basedir, fits_collection, show_progress=False)
    assert basedir.collection_ids() == sorted([a.collection_id, b.collection_id])
    shared = basedir.shared_columns([a.collection_id, b.collection_id])
    assert {"objectid", "ra", "decl"} <= set(shared)
    union = {r["name"]: r["ncollections"] for r in basedir.column_union()}
    assert union["objectid"] == 2


@pytest.mark.slow
def test_lcc_description_format(csv_collection, basedir, tmp_path):
    """A collection described by an lcc-server style format file instead of astrobase's registry."""
    reader = Path(__file__).resolve().parents[1] / "examples" / "lcformats" / "lcpanel_demo_csv.py"
    desc = {
        "lc_formatkey": "demo-described",
        "lc_fileglob": "*-lc.csv.gz",
        "lc_readermodule": f"{reader}:read_lightcurve",
        "column_keys": {"bjd": {"description": "BJD_TDB at mid-exposure", "unit": "d"},
                        "aep": ["magnitude in aperture", "%.5f", "f8"],
                        "qflag": ["quality bits", "%d", "i4"]},
        "unaffiliated_cols": ["bjd", "qflag"],
        "per_aperture_cols": ["aep", "aie"],
        "mag_apertures": ["000", "001"],
        "aperture_joiner": "_",
        "timesys": "TDB",
    }
    path = tmp_path / "format.json"
    path.write_text(json.dumps(desc))
    app = App(basedir.path)
    info = add_astrobase_collection(app, basedir, csv_collection, collection_id="described",
                                    lcformat={"kind": "lcc-description", "path": str(path)}, show_progress=False)
    assert info.lcformat == {"kind": "lcc-description", "path": str(path)}
    fmt = app.lc_formats.get("lcc-description").from_spec(info.lcformat, csv_collection)
    row = next(iter(catalog_rows(info).values()))
    lc = fmt.read(csv_collection / row["lcfname"])
    assert {"bjd", "qflag", "aep_000", "aep_001", "aie_000"} <= set(lc.columns)
    assert lc.meta["timesys"] == "TDB"
    assert lc.column_info["bjd"]["unit"] == "d"
    assert lc.column_info["aep_001"]["description"] == "magnitude in aperture"


# --- plain catalogs -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_plain_catalog_ingest(suffix, basedir, tmp_path):
    cols = random_catalog(2000, seed=3, center=(150.0, 2.0), radius_deg=1.0)
    path = write_table(cols, tmp_path / f"cosmos_field{suffix}")
    info = add_catalog_collection(App(basedir.path), basedir, path, meta={"name": "COSMOS", "citation": "X+2026"},
                                  show_progress=False)
    assert info.collection_id == "cosmos_field"
    assert info.kind == "catalog" and info.lcformat is None
    assert info.citation == "X+2026"
    rows = catalog_rows(info)
    assert len(rows) == 2000
    for i in (0, 999, 1999):
        r = rows[cols["objectid"][i]]
        assert r["ra"] == pytest.approx(cols["ra"][i], abs=1e-12)
        assert r["decl"] == pytest.approx(cols["decl"][i], abs=1e-12)
        assert r["ndet"] == cols["ndet"][i]
    assert abs(info.center_ra - 150.0) < 0.1 and abs(info.center_decl - 2.0) < 0.1
    # the bounding circle holds every object and is not much larger than the field
    from astropy.coordinates import SkyCoord

    sep = SkyCoord(cols["ra"], cols["decl"], unit="deg").separation(
        SkyCoord(info.center_ra, info.center_decl, unit="deg")).deg
    assert sep.max() <= info.radius_deg + 1e-9 and info.radius_deg < 1.1
    flare = {cols["objectid"][i] for i in np.flatnonzero(cols["objecttags"] == "flare star")}
    assert fts_objectids(info, '"flare star"') == flare
    indexed = {c.name for c in info.columns if c.indexed}
    assert {"objectid", "vmag", "ndet"} <= indexed


def test_plain_catalog_with_named_columns_and_nulls(basedir, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("NAME,RAJ,DECJ,mag,note\nA,10.0,-5.0,12.5,x\nB,10.1,-5.1,,\nC,10.2,-5.2,13.0,y z\n")
    info = add_catalog_collection(App(basedir.path), basedir, path, id_column="NAME", ra_column="RAJ",
                                  dec_column="DECJ", index_columns=("mag",), show_progress=False)
    rows = catalog_rows(info)
    assert rows["B"]["mag"] is None and rows["A"]["mag"] == 12.5
    assert next(c for c in info.columns if c.name == "mag").indexed


# --- refusals that change nothing ---------------------------------------------------------


def _refused(basedir, action, error=UserError, match=None):
    before = snapshot(basedir.path)
    with pytest.raises(error, match=match):
        action()
    assert snapshot(basedir.path) == before


def test_adding_twice_is_refused(basedir, tmp_path):
    path = write_table(random_catalog(50, seed=1, allsky=True), tmp_path / "cat.parquet")
    app = App(basedir.path)
    add_catalog_collection(app, basedir, path, show_progress=False)
    _refused(basedir, lambda: add_catalog_collection(app, basedir, path, show_progress=False),
             Conflict, "already in")


@pytest.mark.parametrize("problem", [
    "missing_file", "no_radec", "duplicate_ids", "nan_coords", "dec_out_of_range", "empty_ids",
    "unknown_suffix", "bad_id", "unknown_index_column", "garbage",
])
def test_broken_catalogs_are_refused(problem, basedir, tmp_path):
    cols = random_catalog(30, seed=2, allsky=True)
    path = tmp_path / "cat.csv"
    kwargs = {}
    if problem == "no_radec":
        cols = {k: v for k, v in cols.items() if k != "decl"}
    elif problem == "duplicate_ids":
        cols["objectid"][5] = cols["objectid"][4]
    elif problem == "nan_coords":
        cols["ra"][3] = np.nan
    elif problem == "dec_out_of_range":
        cols["decl"][3] = 91.0
    elif problem == "empty_ids":
        cols["objectid"] = np.array([""] + list(cols["objectid"][1:]))
    elif problem == "unknown_suffix":
        path = tmp_path / "cat.txt"
    elif problem == "bad_id":
        kwargs["collection_id"] = "../escape"
    elif problem == "unknown_index_column":
        kwargs["index_columns"] = ("nope",)
    if problem == "garbage":
        path.write_bytes(b"\x00\x01\x02 not a table")
    elif problem != "missing_file":
        from astropy.table import Table

        Table(cols).write(path, format="ascii.csv", overwrite=True)
    _refused(basedir, lambda: add_catalog_collection(App(basedir.path), basedir, path, show_progress=False,
                                                     **kwargs))


@pytest.mark.slow
@pytest.mark.parametrize("problem", ["no_lclist", "corrupt_lclist", "not_a_catalog", "missing_lc",
                                     "no_lightcurves_dir", "unknown_lcformat", "bad_fits"])
def test_broken_collection_dirs_are_refused(problem, csv_collection, basedir, tmp_path):
    source = tmp_path / "broken"
    shutil.copytree(csv_collection, source)
    kwargs = {}
    if problem == "no_lclist":
        (source / "lclist-catalog.pkl").unlink()
    elif problem == "corrupt_lclist":
        (source / "lclist-catalog.pkl").write_bytes(b"not a pickle")
    elif problem == "not_a_catalog":
        (source / "lclist-catalog.pkl").write_bytes(pickle.dumps({"hello": 1}))
    elif problem == "missing_lc":
        next((source / "lightcurves").iterdir()).unlink()
    elif problem == "no_lightcurves_dir":
        shutil.rmtree(source / "lightcurves")
    elif problem == "unknown_lcformat":
        kwargs["lcformat"] = {"kind": "astrobase", "formatkey": "no-such-format", "lcformat_dir": str(source)}
    elif problem == "bad_fits":
        kwargs["field_fits"] = str(source / "lclist-catalog.pkl")
    _refused(basedir, lambda: add_astrobase_collection(App(basedir.path), basedir, source, show_progress=False,
                                                       **kwargs))


def test_remove_collection_deletes_derived_files_only(basedir, tmp_path):
    path = write_table(random_catalog(40, seed=5, allsky=True), tmp_path / "cat.fits")
    app = App(basedir.path)
    info = add_catalog_collection(app, basedir, path, show_progress=False)
    remove_collection(app, basedir, info.collection_id)
    assert basedir.collection_ids() == []
    assert not Path(info.catalog_dir).exists()
    assert path.exists()


def test_init_refuses_an_existing_basedir(basedir):
    with pytest.raises(Conflict):
        Basedir.init(basedir.path)


def test_not_a_basedir(tmp_path):
    with pytest.raises(UserError, match="not an lcpanel basedir"):
        Basedir(tmp_path)


# --- the CLI ------------------------------------------------------------------------------


def lcpanel(*args, check=True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "lcpanel", *map(str, args)], capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_cli_init_add_list(tmp_path):
    base = tmp_path / "b"
    lcpanel("init", base)
    path = write_table(random_catalog(100, seed=9, allsky=True), tmp_path / "sky.parquet")
    out = lcpanel("add-collection", base, path, "--name", "All sky", "--description", "random", "--quiet")
    assert "added collection 'sky'" in out.stdout
    listing = json.loads(lcpanel("collections", base, "--format", "json").stdout)
    assert listing[0]["nobjects"] == 100 and listing[0]["name"] == "All sky"
    again = lcpanel("add-collection", base, path, "--quiet", check=False)
    assert again.returncode == 2
    assert "already in" in again.stderr and "Traceback" not in again.stderr
    missing = lcpanel("add-collection", base, tmp_path / "nope.csv", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    notbase = lcpanel("collections", tmp_path, check=False)
    assert notbase.returncode == 2 and "lcpanel init" in notbase.stderr
