"""Small things the pages show: readable names of datasets made from id lists, the
variability flag in words, and search-form examples and the default cone taken from
the collections actually served."""

from __future__ import annotations


def test_dataset_from_an_id_list_has_a_readable_name():
    from lcpanel.core.datasets import default_name

    ids = [f"HAT-772-{i:07d}" for i in range(10)]
    assert default_name({"type": "objectid", "params": {"ids": ids}}) == \
        "objectid: HAT-772-0000000, HAT-772-0000001, HAT-772-0000002 and 7 more"
    assert default_name({"type": "objectid", "params": {"ids": ["A", " B "]}}) == "objectid: A, B"
    assert default_name({"type": "cone", "params": {"coords": "290 45 5"}}) == "cone: 290 45 5"
    assert default_name({"type": "fts", "params": {"query": "RR Lyrae\nsecond line"}}) == "fts: RR Lyrae"
    assert default_name({"type": "filter", "params": {}}) == "filter"


def test_a_search_of_several_numbers_is_named_by_all_of_them():
    """A cone asked for as ``ra``, ``dec`` and a radius (the API's and pyvo's way) was
    named "cone: 290" after its first number alone."""
    from lcpanel.core.datasets import default_name

    assert default_name({"type": "cone", "params": {"ra": 290.0, "dec": 45, "radius_arcmin": 60}}) == \
        "cone: ra=290, dec=45, radius_arcmin=60"
    assert default_name({"type": "cone", "params": {"coords": "", "ra": 10.5, "dec": -3.25,
                                                    "radius_arcmin": None}}) == "cone: ra=10.5, dec=-3.25"
    assert default_name({"type": "cone", "params": {"coords": "290 45", "radius_arcmin": 5}}) == \
        "cone: coords=290 45, radius_arcmin=5"
    assert len(default_name({"type": "cone", "params": {f"p{i}": 1.0 / 3 for i in range(20)}})) <= 90
    assert default_name({"type": "cone", "params": {"ra": 0, "dec": 0.0, "radius_arcmin": 1}}) == \
        "cone: ra=0, dec=0, radius_arcmin=1"  # zero is a value (it equals False in Python)


def test_objectisvar_in_words_on_the_dataset_page():
    from lcpanel.views.dataset_page import variability_words

    assert variability_words([0, 1, 2, 3, None, float("nan"), 1.0]) == \
        ["unreviewed", "variable", "not variable", "can't tell", "", "", "variable"]


def test_the_default_cone_finds_objects_of_every_collection(tmp_path):
    """The cone form starts on a collection's field; for a field wider than the largest
    cone allowed (an all-sky catalog) the cone still holds objects of it."""
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.core.search import run_search
    from lcpanel.views.overview import default_cone

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(50, seed=8, allsky=True), tmp_path / "sky.parquet"),
                           collection_id="sky", show_progress=False)
    add_catalog_collection(app, base, write_table(random_catalog(200, seed=3, center=(1.0, -30.0), radius_deg=4.0),
                                                  tmp_path / "wrap.parquet"), collection_id="wrap", show_progress=False)
    for info in Basedir(base.path).collections():
        coords = default_cone(app, info)
        result = run_search(app, {"type": "cone", "params": {"coords": coords}, "collections": [info.collection_id]})
        assert len(result.rows) >= 1, (info.collection_id, coords)


def test_form_examples_name_the_served_collections(tmp_path):
    """The object-id example holds ids of the first served collection and the ADQL
    example queries its table (and runs)."""
    import pyarrow.parquet as pq
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.core.search import run_search
    from lcpanel.views.overview import served_example

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    table = write_table(random_catalog(40, seed=5, center=(10.0, 20.0), radius_deg=1.0), tmp_path / "f.parquet")
    add_catalog_collection(app, base, table, collection_id="field7", show_progress=False)
    infos = Basedir(base.path).collections()
    backends = {b.name: b for b in app.search_backends}
    ids = served_example(app, infos, backends["objectid"])["ids"]
    assert ids and set(ids) <= set(pq.read_table(table).column("objectid").to_pylist())
    query = served_example(app, infos, backends["adql"])["query"]
    assert "lcpanel.field7" in query and "lcpanel.demo" not in query
    assert run_search(app, {"type": "adql", "params": {"query": query.replace("vmag < 12", "vmag < 99")}}).rows


def test_a_filter_typo_names_the_field_that_has_it(tmp_path):
    """The Column filter search's own conditions ('where') and the filter every search
    shares ('filter') are two fields of the form: an error names the one with the typo."""
    import pytest
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.core.search import run_search
    from lcpanel.errors import UserError

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(30, seed=2, allsky=True), tmp_path / "f.parquet"),
                           collection_id="f", show_progress=False)
    with pytest.raises(UserError) as typo_in_where:
        run_search(app, {"type": "filter", "params": {"where": "vmag < 12 andd ndet > 5"}})
    assert typo_in_where.value.field == "where"
    with pytest.raises(UserError) as typo_in_filter:
        run_search(app, {"type": "filter", "params": {"where": "vmag < 99"}, "filter": "vmagg < 3"})
    assert typo_in_filter.value.field == "filter"
    with pytest.raises(UserError) as cone_filter:
        run_search(app, {"type": "cone", "params": {"coords": "0 0 5"}, "filter": "vmag <<< 3"})
    assert cone_filter.value.field == "filter"


def test_the_home_page_makes_each_search_form_when_its_type_is_first_chosen(tmp_path):
    """The home page makes the default search type's form only; another type's form is
    made when the visitor first picks it, once, and keeps what was typed into it."""
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.views.overview import Overview

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(40, seed=6, center=(20.0, -5.0), radius_deg=0.5),
                                                  tmp_path / "f.parquet"), collection_id="f", show_progress=False)
    page = Overview(app=app)
    page.__panel__()
    assert list(page.forms) == ["cone"] and len(page.types.backends) == len(app.search_backends) > 5
    cone = page.forms["cone"]
    cone.fields["filter"].value = "vmag < 12"
    page.types.value = "xmatch"
    assert list(page.forms) == ["cone", "xmatch"]
    xmatch = page.forms["xmatch"]
    page.types.value = "cone"
    page.types.value = "xmatch"
    assert page.forms["xmatch"] is xmatch and page.forms["cone"] is cone
    assert cone.fields["filter"].value == "vmag < 12"
    shown = [layout.visible for layout in page.types._body.objects]
    assert shown == [False, True]  # cone's form hidden, the cross-match's shown


def test_a_page_is_attached_to_its_document_in_one_step(tmp_path, monkeypatch):
    """Bokeh works out a document's models again after each root added to it; an lcpanel
    page (eight roots) has it done once, and the document still knows every model of
    every root."""
    from bokeh.document import Document
    from bokeh.document.models import DocumentModelManager
    from support.data import random_catalog, write_table

    import panel as pn
    from panel.io.state import set_curdoc

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.views.overview import Overview
    from lcpanel.views.theme import page

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(40, seed=6, center=(20.0, -5.0), radius_deg=0.5),
                                                  tmp_path / "f.parquet"), collection_id="f", show_progress=False)
    walks = []
    recompute = DocumentModelManager.recompute
    monkeypatch.setattr(DocumentModelManager, "recompute", lambda self: (walks.append(1), recompute(self))[1])

    def attach(template_of):
        doc = Document()
        walks.clear()
        with set_curdoc(doc):
            template_of().server_doc(doc)
        return doc, len(walks)

    doc, ours = attach(lambda: page("Collections", [Overview(app=app)], app))
    assert len(doc.roots) >= 5 and ours == 1
    reachable = {m.id for root in doc.roots for m in root.references()}
    assert len(reachable) > 100 and all(doc.get_model_by_id(i) is not None for i in reachable)
    _, plain = attach(lambda: pn.template.BootstrapTemplate(main=[Overview(app=app)]))
    assert plain >= len(doc.roots) - 1  # what Panel's own template does: a walk per root


def test_the_datasets_list_refreshes_after_every_search(tmp_path):
    """The front page's list of datasets shows the one a search from its form just made
    (before, it kept the list as the page was opened)."""
    from support.aio import run
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.views.overview import Overview

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(random_catalog(60, seed=4, center=(50.0, 10.0), radius_deg=0.5),
                                                  tmp_path / "f.parquet"), collection_id="f", show_progress=False)
    page = Overview(app=app)
    form = page.form(page.app.search_backends.get("cone"))
    made = []
    for _ in range(2):  # every search, not only the first
        ds = run(form.search)
        assert ds is not None
        made.append(ds.dataset_id)
        listed = page.datasets._table.object
        assert all(f"/datasets/{i}" in listed for i in made), listed


def test_sky_plot_of_a_collection_in_one_healpix_cell(tmp_path):
    """Objects packed into one HEALPix cell (a few arcseconds apart): the plot still
    draws that cell, and the collection's zoom frames it rather than degrees around it."""
    import numpy as np
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.views.overview import _polygons, zoom_box

    cols = random_catalog(8, seed=6, center=(120.0, 30.0), radius_deg=2.0 / 3600)
    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    add_catalog_collection(app, base, write_table(cols, tmp_path / "tiny.parquet"), collection_id="tiny",
                           show_progress=False)
    info = Basedir(base.path).collections()[0]
    assert len(info.footprint["cells"]) == 1
    polys = _polygons(info)
    assert polys and sum(p["objects"] for p in polys) == 8
    xs = np.concatenate([p["x"] for p in polys])
    ys = np.concatenate([p["y"] for p in polys])
    (x0, x1), (y0, y1) = zoom_box(info)
    # the cell and every object inside the box...
    assert x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1
    assert x0 <= min(cols["ra"]) and max(cols["ra"]) <= x1 and y0 <= min(cols["decl"]) and max(cols["decl"]) <= y1
    # ...and the cell a visible part of it (not a speck in a box degrees wide)
    assert (ys.max() - ys.min()) / (y1 - y0) > 0.1, ((y0, y1), (ys.min(), ys.max()))


def _png() -> str:
    import base64
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def test_tiles_ask_only_for_images_the_checkplot_has():
    """The dataset page's tiles request finder / unphased / phased-0 / phased-1 only when
    the checkplot has that image (before: all four, and 404s for the missing ones)."""
    from lcpanel.core.objects.checkplots import tiles
    from lcpanel.views.dataset_page import tile_names

    png = _png()
    two_methods = {"finderchart": png, "magseries": {"plot": png}, "pfmethods": ["0-gls", "1-bls"],
                   "0-gls": {0: {"period": 1.0, "epoch": 2.0, "plot": png}},
                   "1-bls": {0: {"period": 2.0, "epoch": 2.0, "plot": png}}}
    assert tile_names(tiles(two_methods)) == ["finder", "unphased", "phased-0", "phased-1"]
    one_method_no_finder = {"finderchart": None, "magseries": {"plot": png}, "pfmethods": ["0-gls"],
                            "0-gls": {0: {"period": 1.0, "epoch": 2.0, "plot": png}}}
    assert tile_names(tiles(one_method_no_finder)) == ["unphased", "phased-0"]
    reviewed = {**two_methods, "varinfo": {"objectisvar": 1, "varperiod": 2.0}}  # one tile: the adopted period
    assert tile_names(tiles(reviewed)) == ["finder", "unphased", "phased-0"]
    no_plots = {"magseries": {}, "pfmethods": ["0-gls"], "0-gls": {0: {"period": 1.0, "plot": None}}}
    assert tile_names(tiles(no_plots)) == []
