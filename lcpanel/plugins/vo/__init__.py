"""Built-in Virtual Observatory access: TAP 1.1 (ADQL 2.1) and Simple Cone Search 1.03.

Routes, on the same server as the web app and the JSON API:

- ``/tap``: a short page naming the endpoints; ``/tap/sync`` (GET, POST): run one query;
  ``/tap/async``: UWS 1.1 jobs (``/tap/async/<id>``, ``.../phase``, ``.../parameters``,
  ``.../executionduration``, ``.../destruction``, ``.../quote``, ``.../owner``,
  ``.../error``, ``.../results``, ``.../results/result``); ``/tap/capabilities``,
  ``/tap/availability``, ``/tap/tables[?detail=min]`` and ``/tap/tables/<table>`` (VOSI 1.1).
- ``/scs`` (all collections) and ``/scs/<collection>``: Simple Cone Search 1.03.

Parameter names are case-insensitive; unknown parameters are ignored. Errors are
VOTables with ``QUERY_STATUS=ERROR`` and the message (SCS adds its ``<INFO
name="Error">``), never a stack trace or a file path. Queries run in a thread pool, off
the server's event loop; async jobs in another pool, their state under
``BASEDIR/vo/jobs`` (:mod:`lcpanel.core.vo.uws`).

Also an ``adql`` search type, so ADQL selects objects (and makes datasets) through
``/api/search``, the CLI and the web forms like every other search.

Settings (``[plugin.vo]`` in ``lcpanel.toml``, all optional): ``sync_timeout_s``
(default: ``[search] query_timeout_s``), ``async_timeout_s`` (60), ``async_max_timeout_s``
(600), ``default_maxrec`` (10000), ``max_maxrec`` (``[search] max_limit``),
``scs_max_sr_deg`` (``[search] cone_max_radius_arcmin`` / 60), ``job_lifetime_days`` (7),
``async_workers`` (2: async jobs running at once per process), ``max_running_jobs_per_owner``
(1), ``max_active_jobs_per_owner`` (4: queued + running), ``max_jobs_per_owner`` (50 stored
jobs), ``max_jobs_anonymous`` (10 per client address), ``max_job_parameter_chars`` (50000).

Who may change a job: reading a job (its state, result, error) needs only its URL, as
TOPCAT and STILTS keep no cookies. Changing it (parameters, PHASE=RUN/ABORT, DESTRUCTION,
EXECUTIONDURATION) or deleting it is for its owner only: the account that made it (or an
admin). An anonymous job belongs to the client address that made it and, when that client
held lcpanel's session cookie, to that cookie too; a cookie-less client (TOPCAT) is bound
to its address alone. Anyone else gets a 403. Jobs run in a small fair pool: an owner runs
at most ``max_running_jobs_per_owner`` at a time while other owners' jobs go ahead. ABORT
(and DELETE, and a passed DESTRUCTION) interrupts the running SQLite query.
"""

from __future__ import annotations

from ...extension import Route
from ...hookspecs import hookimpl
from .adql_search import AdqlSearch
from .base import SERVICE
from .scs import SCSHandler
from .tap import TapAsyncHandler, TapRootHandler, TapSyncHandler
from .vosi import (
    TapAvailabilityHandler,
    TapCapabilitiesHandler,
    TapExamplesHandler,
    TapTablesHandler,
)

# --- hooks --------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("vo-tap", r"/tap/?", TapRootHandler, kwargs),
        Route("vo-tap-sync", r"/tap/sync/?", TapSyncHandler, kwargs),
        Route("vo-tap-async", r"/tap/async/?", TapAsyncHandler, kwargs),
        Route("vo-tap-job", r"/tap/async/([^/]+)(/.*)?", TapAsyncHandler, kwargs),
        Route("vo-tap-capabilities", r"/tap/capabilities/?", TapCapabilitiesHandler, kwargs),
        Route("vo-tap-availability", r"/tap/availability/?", TapAvailabilityHandler, kwargs),
        Route("vo-tap-tables", r"/tap/tables/?", TapTablesHandler, kwargs),
        Route("vo-tap-examples", r"/tap/examples/?", TapExamplesHandler, kwargs),
        Route("vo-tap-table", r"/tap/tables/([^/]+)", TapTablesHandler, kwargs),
        Route("vo-scs-all", r"/scs/?", SCSHandler, kwargs),
        Route("vo-scs", r"/scs/([^/]+)/?", SCSHandler, kwargs),
    ]


@hookimpl(trylast=True)
def register_search_backends(app):
    return [AdqlSearch]


@hookimpl
def shutdown(app):
    svc = app.stash.get(SERVICE)
    if svc is not None:
        svc.shutdown()
