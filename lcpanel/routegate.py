"""Checks in front of the Tornado application's routing: they see every request, whoever
wrote its handler (Bokeh's pages and websocket, static files, the JSON API, the VO
services), and may answer it with a short refusal instead (:mod:`lcpanel.hostcheck`,
:mod:`lcpanel.pagebudget`)."""

from __future__ import annotations

from collections.abc import Callable

from tornado.web import RequestHandler


class Refusal(RequestHandler):
    """A plain-text refusal: ``status``, ``text`` and extra ``headers``."""

    def initialize(self, status: int, text: str, headers: dict | None = None):
        self.refusal = status, text, headers or {}

    def prepare(self):
        status, text, headers = self.refusal
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(text)


def add_gate(tornado_app, name: str, gate: Callable) -> None:
    """Run ``gate(request, delegate)`` on every request once it is routed (``delegate``:
    what the routing chose, its ``handler_class`` among others). It returns None to let the
    request through, or the keyword arguments of a :class:`Refusal`. Gates added earlier
    run first; a request one refuses reaches the next ones as a :class:`Refusal`. Adding a
    gate of the same ``name`` again does nothing."""
    added = tornado_app.__dict__.setdefault("_lcpanel_gates", set())
    if name in added:
        return
    find_handler = tornado_app.find_handler

    def gated_find_handler(request, **kwargs):
        delegate = find_handler(request, **kwargs)
        refusal = gate(request, delegate)
        return delegate if refusal is None else tornado_app.get_handler_delegate(request, Refusal, refusal)

    tornado_app.find_handler = gated_find_handler
    added.add(name)
