"""The ``lcpanel`` command line. Sub-commands come from the ``register_commands`` hook,
so built-in and third-party commands are found the same way."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__
from .app import App
from .errors import PluginError, UserError


def build_parser(app: App) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lcpanel", description="Light-curve collection server: ingest, search, serve.")
    parser.add_argument("--version", action="version", version=f"lcpanel {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in app.commands:
        cmd_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(cmd_parser)
        cmd_parser.set_defaults(_run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        app = App()
    except PluginError as exc:
        print(f"lcpanel: plugin error: {exc}", file=sys.stderr)
        return 3
    args = build_parser(app).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"lcpanel {args.command}: error: {exc.message}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"lcpanel: plugin error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
