"""The JSON API, served by ``lcpanel serve`` as users run it."""

from __future__ import annotations

import json

import pytest
from support.clients import call
from support.data import catalog_basedir, snapshot
from support.servers import running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base, cols = catalog_basedir(tmp_path_factory.mktemp("api"), 3000, seed=21, meta={"name": "Field"})
    with running_server(base.path) as (url, _proc):
        yield url, base, cols


def test_collections(server):
    url, base, cols = server
    status, data = call(url + "/api/collections")
    assert status == 200
    [coll] = data["collections"]
    assert coll["collection_id"] == "field" and coll["nobjects"] == 3000
    assert "vmag" in coll["indexed_columns"] and "objectid" in coll["fts_columns"]
    status, one = call(url + "/api/collections/field")
    assert status == 200 and any(c["name"] == "ra" and c["unit"] == "deg" for c in one["columns"])
    status, err = call(url + "/api/collections/nope")
    assert status == 404 and "unknown collection" in err["error"]


def test_search_types_schema(server):
    url, _, _ = server
    status, data = call(url + "/api/search/types")
    types = {t["type"]: t for t in data["types"]}
    assert {"objectid", "cone", "xmatch", "fulltext", "filter"} <= set(types)
    cone = types["cone"]["params"]
    assert cone["coords"]["type"] == "string" and "radius_arcmin" in cone


def test_cone_search_over_http(server):
    url, _, cols = server
    status, data = call(url + "/api/search", {"type": "cone", "params": {"coords": "19:20:00 +45:00:00 10"},
                                              "filter": "vmag < 14", "limit": 5})
    assert status == 200
    assert data["nreturned"] == len(data["rows"]) <= 5
    assert data["summary"].startswith(f"{data['nreturned']} of {data['nmatched']}")
    assert [r["dist_arcsec"] for r in data["rows"]] == sorted(r["dist_arcsec"] for r in data["rows"])
    assert all(r["vmag"] < 14 and r["collection"] == "field" for r in data["rows"])


@pytest.mark.parametrize("body,status,field", [
    ({"type": "cone", "params": {"coords": "290 99"}}, 400, "coords"),
    ({"type": "cone", "params": {"coords": "290 45", "radius_arcmin": 1e6}}, 400, "radius_arcmin"),
    ({"type": "cone", "params": {"coords": "290 45"}, "collections": ["x"]}, 404, None),
    ({"type": "filter", "params": {"where": "vmag < 1; DROP TABLE object_catalog"}}, 400, "where"),
    ({"type": "cone", "params": {"coords": "290 45"}, "filter": "vmag < 1; DROP TABLE object_catalog"}, 400, "filter"),
    ({"type": "xmatch", "params": {"targets": "a 1 2\n" * 10}, "limit": -1}, 400, "limit"),
    ({"type": "nope"}, 404, None),
    ({"tpye": "cone"}, 400, None),
])
def test_errors_are_json_4xx(server, body, status, field):
    url, base, _ = server
    before = snapshot(base.path)
    got, data = call(url + "/api/search", body)
    assert got == status
    assert data["error"] and "Traceback" not in json.dumps(data) and str(base.path) not in json.dumps(data)
    if field:
        assert data.get("field") == field
    assert snapshot(base.path) == before


def test_malformed_and_oversize_bodies(server):
    url, _, _ = server
    status, data = call(url + "/api/search", raw=b"{not json")
    assert status == 400 and "not valid JSON" in data["error"]
    status, data = call(url + "/api/search", raw=b"[1, 2]")
    assert status == 400
    status, data = call(url + "/api/search", raw=b'{"type": "cone", "params": {"ra": ' + b"1" * 5000 + b"}}")
    assert status == 400 and "cannot be read" in data["error"]
    status, data = call(url + "/api/search", raw=json.dumps({"type": "xmatch", "params": {
        "targets": "x" * 1_200_000}}).encode())
    assert status == 413 or (status == 400 and "bytes" in data["error"])


def test_json_answers_read_back_as_the_standard_library_would_write_them():
    """lcpanel.jsonapi.dumps (orjson, with the standard library for what orjson refuses)
    gives the same values as ``json.dumps`` of the cleaned-up data: numpy arrays and
    scalars as numbers, NaN and infinities as null, int keys as strings, integers over
    64 bits and lone surrogates kept, unicode as is."""
    import math

    import numpy as np

    from lcpanel.jsonapi import dumps, to_jsonable

    cases = [
        {"rows": [{"ra": np.float64(1.5), "vmag": np.float32(0.1), "n": np.int16(3), "bad": float("nan")}],
         "arr": np.array([1.0, np.inf, -2.5]), "ints": np.arange(3, dtype=np.uint8), 7: "seven",
         "text": "é <b>&</b> \u2028", "nested": [(1, 2), {"x": None, "y": True}]},
        {"big": 2**70, "neg": -(2**65), "f": 1e-7},
        {"lone": "\ud800x", "ok": 1.25},
        {"bytes": b"abc", "inf": -math.inf},
    ]
    for data in cases:
        got = json.loads(dumps(data))
        want = json.loads(json.dumps(to_jsonable(data), allow_nan=False))
        assert got == want, (got, want)
    assert json.loads(dumps({"v": np.float32(0.1)}))["v"] == 0.1  # float32 at its own precision
