"""lcpanel's CSS served as files: one URL per stylesheet, so a page carries each once.

Panel puts a component's stylesheets into its Bokeh model. Given CSS *text*, every
component carries its own copy over the websocket and the browser parses it in every
shadow root: an object page sent 282 KB of CSS text in its 620 KB document, the
shared pane stylesheet 46 times. Given a URL ending in ``.css``, Panel makes an
``ImportedStyleSheet`` shared by the whole document (:class:`~lcpanel.views.theme.LcpanelDesign`),
the document holds the URL once and the browser fetches and parses the file once,
caching it across pages.

:func:`stylesheet` registers CSS text under a name and gives its URL,
``/css/<name>.<digest>.css``: the digest (of the text) changes with the text, so the
answer is cached for a year (``immutable``), and a server started with other CSS never
serves an old page the new text under the same URL. :class:`StylesheetHandler` answers
those URLs from memory. CSS is registered when its module is imported; a server process
asked for a URL it has not registered (a page built by another process) imports
lcpanel's view modules once and looks again.

Building a model costs: given a URL string, Panel makes an ``ImportedStyleSheet`` for
each component and swaps it for the document's shared one right after (~0.1-0.2 ms each;
a component's ``stylesheets`` parameter takes strings only). So the loading-spinner CSS
Panel gives every component goes through :func:`shared` (the document's one model, in
:meth:`~lcpanel.views.theme.LcpanelDesign.loading_css`: 430 models fewer to make for an
object page), and a pane gets one lcpanel file, not two (the object page's panes one
file with both their CSS).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import pkgutil
import re
import threading

from tornado.web import HTTPError, RequestHandler

log = logging.getLogger(__name__)

PREFIX = "/css/"
#: the route's pattern: a name and a 16-hex-digit digest
ROUTE = r"/css/([a-z0-9-]{1,40}\.[0-9a-f]{16}\.css)"
_NAME = re.compile(r"[a-z0-9-]{1,40}")

_by_file: dict[str, bytes] = {}  # "<name>.<digest>.css" -> CSS bytes
_by_text: dict[tuple[str, str], str] = {}  # (name, text) -> URL
_lock = threading.Lock()
_views_loaded = False


def stylesheet(name: str, css: str) -> str:
    """The URL serving ``css``, registered under ``name`` (lower-case letters, digits
    and dashes). The same (name, text) always gives the same URL."""
    url = _by_text.get((name, css))
    if url is not None:
        return url
    if not _NAME.fullmatch(name):
        raise ValueError(f"stylesheet name {name!r}: use 1-40 lower-case letters, digits and dashes")
    data = css.encode("utf-8")
    file = f"{name}.{hashlib.sha256(data).hexdigest()[:16]}.css"
    with _lock:
        _by_file[file] = data
        _by_text[(name, css)] = url = PREFIX + file
    return url


def shared(url: str):
    """The current page document's one ``ImportedStyleSheet`` of ``url``, from Panel's
    per-document cache (the one its design pass shares stylesheets through), or ``url``
    itself outside a document. Where Panel takes a model (a design's loading CSS), it
    uses it as is: no model of its own per component."""
    import panel as pn
    from bokeh.models import ImportedStyleSheet
    from panel.theme.base import _stylesheet_cache

    doc = pn.state.curdoc
    if doc is None:
        return url
    cache = _stylesheet_cache(doc)
    sheet = cache.get(url)
    if sheet is None or sheet.document not in (None, doc):
        sheet = cache[url] = ImportedStyleSheet(url=url)
    return sheet


def url_of(sheet) -> str:
    """The URL of a stylesheet given as a URL or as a model."""
    return getattr(sheet, "url", sheet)


def css_file(file: str) -> bytes | None:
    """The CSS served as ``file`` (``<name>.<digest>.css``), loading lcpanel's views once
    when it is not registered yet; None when no view registers it."""
    global _views_loaded
    data = _by_file.get(file)
    if data is None and not _views_loaded:
        _load_views()
        _views_loaded = True
        data = _by_file.get(file)
    return data


def _load_views() -> None:
    from .. import views

    for module in pkgutil.walk_packages(views.__path__, views.__name__ + "."):
        try:
            importlib.import_module(module.name)
        except Exception:  # a view that cannot load has no stylesheet to serve
            log.warning("loading %s for its stylesheets failed", module.name, exc_info=True)


class StylesheetHandler(RequestHandler):
    """``GET /css/<name>.<digest>.css``: a registered stylesheet, cached for a year (its
    ETag the digest in its name, for HEAD as for GET)."""

    def _answer(self, file: str) -> bytes:
        data = css_file(file)
        if data is None:
            raise HTTPError(404)
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        self.set_header("Etag", f'"{file.split(".")[1]}"')
        return data

    def compute_etag(self) -> None:
        return None  # set from the name, not from the body (a HEAD answer has none)

    def get(self, file: str) -> None:
        self.finish(self._answer(file))

    def head(self, file: str) -> None:
        self.set_header("Content-Length", str(len(self._answer(file))))
