"""MIVOT position annotations (``RESPONSEFORMAT=...;content=mivot``): pyvo's MIVOT reader
(``pyvo.mivot.MivotViewer`` and ``SkyCoordBuilder``) gets every row's ICRS position from
the annotation alone, equal to the ra/decl columns; without content=mivot nothing changes."""

from __future__ import annotations

import io
import urllib.parse

import numpy as np
import pytest

pyvo = pytest.importorskip("pyvo")
mivot = pytest.importorskip("pyvo.mivot")
pyvo.utils.activate_features("MIVOT")  # a prototype feature in pyvo 1.10: off unless activated


def _positions(body: bytes):
    """(ra, dec) of every row as pyvo builds them from the MIVOT annotation."""
    from astropy.io.votable import parse
    from pyvo.mivot.features.sky_coord_builder import SkyCoordBuilder
    from pyvo.mivot.viewer.mivot_viewer import MivotViewer

    viewer = MivotViewer(parse(io.BytesIO(body)), resolve_ref=True)
    out = []
    while viewer.next_row_view() is not None:
        sky = SkyCoordBuilder(viewer.dm_instance).build_sky_coord()
        assert sky.frame.name == "icrs"
        out.append((sky.ra.deg, sky.dec.deg))
    return out


@pytest.mark.parametrize("fmt", ["votable/td", "votable/b2", "votable/b"])
def test_rendered_annotation_gives_pyvo_the_positions(fmt):
    from lcpanel.core.vo.mivot import position_annotation
    from lcpanel.core.vo.voformats import find_format, render
    from lcpanel.core.vo.votable import VOField

    fields = [VOField("objectid", "char", "*", ucd="meta.id;meta.main"),
              VOField("pmra", "double", unit="mas/yr", ucd="pos.pm;pos.eq.ra"),
              VOField("ra", "double", unit="deg", ucd="pos.eq.ra;meta.main"),
              VOField("decl", "double", unit="deg", ucd="pos.eq.dec;meta.main")]
    rng = np.random.default_rng(1)
    rows = [(f"o{i}", 5.0, float(r), float(d)) for i, (r, d) in
            enumerate(zip(rng.uniform(0, 360, 7), rng.uniform(-90, 90, 7)))]
    annotation = position_annotation(fields)
    assert (annotation.ra, annotation.dec) == ("ra", "decl")  # not the proper motion
    body = render(find_format(fmt), fields, rows, annotations=[annotation])
    got = _positions(body)
    np.testing.assert_allclose(got, [(r[2], r[3]) for r in rows], rtol=0, atol=1e-12)
    assert position_annotation(fields[:2]) is None


def test_split_content():
    from lcpanel.core.vo.mivot import split_content
    from lcpanel.errors import UserError

    assert split_content("application/x-votable+xml;content=mivot") == ("application/x-votable+xml", True)
    assert split_content("application/x-votable+xml; content=mivot; serialization=TABLEDATA") == (
        "application/x-votable+xml;serialization=TABLEDATA", True)
    assert split_content("votable") == ("votable", False) and split_content(None) == (None, False)
    with pytest.raises(UserError, match="VOTables only"):
        split_content("text/csv;content=mivot")


@pytest.fixture(scope="module")
def vo_url(tmp_path_factory):
    from support.servers import running_server
    from support.vo_data import build_basedir
    from test_vo_server import unlimited_requests

    path, columns = build_basedir(tmp_path_factory.mktemp("mivot"))
    unlimited_requests(path / "lcpanel.toml")
    with running_server(path) as (url, _proc):
        yield url, columns


def test_tap_sync_async_and_cone_results_annotated_on_request(vo_url):
    from test_vo_server import get

    url, columns = vo_url
    cols = columns["field"]
    by_id = {o: (r, d) for o, r, d in zip(cols["objectid"], cols["ra"], cols["decl"])}
    query = "SELECT TOP 20 objectid, ra, decl FROM lcpanel.field ORDER BY objectid"
    for fmt in ("application/x-votable+xml;content=mivot",
                "application/x-votable+xml;content=mivot;serialization=TABLEDATA"):
        status, _, body = get(f"{url}/tap/sync?" + urllib.parse.urlencode(
            {"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": fmt}))
        assert status == 200 and b"<VODML" in body
        from astropy.io.votable import parse_single_table

        ids = list(parse_single_table(io.BytesIO(body)).to_table()["objectid"])
        assert len(ids) == 20
        np.testing.assert_allclose(_positions(body), [by_id[o] for o in ids], rtol=0, atol=1e-12)
    status, _, plain = get(f"{url}/tap/sync?" + urllib.parse.urlencode({"LANG": "ADQL", "QUERY": query}))
    assert status == 200 and b"VODML" not in plain
    # async: the parameter is kept with the job
    job = pyvo.dal.AsyncTAPJob.create(f"{url}/tap", query, responseformat="application/x-votable+xml;content=mivot")
    job.run().wait(timeout=120)
    status, _, body = get(job.result_uri)
    assert status == 200 and len(_positions(body)) == 20
    job.delete()
    # a cone search, over all collections
    ra, dec = 290.0, 45.0
    status, _, body = get(f"{url}/scs?RA={ra}&DEC={dec}&SR=0.05&RESPONSEFORMAT="
                          + urllib.parse.quote("application/x-votable+xml;content=mivot"))
    from astropy.io.votable import parse_single_table

    table = parse_single_table(io.BytesIO(body)).to_table()
    assert status == 200 and len(table)
    np.testing.assert_allclose(_positions(body), list(zip(table["ra"], table["dec"] if "dec" in table.colnames
                                                          else table["decl"])), rtol=0, atol=1e-12)
    status, _, body = get(f"{url}/tap/sync?" + urllib.parse.urlencode(
        {"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv;content=mivot"}))
    assert status == 400 and b"VOTables only" in body
