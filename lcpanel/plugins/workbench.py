"""The object workbench's JSON API: period searches on demand
(:mod:`lcpanel.core.objects.periodsearch`).

Through the API base handler (identity, same-origin check of writes, request budget,
JSON errors), like every other API write:

- ``POST /api/collections/<id>/objects/<objectid>/periodsearch`` with
  ``{"method": "pdm", "magcol": "aep_000", "startp": 0.5, "endp": 10, ...}``: validates
  the options (a 400 naming the field), reads the light curve, checks the bounds and the
  identity's concurrent-search limit (429), and queues the search: 202 with the job
  (``id``, ``status``, ``progress``, ``url``).
- ``GET`` the same URL: this object's finished searches (summaries, ``url`` of each) and
  the searches queued or running; ``?magcol=`` only that magcol's; ``?schema=1`` the
  methods and their options instead.
- ``GET .../periodsearch/<id>``: a search's status, with the result (``bestperiod``,
  ``nbestperiods``, ``nbestlspvals``, ``periods``, ``lspvals``, options, who, when) once
  done. Everyone who can see the object sees its searches.
- ``DELETE .../periodsearch/<id>``: cancels a queued or running search, or deletes a
  finished one's result: only who started it, or an admin.
"""

from __future__ import annotations

from ..core.objects import periodsearch as ps
from ..core.objects.record import must_exist
from ..core.offload import offloader
from ..core.urls import object_path
from ..errors import NotFound
from ..extension import Route
from ..hookspecs import hookimpl
from ..jsonapi import JSONHandler, dumps

MAX_BODY_BYTES = 20_000


def _url(collection_id: str, objectid: str, job_id: str | None = None) -> str:
    base = f"{object_path(collection_id, objectid)}/periodsearch"
    return f"{base}/{job_id}" if job_id else base


def _linked(item: dict) -> dict:
    return {**item, "url": _url(item["collection"], item["objectid"], item["id"])}


class PeriodSearchesHandler(JSONHandler):
    def get(self, collection_id, objectid):
        if self.get_query_argument("schema", None):
            self.send_json(ps.describe_methods())
            return
        catalog = self.app.catalogs.get(collection_id)
        must_exist(catalog, objectid)
        magcol = self.get_query_argument("magcol", None) or None
        results = [_linked(r) for r in ps.list_results(self.app.basedir, collection_id, objectid, magcol)]
        running = [_linked(j) for j in ps.service(self.app).jobs_of(collection_id, objectid)
                   if magcol is None or j["magcol"] == magcol]
        self.send_json({"collection": collection_id, "objectid": objectid, "results": results, "running": running})

    async def post(self, collection_id, objectid):
        body = self.json_body(MAX_BODY_BYTES)
        job = await offloader(self.app).run(ps.start_search, self.app, collection_id, objectid, body, self.viewer(),
                                            self.request.remote_ip)
        self.send_json(_linked(job), status=202)


def _stored_json(basedir, collection_id: str, objectid: str, job_id: str) -> str | None:
    """A stored result with its periodogram as the JSON answer (8 MB for an ACF of 200,000
    lags: read and encoded on a worker thread), or None."""
    stored = ps.load_result(basedir, collection_id, objectid, job_id)
    return None if stored is None else dumps(_linked(stored))


class PeriodSearchHandler(JSONHandler):
    async def get(self, collection_id, objectid, job_id):
        self.app.catalogs.get(collection_id)
        text = await offloader(self.app).run(_stored_json, self.app.basedir, collection_id, objectid, job_id)
        if text is not None:
            self.finish(text)
            return
        job = ps.service(self.app).job(job_id)
        if (job is None or job["collection"] != collection_id or job["objectid"] != objectid
                or job["status"] == "deleted"):
            raise NotFound(f"no period search {job_id!r} for this object")
        self.send_json(_linked(ps.service(self.app).status(job_id)))

    def delete(self, collection_id, objectid, job_id):
        self.app.catalogs.get(collection_id)
        self.send_json(_linked({**ps.service(self.app).cancel(job_id, self.viewer(), collection_id, objectid),
                                "collection": collection_id, "objectid": objectid}))


@hookimpl
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("api-object-periodsearches", r"/api/collections/([^/]+)/objects/([^/]+)/periodsearch/?",
              PeriodSearchesHandler, kwargs),
        Route("api-object-periodsearch", r"/api/collections/([^/]+)/objects/([^/]+)/periodsearch/([^/]+)/?",
              PeriodSearchHandler, kwargs),
    ]


@hookimpl
def shutdown(app):
    ps.shutdown(app)
