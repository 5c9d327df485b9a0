"""Built-in DataLink service: ``/datalink`` (IDs of any collection) and
``/datalink/<collection>`` (bare object ids; what the service descriptors in TAP and cone
search results point at), and the light-curve preview PNG its ``#preview`` links name
(``/api/collections/<c>/objects/<id>/preview.png``). See :mod:`lcpanel.core.vo.datalink`."""

from __future__ import annotations

from pathlib import Path

from ...core.vo.datalink import LINKS_MIME, MAX_IDS, links_document, links_for
from ...core.offload import offloader
from ...core.vo.voformats import find_format, known_names
from ...errors import NotFound, TooLarge, UserError
from ...extension import Route
from ...hookspecs import hookimpl
from .base import VOHandler

class DataLinkHandler(VOHandler):
    async def get(self, collection_id=None):
        ids = self.all_params("ID")
        if not ids:
            raise UserError("UsageFault: the ID parameter is required (one or more object identifiers)")
        if len(ids) > MAX_IDS:
            raise TooLarge(f"UsageFault: at most {MAX_IDS} IDs per request; this one has {len(ids)}")
        raw = self.params().get("RESPONSEFORMAT")
        # DataLink 1.1: TABLEDATA unless another serialization is asked for by name
        asked = raw and "".join(raw.split()).lower() not in ("votable", LINKS_MIME, "application/x-votable+xml")
        fmt = find_format(raw if asked else "votable/td")
        if fmt is None:
            raise UserError(f"UsageFault: RESPONSEFORMAT={raw[:60]!r} is not supported; use {LINKS_MIME} "
                            f"or one of {known_names()}")
        if collection_id is not None:
            self.app.catalogs.get(collection_id)  # NotFound with a did-you-mean
        base = self.base_url()
        catalogs = self.app.catalogs

        def run():
            return links_document(links_for(catalogs, ids, base, default_collection=collection_id), fmt)

        body = await offloader(self.app).run(run)
        mime = LINKS_MIME if fmt.key == "votable/td" else (
            f"{fmt.mime};content=datalink" if fmt.key.startswith("votable") else fmt.mime)
        self.send_body(body, mime)

    post = get


class PreviewHandler(VOHandler):
    """A PNG of the light curve as stored (``magcol=``: of that series), for DataLink's
    ``#preview``."""

    async def get(self, collection_id, objectid):
        from ...core.objects.lcpreview import preview_png

        catalog = self.app.catalogs.get(collection_id)
        rows = catalog.query("SELECT lcfname FROM object_catalog WHERE objectid = ?", (objectid,)) \
            if "lcfname" in catalog.columns else []
        info = catalog.info
        path = info.object_file(rows[0][0]) if rows else None
        if path is None:
            raise NotFound(f"no light curve for object {objectid!r} in {collection_id!r}")
        formats = self.app.lc_formats
        magcol = self.params().get("MAGCOL") or None

        def render():
            from ...core.objects.lccache import read_collection_lightcurve
            from ...core.objects.lcrequest import prepare_lightcurve

            lcfmt = formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
            lc = prepare_lightcurve(read_collection_lightcurve(lcfmt, info, path), magcol=magcol)
            return preview_png(lc, title=f"{objectid} ({info.name or collection_id})"
                               + (f", {lc.meta['magcol']}" if magcol else ""))

        png = await offloader(self.app).run(render)
        self.set_header("Cache-Control", "public, max-age=3600")
        self.send_body(png, "image/png")


@hookimpl
def startup(app):
    """A batch of MAX_IDS IDs may come as one form-encoded POST: Tornado's default cap of
    1,000 form fields (a guard against hash-flooding bodies) is raised to just above it.
    The body size stays capped by the server's request-size limit."""
    import dataclasses

    from tornado import httputil

    if hasattr(httputil, "ParseUrlEncodedConfig"):  # tornado >= 6.5.8
        config = httputil._DEFAULT_PARSE_BODY_CONFIG
        if config.urlencoded.max_arguments < MAX_IDS + 16:
            httputil.set_parse_body_config(dataclasses.replace(
                config, urlencoded=dataclasses.replace(config.urlencoded, max_arguments=MAX_IDS + 16)))


@hookimpl
def collection_added(app, collection):
    """Compute the new collection's ObsCore rows now (reading each light curve once), not
    at the first TAP query."""
    from ...core.vo.obscore import part_path, served_collections, write_part, object_rows

    for info, catalog, read in served_collections(app.catalogs, app.lc_formats):
        if info.collection_id == collection.collection_id and "lcfname" in catalog.columns:
            path = part_path(app.basedir, info)
            if not path.is_file():
                write_part(path, object_rows(catalog, info, read))


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("datalink", r"/datalink/?", DataLinkHandler, kwargs),
        Route("datalink-collection", r"/datalink/([^/]+)/?", DataLinkHandler, kwargs),
        Route("api-object-preview", r"/api/collections/([^/]+)/objects/([^/]+)/preview\.png", PreviewHandler, kwargs),
    ]
