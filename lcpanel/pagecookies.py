"""HttpOnly cookies set by Bokeh/Panel pages, and what of a request enters a page's
Bokeh session token.

A page is built inside Bokeh's own Tornado handler, so a page factory cannot call
``set_cookie``. It can reach the Tornado request that opened its session
(:func:`raw_request`); :func:`queue_cookie` attaches a ``Set-Cookie`` line to it, and
the :class:`PageCookies` output transform (installed on the server by
:func:`lcpanel.server.make_server`) adds the queued lines to that request's response.

Bokeh copies the request's cookies and headers into the session token it embeds in
every page and ``/autoload.js`` answer, where any script of the site can read them.
:data:`TOKEN_EXCLUDED_COOKIES` and :data:`TOKEN_EXCLUDED_HEADERS` keep lcpanel's login
and session cookies (and API keys) out of it; pages read them server-side instead.
"""

from __future__ import annotations

from tornado.web import OutputTransform

from .core.access.auth import LOGIN_COOKIE
from .core.access.identity import COOKIE_NAME

TOKEN_EXCLUDED_COOKIES = [LOGIN_COOKIE, COOKIE_NAME]
TOKEN_EXCLUDED_HEADERS = ["Cookie", "Authorization"]
SESSION_COOKIE_MAX_AGE_S = 365 * 86400
_QUEUE = "_lcpanel_set_cookies"


def raw_request(doc=None):
    """The Tornado request that opened the current Bokeh session (its cookies and headers
    unfiltered, server-side only), or None outside a served session."""
    import panel as pn

    doc = doc if doc is not None else pn.state.curdoc
    context = getattr(doc, "session_context", None)
    proxy = getattr(context, "request", None)
    return getattr(proxy, "_request", None) if proxy is not None else None


def request_cookies(doc=None) -> dict[str, str]:
    """Every cookie of the request that opened the current session."""
    request = raw_request(doc)
    if request is None:
        return {}
    try:
        return {name: morsel.value for name, morsel in request.cookies.items()}
    except Exception:  # a malformed Cookie header: no cookies
        return {}


def queue_cookie(request, name: str, value: str, max_age_s: int) -> bool:
    """Send ``name=value`` (HttpOnly, SameSite=Lax, Secure over https) with the answer to
    ``request``; False when no answer to it is pending (e.g. no request)."""
    if request is None:
        return False
    secure = "; Secure" if getattr(request, "protocol", "http") == "https" else ""
    line = f"{name}={value}; Path=/; Max-Age={int(max_age_s)}; HttpOnly; SameSite=Lax{secure}"
    queued = getattr(request, _QUEUE, None)
    if queued is None:
        queued = []
        setattr(request, _QUEUE, queued)
    queued.append(line)
    return True


class PageCookies(OutputTransform):
    """Adds the cookies queued on a request by :func:`queue_cookie` to its answer."""

    def __init__(self, request):
        self.request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for line in getattr(self.request, _QUEUE, ()):
            headers.add("Set-Cookie", line)
        return status_code, headers, chunk

    def transform_chunk(self, chunk, finishing):
        return chunk
