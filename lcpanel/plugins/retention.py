"""Disk usage and garbage collection (:mod:`lcpanel.core.retention`), from the command line
and, periodically, from a running server:

    lcpanel usage BASEDIR [--format table|json]
    lcpanel gc BASEDIR [--dry-run] [--format table|json]

A server runs :func:`lcpanel.core.retention.collect_if_due` every ``[quotas]
gc_interval_minutes`` in a thread (every server process schedules it; the lock file lets
one pass run at a time and the stamp file once per interval).
"""

from __future__ import annotations

import json
import logging
import sys

from ..extension import Command
from ..hookspecs import hookimpl

log = logging.getLogger(__name__)


def _app(basedir):
    from ..app import App
    from ..core.catalogs.basedir import Basedir

    Basedir(basedir)
    return App(basedir)


def _usage_args(parser):
    parser.add_argument("basedir")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _usage(args) -> int:
    from ..core.access.quotas import mb
    from ..core.retention import usage

    rows = usage(_app(args.basedir))
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'owner':<40} {'datasets':>8} {'products':>8} {'periods':>7} {'disk':>12} {'jobs':>5} {'job disk':>10}")
    for r in rows:
        print(f"{r['owner']:<40} {r['datasets']:>8} {r['products']:>8} {r['periodsearches']:>7} {mb(r['bytes']):>12} "
              f"{r['jobs']:>5} {mb(r['job_bytes']):>10}")
    return 0


def _gc_args(parser):
    parser.add_argument("basedir")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def _gc(args) -> int:
    from ..core.retention import collect

    report = collect(_app(args.basedir), dry_run=args.dry_run)
    if args.format == "json":
        json.dump(report, sys.stdout, indent=1)
        print()
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for kind in ("datasets", "products", "jobs"):
        print(f"{verb} {len(report[kind])} {kind}")
        for item in report[kind]:
            print(f"  {item}")
    return 0


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("usage", "disk usage per identity: datasets, products, bytes, async jobs", _usage_args, _usage),
            Command("gc", "remove expired datasets, unused products and destroyed async jobs", _gc_args, _gc)]


def schedule_gc(app, io_loop):
    """Run garbage collection every ``[quotas] gc_interval_minutes`` on ``io_loop``'s
    executor (never on the loop itself). Returns the started PeriodicCallback, or None."""
    from tornado.ioloop import PeriodicCallback

    from ..core.retention import collect_if_due

    minutes = app.config.quotas.gc_interval_minutes
    if app.basedir is None or minutes <= 0:
        return None
    interval_s = minutes * 60.0

    def run():
        try:
            collect_if_due(app, interval_s)
        except Exception:
            log.exception("periodic gc failed")

    def tick():
        io_loop.run_in_executor(None, run)

    callback = PeriodicCallback(tick, interval_s * 1000.0, jitter=0.1)
    io_loop.add_callback(callback.start)
    return callback
