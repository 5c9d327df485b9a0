"""Serve the web app and the HTTP routes of one basedir on one Tornado/Bokeh server.

Pages come from the ``register_views`` hook and routes (JSON API, VO) from
``register_routes``. ``num_procs > 1`` forks independent, read-mostly worker processes
after the app has started, so memory-mapped sky indexes are shared between them.
"""

from __future__ import annotations

import logging

from . import hostcheck, pagebudget, security_headers
from .app import App
from .core.catalogs.sqlsafe import set_heap_limit
from .errors import NotFound
from .jsonapi import JSONHandler
from .pagecookies import TOKEN_EXCLUDED_COOKIES, TOKEN_EXCLUDED_HEADERS, PageCookies
from .pagestatus import PageStatus

log = logging.getLogger(__name__)


MAX_MESSAGE_BYTES = 8 * 1024 * 1024


class UnknownAPIHandler(JSONHandler):
    def prepare(self):
        super().prepare()
        raise NotFound(f"no API endpoint {self.request.path[:200]!r}; see /api/collections and /api/search/types")


def websocket_origins(address: str, port: int, extra=()) -> list[str]:
    hosts = {address, "127.0.0.1", "localhost"} if address in ("127.0.0.1", "localhost", "0.0.0.0") else {address}
    return sorted({f"{h}:{port}" for h in hosts} | set(extra))


def _bind(factory, app):
    """A plain function (Panel serves functions, not ``functools.partial``, on wildcard
    routes) that never shows a visitor a traceback: a failing page is logged and replaced
    by a short apology."""

    def make_page():
        try:
            return factory(app)
        except Exception:
            import panel as pn

            log.exception("page %s failed", getattr(factory, "__name__", factory))
            return pn.pane.HTML("<h2>Something went wrong</h2><p>This page could not be built; the error "
                                "is in the server's log. <a href='/'>Back to the collections</a>.</p>",
                                sizing_mode="stretch_width")

    return make_page


class _ClosedPageWrites(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for a write to a page's
    websocket after the visitor closed the page: Panel writes some updates without
    awaiting them, and a closed page is not a server error (Bokeh already logs a one-line
    warning for it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from tornado.iostream import StreamClosedError
        from tornado.websocket import WebSocketClosedError

        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, (WebSocketClosedError, StreamClosedError))
                    and record.getMessage().startswith("Task exception was never retrieved"))


def quiet_closed_pages() -> None:
    """Install :class:`_ClosedPageWrites` on asyncio's logger (once)."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _ClosedPageWrites) for f in logger.filters):
        logger.addFilter(_ClosedPageWrites())


#: how often sessions whose page never connected (Bokeh drops them 15 s after they were
#: made) are looked for: Bokeh's 17 s kept each such session ~5 MB for up to 32 s
UNUSED_SESSIONS_CHECK_MS = 5000


def websocket_max_message_bytes(search) -> int:
    """The largest message a page's websocket takes (Bokeh's default: 20 MB, parsed on the
    event loop). A page's largest is a cross-match list typed into the search form, at
    most ``max_upload_bytes`` of text, which JSON may write up to ~4x longer (escapes)."""
    return max(4 << 20, 4 * search.max_upload_bytes + (1 << 20))


def http_server_kwargs(settings) -> dict:
    """Tornado's limits from ``[requests]``: a body over ``max_body_bytes`` is refused from
    its Content-Length before any of it is buffered; a connection whose request head is
    not complete within ``idle_timeout_s`` (a slow-headers client) or whose body has not
    arrived within ``body_timeout_s`` is closed."""
    return dict(max_body_size=settings.max_body_bytes, max_buffer_size=settings.max_body_bytes + 65536,
                idle_connection_timeout=settings.idle_timeout_s, body_timeout=settings.body_timeout_s)


def make_server(app: App, *, address: str = "127.0.0.1", port: int = 5006, num_procs: int = 1,
                allow_websocket_origin=(), show: bool = False, start: bool = False,
                auth: dict | None = None, use_xheaders: bool = False):
    """A Panel/Bokeh server for ``app``'s pages and routes (not started unless asked).

    ``auth`` holds Panel's OAuth options (``oauth_provider``, ``cookie_secret``, ...);
    ``use_xheaders`` takes client addresses from a reverse proxy's headers. lcpanel's
    cookies stay out of Bokeh's session tokens and pages set theirs HttpOnly
    (:mod:`lcpanel.pagecookies`)."""
    from panel.io.server import get_server

    from .warmup import warm_up

    warm_up()  # before forking: the workers share what it loaded
    quiet_closed_pages()
    pages = {page.route: _bind(page.factory, app) for page in app.pages}
    titles = {page.route: page.title for page in app.pages}
    patterns = [(r.pattern, r.handler, r.kwargs) for r in app.routes]
    # after every plugin's routes: any other /api/ address is a JSON 404, not an HTML page
    patterns.append((r"/api/.*", UnknownAPIHandler, {"app": app}))
    kwargs = dict(
        port=port, address=address, websocket_origin=websocket_origins(address, port, allow_websocket_origin),
        show=show, title=titles, extra_patterns=patterns, liveness=True, num_procs=num_procs,
        http_server_kwargs=http_server_kwargs(app.config.requests),
        exclude_cookies=TOKEN_EXCLUDED_COOKIES, exclude_headers=TOKEN_EXCLUDED_HEADERS,
        transforms=[PageCookies, PageStatus],
        use_xheaders=use_xheaders, check_unused_sessions_milliseconds=UNUSED_SESSIONS_CHECK_MS,
        websocket_max_message_size=websocket_max_message_bytes(app.config.search), **(auth or {}),
    )
    set_heap_limit(app.config.requests.sqlite_heap_bytes)
    from .plugins.retention import schedule_gc

    server = get_server(pages, start=False, **kwargs)  # with num_procs > 1, in a forked child from here
    security_headers.install(server._tornado)
    hostcheck.install(server._tornado, address, allow_websocket_origin)  # first: a refused host spends no budget
    pagebudget.install(server._tornado, app)
    schedule_gc(app, server.io_loop)
    if start:
        server.start()
        if not server.io_loop.asyncio_loop.is_running():
            server.io_loop.start()
    return server
