"""Built-in web app: the pages and the ``serve`` command."""

from __future__ import annotations

from ..extension import Command, Page
from ..hookspecs import hookimpl


def _overview(app):
    from ..views.overview import Overview

    return Overview(app=app).servable_page()


def _dataset(app):
    import panel as pn

    from ..views.dataset_page import DatasetPage

    return DatasetPage(app=app, dataset_id=pn.state.route_params.get("dataset_id", "")).servable_page()


def _serve_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    parser.add_argument("--num-procs", type=int, default=1,
                        help="independent server processes sharing the port (0: one per CPU)")
    parser.add_argument("--allow-websocket-origin", action="append", default=[],
                        help="extra host:port allowed to open the app's websocket (behind a proxy)")
    parser.add_argument("--show", action="store_true", help="open a browser")


def _serve(args) -> int:
    from ..app import App
    from ..core.basedir import Basedir
    from ..server import make_server

    Basedir(args.basedir)  # a clear error before anything starts
    app = App(args.basedir).start()
    server = make_server(app, address=args.address, port=args.port, num_procs=args.num_procs,
                         allow_websocket_origin=args.allow_websocket_origin, show=args.show)
    print(f"lcpanel serving {app.basedir} at http://{args.address}:{args.port}/ "
          f"(JSON API at /api/collections); Ctrl-C stops", flush=True)
    try:
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


@hookimpl(trylast=True)
def register_views(app):
    return [Page("overview", "/", "lcpanel", _overview),
            Page("dataset", "/datasets/{dataset_id}", "dataset", _dataset)]


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("serve", "serve the web app and JSON API of a basedir", _serve_args, _serve)]
