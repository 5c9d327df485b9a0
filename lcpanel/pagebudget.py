"""A budget of page sessions per client address.

Opening a page makes a Bokeh session on the server: about 0.4 s of CPU to build the page
and ~5 MB kept until the session is dropped, 15-20 s after its browser goes away. API
requests spend a per-client budget (:mod:`lcpanel.core.access.ratelimit`); pages did not,
so one address asking for pages in a loop could keep a server's cores busy and its
memory growing. Each page request (a GET that Bokeh answers with a new session) spends
one from its client's budget of ``[limits] page_views_per_minute`` (``page_burst`` at
once); a page's websocket, which can also make a session, spends from a second budget of
the same size. Over budget, the answer is 429 with ``Retry-After``.

A client is a logged-in account (its login cookie), else an address, as for the API: the
members of a department behind one NAT address have a budget each once logged in.
Addresses are the clients' own (behind a reverse proxy, with ``--use-xheaders``), and
budgets are shared by every server process of the basedir, as the API's are.
:func:`install` puts the check in front of the Tornado application's routing
(:mod:`lcpanel.routegate`).
"""

from __future__ import annotations

import math

from bokeh.server.views.session_handler import SessionHandler
from bokeh.server.views.ws import WSHandler
from .core.access.auth import LOGIN_COOKIE
from .routegate import add_gate


def _budget(handler_class) -> str | None:
    """Which budget a request to ``handler_class`` spends from: ``page``, ``websocket`` or none."""
    if not isinstance(handler_class, type):
        return None
    if issubclass(handler_class, WSHandler):
        return "websocket"
    return "page" if issubclass(handler_class, SessionHandler) else None


def _client(app, request) -> str:
    """Whose budget a request spends: its login's account, else its address."""
    cookie = request.cookies.get(LOGIN_COOKIE)
    user = app.auth.login_user(cookie.value) if cookie is not None else None
    return user.identity if user is not None else f"ip:{request.remote_ip}"


def install(tornado_app, app) -> None:
    """Budget the page sessions of ``tornado_app``'s clients with ``app``'s rate limiter."""
    limits = app.config.limits
    if limits.page_views_per_minute <= 0:
        return

    def gate(request, delegate):
        budget = _budget(getattr(delegate, "handler_class", None)) if request.method == "GET" else None
        if budget is None:
            return None
        wait = app.rate_limiter.take(f"{budget}:{_client(app, request)}", limits.page_views_per_minute,
                                     limits.page_burst)
        if wait <= 0:
            return None
        seconds = max(1, math.ceil(wait))
        return {"status": 429, "headers": {"Retry-After": str(seconds)}, "text": (
            f"429: too many pages opened (at most {limits.page_views_per_minute} a minute from one address, or one "
            f"account once logged in); retry in {seconds} s\n")}

    add_gate(tornado_app, "pagebudget", gate)
