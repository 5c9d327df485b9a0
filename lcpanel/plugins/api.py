"""Built-in JSON API routes: ``GET /api/collections`` and ``GET /api/collections/<id>``."""

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


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("api-collections", r"/api/collections/?", CollectionsHandler, kwargs),
        Route("api-collection", r"/api/collections/([^/]+)/?", CollectionHandler, kwargs),
    ]
