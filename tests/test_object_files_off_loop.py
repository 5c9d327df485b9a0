"""An object's files are read and converted on the worker threads, not on the event loop.

``GET /api/collections/<id>/objects/<objectid>/<kind>`` is what a dataset's URL manifest
sends wget to, 100,000 times. It read the file, hashed it and (``?format=``) parsed and
converted the light curve on the event loop: 25 ms to parse a real HATNet light curve
and 25 ms to write it as CSV, during which the process answered nobody else.
"""

from __future__ import annotations

import urllib.request

import pytest
from support.servers import server_in_thread
from support.threads import all_on_workers, record_threads

import lcpanel.core.catalogs.catalog as catalog_module
import lcpanel.core.objects.lcexport as lcexport


@pytest.fixture(scope="module")
def served(demo_app):
    with server_in_thread(demo_app) as url:
        yield url, demo_app


@pytest.mark.parametrize("query, converts", [("", False), ("?format=csv", True), ("?format=fits&times=bjd_tdb", True)])
def test_an_object_file_is_made_on_a_worker_thread(served, monkeypatch, query, converts):
    url, app = served
    oid = app.catalogs.get("demo").query("SELECT objectid FROM object_catalog LIMIT 1")[0][0]
    looked_up = record_threads(monkeypatch, catalog_module.Catalog, "object_file")
    exported = record_threads(monkeypatch, lcexport, "export_lightcurve")
    with urllib.request.urlopen(f"{url}/api/collections/demo/objects/{oid}/lightcurve{query}", timeout=60) as resp:
        assert resp.status == 200 and resp.read()
    assert all_on_workers(looked_up), looked_up
    assert len(exported) == converts and (not converts or all_on_workers(exported)), exported


def test_an_objects_tiles_are_listed_from_a_worker_thread(served, monkeypatch):
    import lcpanel.core.objects.checkplots as checkplots

    url, app = served
    oid = app.catalogs.get("demo").query("SELECT objectid FROM object_catalog LIMIT 1")[0][0]
    loaded = record_threads(monkeypatch, checkplots, "load_checkplot")
    with urllib.request.urlopen(f"{url}/api/collections/demo/objects/{oid}/tiles", timeout=60) as resp:
        assert resp.status == 200 and b"phased" in resp.read()
    assert all_on_workers(loaded), loaded
