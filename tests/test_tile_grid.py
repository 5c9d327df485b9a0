"""The dataset page's tiles (:mod:`lcpanel.views.tile_grid`): one Bokeh model for all tiles,
the facts each tile shows, and comments sent from a tile's box checked like any input."""

from __future__ import annotations

import json

import pytest

from lcpanel.views.tile_grid import take_comment

KEYS = {"demo/HAT-579-0051858", "demo/LCP-000001"}


def test_a_comment_from_a_box_is_taken_only_for_a_tile_shown_and_with_text():
    sent = json.dumps({"key": "demo/LCP-000001", "text": "  looks like a blend  ", "n": 3})
    assert take_comment(sent, KEYS) == ("demo/LCP-000001", "looks like a blend")
    for bad in (json.dumps({"key": "demo/LCP-999999", "text": "x", "n": 1}),  # not a tile of the page
                json.dumps({"key": "demo/LCP-000001", "text": "   ", "n": 1}),
                json.dumps({"key": ["demo/LCP-000001"], "text": "x"}),
                json.dumps({"key": "demo/LCP-000001", "text": 5}),
                json.dumps(["demo/LCP-000001", "x"]),
                "{not json", "", None,
                json.dumps({"key": "demo/LCP-000001", "text": "x" * 30_000})):
        assert take_comment(bad, KEYS) is None, bad


@pytest.fixture(scope="module")
def tiles_app(csv_collection, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = Basedir.init(tmp_path_factory.mktemp("tiles") / "basedir")
    app = App(base.path)
    add_astrobase_collection(app, base, csv_collection, collection_id="demo", show_progress=False)
    return app


def _page(app, monkeypatch, nobjects: int):
    from lcpanel.core.datasets import Principal
    from lcpanel.core.search import run_search
    from lcpanel.views import dataset_page as dp

    ann = Principal("user:ann", "user")
    result = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["demo"],
                              "sort": "objectid", "limit": nobjects})
    ds = app.datasets.create(result, ann.identity, visibility="public")
    monkeypatch.setattr(dp, "session_viewer", lambda _app: ann)
    return dp.DatasetPage(app=app, dataset_id=ds.dataset_id), ds, ann


def test_tiles_carry_each_objects_facts_and_its_checkplots_images(tiles_app, monkeypatch):
    from lcpanel.core.objects.checkplots import load_checkplot, tiles
    from lcpanel.views.dataset_page import tile_names

    page, ds, _ = _page(tiles_app, monkeypatch, 3)
    shown = page.tiles.tiles
    assert [t[1] for t in shown] == ds.data["objectid"][:3]
    cat = tiles_app.catalogs.get("demo")
    for key, oid, cid, href, magcol, images, comments in shown:
        assert (key, cid) == (f"demo/{oid}", "demo")
        assert href == f"/objects/demo/{oid}?magcol={magcol}" and magcol
        found = tiles(load_checkplot(cat.object_file(oid, "cpfname")))
        assert [alt for alt, _ in images] == tile_names(found) and images
        assert all(src.startswith(f"/api/collections/demo/objects/{oid}/tiles/") for _, src in images)
        assert comments == []


def test_a_comment_left_in_a_box_is_saved_and_shown_as_text(tiles_app, monkeypatch):
    page, ds, ann = _page(tiles_app, monkeypatch, 2)
    key = page.tiles.tiles[0][0]
    text = "<b>looks</b> like a blend & more"
    page.tiles.comment = json.dumps({"key": key, "text": text, "n": 1})
    stored = tiles_app.datasets.get(ds.dataset_id, ann).object_comments[key]
    assert [(c["author"], c["text"]) for c in stored] == [("user:ann", text)]
    # the browser sets it as text (textContent): the tile carries it unescaped
    assert page.tiles.tiles[0][6] == [["user:ann", text]]
    # the same text left again is a new comment; a key of no tile on the page changes nothing
    page.tiles.comment = json.dumps({"key": key, "text": text, "n": 2})
    page.tiles.comment = json.dumps({"key": "demo/NOT-AN-OBJECT", "text": "sneaky", "n": 3})
    after = tiles_app.datasets.get(ds.dataset_id, ann).object_comments
    assert [c["text"] for c in after[key]] == [text, text] and set(after) == {key}


def test_all_tiles_are_one_bokeh_model(tiles_app, monkeypatch):
    """The grid's models do not grow with its tiles (a Panel column, an HTML pane and a
    text input per tile did)."""
    from bokeh.document import Document

    counts = []
    for n in (1, 6):
        page, _, _ = _page(tiles_app, monkeypatch, n)
        assert len(page.tiles.tiles) == n
        counts.append(len(list(page.tiles.get_root(Document()).references())))
    assert counts[0] == counts[1]
