"""CLI commands for datasets and products, run as the basedir's operator (who may see and
manage every dataset):

    lcpanel dataset list BASEDIR [--mine] [--query TEXT]
    lcpanel dataset show BASEDIR ID [--format table|json|csv] [--limit N]
    lcpanel dataset edit BASEDIR ID [--name ...] [--description ...] [--visibility ...]
                                    [--remove KEY ...] [--keep KEY ...] [--comment TEXT]
    lcpanel dataset freeze BASEDIR ID
    lcpanel dataset delete BASEDIR ID
    lcpanel product build BASEDIR ID BUILDER [--format csv] [--magcol COL] [--times COL|SYSTEM]
                                             [--mask NAME,...] [--masked drop|flag] [--objects KEY ...]
    lcpanel product get BASEDIR ID KEY --output FILE
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
import time

from ..errors import NotFound, UserError
from ..extension import Command
from ..hookspecs import hookimpl


def _app(basedir):
    from ..app import App
    from ..core.catalogs.basedir import Basedir

    Basedir(basedir)
    return App(basedir)


def _dataset_args(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list datasets (all of them: you are the operator)")
    p.add_argument("basedir")
    p.add_argument("--query", help="text in the name or description")
    p.add_argument("--limit", type=int, default=100)
    p = sub.add_parser("show", help="one dataset: its header and objects")
    p.add_argument("basedir")
    p.add_argument("dataset_id")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--limit", type=int, default=50, help="rows to show (table and json)")
    p = sub.add_parser("edit", help="change a dataset")
    p.add_argument("basedir")
    p.add_argument("dataset_id")
    p.add_argument("--name")
    p.add_argument("--description")
    p.add_argument("--visibility", choices=("public", "unlisted", "private"))
    p.add_argument("--remove", nargs="+", metavar="KEY", help="remove objects ('collection/objectid')")
    p.add_argument("--keep", nargs="+", metavar="KEY", help="keep only these objects")
    p.add_argument("--comment", help="add a comment on the dataset")
    for action in ("freeze", "delete"):
        p = sub.add_parser(action, help=f"{action} a dataset")
        p.add_argument("basedir")
        p.add_argument("dataset_id")


def _dataset(args) -> int:
    from ..core.datasets import OPERATOR

    app = _app(args.basedir)
    store = app.datasets
    if args.action == "list":
        items = store.list(OPERATOR, query=args.query, limit=args.limit)
        if not items:
            print("no datasets")
        for d in items:
            print(f"{d['dataset_id']}  {d['visibility']:<8} {d['nobjects']:>7} objects  {d['updated'][:19]}  "
                  f"{d['name']}{'  [frozen]' if d['frozen'] else ''}")
        return 0
    if args.action == "show":
        ds = store.get(args.dataset_id, OPERATOR)
        if args.format == "json":
            json.dump(ds.to_dict(0, args.limit), sys.stdout, indent=1, default=str)
            print()
        elif args.format == "csv":
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(ds.column_names())
            writer.writerows([[ds.data[n][i] for n in ds.column_names()] for i in range(ds.nobjects)])
        else:
            for key, value in ds.summary().items():
                print(f"{key:>24}: {value}")
            print(f"{'search':>24}: {json.dumps(ds.spec)}")
            for c in ds.comments:
                print(f"{'comment':>24}: {c['time'][:19]} {c['author']}: {c['text']}")
            for row in ds.rows(0, args.limit):
                print(f"  {row['collection']}/{row['objectid']}  ra={row.get('ra')}  decl={row.get('decl')}")
        return 0
    if args.action == "edit":
        changes = {k: getattr(args, k) for k in ("name", "description", "visibility", "comment")
                   if getattr(args, k) is not None}
        if args.remove:
            changes["remove_objects"] = args.remove
        if args.keep:
            changes["keep_objects"] = args.keep
        ds, changed = store.edit(args.dataset_id, OPERATOR, changes)
        print(f"changed {', '.join(sorted(changed))} of {ds.dataset_id}")
        return 0
    if args.action == "freeze":
        frozen = store.freeze(args.dataset_id, OPERATOR)
        print(f"frozen copy {frozen.dataset_id} (permanent link /datasets/{frozen.dataset_id})")
        return 0
    store.delete(args.dataset_id, OPERATOR)
    print(f"deleted {args.dataset_id}")
    return 0


def _product_args(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("build", help="build (or reuse) a product and wait for it")
    p.add_argument("basedir")
    p.add_argument("dataset_id")
    p.add_argument("builder", help="lightcurves, checkplots, periodfinding, dataset (see 'lcpanel plugins')")
    p.add_argument("--format", help="light-curve format: original, csv, csv.gz, fits, ecsv, votable, parquet")
    p.add_argument("--magcol", help="lightcurves: the magnitude column (series) to keep (e.g. aep_000)")
    p.add_argument("--times", help="lightcurves: a time column to keep (e.g. bjd) or a system to add "
                                   "(BJD_TDB, HJD_UTC, MJD_UTC, JD_UTC)")
    p.add_argument("--mask", help="lightcurves: named quality masks, comma-separated (e.g. aiq_000_good)")
    p.add_argument("--masked", choices=("drop", "flag"), help="lightcurves: drop the masked points (default) or "
                                                              "keep them flagged in a column 'masked'")
    p.add_argument("--objects", nargs="+", metavar="KEY", help="only these objects ('collection/objectid')")
    p.add_argument("-q", "--quiet", action="store_true")
    p = sub.add_parser("get", help="copy a built product's zip, checking its SHA256")
    p.add_argument("basedir")
    p.add_argument("dataset_id")
    p.add_argument("key", help="the product key 'lcpanel product build' printed")
    p.add_argument("--output", "-o", required=True, help="file to write")


def _product(args) -> int:
    from ..core.datasets import OPERATOR
    from ..core.progress import progress_bar

    app = _app(args.basedir)
    ds = app.datasets.get(args.dataset_id, OPERATOR)
    if args.action == "build":
        options = {k: getattr(args, k) for k in ("format", "magcol", "times", "mask", "masked")
                   if getattr(args, k) is not None}
        status = app.products.request(app, ds, args.builder, options, args.objects)
        with progress_bar(total=status["total"], desc=args.builder, unit="file", disable=args.quiet) as bar:
            while status["status"] not in ("done", "failed"):
                time.sleep(0.2)
                status = app.products.status(status["key"])
                bar.update(status["done"] - bar.n)
        app.products.shutdown()
        if status["status"] == "failed":
            raise UserError(f"the build failed: {status['error']}")
        print(f"{status['key']}  {status['size']} bytes  sha256 {status['sha256']}")
        return 0
    if not app.products.linked(ds.dataset_id, args.key):
        raise NotFound("this dataset has no such product")
    status = app.products.status(args.key)
    if status["status"] != "done":
        raise UserError(f"the product is {status['status']}, not ready")
    src = app.products.file_path(args.key, status["builder"])
    shutil.copyfile(src, args.output)
    digest = hashlib.sha256(open(args.output, "rb").read()).hexdigest()
    if digest != status["sha256"]:
        raise UserError(f"copy of {src.name} does not match its recorded SHA256")
    print(f"wrote {args.output} ({status['size']} bytes, sha256 {digest})")
    return 0


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("dataset", "list, show, edit, freeze or delete datasets", _dataset_args, _dataset),
            Command("product", "build or copy a dataset's products", _product_args, _product)]
