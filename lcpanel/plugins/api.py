"""Built-in JSON API routes.

- ``GET /api/collections``: every collection with its columns, and the union of columns
- ``GET /api/collections/<id>``: one collection with full column metadata
- ``GET /api/search/types``: the registered search types with their parameter schemas
  (``GET /search/types``: the same as a page, :mod:`lcpanel.views.search_types_page`)
- ``POST /api/search[?visibility=private&name=...]``: run a search spec (JSON body, see
  :mod:`lcpanel.core.search`); the search becomes a dataset whose id the answer carries
- ``GET /api/datasets[?mine=1&q=text&limit=&offset=]``: public datasets and your own
- ``GET /api/datasets/<id>[?start=0&stop=100]``: one dataset with a page of its rows
- ``POST /api/datasets/<id>`` (JSON changes) edits it; ``DELETE`` deletes it;
  ``POST /api/datasets/<id>/freeze`` makes an immutable, citable copy
- ``GET /api/products``: the product builders and their options
- ``GET /api/datasets/<id>/products``: the dataset's products with status and SHA256;
  ``POST`` (``{"builder": "lightcurves", "options": {"format": "csv"}, "objects": [...]}``)
  starts one (or reuses an identical one)
- ``GET /api/datasets/<id>/products/<key>``: status and manifest;
  ``.../download``: the zip (HTTP Range for resuming; ``X-Content-SHA256`` header)
- ``GET /api/datasets/<id>/urls``: one download URL per object and file, for wget/curl
  (``?kind=lightcurve`` only light curves, ``&format=fits`` converted on download)
- ``GET /api/collections/<id>/objects/<objectid>/<lightcurve|checkplot|periodfinding>[?format=csv]``
- ``GET /api/datasets/<id>/finder.png[?collection=&size=]``: the dataset's objects on the field
  image; ``GET /api/collections/<id>/objects/<objectid>/finder.png``: one object's stamp
- ``GET /api/collections/<id>/objects/<objectid>/tiles``: the checkplot's images (finder,
  unphased and phased light curves, the tiles' ``phased-<n>`` and each period-finding
  method's ``method-<n>``) as ``.../tiles/<name>.png``
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from tornado.web import StaticFileHandler

from ..core.catalogs.basedir import Basedir
from ..core.manifest import FILE_KINDS, url_manifest
from ..core.offload import offloader
from ..core.objects.record import must_exist, no_such_object
from ..core.urls import object_path, segment
from ..core.access.quotas import NO_MATCH, ledger, product_check, save_search
from ..errors import NotFound, UserError
from ..extension import Route
from ..hookspecs import hookimpl
from ..jsonapi import APIMixin, JSONHandler


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
    async def post(self):
        settings = self.app.config.search
        spec = self.json_body(max_bytes=settings.max_upload_bytes + 64_000)
        viewer = self.viewer()
        args = {k: self.get_query_argument(k, d) for k, d in
                (("visibility", "unlisted"), ("name", None), ("description", ""))}
        body, ds = await offloader(self.app).run(_search_and_save, self.app, spec, viewer, args,
                                                 self.request.remote_ip)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)


def _search_and_save(app, spec, viewer, args: dict, address: str | None):
    """Run a search within the time limit (parsing and translation included), refuse an
    answer over the viewer's byte cap, save the dataset inside the viewer's disk quota
    (none when nothing matched); returns (JSON text, dataset or None). Runs on a worker
    thread."""
    from ..core.deadline import deadline
    from ..core.search import run_search
    from ..errors import TooLarge
    from ..jsonapi import dumps

    with deadline(app.config.search.query_timeout_s):
        result = run_search(app, spec, viewer)
    if not result.rows:
        result.messages.append(NO_MATCH)
    text = dumps(result.to_dict())
    cap = app.config.requests.max_result_bytes(viewer.role if viewer else None)
    if len(text) > cap:
        raise TooLarge(f"the answer would be {len(text) / 2**20:.1f} MiB; {viewer.role} requests may get at "
                       f"most {cap / 2**20:.1f} MiB: lower the limit or select fewer objects")
    ds = save_search(app, result, viewer, address, visibility=args["visibility"], name=args["name"],
                     description=args["description"])
    tail = dumps({"dataset_id": ds.dataset_id, "dataset_url": f"/datasets/{ds.dataset_id}"} if ds is not None
                 else {"dataset_id": None, "dataset_url": None})
    return text[:-1] + ", " + tail[1:], ds


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


def _page(app, dataset_id, viewer, start: int, stop: int) -> dict:
    ds = app.datasets.get(dataset_id, viewer)
    return {**ds.to_dict(start, stop), "can_edit": viewer.owns(ds)}


class DatasetHandler(JSONHandler):
    async def get(self, dataset_id):
        start = _int_arg(self, "start", 0, 0, 10**9)
        stop = _int_arg(self, "stop", start + 100, start, start + 10_000)
        self.send_json(await offloader(self.app).run(_page, self.app, dataset_id, self.viewer(), start, stop))

    async def post(self, dataset_id):
        changes = self.json_body(max_bytes=200_000)
        ds, changed = await offloader(self.app).run(self.app.datasets.edit, dataset_id, self.viewer(), changes)
        self.send_json({"dataset": ds.summary(), "changed": sorted(changed)})

    async def delete(self, dataset_id):
        await offloader(self.app).run(self.app.datasets.delete, dataset_id, self.viewer())
        self.send_json({"deleted": dataset_id})


class FreezeHandler(JSONHandler):
    async def post(self, dataset_id):
        frozen = await offloader(self.app).run(self.app.datasets.freeze, dataset_id, self.viewer())
        self.send_json({"dataset": frozen.summary(), "permalink": f"/datasets/{frozen.dataset_id}"})


class BuildersHandler(JSONHandler):
    def get(self):
        self.send_json({"builders": [b.describe() for b in self.app.product_builders]})


def _product_links(handler, dataset_id: str, status: dict) -> dict:
    status = dict(status)
    status["url"] = f"/api/datasets/{dataset_id}/products/{status['key']}"
    status["download"] = status["url"] + "/download" if status["status"] == "done" else None
    return status


class DatasetProductsHandler(JSONHandler):
    async def get(self, dataset_id):
        ds = await offloader(self.app).run(self.app.datasets.get, dataset_id, self.viewer())
        self.send_json({"products": [_product_links(self, ds.dataset_id, p)
                                     for p in self.app.products.for_dataset(ds.dataset_id)]})

    async def post(self, dataset_id):
        ds = await offloader(self.app).run(self.app.datasets.get, dataset_id, self.viewer())
        body = self.json_body(max_bytes=2_000_000)
        unknown = set(body) - {"builder", "options", "objects"}
        if unknown:
            raise UserError(f"unknown key {sorted(unknown)[0]!r}; give builder, options and objects")
        if not isinstance(body.get("builder"), str):
            raise UserError("name a product builder, e.g. {\"builder\": \"lightcurves\"}", field="builder")
        status = await offloader(self.app).run(self.app.products.request, self.app, ds, body["builder"],
                                               body.get("options"), body.get("objects"),
                                               check=product_check(self.app, self.viewer(), self.request.remote_ip))
        self.send_json(_product_links(self, ds.dataset_id, status), status=202 if status["status"] != "done" else 200)


async def _checked_product(handler, dataset_id: str, key: str):
    ds = await offloader(handler.app).run(handler.app.datasets.get, dataset_id, handler.viewer())
    if not re.fullmatch(r"[0-9a-f]{64}", key) or not handler.app.products.linked(ds.dataset_id, key):
        raise NotFound("this dataset has no such product")
    return ds, handler.app.products.status(key)


class ProductHandler(JSONHandler):
    async def get(self, dataset_id, key):
        ds, status = await _checked_product(self, dataset_id, key)
        if status["status"] == "done":
            with self.app.products.connect() as conn:
                manifest = conn.execute("SELECT manifest FROM products WHERE key = ?", (key,)).fetchone()[0]
            status["manifest"] = json.loads(manifest or "[]")
        self.send_json(_product_links(self, ds.dataset_id, status))


class ProductDownloadHandler(APIMixin, StaticFileHandler):
    """The product zip, with Range support (resumable) and its SHA256 in the headers."""

    def initialize(self, app):
        self.app = app
        StaticFileHandler.initialize(self, path=str(app.products.root))

    async def get(self, dataset_id, key, include_body=True):
        _ds, status = await _checked_product(self, dataset_id, key)
        if status["status"] != "done":
            raise UserError(f"the product is {status['status']}, not ready to download", field="status")
        path = self.app.products.file_path(key, status["builder"])
        ledger(self.app).touch("product", key)
        self.set_header("X-Content-SHA256", status["sha256"])
        self.set_header("Digest", "sha-256=" + base64.b64encode(bytes.fromhex(status["sha256"])).decode())
        self.set_header("Content-Disposition", f'attachment; filename="{status["filename"]}"')
        await super().get(str(path.relative_to(self.root)), include_body=include_body)

    def get_content_type(self):
        return "application/zip"


class DatasetURLsHandler(JSONHandler):
    async def get(self, dataset_id):
        from ..core.objects.lcexport import EXPORT_FORMATS

        kinds = self.get_query_argument("kind", None)
        kinds = tuple(FILE_KINDS) if not kinds else tuple(k.strip() for k in kinds.split(","))
        bad = [k for k in kinds if k not in FILE_KINDS]
        if bad:
            raise UserError(f"kind must be among {', '.join(FILE_KINDS)}, not {bad[0]!r}", field="kind")
        fmt = self.get_query_argument("format", "original")
        if fmt != "original" and fmt not in EXPORT_FORMATS:
            raise UserError(f"format must be original or one of {', '.join(EXPORT_FORMATS)} (one file per object)",
                            field="format")
        base = f"{self.request.protocol}://{self.request.host}"
        body = await offloader(self.app).run(_manifest, self.app, dataset_id, self.viewer(), base, kinds, fmt)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(body)


def _manifest(app, dataset_id, viewer, base: str, kinds, fmt: str) -> str:
    from ..core.objects.magcols import collection_magcols

    ds = app.datasets.get(dataset_id, viewer)
    return url_manifest(ds, base, lambda cid: collection_magcols(app.catalogs.get(cid).info.columns), kinds, fmt)




class ObjectFileHandler(JSONHandler):
    async def get(self, collection_id, objectid, kind):
        from ..core.objects.lcexport import EXPORT_FORMATS

        if kind not in FILE_KINDS:
            raise NotFound(f"no such file kind {kind!r}; use lightcurve, checkplot or periodfinding")
        catalog = self.app.catalogs.get(collection_id)
        column = _magcol_column(self, catalog) if kind == "checkplot" else FILE_KINDS[kind]
        fmt = self.get_query_argument("format", "original")
        if fmt == "original" and any(self.get_query_argument(k, None)
                                     for k in ("times", "mask") + (("magcol",) if kind == "lightcurve" else ())):
            raise UserError("times, mask and magcol apply to converted light curves: add format=csv, fits, ecsv or "
                            "votable", field="format")
        convert = kind == "lightcurve" and fmt != "original"
        if convert and fmt not in EXPORT_FORMATS:
            raise UserError(f"format must be original or one of {', '.join(EXPORT_FORMATS)}", field="format")
        from ..core.objects.lcrequest import REQUEST_KEYS, parse_request

        request = parse_request({k: self.get_query_argument(k, None) for k in REQUEST_KEYS}) if convert else None
        data, name, ctype, sha256 = await offloader(self.app).run(
            _object_file, self.app, catalog, objectid, kind, column, fmt if convert else None, request)
        self.set_header("Content-Type", ctype)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("X-Content-SHA256", sha256)
        self.finish(data)


def _object_file(app, catalog, objectid: str, kind: str, column: str, fmt: str | None, request) -> tuple:
    """(bytes, file name, content type, SHA256) of an object's file: as it is, or its light
    curve converted to ``fmt`` as ``request`` asks."""
    from ..core.objects import lcexport

    path = catalog.object_file(objectid, column)
    if path is None:
        must_exist(catalog, objectid)
        raise NotFound(f"no {kind} for object {objectid!r} in {catalog.info.collection_id!r}")
    if fmt is None:
        data, name, ctype = path.read_bytes(), path.name, "application/octet-stream"
        return data, name, ctype, hashlib.sha256(data).hexdigest()
    from ..core.objects.lccache import read_collection_lightcurve
    from ..core.objects.lcrequest import apply_request

    info = catalog.info
    lcfmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
    lc = apply_request(read_collection_lightcurve(lcfmt, info, path), request)
    suffix, ctype = lcexport.EXPORT_FORMATS[fmt][:2]
    data = lcexport.export_lightcurve(lc, fmt)
    return data, f"{objectid}{suffix}", ctype, hashlib.sha256(data).hexdigest()


class PNGHandler(JSONHandler):
    async def send_png(self, render) -> None:
        png = await offloader(self.app).run(render)
        self.set_header("Content-Type", "image/png")
        self.set_header("Cache-Control", "private, max-age=300")
        self.finish(png)


def _field(app, collection_id: str):
    from ..core.objects.finder import load_field

    info = app.catalogs.get(collection_id).info
    if not info.field_fits:
        raise NotFound(f"collection {collection_id!r} has no field image")
    return load_field(info.field_fits)


class DatasetFinderHandler(PNGHandler):
    """The dataset's objects on their collection's field image, zoomed to contain them all."""

    async def get(self, dataset_id):
        from ..core.objects.finder import finder_chart

        ds = await offloader(self.app).run(self.app.datasets.get, dataset_id, self.viewer())
        with_field = [c for c in ds.collections if self.app.catalogs.get(c).info.field_fits]
        cid = self.get_query_argument("collection", with_field[0] if with_field else None)
        if cid is None or cid not in ds.collections:
            raise NotFound("none of this dataset's collections has a field image")
        size = _int_arg(self, "size", 800, 128, 2000)

        def render():
            idx = [i for i, c in enumerate(ds.data["collection"]) if c == cid]
            ra = [ds.data["ra"][i] for i in idx]
            dec = [ds.data["decl"][i] for i in idx]
            labels = [ds.data["objectid"][i] for i in idx]
            return finder_chart(_field(self.app, cid), ra, dec, labels=labels, size_px=size, title=ds.name[:80]).png

        await self.send_png(render)


class ObjectFinderHandler(PNGHandler):
    async def get(self, collection_id, objectid):
        from ..core.objects.finder import object_stamp

        catalog = self.app.catalogs.get(collection_id)
        size = _int_arg(self, "size", 300, 64, 1200)

        def render():
            rows = catalog.query("SELECT ra, decl FROM object_catalog WHERE objectid = ?", (objectid,))
            if not rows:
                raise no_such_object(catalog, objectid)
            return object_stamp(_field(self.app, collection_id), rows[0][0], rows[0][1], size_px=size)

        await self.send_png(render)


def _magcol_column(handler, catalog) -> str:
    """The checkplot column for the request's ``magcol`` argument (default: the
    collection's first magcol; ``cpfname`` for collections without per-magcol checkplots)."""
    from ..core.objects.magcols import checkplot_column, choose_magcol

    magcol = choose_magcol(catalog.info.columns, handler.get_query_argument("magcol", None))
    return checkplot_column(magcol) if magcol else "cpfname"


def _checkplot(app, collection_id: str, objectid: str, handler) -> dict:
    from ..core.objects.checkplots import load_checkplot

    catalog = app.catalogs.get(collection_id)
    path = catalog.object_file(objectid, _magcol_column(handler, catalog))
    if path is None:
        must_exist(catalog, objectid)
        raise NotFound(f"no checkplot for object {objectid!r} in {collection_id!r}")
    return load_checkplot(path)


def _numbered(name: str, prefix: str, count: int) -> int | None:
    """n of ``<prefix>-<n>`` when 0 <= n < count, else None."""
    tail = name[len(prefix) + 1:] if name.startswith(prefix + "-") else ""
    return int(tail) if tail.isdigit() and len(tail) < 6 and int(tail) < count else None


def _no_tile(cp: dict, name: str) -> NotFound:
    from ..core.objects.checkplots import method_plots, tiles

    return NotFound(f"no tile {name!r}; use finder, unphased, phased-0..{len(tiles(cp)['phased']) - 1} or "
                    f"method-0..{len(method_plots(cp)) - 1}")


class ObjectTileHandler(PNGHandler):
    """Images from an object's checkplot: ``finder``, ``unphased``, ``phased-<n>`` (the n-th
    of the tiles' phased light curves: the adopted period when reviewed, else one per
    period-finding method) and ``method-<n>`` (the n-th period-finding method's phased
    light curve at its best period, whatever the review says: the object page's)."""

    async def get(self, collection_id, objectid, name):
        from ..core.objects.checkplots import method_plots, tiles

        def render():
            cp = _checkplot(self.app, collection_id, objectid, self)
            family = name.partition("-")[0]
            if name in ("finder", "unphased"):
                png = tiles(cp)[name]
            elif family in ("phased", "method"):  # decode only the family asked for
                images = tiles(cp)["phased"] if family == "phased" else method_plots(cp)
                n = _numbered(name, family, len(images))
                if n is None:
                    raise _no_tile(cp, name)
                png = images[n]["png"] if images[n] is not None else None
            else:
                raise _no_tile(cp, name)
            if png is None:
                raise NotFound(f"the checkplot has no {name} image")
            return png

        await self.send_png(render)


class ObjectTilesHandler(JSONHandler):
    """Which tiles an object has, with the period of each phased one."""

    async def get(self, collection_id, objectid):
        from ..core.objects.checkplots import method_plots, tiles
        from ..core.objects.magcols import choose_magcol

        def read():
            cp = _checkplot(self.app, collection_id, objectid, self)
            return tiles(cp), method_plots(cp)

        found, methods = await offloader(self.app).run(read)
        magcol = choose_magcol(self.app.catalogs.get(collection_id).info.columns,
                               self.get_query_argument("magcol", None))
        base = f"{object_path(collection_id, objectid)}/tiles"
        q = f"?magcol={segment(magcol)}" if magcol else ""
        self.send_json({
            "magcol": magcol,
            "finalized": found["finalized"], "varperiod": found["varperiod"],
            "finder": f"{base}/finder.png{q}" if found["finder"] else None,
            "unphased": f"{base}/unphased.png{q}" if found["unphased"] else None,
            "phased": [{"label": p["label"], "period": p["period"], "url": f"{base}/phased-{i}.png{q}"}
                       for i, p in enumerate(found["phased"])],
            "methods": [{"key": p["key"], "label": p["label"], "period": p["period"],
                         "url": f"{base}/method-{i}.png{q}" if p["png"] is not None else None}
                        for i, p in enumerate(methods) if p is not None],
        })


@hookimpl(trylast=True)
def register_routes(app):
    from ..views.search_types_page import SearchTypesPage

    kwargs = {"app": app}
    return [
        Route("api-collections", r"/api/collections/?", CollectionsHandler, kwargs),
        Route("api-collection", r"/api/collections/([^/]+)/?", CollectionHandler, kwargs),
        Route("api-search-types", r"/api/search/types/?", SearchTypesHandler, kwargs),
        Route("search-types-page", r"/search/types/?", SearchTypesPage, kwargs),
        Route("api-search", r"/api/search/?", SearchHandler, kwargs),
        Route("api-datasets", r"/api/datasets/?", DatasetsHandler, kwargs),
        Route("api-dataset", r"/api/datasets/([^/]+)/?", DatasetHandler, kwargs),
        Route("api-dataset-freeze", r"/api/datasets/([^/]+)/freeze/?", FreezeHandler, kwargs),
        Route("api-builders", r"/api/products/?", BuildersHandler, kwargs),
        Route("api-dataset-products", r"/api/datasets/([^/]+)/products/?", DatasetProductsHandler, kwargs),
        Route("api-product", r"/api/datasets/([^/]+)/products/([^/]+)/?", ProductHandler, kwargs),
        Route("api-product-download", r"/api/datasets/([^/]+)/products/([^/]+)/download/?", ProductDownloadHandler,
              kwargs),
        Route("api-dataset-urls", r"/api/datasets/([^/]+)/urls/?", DatasetURLsHandler, kwargs),
        Route("api-dataset-finder", r"/api/datasets/([^/]+)/finder\.png", DatasetFinderHandler, kwargs),
        Route("api-object-finder", r"/api/collections/([^/]+)/objects/([^/]+)/finder\.png", ObjectFinderHandler,
              kwargs),
        Route("api-object-tile", r"/api/collections/([^/]+)/objects/([^/]+)/tiles/([a-z0-9-]+)\.png",
              ObjectTileHandler, kwargs),
        Route("api-object-tiles", r"/api/collections/([^/]+)/objects/([^/]+)/tiles/?", ObjectTilesHandler, kwargs),
        # (not .../reviews nor .../periodsearch: other plugins' routes, whichever registers first)
        Route("api-object-file", r"/api/collections/([^/]+)/objects/([^/]+)/(?!(?:reviews|periodsearch)/?$)([a-z]+)/?",
              ObjectFileHandler, kwargs),
    ]
