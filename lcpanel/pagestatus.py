"""The HTTP status of a page's answer, set by the page.

A page is built inside Bokeh's own Tornado handler, which always answers 200. A page whose
subject does not exist (an unknown object, someone else's private dataset) still shows
itself, saying so with its links and suggestions, but calls :func:`answer_not_found`, so
that link checkers, scripts and crawlers see a dead link as dead. The status is kept on
the Tornado request that opened the session (as :mod:`lcpanel.pagecookies` keeps cookies)
and the :class:`PageStatus` output transform, installed by
:func:`lcpanel.server.make_server`, puts it on that request's answer.
"""

from __future__ import annotations

from tornado.web import OutputTransform

from .pagecookies import raw_request

_STATUS = "_lcpanel_page_status"


def answer_not_found(doc=None) -> bool:
    """Answer the request that opened the current session with 404 instead of 200; False
    outside a served session (nothing to answer)."""
    request = raw_request(doc)
    if request is None:
        return False
    setattr(request, _STATUS, 404)
    return True


class PageStatus(OutputTransform):
    """Gives an answer of 200 the status its page set with :func:`answer_not_found`."""

    def __init__(self, request):
        self.request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        wanted = getattr(self.request, _STATUS, None)
        return (wanted if wanted is not None and status_code == 200 else status_code), headers, chunk

    def transform_chunk(self, chunk, finishing):
        return chunk
