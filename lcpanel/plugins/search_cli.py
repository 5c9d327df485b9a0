"""The ``lcpanel search`` command: every registered search type becomes a sub-command
whose options are generated from the backend's parameters.

    lcpanel search BASEDIR cone --coords "290.0 45.0 5" --filter "vmag < 12" --format table
    lcpanel search BASEDIR xmatch --targets-file mylist.txt --radius-arcsec 3
    lcpanel search BASEDIR --spec spec.json        # the JSON body of POST /api/search
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import param

from ..errors import UserError
from ..extension import Command
from ..hookspecs import hookimpl
from ..jsonapi import to_jsonable


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_param_option(parser, backend, pname: str) -> None:
    p = backend.param[pname]
    helptext = p.doc or ""
    if pname in backend.text_params:
        group = parser.add_mutually_exclusive_group()
        nargs = "+" if isinstance(p, param.List) else None
        group.add_argument(_option(pname), dest=f"p_{pname}", nargs=nargs, help=helptext)
        group.add_argument(_option(pname) + "-file", dest=f"pfile_{pname}", metavar="FILE",
                           help=f"read {pname} from FILE ('-' for standard input)")
        return
    kwargs: dict = {"dest": f"p_{pname}", "help": helptext}
    if isinstance(p, param.Boolean):
        parser.add_argument(_option(pname), action="store_true", default=None, **kwargs)
        return
    if isinstance(p, param.Selector):
        kwargs["choices"] = list(p.objects)
    elif isinstance(p, param.Integer):
        kwargs["type"] = int
    elif isinstance(p, param.Number):
        kwargs["type"] = float
    elif isinstance(p, param.List):
        kwargs["nargs"] = "+"
    parser.add_argument(_option(pname), **kwargs)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("for every search type")
    group.add_argument("--collections", help="comma-separated collection ids (default: all)")
    group.add_argument("--filter", help="column conditions, e.g. 'sdssr < 12 and ndet > 1000'")
    group.add_argument("--sort", help="sort columns, e.g. 'sdssr' or '-ndet' or 'sdssr desc, ndet'")
    group.add_argument("--limit", type=int, help="maximum rows returned")
    group.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output format")
    group.add_argument("--save", action="store_true", help="keep the result as a dataset and print its id")
    group.add_argument("--visibility", choices=("public", "unlisted", "private"), default="unlisted",
                       help="visibility of the saved dataset")
    return common


def _add_args(parser) -> None:
    from ..app import App

    parser.add_argument("basedir", help="an lcpanel basedir")
    common = _common_options()
    parser.add_argument("--spec", metavar="FILE", help="run a JSON search spec from FILE ('-' for stdin), "
                                                        "the body of POST /api/search")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", dest="spec_format",
                        help="output format with --spec")
    parser.add_argument("--save", action="store_true", dest="spec_save", help="keep the result as a dataset")
    sub = parser.add_subparsers(dest="search_type", metavar="TYPE")
    for backend in App().search_backends:
        sp = sub.add_parser(backend.name, help=backend.title, description=backend.description, parents=[common])
        for pname in backend.param_names():
            _add_param_option(sp, backend, pname)
        sp.set_defaults(_backend=backend)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def spec_from_args(args) -> dict:
    if args.spec:
        if args.search_type:
            raise UserError("give either --spec or a search type, not both")
        try:
            return json.loads(_read_text(args.spec))
        except json.JSONDecodeError as exc:
            raise UserError(f"{args.spec} is not valid JSON: {exc}") from None
    if not args.search_type:
        raise UserError("name a search type (e.g. 'cone') or give --spec FILE")
    backend = args._backend
    params = {}
    for pname in backend.param_names():
        value = getattr(args, f"p_{pname}", None)
        path = getattr(args, f"pfile_{pname}", None)
        if path is not None:
            value = _read_text(path)
        if value is not None:
            params[pname] = value
    spec = {"type": args.search_type, "params": params}
    for key in ("collections", "filter", "sort", "limit"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    return spec


def _run(args) -> int:
    from ..app import App
    from ..core.catalogs.basedir import Basedir
    from ..core.search import run_search

    Basedir(args.basedir)
    app = App(args.basedir)
    fmt = args.format if args.search_type else args.spec_format
    result = run_search(app, spec_from_args(args))
    if fmt == "json":
        json.dump(to_jsonable(result.to_dict()), sys.stdout, indent=1)
        print()
    elif fmt == "csv":
        names = [c.name for c in result.columns]
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[_cell(r[n]) for n in names] for r in result.rows])
        print(f"# {result.summary()}", file=sys.stderr)
    else:
        _print_table(result)
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    if getattr(args, "save", False) or getattr(args, "spec_save", False):
        from ..core.datasets import OPERATOR
        from ..core.access.quotas import NO_MATCH, save_search

        ds = save_search(app, result, OPERATOR, None, visibility=getattr(args, "visibility", "unlisted"))
        if ds is None:
            print(f"note: {NO_MATCH}", file=sys.stderr)
        else:
            print(f"dataset {ds.dataset_id}", file=sys.stderr)
    return 0


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


TABLE_BASE = ("collection", "objectid", "ra", "decl")


def _print_table(result) -> None:
    """An aligned text table: the identifying columns, the search's own columns, and the
    columns named in the filter, sort or parameters."""
    wanted = _mentioned(result.spec) | set(result.search_columns)
    shown = list(TABLE_BASE) + [c.name for c in result.columns if c.name in wanted and c.name not in TABLE_BASE]
    widths = {n: max([len(n)] + [len(_cell(r[n])) for r in result.rows]) for n in shown}
    print("  ".join(n.ljust(widths[n]) for n in shown))
    for r in result.rows:
        print("  ".join(_cell(r[n]).ljust(widths[n]) for n in shown))
    print(result.summary())


def _mentioned(spec) -> set[str]:
    text = " ".join((spec.filter or "", json.dumps(spec.sort or ""), json.dumps(spec.params)))
    return {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)}


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("search", "search collections by object id, cone, cross-match, full text or column filter",
                    _add_args, _run)]
