"""A page's document holds one stylesheet model per stylesheet URL.

Panel gives every component its own ``ImportedStyleSheet`` of ``loading.css`` (and of its
design's files) and shares them through a per-document cache, but lcpanel's
:class:`~lcpanel.views.theme.PageTemplate` builds its document with the model graph
frozen, where the components' models have no document yet and Panel's cache was skipped:
an object page carried 163 copies of ``loading.css`` among its 562 models
(:meth:`lcpanel.views.theme.LcpanelDesign.apply`).
"""

from __future__ import annotations

import re
from collections import Counter

import panel as pn
import pytest
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
                       pn.Row(pn.widgets.Button(label="go"), pn.widgets.TextInput()), pn.FlexBox(pn.pane.HTML("x")))
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


def _inline_css(doc: Document) -> list[str]:
    """The CSS texts a document's models carry themselves (not as shared stylesheet models)."""
    return [s for m in doc.models for s in (getattr(m, "stylesheets", None) or []) if isinstance(s, str)]


def test_an_object_pages_css_is_shared_files_not_copies(demo_app, monkeypatch):
    """lcpanel's CSS reaches a page as one stylesheet model per file
    (:mod:`lcpanel.views.stylesheets`), not as text in every component: an object page's
    document carried 282 KB of CSS text (its pane stylesheet 46 times) in 394 KB."""
    from test_reviews import ANON, object_page

    from lcpanel.views.stylesheets import PREFIX, css_file

    doc = _build([object_page(demo_app, "LCP-000003", ANON, monkeypatch)])
    assert sum(map(len, _inline_css(doc))) < 500, _inline_css(doc)[:3]
    sheets = _sheets(doc)
    assert set(sheets.values()) == {1}
    ours = [url for url in sheets if url.startswith(PREFIX)]
    assert {url.split("/")[-1].split(".")[0] for url in ours} >= {"panes", "widgets", "object", "chips",
                                                                  "loading-spinner", "narrow-layout"}
    for url in ours:
        assert css_file(url[len(PREFIX):]), url


def test_stylesheets_over_http(demo_app, demo_server, monkeypatch):
    """Every stylesheet URL of an object page (its components' and its head's) answers its
    CSS, cached for good (the digest in the URL changes with the text), from a server
    process that has built no page yet (as another process of a ``--num-procs`` server
    would be asked); any other name under /css/ is a 404."""
    import hashlib
    import urllib.error
    import urllib.request

    from test_reviews import ANON, object_page

    from lcpanel.views.stylesheets import PREFIX
    from lcpanel.views.theme import LOADING_CSS, STYLESHEET

    doc = _build([object_page(demo_app, "LCP-000003", ANON, monkeypatch)])
    head = LcpanelDesign.loading_resources()
    urls = {url for url in [*_sheets(doc), *head["css"]] if url.startswith(PREFIX)}
    assert not any(PREFIX in css for css in head["raw_css"])  # a URL is not CSS text
    names = {url.split("/")[-1].split(".")[0] for url in urls}
    assert {"panes", "object", "widgets", "chips", "loading-spinner", "narrow-layout"} <= names
    for url in sorted(urls):
        with urllib.request.urlopen(demo_server + url, timeout=30) as r:
            body = r.read()
            assert r.headers["Content-Type"].startswith("text/css")
            assert "immutable" in r.headers["Cache-Control"]
            assert r.headers["Content-Security-Policy"]  # the server's headers on this route too
        assert b"{" in body and hashlib.sha256(body).hexdigest()[:16] == url.split(".")[-2], url
        with urllib.request.urlopen(urllib.request.Request(demo_server + url, method="HEAD"), timeout=30) as h:
            assert h.read() == b"" and int(h.headers["Content-Length"]) == len(body)
            assert h.headers["ETag"] == r.headers["ETag"] == f'"{url.split(".")[-2]}"'
    for bad in ("panes.0000000000000000.css", "nope.css", "../theme.py", "panes." + STYLESHEET.split(".")[-2]):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(demo_server + PREFIX + bad, timeout=30)
        assert err.value.code == 404
    # a served page names the same spinner file as this process made (a session's Panel
    # settings are not the ones lcpanel set when it loaded: a URL of its own would be
    # unknown to a process that has built no page)
    served = set()
    for _ in range(3):  # (Panel's settings changed after a process's first page)
        with urllib.request.urlopen(demo_server + "/", timeout=60) as r:
            served |= set(re.findall(r'/css/loading-spinner\.[0-9a-f]{16}\.css', r.read().decode()))
    assert served == {LOADING_CSS}, served
