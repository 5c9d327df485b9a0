"""The object page's period-search form is made when the visitor asks for it.

Its dozen inputs (with their error lines and layout) were ~45 of the ~375 models of every
object page view, built and sent though few visitors run a search. The page now shows a
"Set up a search" button in their place; the searches already run on the object are
listed without it. The browser test (tests/browser/test_periodsearch_page.py) runs
searches through the opened form.
"""

from __future__ import annotations

import time

import panel as pn

from lcpanel.core.datasets import Principal
from lcpanel.core.objects import periodsearch as ps
from lcpanel.views.periodsearch_panel import FIELDS


def _models(root) -> int:
    from bokeh.document import Document

    doc = Document()
    model = root.get_root(doc)
    return len(list(model.references()))


def _css(widget) -> set:
    return set(widget.css_classes or [])


def _first_demo_object(app) -> str:
    return app.catalogs.get("demo").query("SELECT objectid FROM object_catalog ORDER BY objectid LIMIT 1")[0][0]


def _finished_search(app, oid: str) -> dict:
    who = Principal("user:ann", "user")
    job = ps.start_search(app, "demo", oid, {"method": "gls", "startp": 0.5, "endp": 5, "stepsize": 0.01}, who,
                          "127.0.0.1")
    deadline = time.monotonic() + 120
    while (state := ps.service(app).status(job["id"]))["status"] in ps.ACTIVE:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the period search did not finish in 120 s: {state}")
        time.sleep(0.2)
    assert state["status"] == "done", state
    return state


def test_the_form_is_made_on_the_first_click_and_stored_results_show_without_it(demo_app):
    from lcpanel.views.object_page import ObjectPage

    oid = _first_demo_object(demo_app)
    try:
        _finished_search(demo_app, oid)
        closed = ObjectPage(app=demo_app, collection="demo", objectid=oid)
        root = pn.panel(closed.__panel__())
        search = closed.period_search
        assert not search.inputs
        # no input of the form anywhere in the page, the button instead; the stored result listed
        assert not [w for w in root.select(pn.widgets.Widget) if any(c.startswith("lcp-ps-") and c != "lcp-ps-open"
                                                                   for c in _css(w))]
        assert [w for w in root.select(pn.widgets.Button) if "lcp-ps-open" in _css(w)] == [search.open_button]
        assert len(search.results_box.objects) == 1
        before = _models(root)

        search.open_button.clicks += 1  # what a click does
        inputs = {c for w in root.select(pn.widgets.Widget) for c in _css(w) if c.startswith("lcp-ps-")}
        assert inputs == {f"lcp-ps-{name}" for name in FIELDS} | {"lcp-ps-run"}
        assert search.open_button not in root.select(pn.widgets.Button)
        assert search.inputs["method"].value == "gls" and search.inputs["magcol"].value == closed.ctx.magcol
        form = search.form_box.objects[0]
        search.open_button.clicks += 1  # a second event (a double click) makes nothing again
        assert search.form_box.objects[0] is form
        after = _models(root)
        print(f"object page models: {before} with the form closed, {after} opened")
        assert after - before >= 3 * len(FIELDS)  # each field: its input, its error line, their column
    finally:
        ps.shutdown(demo_app)
