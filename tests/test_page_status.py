"""Pages answer with the HTTP status of what they show, over HTTP against ``lcpanel serve``:
an object page of an object or collection that does not exist, and a dataset page of a
dataset that does not exist or is someone else's private one, are still the page saying
so (with its links and suggestions) but answered 404, so link checkers, scripts and
crawlers see a dead link as dead; the pages that exist stay 200. An object asked for under
another writing of its id (case, an alias) is a redirect to its own page. (The server
renders only a page's frame and title; its content comes over the websocket and is
checked in tests/browser/.)"""

from __future__ import annotations

import urllib.request
from urllib.parse import quote

import pytest
from support.clients import send

from lcpanel.core.datasets import Principal
from lcpanel.core.search import run_search


def get(url: str):
    return send(urllib.request.Request(url, headers={"Accept": "text/html"}), timeout=60)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get_unfollowed(url: str):
    """(status, headers, body) of ``url`` with a redirect left as it is answered."""
    return send(urllib.request.Request(url, headers={"Accept": "text/html"}),
                opener=urllib.request.build_opener(_NoRedirects), timeout=60)


@pytest.fixture(scope="module")
def subjects(demo_app):
    """An object id of the demo collection, a public dataset and a private one (of someone
    the requests below are not)."""
    objectid = demo_app.catalogs.get("demo").query("SELECT objectid FROM object_catalog LIMIT 1")[0][0]
    res = run_search(demo_app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 3})
    owner = Principal("anon:page-status").identity
    public = demo_app.datasets.create(res, owner, visibility="public", name="Bright stars, public")
    private = demo_app.datasets.create(res, owner, visibility="private", name="Bright stars, private")
    return {"objectid": objectid, "public": public.dataset_id, "private": private.dataset_id}


@pytest.mark.parametrize("path,status,shown", [
    ("/objects/demo/{objectid}", 200, "{objectid}"),
    ("/objects/demo/NO-SUCH-OBJECT", 404, "No such object"),
    ("/objects/nosuchcollection/{objectid}", 404, "No such object"),
    ("/objects/demo/{objectid}?magcol=nosuchmagcol", 400, "No such magnitude column"),
    ("/datasets/{public}", 200, "Bright stars, public"),
    ("/datasets/" + "0" * 64, 404, "Dataset not found"),
    ("/datasets/{private}", 404, "Dataset not found"),
    ("/", 200, "lcpanel"),
])
def test_a_page_answers_the_status_of_what_it_shows(demo_server, subjects, path, status, shown):
    url = demo_server + path.format(**subjects)
    got, headers, body = get(url)
    assert got == status, (url, got)
    assert headers.get("Content-Type", "").startswith("text/html")
    assert shown.format(**subjects) in body.decode(), "the page itself is still shown"


def test_a_missing_page_is_still_the_working_page_with_its_security_headers(demo_server):
    got, headers, body = get(demo_server + "/objects/demo/NO-SUCH-OBJECT")
    assert got == 404
    assert "Content-Security-Policy" in headers and headers.get("X-Frame-Options")
    assert b"<script" in body, "the Bokeh page (its scripts) is served, not a bare error text"


@pytest.mark.parametrize("written", [lambda oid, alias: oid.lower(), lambda oid, alias: "2MASS " + alias])
def test_an_id_written_another_way_is_sent_to_the_object_page(demo_server, demo_app, written):
    objectid, alias = demo_app.catalogs.get("demo").query("SELECT objectid, twomassid FROM object_catalog LIMIT 1")[0]
    path = f"/objects/demo/{quote(written(objectid, alias), safe='')}"
    got, headers, _body = get_unfollowed(demo_server + path + "?magcol=")
    assert got == 302
    assert headers["Location"] == f"/objects/demo/{quote(objectid, safe='')}"
    got, _headers, body = get(demo_server + path)  # followed: the object's own page
    assert got == 200 and objectid in body.decode()


def test_a_mistyped_id_is_404(demo_server, demo_app):
    """(Its page, which lists the nearest ids, is checked in tests/browser/test_object_page.py.)"""
    objectid = demo_app.catalogs.get("demo").query("SELECT objectid FROM object_catalog ORDER BY objectid LIMIT 1")[0][0]
    typo = objectid[:-2] + objectid[-1]
    got, _headers, _body = get_unfollowed(demo_server + f"/objects/demo/{quote(typo, safe='')}")
    assert got == 404
