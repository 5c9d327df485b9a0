"""The object page finds an object as people write its id (issue: ids not found as people
type them): an id in another case or spacing, or one of the object's aliases (a 2MASS or
TIC id, with or without its designation), names the object the page then sends the
visitor to; an id that names nothing brings the nearest ids as suggestions, each of them
an object of the collection. Checked against the catalog itself (brute force over every
row)."""

from __future__ import annotations

import difflib

import pytest

from lcpanel.core.objects.record import find_object


@pytest.fixture(scope="module")
def rows(demo_app):
    cat = demo_app.catalogs.get("demo")
    return [dict(zip(("objectid", "twomassid", "ticid"), r))
            for r in cat.query("SELECT objectid, twomassid, ticid FROM object_catalog ORDER BY objectid")]


def test_the_exact_id_is_the_object_itself(demo_app, rows):
    rec = find_object(demo_app.catalogs, "demo", rows[0]["objectid"])
    assert rec.error is None and rec.canonical is None and rec.row["objectid"] == rows[0]["objectid"]


@pytest.mark.parametrize("written", [
    lambda r: r["objectid"].lower(),
    lambda r: f"  {r['objectid']}  ",
    lambda r: r["twomassid"],
    lambda r: "2MASS " + r["twomassid"],
    lambda r: "TIC " + str(r["ticid"]),
])
def test_another_writing_of_an_id_names_the_object(demo_app, rows, written):
    row = rows[3]
    rec = find_object(demo_app.catalogs, "demo", written(row))
    assert rec.row is None and rec.error  # no page of its own under that id
    assert rec.canonical == row["objectid"]


def test_an_id_naming_nothing_gets_the_nearest_ids(demo_app, rows):
    wanted = rows[5]["objectid"]
    typo = wanted[:-2] + wanted[-1]  # one digit left out
    rec = find_object(demo_app.catalogs, "demo", typo)
    assert rec.canonical is None and "no object" in rec.error
    ids = {r["objectid"] for r in rows}
    assert rec.suggestions and set(rec.suggestions) <= ids
    best = max(ids, key=lambda i: (difflib.SequenceMatcher(None, typo.lower(), i.lower()).ratio(), i))
    assert best in rec.suggestions


def test_a_magcol_the_collection_lacks_is_the_page_s_error_not_the_object_s(demo_app, rows):
    rec = find_object(demo_app.catalogs, "demo", rows[0]["objectid"], "nosuchmagcol")
    assert rec.bad_magcol and "no magnitude column 'nosuchmagcol'" in rec.error and rec.canonical is None
    assert not find_object(demo_app.catalogs, "demo", "NO-SUCH-OBJECT").bad_magcol


def test_an_unknown_collection_suggests_nothing(demo_app):
    rec = find_object(demo_app.catalogs, "nosuchcollection", "x")
    assert rec.error and rec.canonical is None and rec.suggestions == []


@pytest.mark.parametrize("route", ["lightcurve", "checkplot", "finder.png", "periodsearch", "reviews/periods"])
def test_the_api_names_the_object_an_id_written_another_way_means(demo_server, rows, route):
    """The JSON API stays exact (an id is a key), but its 404 says what the id is written
    as, or the nearest ids: a client learns the right id from the error."""
    import json
    import urllib.request
    from urllib.parse import quote

    from support.clients import send

    row = rows[4]
    for written, said in [(row["objectid"].lower(), f"its id is {row['objectid']!r}"),
                          (row["objectid"][:-2] + row["objectid"][-1], "nearest ids: ")]:
        url = f"{demo_server}/api/collections/demo/objects/{quote(written, safe='')}/{route}"
        status, _headers, body = send(urllib.request.Request(url), timeout=60)
        assert status == 404, (url, status, body[:200])
        error = json.loads(body)["error"]
        assert f"no object {written!r} in 'demo'" in error and said in error, error
    nearest = error.split("nearest ids: ", 1)[1].split(", ")
    assert set(nearest) <= {r["objectid"] for r in rows}


def test_must_exist_passes_an_exact_id_and_explains_every_other(demo_app, rows):
    """The one existence check the API, the workbench and saved periods share."""
    from lcpanel.errors import NotFound
    from lcpanel.core.objects.record import must_exist

    cat = demo_app.catalogs.get("demo")
    must_exist(cat, rows[2]["objectid"])
    with pytest.raises(NotFound, match=f"its id is '{rows[2]['objectid']}'"):
        must_exist(cat, rows[2]["objectid"].lower())
    for blank in ("", "   ", None):
        with pytest.raises(NotFound, match="there is no object"):
            must_exist(cat, blank)
