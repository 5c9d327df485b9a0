"""Periodic work inside one page's session that does not make every page look busy.

Panel's ``pn.state.add_periodic_callback`` marks each run as a *busy event*, and Panel's
busy state is one flag for the whole process: every run of every open page's callback
turns on, then off, the busy indicator of every open page, a message to each of them.
With a few dozen pages open (a login check every few seconds, a build's status poll),
that traffic grows as the square of the open pages and starved the server's event loop
(a search click on a fresh page went unanswered for minutes). :func:`every` runs the
callback in the page's session (stopped with it) as a background callback, which leaves
the busy flag alone; a page shows its own progress where it needs to.
"""

from __future__ import annotations

from typing import Callable

from panel.io.callbacks import PeriodicCallback


def every(callback: Callable[[], object], period_ms: int) -> PeriodicCallback:
    """Start ``callback`` every ``period_ms`` in the current session; ``.stop()`` ends it."""
    periodic = PeriodicCallback(callback=callback, period=period_ms, background=True)
    periodic.start()
    return periodic
