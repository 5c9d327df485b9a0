"""Page actions spend the visitor's request budget, as HTTP requests do.

A click that writes or does heavy work (saving a review or a comment, running a search,
building a product, editing a dataset) arrives over the page's websocket, not as an HTTP
request, so the JSON API's per-request check never sees it. :func:`spend` takes one
request from the same budget (:meth:`lcpanel.core.access.ratelimit.RateLimiter.spend`: anonymous
visitors per address, others per identity, shared by every server process) and answers
the message to show when it is spent; the caller then writes nothing.
"""

from __future__ import annotations

from ..errors import TooManyRequests
from ..visitor import client_address


def spend(app, viewer) -> str | None:
    """None when the action may go ahead; else why not, in words for the visitor."""
    try:
        app.rate_limiter.spend(viewer, client_address())
    except TooManyRequests as exc:
        return exc.message
    return None
