"""Built-in product builders: light curves, checkplots, period-finding results, and the
whole dataset; and the event listeners that keep products in step with dataset edits."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.objects.lccache import cache_dir
from ..core.objects.lcexport import EXPORT_FORMATS, export_lightcurve
from ..core.objects.lcrequest import REQUEST_KEYS, describe_request, parse_request
from ..core.objects.magcols import is_checkplot_column
from ..core.products import CONVERTED_FIXED, CONVERTED_GROWTH, Entry, ProductBuilder, summary_csv
from ..errors import UserError
from ..hookspecs import hookimpl

LC_FORMATS = ("original",) + tuple(EXPORT_FORMATS) + ("parquet",)


def object_file(app, collection_id: str, relpath: str | None) -> Path | None:
    """The absolute path of a collection's file, refusing anything outside its directory."""
    return app.catalogs.get(collection_id).info.object_file(relpath)


def _files(app, dataset, rows, column: str, folder: str) -> list[Entry]:
    out = []
    for i in rows:
        cid = dataset.data["collection"][i]
        path = object_file(app, cid, dataset.data.get(column, [None] * dataset.nobjects)[i])
        if path is not None:
            out.append(Entry(arcname=f"{folder}/{cid}/{path.name}", kind="file", source=str(path)))
    return out


def _checkplots(app, dataset, rows) -> list[Entry]:
    """Every checkplot of the rows' objects: the default ``cpfname`` and one per magcol
    (``<magcol>_cpfname``), each file once."""
    columns = [c for c in dataset.data if is_checkplot_column(c)]
    seen, out = set(), []
    for column in columns:
        for entry in _files(app, dataset, rows, column, "checkplots"):
            if entry.arcname not in seen:
                seen.add(entry.arcname)
                out.append(entry)
    return out


def _lightcurves(app, dataset, rows, fmt: str, request: dict | None = None) -> list[Entry]:
    """``request``: the light-curve options asked (magcol, times, mask, masked; see
    :mod:`lcpanel.core.objects.lcrequest`), passed to the worker only when given, so a
    product without them keeps its key."""
    if fmt == "original":
        return _files(app, dataset, rows, "lcfname", "lightcurves")
    if fmt == "parquet":
        return _parquet(app, dataset, rows, request)
    suffix = EXPORT_FORMATS[fmt][0]
    out = []
    for i in rows:
        cid = dataset.data["collection"][i]
        path = object_file(app, cid, dataset.data.get("lcfname", [None] * dataset.nobjects)[i])
        if path is None:
            continue
        info = app.catalogs.get(cid).info
        if info.lcformat is None:
            raise UserError(f"collection {cid!r} has no light-curve format to convert from; "
                            "ask for format 'original'", field="format")
        fmt_cls = app.lc_formats.get(info.lcformat["kind"])
        args = {"lcformat": f"{fmt_cls.__module__}:{fmt_cls.__qualname__}", "spec": info.lcformat,
                "base": str(info.source), "path": str(path), "fmt": fmt, "cache": str(cache_dir(info))}
        if request:
            args["request"] = request
        out.append(Entry(arcname=f"lightcurves/{cid}/{dataset.data['objectid'][i]}{suffix}", kind="call",
                         func=f"{__name__}:converted_lightcurve", args=args, inputs=(str(path),),
                         growth=CONVERTED_GROWTH, overhead=CONVERTED_FIXED))
    return out


def converted_lightcurve(lcformat: str, spec: dict, base: str, path: str, fmt: str,
                         request: dict | None = None, cache: str | None = None) -> bytes:
    """One light curve read with its collection's format (or from the collection's
    light-curve ``cache`` directory, when it holds a fresh copy), prepared as ``request``
    asks and exported as ``fmt`` (runs in the product worker: ``lcformat`` is the
    registered :class:`LCFormat` class as ``"module:Class"``, set by the builder, never by
    a user)."""
    from ..core.objects.lccache import cached_read, worker_reader
    from ..core.objects.lcrequest import apply_request

    reader, lccache, token = worker_reader(lcformat, spec, base, cache)
    lc = cached_read(reader, spec, path, lccache, token)
    return export_lightcurve(apply_request(lc, request) if request else lc, fmt)


def _parquet(app, dataset, rows, request: dict | None = None) -> list[Entry]:
    """One member, ``lightcurves.parquet``: every light curve in one long table (see
    :mod:`lcpanel.core.objects.lcparquet`), written in the worker."""
    objects, collections = [], {}
    for i in rows:
        cid = dataset.data["collection"][i]
        path = object_file(app, cid, dataset.data.get("lcfname", [None] * dataset.nobjects)[i])
        if path is None:
            continue
        if cid not in collections:
            info = app.catalogs.get(cid).info
            if info.lcformat is None:
                raise UserError(f"collection {cid!r} has no light-curve format to convert from; "
                                "ask for format 'original'", field="format")
            fmt_cls = app.lc_formats.get(info.lcformat["kind"])
            collections[cid] = {"lcformat": info.lcformat, "base": str(info.source),
                                "reader": f"{fmt_cls.__module__}:{fmt_cls.__qualname__}",
                                "cache": str(cache_dir(info))}
        objects.append([cid, str(dataset.data["objectid"][i]), str(path)])
    if not objects:
        return []
    args = {"objects": objects, "collections": collections}
    if request:
        args["request"] = request
    return [Entry(arcname="lightcurves.parquet", kind="stream", func="lcpanel.core.objects.lcparquet:dataset_parquet",
                  args=args, inputs=tuple(source for _, _, source in objects), growth=CONVERTED_GROWTH,
                  overhead=CONVERTED_FIXED)]


def readme(dataset, rows, options: dict, request: dict) -> bytes:
    """The light-curve zip's README: what it holds and the options it was built with."""
    lines = [f"Light curves of dataset {dataset.dataset_id} ({dataset.name or 'unnamed'}), {len(rows)} objects,",
             f"format {options['format']}.", "",
             "Options: " + (", ".join(f"{k}={request[k]}" for k in REQUEST_KEYS if request.get(k))
                            or "none (every column and point as stored)")]
    lines += [f"- {line}" for line in describe_request(request)]
    if options["format"] == "parquet" and request.get("mask") and request.get("masked") == "drop":
        lines.append("- Parquet: the count of removed points is not stored per object; build with masked=flag "
                     "to keep every point with its 'masked' flag")
    lines += ["", "Each file's header (CSV/ECSV comments, FITS keywords and COMMENTs, VOTable INFOs and",
              "TIMESYS, Parquet field and schema metadata) states every column's unit, role and",
              "description, the time systems, and the options applied to it."]
    return ("\n".join(lines) + "\n").encode()


class LightcurvesProduct(ProductBuilder):
    name = "lightcurves"
    title = "Light curves"
    description = ("The light curves, as the survey wrote them or converted (CSV, CSV.gz, FITS, ECSV, VOTable: "
                   "one file per object; Parquet: one long table of every light curve).")
    options = {"format": LC_FORMATS}
    #: options taking names (checked by lcrequest.parse_request, then against the light curves)
    request_options = {
        "magcol": "one magnitude/flux column (series) to keep, with its own errors and flags; '': every column",
        "times": "a time column to keep as the only one (e.g. bjd), or a system to add times in: "
                 "BJD_TDB, HJD_UTC, MJD_UTC, JD_UTC; '': as stored",
        "mask": "comma-separated named quality masks of the format (e.g. aiq_000_good, default); '': none",
        "masked": "drop (remove the points a mask rejects) or flag (keep them, with a boolean column 'masked')",
    }

    @classmethod
    def validate_options(cls, options):
        from ..core.suggest import did_you_mean

        request = {}
        if isinstance(options, dict):
            known = [*cls.options, *REQUEST_KEYS]
            for key in options:
                if key not in known:
                    raise UserError(f"{cls.name} has no option {key!r}: {did_you_mean(key, known)}", field=key)
            options = dict(options)
            request = {k: options.pop(k) for k in REQUEST_KEYS if k in options}
        out = super().validate_options(options)
        request = parse_request(request)
        if out["format"] == "original":
            asked = [k for k in ("magcol", "times", "mask") if request[k]]
            if asked:
                raise UserError(f"{asked[0]} applies to converted light curves: choose a format other than original "
                                f"({', '.join(LC_FORMATS[1:])})", field=asked[0])
        # only what was asked joins the options (and the product's key)
        out.update({k: request[k] for k in ("magcol", "times", "mask") if request[k]})
        if request["mask"]:
            out["masked"] = request["masked"]
        return out

    @classmethod
    def describe(cls) -> dict:
        return {**super().describe(), "request_options": dict(cls.request_options)}

    def plan(self, app, dataset, rows, options):
        request = {k: options[k] for k in REQUEST_KEYS if k in options}
        if request:  # before any work: each collection's first light curve must give it
            from ..core.objects.lcchoices import check_request

            check_request(app, dataset, rows, request)
        entries = _lightcurves(app, dataset, rows, options["format"], request)
        if request and entries:  # (without options the zip holds the files alone, as before)
            entries.append(Entry(arcname="README.txt", kind="bytes", data=readme(dataset, rows, options, request)))
        return entries


class CheckplotsProduct(ProductBuilder):
    name = "checkplots"
    title = "Checkplots"
    description = ("astrobase checkplot pickles (objectinfo, finder, phased light curves, periodograms), one per "
                   "object and magnitude column.")

    def plan(self, app, dataset, rows, options):
        return _checkplots(app, dataset, rows)


class PeriodfindingProduct(ProductBuilder):
    name = "periodfinding"
    title = "Period-finding results"
    description = "astrobase period-finding result pickles."

    def plan(self, app, dataset, rows, options):
        return _files(app, dataset, rows, "pffname", "periodfinding")


class DatasetProduct(ProductBuilder):
    name = "dataset"
    title = "Whole dataset"
    description = ("Light curves (original), checkplots, period-finding results, a CSV of every object's "
                   "information and the dataset's search and comments.")

    def plan(self, app, dataset, rows, options):
        about = {"dataset_id": dataset.dataset_id, "name": dataset.name, "description": dataset.description,
                 "search": dataset.spec, "nobjects": len(rows), "comments": dataset.comments,
                 "object_comments": dataset.object_comments, "created": dataset.created}
        return (_lightcurves(app, dataset, rows, "original")
                + _checkplots(app, dataset, rows)
                + _files(app, dataset, rows, "pffname", "periodfinding")
                + [Entry(arcname="objects.csv", kind="bytes", data=summary_csv(dataset, rows)),
                   Entry(arcname="dataset.json", kind="bytes",
                         data=json.dumps(about, indent=1, sort_keys=True, default=str).encode())])


@hookimpl(trylast=True)
def register_product_builders(app):
    return [LightcurvesProduct, CheckplotsProduct, PeriodfindingProduct, DatasetProduct]


@hookimpl(trylast=True)
def dataset_updated(app, dataset, changes):
    if "objects" in changes:
        app.products.dataset_changed(app, dataset)


@hookimpl(trylast=True)
def dataset_deleted(app, dataset_id):
    app.products.dataset_deleted(dataset_id)


@hookimpl(trylast=True)
def startup(app):
    """Repair what a killed process left behind. Uses stores of its own, closed at once:
    ``lcpanel serve --num-procs`` forks after start-up and no connection may cross it."""
    from ..core.datasets import DatasetStore
    from ..core.products import ProductStore

    if app.basedir is None or not (app.basedir / "datasets").is_dir():
        return
    datasets, products = DatasetStore(app.basedir), ProductStore(app.basedir)
    try:
        datasets.recover()
        products.recover()
    finally:
        datasets.close()
        products.shutdown()


@hookimpl(trylast=True)
def shutdown(app):
    if "products" in app.__dict__:
        app.products.shutdown()
