"""Built-in JSON API routes.

- ``GET /api/collections``: every collection with its columns, and the union of columns
- ``GET /api/collections/<id>``: one collection with full column metadata
- ``GET /api/search/types``: the registered search types with their parameter schemas
- ``POST /api/search[?visibility=private&name=...]``: run a search spec (JSON body, see
  :mod:`lcpanel.core.search`); the search becomes a dataset whose id the answer carries
- ``GET /api/datasets[?mine=1&q=text&limit=&offset=]``: public datasets and your own
- ``GET /api/datasets/<id>[?start=0&stop=100]``: one dataset with a page of its rows
- ``POST /api/datasets/<id>`` (JSON changes) edits it; ``DELETE`` deletes it;
  ``POST /api/datasets/<id>/freeze`` makes an immutable, citable copy
"""

from __future__ import annotations

from ..core.basedir import Basedir
from ..errors import UserError
from ..extension import Route
from ..hookspecs import hookimpl
from ..jsonapi import JSONHandler


class CollectionsHandler(JSONHandler):
    def get(self):
        base = Basedir(self.app.basedir)
        self.send_json({
            "collections": [c.summary() for c in base.collections()],
            "columns": base.column_union(),
        })


class CollectionHandler(JSONHandler):
    def get(self, collection_id):
        info = Basedir(self.app.basedir).collection(collection_id)
        out = info.summary()
        out["columns"] = [c.to_dict() for c in info.columns]
        self.send_json(out)


class SearchTypesHandler(JSONHandler):
    def get(self):
        self.send_json({"types": [b.schema() for b in self.app.search_backends]})


class SearchHandler(JSONHandler):
    def post(self):
        from ..core.search import run_search

        settings = self.app.config.search
        spec = self.json_body(max_bytes=settings.max_upload_bytes + 64_000)
        result = run_search(self.app, spec)
        viewer = self.viewer()
        ds = self.app.datasets.create(
            result, viewer.identity, visibility=self.get_query_argument("visibility", "unlisted"),
            name=self.get_query_argument("name", None), description=self.get_query_argument("description", ""))
        self.app.notify("dataset_created", dataset=ds)
        out = result.to_dict()
        out["dataset_id"] = ds.dataset_id
        out["dataset_url"] = f"/datasets/{ds.dataset_id}"
        self.send_json(out)


def _int_arg(handler, name: str, default: int, lo: int, hi: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"{name} must be an integer, not {raw[:20]!r}", field=name) from None
    if not lo <= value <= hi:
        raise UserError(f"{name} must be between {lo} and {hi}", field=name)
    return value


class DatasetsHandler(JSONHandler):
    def get(self):
        items = self.app.datasets.list(
            self.viewer(), mine=self.get_query_argument("mine", "0") in ("1", "true"),
            query=self.get_query_argument("q", None) or None,
            limit=_int_arg(self, "limit", 100, 1, 1000), offset=_int_arg(self, "offset", 0, 0, 10**9))
        self.send_json({"datasets": items})


class DatasetHandler(JSONHandler):
    def get(self, dataset_id):
        ds = self.app.datasets.get(dataset_id, self.viewer())
        start = _int_arg(self, "start", 0, 0, 10**9)
        stop = _int_arg(self, "stop", start + 100, start, start + 10_000)
        out = ds.to_dict(start, stop)
        out["can_edit"] = self.viewer().owns(ds)
        self.send_json(out)

    def post(self, dataset_id):
        changes = self.json_body(max_bytes=200_000)
        ds, changed = self.app.datasets.edit(dataset_id, self.viewer(), changes)
        self.app.notify("dataset_updated", dataset=ds, changes=changed)
        self.send_json({"dataset": ds.summary(), "changed": sorted(changed)})

    def delete(self, dataset_id):
        self.app.datasets.delete(dataset_id, self.viewer())
        self.app.notify("dataset_deleted", dataset_id=dataset_id)
        self.send_json({"deleted": dataset_id})


class FreezeHandler(JSONHandler):
    def post(self, dataset_id):
        frozen = self.app.datasets.freeze(dataset_id, self.viewer())
        self.send_json({"dataset": frozen.summary(), "permalink": f"/datasets/{frozen.dataset_id}"})


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("api-collections", r"/api/collections/?", CollectionsHandler, kwargs),
        Route("api-collection", r"/api/collections/([^/]+)/?", CollectionHandler, kwargs),
        Route("api-search-types", r"/api/search/types/?", SearchTypesHandler, kwargs),
        Route("api-search", r"/api/search/?", SearchHandler, kwargs),
        Route("api-datasets", r"/api/datasets/?", DatasetsHandler, kwargs),
        Route("api-dataset", r"/api/datasets/([^/]+)/?", DatasetHandler, kwargs),
        Route("api-dataset-freeze", r"/api/datasets/([^/]+)/freeze/?", FreezeHandler, kwargs),
    ]
