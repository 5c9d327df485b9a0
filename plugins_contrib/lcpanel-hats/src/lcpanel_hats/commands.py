"""``lcpanel hats-export`` and ``lcpanel hats-add``."""

from __future__ import annotations

from lcpanel.plugin_api import Command


def _export_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("collection_id", help="the collection to export")
    parser.add_argument("out_dir", help="new directory for the HATS collection (catalog + margin cache)")
    parser.add_argument("--margin-arcsec", type=float, default=None,
                        help="margin cache width (default: the basedir's xmatch_max_radius_arcsec)")
    parser.add_argument("--pixel-threshold", type=int, default=1_000_000,
                        help="at most this many rows per partition (default 1000000)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers for the import (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _export(args) -> int:
    from .export import export_collection

    out = export_collection(args.basedir, args.collection_id, args.out_dir, margin_arcsec=args.margin_arcsec,
                            pixel_threshold=args.pixel_threshold, workers=args.workers,
                            show_progress=not args.quiet)
    print(f"exported collection {args.collection_id!r} to HATS at {out}")
    print(f"register it with: lcpanel hats-add {args.basedir} {out} --id {args.collection_id}_hats")
    return 0


def _add_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("hats_dir", help="a HATS catalog or collection directory (not copied)")
    parser.add_argument("--id", dest="collection_id", help="collection id (default: from the directory name)")
    for field in ("name", "description", "project", "citation"):
        parser.add_argument(f"--{field}", help=f"collection {field}")
    parser.add_argument("--datarelease", type=int, help="data release number")
    parser.add_argument("--id-column", help="the object id column (default: objectid, id, source_id...)")


def _add(args) -> int:
    from lcpanel.plugin_api import App, Basedir

    from .register import add_hats_collection

    meta = {k: getattr(args, k) for k in ("name", "description", "project", "citation", "datarelease")}
    info = add_hats_collection(App(args.basedir), Basedir(args.basedir), args.hats_dir,
                               collection_id=args.collection_id, meta=meta, id_column=args.id_column)
    print(f"added HATS collection {info.collection_id!r} ({info.name}): {info.nobjects} objects, "
          f"{len(info.columns)} columns")
    return 0


def commands() -> list[Command]:
    return [
        Command("hats-export", "export a collection to HATS (partitioned Parquet + margin cache)",
                _export_args, _export),
        Command("hats-add", "register a HATS catalog as a collection searched through LSDB", _add_args, _add),
    ]
