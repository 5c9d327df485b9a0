"""Built-in JSON API routes.

- ``GET /api/collections``: every collection with its columns, and the union of columns
- ``GET /api/collections/<id>``: one collection with full column metadata
- ``GET /api/search/types``: the registered search types with their parameter schemas
- ``POST /api/search``: run a search spec (JSON body, see :mod:`lcpanel.core.search`)
"""

from __future__ import annotations

from ..core.basedir import Basedir
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
        self.send_json(result.to_dict())


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("api-collections", r"/api/collections/?", CollectionsHandler, kwargs),
        Route("api-collection", r"/api/collections/([^/]+)/?", CollectionHandler, kwargs),
        Route("api-search-types", r"/api/search/types/?", SearchTypesHandler, kwargs),
        Route("api-search", r"/api/search/?", SearchHandler, kwargs),
    ]
