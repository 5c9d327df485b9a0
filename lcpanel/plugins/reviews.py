"""Object reviews from scripts, and their export into checkplots by the operator.

JSON API (through the API base handler: identity, request budget, JSON errors):

- ``GET /api/collections/<id>/objects/<objectid>/reviews[?magcol=]``: ``values``
  (variability info, reviews merged over the survey's), ``survey`` (the survey's own
  values), ``comments`` (author, time, text; ``can_change`` for you), ``history`` and
  ``may_edit_varinfo``
- ``POST`` the same URL with ``{"comment": "text"}`` appends a comment (201); with
  ``{"varinfo": {"vartags": "...", ...}, "magcol": ..., "expect": {...}}`` (staff) sets
  variability info; both may be given together
- ``POST .../reviews/comments/<n>`` ``{"text": ...}`` edits a comment, ``DELETE``
  deletes it (the author's own, or any for an admin)

- ``GET /api/collections/<id>/objects/<objectid>/reviews/periods[?magcol=]``: the saved
  periods (the reviewer's adopted one first) and the shared epoch
  (:mod:`lcpanel.core.objects.savedperiods`); ``POST`` ``{"period": 1.23, "label": "...",
  "magcol": ..., "epoch": ...}`` saves one (201), ``{"epoch": ...}`` alone (staff) sets
  the shared epoch; ``DELETE .../reviews/periods/<n>`` deletes one (its author's, or any
  for an admin)

CLI: ``lcpanel reviews export BASEDIR COLLECTION [--dry-run]``.
"""

from __future__ import annotations

from ..core.objects import reviews, savedperiods
from ..core.offload import offloader
from ..errors import UserError
from ..extension import Command, Route
from ..hookspecs import hookimpl
from ..jsonapi import JSONHandler

MAX_BODY_BYTES = 100_000


class ObjectReviewsHandler(JSONHandler):
    def _info(self, collection_id: str):
        return self.app.catalogs.get(collection_id).info

    def get(self, collection_id, objectid):
        viewer = self.viewer()
        info = self._info(collection_id)
        out = reviews.object_reviews(self.app.basedir, info, objectid, magcol=self.get_query_argument("magcol", None))
        for c in out["comments"]:
            c["can_change"] = reviews.can_change_comment(viewer, c)
        out["may_edit_varinfo"] = reviews.can_edit_varinfo(viewer)
        self.send_json(out)

    async def post(self, collection_id, objectid):
        body = self.json_body(MAX_BODY_BYTES)
        unknown = set(body) - {"comment", "varinfo", "magcol", "expect"}
        if unknown or not ({"comment", "varinfo"} & set(body)):
            raise UserError('give {"comment": "text"} to comment, or (staff) {"varinfo": {"vartags": ...}}'
                            + (f"; unknown key {sorted(unknown)[0]!r}" if unknown else ""))
        viewer = self.viewer()
        info = self._info(collection_id)

        def write() -> dict:
            out = {}
            if "varinfo" in body:
                out["varinfo"] = reviews.set_varinfo(self.app.basedir, info, objectid, viewer, body["varinfo"],
                                                     magcol=body.get("magcol"), expect=body.get("expect"))
            if "comment" in body:
                out["comment"] = reviews.add_comment(self.app.basedir, info, objectid, viewer, body["comment"],
                                                     settings=self.app.config.reviews)
            return out

        out = await offloader(self.app).run(write)  # SQLite writes may wait for the catalog's lock
        self.send_json(out, status=201 if "comment" in out else 200)


class ObjectCommentHandler(JSONHandler):
    def _args(self, collection_id, comment_id):
        return self.app.catalogs.get(collection_id).info, int(comment_id)

    async def post(self, collection_id, objectid, comment_id):
        body = self.json_body(MAX_BODY_BYTES)
        if set(body) != {"text"}:
            raise UserError('give {"text": "the new text"}', field="text")
        info, cid = self._args(collection_id, comment_id)
        comment = await offloader(self.app).run(reviews.edit_comment, self.app.basedir, info, objectid, cid,
                                                self.viewer(), body["text"], settings=self.app.config.reviews)
        self.send_json({"comment": comment})

    async def delete(self, collection_id, objectid, comment_id):
        info, cid = self._args(collection_id, comment_id)
        await offloader(self.app).run(reviews.delete_comment, self.app.basedir, info, objectid, cid, self.viewer())
        self.send_json({"deleted": cid})


class SavedPeriodsHandler(JSONHandler):
    def get(self, collection_id, objectid):
        viewer = self.viewer()
        out = savedperiods.object_periods(self.app.basedir, self.app.catalogs.get(collection_id), objectid,
                                          magcol=self.get_query_argument("magcol", None))
        for p in out["periods"]:
            p["can_delete"] = savedperiods.can_delete(viewer, p)
        self.send_json(out)

    async def post(self, collection_id, objectid):
        body = self.json_body(MAX_BODY_BYTES)
        unknown = set(body) - {"period", "label", "magcol", "epoch"}
        if unknown or not ({"period", "epoch"} & set(body)):
            raise UserError('give {"period": days, "label": "..."} to save a period, or (staff) {"epoch": time}'
                            + (f"; unknown key {sorted(unknown)[0]!r}" if unknown else ""))
        viewer = self.viewer()
        catalog = self.app.catalogs.get(collection_id)

        def write() -> dict:
            if "period" in body:
                return {"period": savedperiods.save_period(self.app.basedir, catalog, objectid, viewer, body["period"],
                                                           label=body.get("label"), magcol=body.get("magcol"),
                                                           epoch=body.get("epoch"))}
            return {"epoch": savedperiods.set_epoch(self.app.basedir, catalog, objectid, viewer, body["epoch"])}

        out = await offloader(self.app).run(write)
        self.send_json(out, status=201 if "period" in out else 200)


class SavedPeriodHandler(JSONHandler):
    async def delete(self, collection_id, objectid, period_id):
        catalog = self.app.catalogs.get(collection_id)
        await offloader(self.app).run(savedperiods.delete_period, self.app.basedir, catalog, objectid, self.viewer(),
                                      int(period_id))
        self.send_json({"deleted": int(period_id)})


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("api-object-reviews", r"/api/collections/([^/]+)/objects/([^/]+)/reviews/?", ObjectReviewsHandler,
              kwargs),
        Route("api-object-comment", r"/api/collections/([^/]+)/objects/([^/]+)/reviews/comments/([0-9]{1,15})/?",
              ObjectCommentHandler, kwargs),
        Route("api-object-periods", r"/api/collections/([^/]+)/objects/([^/]+)/reviews/periods/?", SavedPeriodsHandler,
              kwargs),
        Route("api-object-period", r"/api/collections/([^/]+)/objects/([^/]+)/reviews/periods/([0-9]{1,15})/?",
              SavedPeriodHandler, kwargs),
    ]


# --- CLI ----------------------------------------------------------------------------------------


def _args(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("export", help="write a collection's reviews (variability info, comments) into its "
                                      "checkplot pickles, each replaced atomically")
    p.add_argument("basedir", help="an lcpanel basedir")
    p.add_argument("collection_id", help="the collection whose checkplots to update")
    p.add_argument("--dry-run", action="store_true", help="print what would change and change nothing")


def _short(value, width: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 1] + "…"


def _run(args) -> int:
    items = reviews.export_reviews(args.basedir, args.collection_id, dry_run=args.dry_run)
    written = [i for i in items if i["changes"]]
    for item in items:
        if item.get("skipped"):
            print(f"{item['objectid']}: skipped: {item['skipped']}")
            continue
        print(f"{item['objectid']}  {item['path']}" + (f"  NOT UPDATED: {item['error']}" if item.get("error") else ""))
        for field, change in item["changes"].items():
            print(f"    {field}: {_short(change['old'])} -> {_short(change['new'])}")
    failed = [i for i in written if i.get("error")]
    if failed:
        print(f"{len(written) - len(failed)} checkplots updated; {len(failed)} could not be written")
        return 1
    if not written:
        print(f"nothing to export: the checkplots of {args.collection_id!r} already hold its reviews")
    elif args.dry_run:
        print(f"dry run: {len(written)} checkplots would change; nothing was written")
    else:
        print(f"{len(written)} checkplots updated")
    return 0


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("reviews", "export object reviews into a collection's checkplots", _args, _run)]
