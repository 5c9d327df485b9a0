"""The ``period`` and ``box`` search types against brute force over the collection's own
files: the period-finding pickles (read with plain ``pickle``), the catalog's columns
(read with plain ``sqlite3``) and numpy masks."""

from __future__ import annotations

import gzip
import math
import pickle
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from lcpanel.plugin_api import run_search, UserError

pytestmark = pytest.mark.slow

BIG = 100_000


def _catalog(app, cid: str) -> dict[str, np.ndarray]:
    """Every column of a collection's catalog, straight from its SQLite file."""
    info = app.catalogs.get(cid).info
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        cur = conn.execute("SELECT * FROM object_catalog ORDER BY row_id")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return {n: np.array([r[i] for r in rows], dtype=object) for i, n in enumerate(names)}


@pytest.fixture(scope="module")
def truth(ps_app, csv_collection):
    """objectid -> [(method, bestperiod, bestlspval)] from the pickles, in pfmethods order."""
    out = {}
    for path in sorted(Path(csv_collection, "periodfinding").glob("periodfinding-*.pkl")):
        raw = path.read_bytes()
        pf = pickle.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        entry = pf["aep_000"]
        out[pf["objectid"]] = [(key.split("-", 1)[1], float(entry[key]["bestperiod"]),
                                float(entry[key]["bestlspval"])) for key in entry["pfmethods"]]
    assert len(out) == 24
    return out


def _search(app, params, **spec):
    return run_search(app, {"type": "period", "params": params, "limit": BIG, **spec})


def _expected(truth, lo, hi, method):
    """objectid -> (period, method) of the first method in pfmethods order in range."""
    out = {}
    for oid, entries in truth.items():
        for m, period, _peak in entries:
            if (method in ("any", m)) and lo <= period <= hi:
                out[oid] = (period, m)
                break
    return out


@pytest.mark.parametrize("method", ["any", "gls", "bls"])
def test_period_range_matches_brute_force_over_the_pickles(ps_app, truth, method):
    rng = np.random.default_rng(1)
    ranges = [(0.5, 5.0), (0.1, 100.0), (1.0, 1.0000001), (3.0, 30.0)]
    for _ in range(8):  # log-uniform: the periods span 0.15 to 30 days
        lo = 10 ** rng.uniform(-0.8, 0.6)
        ranges.append((lo, lo * 10 ** rng.uniform(0.05, 1.0)))
    nonempty = 0
    for lo, hi in ranges:
        result = _search(ps_app, {"min_period_days": lo, "max_period_days": hi, "method": method},
                         collections=["demo"])
        want = _expected(truth, lo, hi, method)
        got = {r["objectid"]: (r["period_days"], r["period_method"]) for r in result.rows}
        assert got.keys() == want.keys(), (lo, hi)
        for oid, (period, m) in want.items():
            assert got[oid][1] == m and got[oid][0] == pytest.approx(period, rel=1e-12)
        assert result.nmatched == len(want)
        # natural order: by period
        periods = [r["period_days"] for r in result.rows]
        assert periods == sorted(periods)
        nonempty += bool(want)
    assert nonempty >= 4


def test_peak_column_is_the_periodogram_value(ps_app, truth):
    result = _search(ps_app, {"min_period_days": 0.1, "method": "gls"}, collections=["demo"])
    peaks = {oid: peak for oid, entries in truth.items() for m, _p, peak in entries if m == "gls"}
    assert len(result.rows) == len(peaks)
    for row in result.rows:
        assert row["period_peak"] == pytest.approx(peaks[row["objectid"]])


def test_adopted_periods_and_amplitude_match_a_numpy_filter_over_the_catalog(ps_app):
    cat = _catalog(ps_app, "demo")
    period = np.array([np.nan if v is None else v for v in cat["aep_000_varperiod"]], dtype=float)
    iqr = np.array([np.nan if v is None else v for v in cat["aep_000_mag_iqr"]], dtype=float)
    vmag = cat["vmag"].astype(float)
    assert np.isfinite(period).sum() >= 3
    cases = [({"min_period_days": 0.1}, None), ({"min_period_days": 0.5, "max_period_days": 1.5}, None),
             ({"max_period_days": 2.0, "min_amplitude_mag": 0.05}, None),
             ({"min_period_days": 0.1}, "vmag < 14")]
    for params, flt in cases:
        lo, hi = params.get("min_period_days", 0.0), params.get("max_period_days", math.inf)
        with np.errstate(invalid="ignore"):
            mask = (period > 0) & (period >= lo) & (period <= hi)
            if "min_amplitude_mag" in params:
                mask &= iqr >= params["min_amplitude_mag"]
            if flt:
                mask &= vmag < 14
        result = _search(ps_app, {**params, "method": "adopted"}, collections=["demo"], filter=flt)
        assert sorted(r["objectid"] for r in result.rows) == sorted(cat["objectid"][mask]), params
        assert all(r["period_method"] == "adopted" and r["period_peak"] is None for r in result.rows)
        assert {r["objectid"]: r["period_days"] for r in result.rows} == dict(zip(cat["objectid"][mask],
                                                                                  period[mask]))


def test_adopted_sorted_by_period_descending_with_a_limit(ps_app):
    cat = _catalog(ps_app, "demo")
    period = np.array([np.nan if v is None else v for v in cat["aep_000_varperiod"]], dtype=float)
    with np.errstate(invalid="ignore"):
        mask = period > 0
    want = sorted(zip(period[mask], cat["objectid"][mask]), reverse=True)[:2]
    result = _search(ps_app, {"min_period_days": 0.01, "method": "adopted"}, collections=["demo"],
                     sort="-period_days", limit=2)
    assert [(r["period_days"], r["objectid"]) for r in result.rows] == want
    assert result.nmatched == mask.sum() > 2


def test_amplitude_and_column_filter_combine_with_period_finding(ps_app, truth):
    cat = _catalog(ps_app, "demo")
    iqr = dict(zip(cat["objectid"], cat["aep_000_mag_iqr"]))
    vmag = dict(zip(cat["objectid"], cat["vmag"]))
    want = {oid for oid in _expected(truth, 0.2, 20.0, "any") if iqr[oid] >= 0.02 and vmag[oid] < 15}
    result = _search(ps_app, {"min_period_days": 0.2, "max_period_days": 20.0, "min_amplitude_mag": 0.02},
                     filter="vmag < 15", sort="-vmag", limit=3)
    assert result.nmatched == len(want) >= 2
    best = sorted(want, key=lambda oid: -vmag[oid])[:3]
    assert [r["objectid"] for r in result.rows] == best


def test_collections_without_periods_are_said_so_not_errors(ps_app, truth):
    result = _search(ps_app, {"min_period_days": 0.5, "max_period_days": 5.0})  # demo and wrap
    assert {r["collection"] for r in result.rows} == {"demo"}
    assert result.per_collection["wrap"] == 0
    assert any("wrap: no period-finding results" in m for m in result.messages)
    adopted = _search(ps_app, {"min_period_days": 0.5, "method": "adopted"}, collections=["wrap"])
    assert adopted.nmatched == 0 and "no adopted periods" in adopted.messages[0]


@pytest.mark.parametrize("params,field,message", [
    ({"min_period_days": 5, "max_period_days": 1}, "max_period_days", "longer than the longest"),
    ({"min_period_days": -1}, "min_period_days", "greater than 0"),
    ({"min_period_days": 0}, "min_period_days", "greater than 0"),
    ({"max_period_days": "ten"}, "max_period_days", "bad value"),
    ({}, "min_period_days", "give a period range"),
    ({"min_period_days": 1, "min_amplitude_mag": -0.1}, "min_amplitude_mag", "at least 0"),
    ({"min_period_days": 1, "method": "fourier"}, "method", "bad value"),
    ({"min_period_days": 1, "magcol": "!!"}, "magcol", "not a magnitude column"),
    ({"min_period": 1}, "min_period", "did you mean 'min_period_days'"),
])
def test_bad_period_parameters_name_the_field(ps_app, params, field, message):
    with pytest.raises(UserError, match=message) as info:
        _search(ps_app, params)
    assert info.value.field == field


def test_the_index_is_built_when_the_collection_is_added(ps_app, truth):
    from lcpanel_periodsearch import pfindex

    info = ps_app.catalogs.get("demo").info
    path = Path(info.catalog_dir) / pfindex.INDEX_FILE
    assert path.is_file(), "collection_added should have written the index"
    index = pfindex._read_saved(info)
    assert index is not None and index.nobjects == 24 and index.unreadable == 0
    assert len(index) == sum(len(v) for v in truth.values())
    # an index made for an earlier ingest of the same id is not trusted
    stale = type(info)(**{**info.__dict__, "added_at": "1999-01-01T00:00:00+00:00"})
    assert pfindex._read_saved(stale) is None


# --- box ----------------------------------------------------------------------------------


def _box_truth(cat, ra_min, ra_max, dec_min, dec_max):
    ra, dec = cat["ra"].astype(float), cat["decl"].astype(float)
    in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max else (ra >= ra_min) | (ra <= ra_max)
    return set(cat["objectid"][in_ra & (dec >= dec_min) & (dec <= dec_max)])


def test_box_matches_brute_force_including_ra_wrap(ps_app):
    wrap, demo = _catalog(ps_app, "wrap"), _catalog(ps_app, "demo")
    assert (wrap["ra"].astype(float) > 350).sum() > 50 and (wrap["ra"].astype(float) < 10).sum() > 50
    boxes = [(358.0, 3.0, -32.0, -28.0), (359.5, 0.5, -34.0, -26.0), (0.0, 360.0, -90.0, 90.0),
             (2.0, 358.0, -31.0, -29.0), (289.5, 290.5, 44.5, 45.5), (10.0, 20.0, 0.0, 5.0)]
    rng = np.random.default_rng(2)
    for _ in range(6):
        boxes.append((*rng.uniform(355, 360, 1), *rng.uniform(0, 5, 1), *sorted(rng.uniform(-34, -26, 2))))
    for box in boxes:
        params = dict(zip(("ra_min", "ra_max", "dec_min", "dec_max"), map(float, box)))
        result = run_search(ps_app, {"type": "box", "params": params, "limit": BIG})
        got = {(r["collection"], r["objectid"]) for r in result.rows}
        want = {("wrap", o) for o in _box_truth(wrap, *box)} | {("demo", o) for o in _box_truth(demo, *box)}
        assert got == want, box
        assert result.nmatched == len(want)


def test_box_with_filter_sort_and_limit(ps_app):
    wrap = _catalog(ps_app, "wrap")
    inside = _box_truth(wrap, 357.0, 4.0, -31.0, -29.0)
    vmag = dict(zip(wrap["objectid"], wrap["vmag"]))
    want = sorted((o for o in inside if vmag[o] < 12), key=lambda o: vmag[o])
    result = run_search(ps_app, {"type": "box", "collections": ["wrap"], "filter": "vmag < 12", "sort": "vmag",
                                 "limit": 5, "params": {"ra_min": 357, "ra_max": 4, "dec_min": -31, "dec_max": -29}})
    assert result.nmatched == len(want) > 5
    assert [r["objectid"] for r in result.rows] == want[:5]


@pytest.mark.parametrize("params,field,message", [
    ({"ra_min": 1, "ra_max": 2, "dec_min": 5, "dec_max": -5}, "dec_max", "north of"),
    ({"ra_min": 1, "ra_max": 2, "dec_min": 5}, "dec_max", "missing"),
    ({"ra_min": 400, "ra_max": 2, "dec_min": 0, "dec_max": 1}, "ra_min", "bad value"),
    ({"ra_min": 1, "ra_max": 2, "dec_min": -91, "dec_max": 1}, "dec_min", "bad value"),
])
def test_bad_box_parameters_name_the_field(ps_app, params, field, message):
    with pytest.raises(UserError, match=message) as info:
        run_search(ps_app, {"type": "box", "params": params})
    assert info.value.field == field
