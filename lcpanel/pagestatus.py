"""The HTTP status of a page's answer, set by the page.

A page is built inside Bokeh's own Tornado handler, which always answers 200. A page whose
subject does not exist (an unknown object, someone else's private dataset) still shows
itself, saying so with its links and suggestions, but calls :func:`answer_status` (404, or
400 for a query it cannot take), so that link checkers, scripts and crawlers see a dead
link as dead. A page asked for under another name of its subject (an object id in another
case, or an alias) calls :func:`answer_redirect` to send the browser to the subject's own
address. The status is kept on the Tornado request that opened the session (as
:mod:`lcpanel.pagecookies` keeps cookies) and the :class:`PageStatus` output transform,
installed by :func:`lcpanel.server.make_server`, puts it on that request's answer.
"""

from __future__ import annotations

from tornado.web import OutputTransform

from .pagecookies import raw_request

_STATUS = "_lcpanel_page_status"
_LOCATION = "_lcpanel_page_location"


def answer_status(status: int, doc=None) -> bool:
    """Answer the request that opened the current session with ``status`` (a 4xx) instead of
    200; False outside a served session (nothing to answer)."""
    request = raw_request(doc)
    if request is None or not 400 <= status < 500:
        return False
    setattr(request, _STATUS, status)
    return True


def answer_redirect(path: str, doc=None) -> bool:
    """Answer the request that opened the current session with 302 to ``path`` (a path of
    this site, which the caller built from quoted segments); False outside a served session.
    Not 301: browsers keep a 301 for good, and an object with the exact id may come later."""
    request = raw_request(doc)
    if request is None or not path.startswith("/") or path.startswith("//"):
        return False
    setattr(request, _STATUS, 302)
    setattr(request, _LOCATION, path)
    return True


class PageStatus(OutputTransform):
    """Gives an answer of 200 the status its page set (:func:`answer_status`,
    :func:`answer_redirect`)."""

    def __init__(self, request):
        self.request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        wanted = getattr(self.request, _STATUS, None)
        if wanted is None or status_code != 200:
            return status_code, headers, chunk
        location = getattr(self.request, _LOCATION, None)
        if location is not None:
            headers["Location"] = location
        return wanted, headers, chunk

    def transform_chunk(self, chunk, finishing):
        return chunk
