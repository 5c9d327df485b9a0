"""Checkplot reading for the web UI (tiles, summaries, re-folding, periodogram peaks) and
reviewers' edits of variability info and comments (catalog row, FTS index, checkplot
pickle, history), including refused edits and concurrent editors."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import math
import multiprocessing as mp
import os
import pickle
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from support.data import snapshot
from support.gzdamage import DAMAGES, damaged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lcpanel.core.objects import annotations
from lcpanel.core.objects.annotations import edit_object, history
from lcpanel.core.objects.checkplots import (CheckplotError, downsample_periodogram, load_checkplot, magseries,
                                     object_summary, periodogram_peaks, phase_fold, tiles)
from lcpanel.errors import Conflict, NotFound, UserError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers ------------------------------------------------------------------------------


def all_checkplots(collection: Path) -> dict[str, dict]:
    return {load_checkplot(p)["objectid"]: load_checkplot(p)
            for p in sorted((collection / "checkplots").glob("checkplot-*.pkl*"))}


def reviewed_variable(cps: dict) -> str:
    """An object marked variable with an adopted period."""
    return next(o for o, cp in cps.items()
                if cp["varinfo"].get("objectisvar") == 1 and cp["varinfo"].get("varperiod"))


def unreviewed(cps: dict) -> str:
    return next(o for o, cp in cps.items() if not cp["varinfo"].get("objectisvar"))


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format == "PNG"
        return img.size


def catalog_row(info, objectid: str) -> dict:
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM object_catalog WHERE objectid = ?", (objectid,)).fetchone())


def fts_find(info, phrase: str) -> set[str]:
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        return {r[0] for r in conn.execute(
            "SELECT object_catalog.objectid FROM object_fts JOIN object_catalog ON row_id = object_fts.rowid "
            "WHERE object_fts MATCH ?", ('"' + phrase.replace('"', '""') + '"',))}


def fts_integrity(info) -> None:
    """SQLite's own check that the external-content index matches the table."""
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn:
        conn.execute("INSERT INTO object_fts(object_fts, rank) VALUES ('integrity-check', 1)")


def independent_fold(times, mags, period, epoch):
    x = (np.asarray(times) - epoch) / period
    phase = x - np.floor(x)
    phase[phase >= 1] = 0.0
    order = np.lexsort((np.arange(len(phase)), phase))
    return phase[order], np.asarray(mags)[order]


# --- reading checkplots (no edits: the session fixture is only read) ----------------------


@pytest.fixture(scope="module")
def cps(csv_collection):
    return all_checkplots(csv_collection)


@pytest.mark.slow
def test_tiles_of_a_reviewed_variable_show_the_adopted_period(cps):
    objectid = reviewed_variable(cps)
    cp = cps[objectid]
    varperiod = float(cp["varinfo"]["varperiod"])
    t = tiles(cp)
    assert t["finalized"] and t["varperiod"] == pytest.approx(varperiod)
    assert len(t["phased"]) == 1
    best = t["phased"][0]
    assert best["period"] == pytest.approx(varperiod, rel=0.01) and best["matches_varperiod"]
    # no other phased plot of any method is closer to the adopted period
    others = [float(e[i]["period"]) for k in cp["pfmethods"] for e in [cp[k]] for i in e if isinstance(i, int)]
    assert abs(best["period"] - varperiod) == pytest.approx(min(abs(p - varperiod) for p in others))
    assert best["label"] == best["method"].upper() and best["key"] in cp["pfmethods"]
    assert math.isfinite(best["epoch"])
    for png in (t["finder"], t["unphased"], best["png"]):
        w, h = png_size(png)
        assert w > 50 and h > 50


@pytest.mark.slow
def test_tiles_of_an_unreviewed_object_show_one_plot_per_method(cps):
    cp = cps[unreviewed(cps)]
    t = tiles(cp)
    assert not t["finalized"]
    assert [p["key"] for p in t["phased"]] == list(cp["pfmethods"])
    assert [p["label"] for p in t["phased"]] == ["GLS", "BLS"]
    for p, key in zip(t["phased"], cp["pfmethods"]):
        assert p["index"] == 0
        assert p["period"] == pytest.approx(float(cp[key][0]["period"]))
        assert p["period"] == pytest.approx(float(cp[key]["bestperiod"]))
        assert png_size(p["png"])[0] > 50
    # flare stars are variable but have no period: not finalized either
    flare = next((c for c in cps.values() if c["varinfo"].get("objectisvar") == 1
                  and not c["varinfo"].get("varperiod")), None)
    if flare is not None:
        assert len(tiles(flare)["phased"]) == len(flare["pfmethods"])


@pytest.mark.slow
def test_summary_is_json_and_periodograms_keep_their_peaks(cps):
    for objectid, cp in cps.items():
        s = object_summary(cp, max_points=500)
        text = json.dumps(s, allow_nan=False)  # strict JSON: no NaN, no numpy types
        assert json.loads(text)["objectid"] == objectid
        assert s["status"] == cp["status"]
        assert s["varinfo"]["objectisvar"] == cp["varinfo"]["objectisvar"]
        assert "features" in s["varinfo"] and "stetsonj" in s["varinfo"]["features"]
        assert all(not isinstance(v, (list, dict)) for v in s["objectinfo"].values())
        assert s["objectinfo"]["ra"] == pytest.approx(cp["objectinfo"]["ra"])
        assert [m["key"] for m in s["pfmethods"]] == list(cp["pfmethods"])
        for m in s["pfmethods"]:
            entry = cp[m["key"]]
            assert len(m["periods"]) == len(m["lspvals"]) <= 500
            assert m["npoints"] == len(entry["periods"])
            best = int(np.nanargmax(entry["lspvals"]))
            assert float(entry["periods"][best]) in m["periods"]
            assert max(m["lspvals"]) == pytest.approx(float(np.nanmax(entry["lspvals"])))
            assert m["bestperiod"] == pytest.approx(float(entry["bestperiod"]))
            assert m["nbestperiods"] == pytest.approx([float(x) for x in entry["nbestperiods"]])
    # the periodogram picks agree with astrobase's own best periods
    cp = next(iter(cps.values()))
    gls = cp["0-gls"]
    assert periodogram_peaks(gls["periods"], gls["lspvals"], "0-gls", n=3) == pytest.approx(
        [float(x) for x in gls["nbestperiods"]])


@pytest.mark.slow
def test_refolding_a_checkplot_light_curve(cps):
    objectid = reviewed_variable(cps)
    cp = cps[objectid]
    times, mags, errs = magseries(cp)
    assert times.dtype == mags.dtype == errs.dtype == np.float64
    assert len(times) == len(mags) == len(errs) > 100
    assert np.isfinite(times).all() and np.isfinite(mags).all() and np.isfinite(errs).all()
    period, epoch = float(cp["varinfo"]["varperiod"]), float(cp["varinfo"]["varepoch"])
    f = phase_fold(times, mags, errs, period, epoch, nbins=50)
    ref_phase, ref_mags = independent_fold(times, mags, period, epoch)
    assert np.allclose(f["phase"], ref_phase, atol=1e-9)
    assert np.allclose(f["mags"], ref_mags)
    # varepoch is the time of minimum light: the faintest bin sits at phase ~0
    faint = f["binphase"][np.argmax(f["binmags"])]
    assert min(faint, 1 - faint) < 0.06
    # so does the default epoch (astrobase's convention, found from the light curve)
    g = phase_fold(times, mags, errs, period, nbins=50)
    faint = g["binphase"][np.argmax(g["binmags"])]
    assert min(faint, 1 - faint) < 0.06


# --- pure functions -----------------------------------------------------------------------


def test_phase_fold_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    times = 2460000 + np.sort(rng.uniform(0, 40, 700))
    period, epoch = 0.734, 2460001.25
    mags = 12 + 0.3 * np.cos(2 * np.pi * (times - epoch) / period) + rng.normal(0, 0.01, len(times))
    errs = np.full(len(times), 0.01)
    times[5], mags[9], errs[11] = np.nan, np.inf, np.nan
    f = phase_fold(times, mags, errs, period, epoch, nbins=20)
    keep = np.isfinite(times) & np.isfinite(mags) & np.isfinite(errs)
    ref_phase, ref_mags = independent_fold(times[keep], mags[keep], period, epoch)
    assert len(f["phase"]) == keep.sum() == len(f["times"]) == len(f["errs"])
    assert np.allclose(f["phase"], ref_phase, atol=1e-9) and np.allclose(f["mags"], ref_mags)
    assert (f["phase"] >= 0).all() and (f["phase"] < 1).all() and (np.diff(f["phase"]) >= 0).all()
    assert np.allclose(np.mod((f["times"] - epoch) / period, 1.0), f["phase"], atol=1e-9)
    # binned medians, computed the slow way
    centres, medians = [], []
    for i in range(20):
        inbin = (ref_phase >= i / 20) & (ref_phase < (i + 1) / 20)
        if inbin.any():
            centres.append((i + 0.5) / 20)
            medians.append(np.median(ref_mags[inbin]))
    assert np.allclose(f["binphase"], centres) and np.allclose(f["binmags"], medians)
    assert f["bincounts"].sum() == keep.sum()
    # default epoch: minimum light (maximum magnitude) near phase 0
    g = phase_fold(times, mags, None, period, nbins=40)
    assert g["errs"] is None
    faint = g["binphase"][np.argmax(g["binmags"])]
    assert min(faint, 1 - faint) < 0.05
    # 1-element array epochs, as astrobase's fitters leave them
    assert phase_fold(times, mags, errs, period, np.array([epoch]))["epoch"] == epoch


@pytest.mark.parametrize("period", [0, -1.5, float("nan"), float("inf"), None, "0.5", True, [1.0]])
def test_bad_periods_are_refused(period):
    with pytest.raises(UserError, match="period"):
        phase_fold([1.0, 2.0, 3.0], [10.0, 11.0, 10.5], None, period)


@pytest.mark.parametrize("nbins", [0, 1, 1001, 2.5, True, "10"])
def test_bad_bin_counts_are_refused(nbins):
    with pytest.raises(UserError, match="nbins"):
        phase_fold([1.0, 2.0, 3.0], [10.0, 11.0, 10.5], None, 1.0, nbins=nbins)
    with pytest.raises(UserError, match="epoch"):
        phase_fold([1.0, 2.0], [10.0, 11.0], None, 1.0, epoch=float("nan"))


@SETTINGS
@given(values=hnp.arrays(np.float64, st.integers(1, 3000),
                         elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
       max_points=st.integers(2, 700), lower=st.booleans())
def test_downsampling_keeps_the_best_point_and_the_order(values, max_points, lower):
    periods = 1.0 / np.linspace(0.05, 10, len(values))
    p, v = downsample_periodogram(periods, values, max_points, lower_is_better=lower)
    assert len(p) == len(v) <= max_points
    assert len(p) == min(len(values), max_points)
    best = values.min() if lower else values.max()
    assert best in v
    assert (np.diff(p) < 0).all()  # a subsequence of the (descending) periods
    index = {x: i for i, x in enumerate(periods.tolist())}
    assert all(values[index[a]] == b for a, b in zip(p.tolist(), v.tolist()))


def test_periodogram_peaks_respect_the_method_convention():
    periods = np.linspace(0.1, 10, 5000)
    bumps = (1.0 * np.exp(-0.5 * ((periods - 2.0) / 0.02) ** 2) + 0.7 * np.exp(-0.5 * ((periods - 5.0) / 0.05) ** 2)
             + 0.5 * np.exp(-0.5 * ((periods - 0.7) / 0.01) ** 2))
    power = 0.1 + bumps
    theta = 1.0 - bumps  # PDM: the minimum is the best period
    assert periodogram_peaks(periods, power, "gls", n=3) == pytest.approx([2.0, 5.0, 0.7], abs=0.005)
    assert periodogram_peaks(periods, theta, "2-pdm", n=3) == pytest.approx([2.0, 5.0, 0.7], abs=0.005)
    # read with the wrong convention, PDM's minima are not the answer
    assert periodogram_peaks(periods, theta, "gls", n=1)[0] != pytest.approx(2.0, abs=0.05)
    theta[100] = np.nan
    assert len(periodogram_peaks(periods, theta, "pdm", n=10)) <= 10
    with pytest.raises(UserError):
        periodogram_peaks(periods, power, "gls", n=0)
    assert periodogram_peaks([], [], "gls") == []


def test_magseries_keeps_finite_points_only():
    cp = {"objectid": "x", "magseries": {"times": np.array([1.0, 2.0, np.nan, 4.0]),
                                         "mags": np.array([10.0, np.inf, 11.0, 12.0]),
                                         "errs": np.array([0.1, 0.1, 0.1, np.nan])}}
    t, m, e = magseries(cp)
    assert t.tolist() == [1.0] and m.tolist() == [10.0] and e.tolist() == [0.1]
    assert [len(a) for a in magseries({"objectid": "x"})] == [0, 0, 0]


def test_load_checkplot_gzip_cache_and_refusal(tmp_path):
    cp = {"objectid": "OBJ-1", "varinfo": {"objectisvar": 1, "varperiod": np.float64(1.5),
                                           "varepoch": np.array([2460000.5])},
          "magseries": {"times": np.arange(5.0), "mags": np.ones(5), "errs": np.ones(5)}}
    plain = tmp_path / "checkplot-OBJ-1-aep_000.pkl"
    plain.write_bytes(pickle.dumps(cp, protocol=5))
    zipped = tmp_path / "checkplot-OBJ-2-aep_000.pkl"  # gzip without a .gz name
    zipped.write_bytes(gzip.compress(pickle.dumps(cp, protocol=4)))
    a, b = load_checkplot(plain), load_checkplot(zipped)
    assert a["objectid"] == b["objectid"] == "OBJ-1"
    assert np.array_equal(b["magseries"]["times"], cp["magseries"]["times"])
    assert load_checkplot(plain) is a  # cached
    cp["objectid"] = "OBJ-1b"
    plain.write_bytes(pickle.dumps(cp, protocol=5) + b"")
    os.utime(plain, ns=(1, 1))
    assert load_checkplot(plain)["objectid"] == "OBJ-1b"  # file changed: read again
    assert object_summary(load_checkplot(plain))["varinfo"]["varepoch"] == 2460000.5

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "checkplot-evil.pkl"
    evil.write_bytes(pickle.dumps({"objectid": "x", "boom": Evil()}))
    with pytest.raises(CheckplotError, match="system"):
        load_checkplot(evil)
    junk = tmp_path / "checkplot-junk.pkl"
    junk.write_bytes(b"\x1f\x8bnot really gzip")
    with pytest.raises(CheckplotError):
        load_checkplot(junk)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_gzip_checkplot_is_refused_with_a_checkplot_error(tmp_path, damage):
    """A gzipped checkplot whose compressed bytes are damaged is a CheckplotError (the
    object page says the checkplot cannot be read), whatever the decompressor raises."""
    cp = {"objectid": "OBJ-1", "magseries": {"times": np.arange(2000.0), "mags": np.random.default_rng(2).normal(size=2000)}}
    raw = damaged(gzip.compress(pickle.dumps(cp, protocol=4), mtime=0), damage)
    path = tmp_path / "checkplot-OBJ-1-aep_000.pkl.gz"
    path.write_bytes(raw)
    with pytest.raises(CheckplotError, match="cannot read"):
        load_checkplot(path)


# --- edits --------------------------------------------------------------------------------


@pytest.fixture
def env(csv_collection, tmp_path):
    """A private copy of the collection (one checkplot gzipped), ingested into a fresh basedir."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    source = tmp_path / "demo_csv"
    shutil.copytree(csv_collection, source)
    cps = all_checkplots(source)
    gz_object = unreviewed(cps)
    cpfile = source / "checkplots" / f"checkplot-{gz_object}-aep_000.pkl"
    (cpfile.parent / (cpfile.name + ".gz")).write_bytes(gzip.compress(cpfile.read_bytes()))
    cpfile.unlink()
    base = Basedir.init(tmp_path / "basedir")
    info = add_astrobase_collection(App(base.path), base, source, show_progress=False)
    return {"base": base, "info": info, "source": source, "cps": cps, "gz_object": gz_object}


def cp_path(env, objectid: str) -> Path:
    return env["source"] / catalog_row(env["info"], objectid)["cpfname"]


@pytest.mark.slow
def test_edits_reach_catalog_fts_and_history_never_the_checkplot(env):
    base, info, source = env["base"], env["info"], env["source"]
    objectid = reviewed_variable(env["cps"])
    before = catalog_row(info, objectid)
    survey_files = snapshot(source)
    old_tags = before["aep_000_vartags"]
    old_word = old_tags.split(",")[-1].split()[-1]  # e.g. 'detached'
    assert objectid in fts_find(info, old_word)
    assert not fts_find(info, "zzcandidate")

    result = edit_object(base, info, objectid,
                         {"vartags": " zzcandidate,  needs follow-up ,ZZcandidate", "objectisvar": 3,
                          "varperiod": 1.2345}, "alice")
    assert result["magcol"] == "aep_000"
    assert result["changed"]["vartags"] == {"old": old_tags, "new": "zzcandidate, needs follow-up"}
    assert result["changed"]["objectisvar"] == {"old": 1, "new": 3}
    row = catalog_row(info, objectid)
    assert row["aep_000_vartags"] == "zzcandidate, needs follow-up"
    assert row["aep_000_objectisvar"] == 3
    assert row["aep_000_varperiod"] == 1.2345
    assert row["aep_000_varepoch"] == before["aep_000_varepoch"]
    # comments are appended (never replaced), one per line after the survey's own
    annotations.add_comment(base, info, objectid, "odd eclipse\ndepths", "alice")
    survey_comment = before["aep_000_comments"]
    assert catalog_row(info, objectid)["aep_000_comments"] == "\n".join(
        t for t in (survey_comment, "odd eclipse\ndepths") if t)
    # full-text search sees the new tags and comments at once, and no longer the old tag
    assert fts_find(info, "zzcandidate") == {objectid}
    assert objectid in fts_find(info, "follow-up") and objectid in fts_find(info, "eclipse")
    assert objectid not in fts_find(info, old_word)
    fts_integrity(info)
    # the survey's files are untouched
    assert snapshot(source) == survey_files

    # appends, optimistic checks, no-op edits
    annotations.add_comment(base, info.collection_id, objectid, "agree", "bob")
    assert catalog_row(info, objectid)["aep_000_comments"].endswith("odd eclipse\ndepths\nagree")
    with pytest.raises(Conflict):
        edit_object(base, info, objectid, {"varperiod": 2.0}, "carol", expect={"varperiod": 1.0})
    with pytest.raises(UserError, match="appended"):
        edit_object(base, info, objectid, {"comments": "all gone"}, "carol")
    noop = edit_object(base, info, objectid, {"varperiod": "1.2345"}, "carol")
    assert noop["changed"] == {}
    assert catalog_row(info, objectid)["aep_000_varperiod"] == 1.2345

    rows = history(base, info.collection_id, objectid)
    # one row per changed field, in the order given; the no-op and the refused edits left none
    assert [(r["author"], r["field"]) for r in rows] == [
        ("alice", "vartags"), ("alice", "objectisvar"), ("alice", "varperiod"), ("alice", "comment"),
        ("bob", "comment")]
    by_field = {r["field"]: r for r in rows[:4]}
    assert by_field["varperiod"]["old_value"] == before["aep_000_varperiod"]
    assert by_field["varperiod"]["new_value"] == 1.2345
    assert by_field["vartags"]["old_value"] == old_tags
    assert by_field["comment"]["old_value"] is None and by_field["comment"]["comment_id"] is not None
    assert len({r["change_id"] for r in rows[:3]}) == 1 and rows[4]["change_id"] != rows[0]["change_id"]
    assert rows[0]["time"] <= rows[-1]["time"]
    assert history(base, info.collection_id, "LCP-999999") == []

    # clearing values stores NULL; a gzipped checkplot's object edits like any other
    gz = env["gz_object"]
    edit_object(base, info, gz, {"vartags": "zzgz", "varperiod": 3.5, "varepoch": 2460480.25,
                                 "objectisvar": 1}, "dave")
    assert fts_find(info, "zzgz") == {gz}
    edit_object(base, info, gz, {"vartags": "", "varperiod": None}, "dave")
    assert catalog_row(info, gz)["aep_000_vartags"] is None
    assert catalog_row(info, gz)["aep_000_varperiod"] is None
    assert not fts_find(info, "zzgz")
    fts_integrity(info)
    assert snapshot(source) == survey_files


BAD_EDITS = [
    ({"colour": "red"}, {}),
    ({"objectisvar": 5}, {}),
    ({"objectisvar": True}, {}),
    ({"objectisvar": 1.5}, {}),
    ({"objectisvar": None}, {}),
    ({"varperiod": 0}, {}),
    ({"varperiod": -2.0}, {}),
    ({"varperiod": float("nan")}, {}),
    ({"varperiod": float("inf")}, {}),
    ({"varperiod": "fast"}, {}),
    ({"varepoch": float("nan")}, {}),
    ({"vartags": "x" * 501}, {}),
    ({"vartags": 42}, {}),
    ({"comments": "replaced"}, {}),
    ({"vartags": "ok", "varperiod": -1}, {}),  # one bad field: nothing at all is written
    ({"vartags": "ok"}, {"author": ""}),
    ({"vartags": "ok"}, {"author": None}),
    ({"vartags": "ok"}, {"objectid": "LCP-999999"}),
    ({"vartags": "ok"}, {"magcol": "aep_999"}),
    ({}, {}),
    ("vartags=ok", {}),
]


@pytest.mark.slow
def test_bad_edits_change_nothing(env):
    base, info, source = env["base"], env["info"], env["source"]
    objectid = reviewed_variable(env["cps"])
    before = (snapshot(base.path), snapshot(source))
    for changes, kw in BAD_EDITS:
        kw = dict(kw)
        target = kw.pop("objectid", objectid)
        author = kw.pop("author", "mallory")
        with pytest.raises(UserError) as excinfo:
            edit_object(base, info, target, changes, author, **kw)
        assert excinfo.value.message
        if target != objectid:
            assert isinstance(excinfo.value, NotFound)
    assert (snapshot(base.path), snapshot(source)) == before
    assert not (base.path / annotations.ANNOTATIONS_FILE).exists()
    assert history(base, info.collection_id, objectid) == []


def _edit_many(basedir: str, collection_id: str, objectid: str, who: str, n: int, start) -> None:
    start.wait(60)
    for i in range(n):
        if who == "a":
            edit_object(basedir, collection_id, objectid, {"varperiod": 1.0 + i}, "proc-a")
            annotations.add_comment(basedir, collection_id, objectid, f"a{i}", "proc-a")
        else:
            edit_object(basedir, collection_id, objectid, {"vartags": f"zzb{i}, shared"}, "proc-b")
            annotations.add_comment(basedir, collection_id, objectid, f"b{i}", "proc-b")


@pytest.mark.slow
def test_concurrent_editors_lose_nothing(env):
    base, info = env["base"], env["info"]
    objectid = unreviewed(env["cps"])
    n = 25
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_edit_many, args=(str(base.path), info.collection_id, objectid, who, n, start))
             for who in ("a", "b")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    row = catalog_row(info, objectid)
    survey = env["cps"][objectid].get("comments")
    lines = row["aep_000_comments"].split("\n")[1 if survey else 0:]
    assert sorted(lines) == sorted([f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)])
    assert [x for x in lines if x[0] == "a"] == [f"a{i}" for i in range(n)]  # each process's order kept
    assert [x for x in lines if x[0] == "b"] == [f"b{i}" for i in range(n)]
    assert [c["text"] for c in annotations.comments(base, info.collection_id, objectid)] == lines
    assert row["aep_000_varperiod"] == 1.0 + n - 1
    assert row["aep_000_vartags"] == f"zzb{n - 1}, shared"

    rows = history(base, info.collection_id, objectid)
    assert len(rows) == 4 * n
    assert {(r["author"], r["field"]) for r in rows} == {
        ("proc-a", "varperiod"), ("proc-a", "comment"), ("proc-b", "vartags"), ("proc-b", "comment")}
    # every varinfo edit starts from the previous one's result: a chain with no gaps
    period_rows = [r for r in rows if r["field"] == "varperiod"]
    for prev, cur in itertools.pairwise(period_rows):
        assert cur["old_value"] == prev["new_value"]
    assert fts_find(info, f"zzb{n - 1}") == {objectid}
    assert not fts_find(info, "zzb0")
    assert objectid in fts_find(info, f"a{n - 1}")
    fts_integrity(info)


@pytest.mark.slow
def test_a_failed_commit_changes_nothing(env):
    base, info, source = env["base"], env["info"], env["source"]
    objectid = reviewed_variable(env["cps"])
    annotations.add_comment(base, info, objectid, "first", "alice")  # creates annotations.sqlite
    with closing(sqlite3.connect(base.path / annotations.ANNOTATIONS_FILE)) as conn, conn:
        conn.execute("CREATE TRIGGER fail BEFORE INSERT ON edits BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    before = (snapshot(info.catalog_sqlite.parent), snapshot(source))
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        edit_object(base, info, objectid, {"vartags": "zzlost"}, "bob")
    with pytest.raises(sqlite3.DatabaseError, match="disk full"):
        annotations.add_comment(base, info, objectid, "zzlostcomment", "bob")
    assert (snapshot(info.catalog_sqlite.parent), snapshot(source)) == before
    assert not fts_find(info, "zzlost") and not fts_find(info, "zzlostcomment")
    assert [c["text"] for c in annotations.comments(base, info.collection_id, objectid)] == ["first"]
    assert [r["author"] for r in history(base, info.collection_id, objectid)] == ["alice"]
