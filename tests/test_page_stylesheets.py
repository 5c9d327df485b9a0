"""A page's document holds one stylesheet model per stylesheet URL.

Panel gives every component its own ``ImportedStyleSheet`` of ``loading.css`` (and of its
design's files) and shares them through a per-document cache, but lcpanel's
:class:`~lcpanel.views.theme.PageTemplate` builds its document with the model graph
frozen, where the components' models have no document yet and Panel's cache was skipped:
an object page carried 163 copies of ``loading.css`` among its 562 models
(:meth:`lcpanel.views.theme.LcpanelDesign.apply`).
"""

from __future__ import annotations

from collections import Counter

import panel as pn
from bokeh.document import Document
from bokeh.models import ImportedStyleSheet

from lcpanel.views.theme import LcpanelDesign, PageTemplate


def _sheets(doc: Document) -> Counter:
    return Counter(m.url for m in doc.models if isinstance(m, ImportedStyleSheet))


def _build(main):
    doc = Document()
    pn.state.curdoc = doc
    try:
        PageTemplate(design=LcpanelDesign, main=main).server_doc(doc)
    finally:
        pn.state.curdoc = None
    return doc


def test_every_stylesheet_url_is_one_model_in_a_page():
    column = pn.Column(*[pn.pane.HTML(f"<p>{i}</p>") for i in range(8)],
                       pn.Row(pn.widgets.Button(name="go"), pn.widgets.TextInput()), pn.FlexBox(pn.pane.HTML("x")))
    doc = _build([column])
    sheets = _sheets(doc)
    assert any("loading.css" in url for url in sheets)
    assert set(sheets.values()) == {1}, {url: n for url, n in sheets.items() if n > 1}
    # every component still has its loading.css: the shared model
    loading = next(m for m in doc.models if isinstance(m, ImportedStyleSheet) and "loading.css" in m.url)
    users = [m for m in doc.models if loading in (getattr(m, "stylesheets", None) or [])]
    assert len(users) >= 12


def test_components_added_later_share_one_copy():
    """Rendered into the document after the build, components share Panel's own copies:
    one more model per URL at most, however many are added."""
    column = pn.Column(pn.pane.HTML("first"))
    doc = _build([column])
    before = _sheets(doc)
    pn.state.curdoc = doc
    try:
        for i in range(5):
            column.append(pn.pane.HTML(f"added after the page was built {i}"))
    finally:
        pn.state.curdoc = None
    after = _sheets(doc)
    assert set(before) <= set(after) and max(after.values()) <= 2, after
