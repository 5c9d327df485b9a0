"""A 1e6-object catalog exported to HATS answers cone, cross-match and column-filter
searches through LSDB exactly as the SQLite backend does: the same objects in the same
order, the same column values, distances within 1e-6 arcsec.

The catalog is the example generator's all-sky catalog-only mode (seeded), ingested by
lcpanel, exported with ``hats-export`` (hats-import on a 2-worker LocalCluster) and
registered with ``hats-add``; searches run through ``run_search`` with the synchronous
scheduler (the LocalCluster path is checked in test_hats_plugin.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from lcpanel.plugin_api import add_catalog_collection, App, Basedir, run_search

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
N = 1_000_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    from lcpanel_hats.export import export_collection
    from lcpanel_hats.register import add_hats_collection

    import make_collection  # examples/, installed (pip install -e examples)

    tmp = tmp_path_factory.mktemp("hats-1e6")
    make_collection.make_plain_catalog(tmp / "allsky.parquet", N, seed=7, allsky=True)
    base = Basedir.init(tmp / "base")
    toml = base.path / "lcpanel.toml"
    # equivalence, not speed: a loaded CI machine must not stop a 1e6-row scan at 5 s
    toml.write_text(toml.read_text().replace("# query_timeout_s = 5.0", "query_timeout_s = 120.0"))
    with open(toml, "a") as fh:
        fh.write('\n[plugin.hats]\nscheduler = "synchronous"\n')
    app = App(base.path)
    add_catalog_collection(app, base, tmp / "allsky.parquet", collection_id="sq", show_progress=False)
    export_collection(base.path, "sq", tmp / "allsky.hats", workers=2, pixel_threshold=60_000,
                      show_progress=False)  # 48 partitions: many boundaries to cross
    add_hats_collection(app, base, tmp / "allsky.hats", collection_id="hx")
    return App(base.path), base


def _same(app, spec):
    """Run ``spec`` on the SQLite and the HATS collection; assert identical answers."""
    a = run_search(app, {**spec, "collections": ["sq"]})
    b = run_search(app, {**spec, "collections": ["hx"]})
    assert (a.nmatched, a.nreturned) == (b.nmatched, b.nreturned)
    assert [r["objectid"] for r in a.rows] == [r["objectid"] for r in b.rows]
    for ra, rb in zip(a.rows, b.rows):
        da, db = ra.pop("dist_arcsec", None), rb.pop("dist_arcsec", None)
        assert (da is None) == (db is None)
        if da is not None:
            assert abs(da - db) <= 1e-6
        ra.pop("collection"), rb.pop("collection")
        assert ra == rb
    return a


@pytest.mark.parametrize("ra, dec, radius", [
    (10.0, 20.0, 60.0),         # 1 degree: ~76 objects per square degree here, so ~240 rows
    (359.995, 0.0, 30.0),       # straddles RA 0/360
    (0.002, -45.0, 20.0),       # just east of RA 0
    (0.0, 89.9, 60.0),          # over the north pole
    (123.0, -89.95, 45.0),      # over the south pole
    (200.0, 41.5, 1.0),         # tiny
    (45.0, 41.81, 60.0),        # on a base-cell boundary
])
def test_cone(big, ra, dec, radius):
    app, _ = big
    result = _same(app, {"type": "cone", "params": {"ra": ra, "dec": dec, "radius_arcmin": radius},
                         "limit": 100_000})
    assert result.nmatched > 0 or radius == 1.0


def test_cone_with_filter_and_sort(big):
    app, _ = big
    _same(app, {"type": "cone", "params": {"coords": "150 -20 60"}, "filter": "vmag < 14 and ndet > 700",
                "sort": "-vmag"})


def _targets(base, n_near, n_random, seed, jitter_arcsec):
    """Lines 'id ra dec': positions near random catalog objects, plus random positions."""
    rng = np.random.default_rng(seed)
    with sqlite3.connect(base.catalog_dir("sq") / "catalog-objectinfo.sqlite") as conn:
        rows = np.array(conn.execute("SELECT ra, decl FROM object_catalog").fetchall())
    near = rows[rng.choice(len(rows), n_near, replace=False)]
    offset = jitter_arcsec / 3600.0
    dec = np.clip(near[:, 1] + rng.uniform(-offset, offset, n_near), -90, 90)
    ra = (near[:, 0] + rng.uniform(-offset, offset, n_near) / np.maximum(np.cos(np.radians(dec)), 1e-3)) % 360
    ra = np.concatenate([ra, rng.uniform(0, 360, n_random)])
    dec = np.concatenate([dec, np.degrees(np.arcsin(rng.uniform(-1, 1, n_random)))])
    return "\n".join(f"t{i} {r:.8f} {d:.8f}" for i, (r, d) in enumerate(zip(ra, dec)))


def test_crossmatch_nearest_1000_positions(big):
    app, base = big
    targets = _targets(base, 900, 100, seed=1, jitter_arcsec=2.0)
    result = _same(app, {"type": "xmatch", "params": {"targets": targets, "radius_arcsec": 3.0},
                         "limit": 100_000})
    assert 880 <= result.nmatched <= 1000


def test_crossmatch_all_within_a_wide_radius(big):
    app, base = big
    targets = _targets(base, 150, 50, seed=2, jitter_arcsec=20.0)
    result = _same(app, {"type": "xmatch", "params": {"targets": targets, "radius_arcsec": 60.0, "mode": "all"},
                         "limit": 100_000})
    assert result.nmatched >= 150


def test_crossmatch_nearest_with_filter(big):
    app, base = big
    targets = _targets(base, 300, 0, seed=3, jitter_arcsec=30.0)
    _same(app, {"type": "xmatch", "params": {"targets": targets, "radius_arcsec": 60.0}, "filter": "vmag > 12"})


@pytest.mark.parametrize("spec", [
    {"where": "vmag < 9"},
    {"where": "vmag between 12 and 12.01 and ndet >= 900"},
    {"where": "objecttags like '%variable%' or twomassid in ('nope', 'none')"},
    {"where": "bmag is null or sdssg > 17.4"},
])
def test_filter(big, spec):
    app, _ = big
    _same(app, {"type": "filter", "params": spec, "limit": 100_000})


def test_filter_sorted_and_limited(big):
    app, _ = big
    result = _same(app, {"type": "filter", "params": {"where": "vmag < 12 and not ndet < 600"},
                         "sort": "-bmag, ndet", "limit": 100})
    assert result.nmatched > 100
    _same(app, {"type": "filter", "params": {"where": "ndet > 990"}, "limit": 50})
