"""Changing Bokeh models (data sources, renderers, ranges, axes) from Panel callbacks.

Panel applies a widget's change up to 50 ms after it arrives. When a click on another
widget arrives meanwhile, Panel first applies the pending change, in a callback that does
not hold the document's lock; so does a coroutine after an ``await``. Bokeh refuses a
model changed there ("_pending_writes should be non-None ..."), the callback fails and,
in the first case, the click is lost. Panel widgets guard their own models; a view that
changes Bokeh models itself marks the method with :func:`edits_plots`: Panel's
:func:`panel.io.unlocked` then collects the changes and sends them, lock held or not.
"""

from __future__ import annotations

import functools

import panel as pn


def edits_plots(method):
    """Run ``method`` (which changes Bokeh models of a served page) inside
    :func:`panel.io.unlocked`."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with pn.io.unlocked():
            return method(*args, **kwargs)
    return wrapper
