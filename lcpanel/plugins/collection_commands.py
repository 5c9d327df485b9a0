"""Built-in CLI commands for basedirs and collections: ``init``, ``add-collection``,
``remove-collection``, ``collections``, ``plugins``, ``import-lccserver``,
``cache-lightcurves``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..extension import Command
from ..hookspecs import hookimpl


#: processes reading light curves into the cache: one per core
CACHE_WORKERS = os.cpu_count() or 1


def _app(basedir):
    from ..app import App

    return App(basedir)


# --- init ---------------------------------------------------------------------------------


def _init_args(parser):
    parser.add_argument("basedir", help="directory to create (or an empty existing one)")


def _init(args) -> int:
    from ..core.catalogs.basedir import Basedir

    base = Basedir.init(args.basedir)
    print(f"created lcpanel basedir {base.path}")
    return 0


# --- add-collection -----------------------------------------------------------------------


def _add_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir (see 'lcpanel init')")
    parser.add_argument("source", help="a collection directory with lclist-catalog.pkl, lightcurves/, checkplots/, "
                                       "periodfinding/; or a catalog file (.csv, .fits, .parquet, .ecsv, .vot)")
    parser.add_argument("--id", dest="collection_id", help="collection id used in URLs and queries "
                                                           "(default: from the directory or file name)")
    for field in ("name", "description", "project", "citation"):
        parser.add_argument(f"--{field}", help=f"collection {field} (default: collection.json in the directory)")
    parser.add_argument("--datarelease", type=int, help="data release number")
    fmt = parser.add_argument_group("light-curve format (collection directories only)")
    fmt.add_argument("--lcformat", help="astrobase LC format key (default: collection.json, then the lclist's)")
    fmt.add_argument("--lcformat-dir", help="directory holding the astrobase format JSON for --lcformat")
    fmt.add_argument("--lcformat-description", help="an lcc-server style format description JSON file")
    parser.add_argument("--field-fits", help="FITS image of the field with a celestial WCS (finder charts)")
    parser.add_argument("--index-column", action="append", default=[], help="also index this column (repeatable)")
    cat = parser.add_argument_group("plain catalogs")
    cat.add_argument("--id-column", help="object id column (default: objectid, id, source_id, name)")
    cat.add_argument("--ra-column", help="right ascension column in degrees (default: ra, ra_deg, raj2000)")
    cat.add_argument("--dec-column", help="declination column in degrees (default: decl, dec, dec_deg, dej2000)")
    parser.add_argument("--cache-lightcurves", action="store_true",
                        help="then keep its light curves parsed, for fast bulk exports (as 'lcpanel "
                             "cache-lightcurves' does; costs about their uncompressed size in disk)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add(args) -> int:
    from ..core.catalogs.basedir import Basedir
    from ..core.catalogs.ingest import add_astrobase_collection, add_catalog_collection
    from ..errors import UserError

    basedir = Basedir(args.basedir)
    app = _app(args.basedir)
    meta = {k: getattr(args, k) for k in ("name", "description", "project", "citation", "datarelease")}
    source = Path(args.source)
    common = dict(collection_id=args.collection_id, meta=meta, index_columns=tuple(args.index_column),
                  show_progress=not args.quiet)
    if source.is_dir():
        lcformat = None
        if args.lcformat_description:
            lcformat = {"kind": "lcc-description", "path": str(Path(args.lcformat_description).resolve())}
        elif args.lcformat:
            lcformat = {"kind": "astrobase", "formatkey": args.lcformat,
                        "lcformat_dir": str(Path(args.lcformat_dir).resolve()) if args.lcformat_dir else None}
        info = add_astrobase_collection(app, basedir, source, lcformat=lcformat, field_fits=args.field_fits,
                                        **common)
    elif source.is_file():
        if args.cache_lightcurves:
            raise UserError(f"{args.source} is a catalog file: it has no light curves to cache")
        info = add_catalog_collection(app, basedir, source, id_column=args.id_column, ra_column=args.ra_column,
                                      dec_column=args.dec_column, **common)
    else:
        raise UserError(f"{args.source} does not exist")
    print(f"added collection {info.collection_id!r} ({info.name}): {info.nobjects} objects, "
          f"{len(info.columns)} columns")
    from ..core.catalogs.ingest import ingest_notes

    for note in ingest_notes(info):
        print(f"note: {note}")
    if info.lcformat is not None:
        if args.cache_lightcurves:
            _report_cache(info.collection_id, _build_cache(app, info.collection_id, CACHE_WORKERS, args.quiet))
        else:
            print(f"tip: for fast bulk exports, keep its light curves parsed: "
                  f"lcpanel cache-lightcurves {args.basedir} {info.collection_id}")
    return 0


# --- remove-collection --------------------------------------------------------------------


def _remove_args(parser):
    parser.add_argument("basedir")
    parser.add_argument("collection_id")


def _remove(args) -> int:
    from ..core.catalogs.basedir import Basedir
    from ..core.catalogs.ingest import remove_collection

    remove_collection(_app(args.basedir), Basedir(args.basedir), args.collection_id)
    print(f"removed collection {args.collection_id!r}")
    return 0


# --- collections --------------------------------------------------------------------------


def _list_args(parser):
    parser.add_argument("basedir")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _list(args) -> int:
    from ..core.catalogs.basedir import Basedir

    infos = Basedir(args.basedir).collections()
    if args.format == "json":
        print(json.dumps([i.summary() for i in infos], indent=2))
        return 0
    if not infos:
        print("no collections yet: add one with 'lcpanel add-collection'")
        return 0
    print(f"{'id':<24} {'objects':>10}  {'kind':<10} name")
    for i in infos:
        print(f"{i.collection_id:<24} {i.nobjects:>10}  {i.kind:<10} {i.name}")
    return 0


# --- plugins ------------------------------------------------------------------------------


def _plugins_args(parser):
    parser.add_argument("basedir", nargs="?", help="use this basedir's plugin settings")


def _plugins(args) -> int:
    app = _app(args.basedir)
    for name in app.plugin_names():
        print(name)
    for attr in ("search_backends", "product_builders", "lc_formats", "pages", "routes", "commands"):
        registry = getattr(app, attr)
        print(f"{registry.kind}s: " + (", ".join(f"{n} ({registry.owner(n)})" for n in registry.names()) or "none"))
    return 0


# --- import-lccserver ---------------------------------------------------------------------


def _import_lcc_args(parser):
    parser.add_argument("lcc_basedir", help="an lcc-server basedir (holding lcc-index.sqlite)")
    parser.add_argument("basedir", help="an lcpanel basedir (see 'lcpanel init')")
    parser.add_argument("--include-private", action="store_true",
                        help="also import collections lcc-server shows only to their owner or 'shared with' list")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _import_lcc(args) -> int:
    from ..core.catalogs.basedir import Basedir
    from ..core.catalogs.lccimport import import_lccserver, print_report

    report = import_lccserver(_app(args.basedir), Basedir(args.basedir), args.lcc_basedir,
                              include_private=args.include_private, show_progress=not args.quiet)
    print_report(report)
    return 0 if report["imported"] or not report["skipped"] else 1


# --- cache-lightcurves --------------------------------------------------------------------


def _cache_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("collection_id", help="the collection whose light curves to cache")
    parser.add_argument("--workers", type=int, default=CACHE_WORKERS,
                        help="processes reading light curves (default: one per core)")
    parser.add_argument("--drop", action="store_true", help="delete the collection's cache instead")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _cache(args) -> int:
    import shutil

    from ..core.objects.lccache import cache_dir

    app = _app(args.basedir)
    if args.drop:
        root = cache_dir(app.catalogs.get(args.collection_id).info)
        shutil.rmtree(root, ignore_errors=True)
        print(f"deleted the light-curve cache of {args.collection_id!r}")
        return 0
    _report_cache(args.collection_id, _build_cache(app, args.collection_id, args.workers, args.quiet))
    return 0


def _build_cache(app, collection_id: str, workers: int, quiet: bool) -> dict:
    from ..core.objects.lccache import build_cache

    return build_cache(app, collection_id, workers=max(1, workers), show_progress=not quiet)


def _report_cache(collection_id: str, counts: dict) -> None:
    print(f"light-curve cache of {collection_id!r}: {counts['cached']} cached, {counts['fresh']} already "
          f"fresh, {counts['uncacheable']} not cacheable (read by their format as before), "
          f"{counts['unreadable']} unreadable; {counts['bytes'] / 1e6:.1f} MB")


@hookimpl(trylast=True)
def register_commands(app):
    return [
        Command("init", "create an lcpanel basedir", _init_args, _init),
        Command("add-collection", "ingest a collection directory or catalog file into a basedir", _add_args, _add),
        Command("remove-collection", "unregister a collection and delete its derived catalog", _remove_args, _remove),
        Command("collections", "list the collections of a basedir", _list_args, _list),
        Command("plugins", "list the loaded plugins and what they register", _plugins_args, _plugins),
        Command("cache-lightcurves", "keep a collection's light curves parsed, for fast bulk exports "
                "(costs about their uncompressed size in disk)", _cache_args, _cache),
        Command("import-lccserver", "register every collection of an lcc-server basedir (no copying)",
                _import_lcc_args, _import_lcc),
    ]
