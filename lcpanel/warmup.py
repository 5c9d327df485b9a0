"""What a server process loads before it answers anyone: what searches and the VO
services import at first use.

lcpanel imports heavy modules inside the functions that need them, so a command that
never covers the sky does not pay for them. A server would make its first searcher wait
for those imports instead: cdshealpix imports ``astropy.coordinates``, and the first cone
search, cross-match, Simple Cone Search or TAP region query of a process took ~1 s
against 10-30 ms for the next ones (demo collection, 2-core machine); sqlglot loads its
SQLite dialect at the first TAP query. :func:`lcpanel.server.make_server` calls
:func:`warm_up` before it forks worker processes, so they share what it loaded: 21-24 MB
and ~0.5-0.85 s of start-up, once.

Pages are not loaded ahead. Their modules (Panel views, Tabulator, finder charts with
matplotlib, astrobase for light-curve analysis) were 150-200 MB more per process,
measured; a process that only answers the JSON API or TAP would carry them for nothing.
A process's first page view pays them once (the first home page took 4.1 s against
~2 s for the next on the same machine).

``tests/test_warmup.py`` serves a collection under ``python -X importtime`` and checks
that answering each kind of search and VO request imports nothing more.
"""

from __future__ import annotations

import importlib
import logging
import time

log = logging.getLogger(__name__)

#: lcpanel's modules that search requests import inside functions
MODULES = ("lcpanel.core.catalogs.catalog", "lcpanel.core.access.ratelimit", "lcpanel.core.retention")


def warm_up() -> float:
    """Import what search and VO requests import lazily; returns the seconds it took. A
    step that fails is logged and skipped: a server starts whatever its warm-up does."""
    start = time.perf_counter()
    for step in (_modules, _sky, _sql):
        try:
            step()
        except Exception:  # only an early start: the request that needs it reports its own error
            log.warning("warm-up step %s failed; requests will load it themselves", step.__name__, exc_info=True)
    seconds = time.perf_counter() - start
    log.info("searches warmed up in %.2f s", seconds)
    return seconds


def _modules() -> None:
    for name in MODULES:
        importlib.import_module(name)


def _sky() -> None:
    """cdshealpix's compiled functions (cones, cross-matches), which import its package
    and with it ``astropy.coordinates``."""
    from .core.catalogs import skyindex

    skyindex.preload()


def _sql() -> None:
    """sqlglot loads a dialect's parser and generator when first asked (TAP)."""
    import sqlglot

    sqlglot.transpile("SELECT 1 AS x", read="sqlite", write="sqlite")
