"""Built-in web app: the pages and the ``serve`` command."""

from __future__ import annotations

from ..errors import UserError
from ..extension import Command, Page, Route
from ..hookspecs import hookimpl


def _overview(app):
    from ..views.overview import Overview

    return Overview(app=app).servable_page()


def _dataset(app):
    import panel as pn

    from ..views.dataset_page import DatasetPage

    return DatasetPage(app=app, dataset_id=pn.state.route_params.get("dataset_id", "")).servable_page()


def _object(app):
    import panel as pn

    from ..views.object_page import ObjectPage

    params = pn.state.route_params
    magcol = (pn.state.session_args.get("magcol") or [b""])[0]
    return ObjectPage(app=app, collection=params.get("collection", ""), objectid=params.get("objectid", ""),
                      magcol=magcol.decode("utf-8", "replace")[:200]).servable_page()


def _serve_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    parser.add_argument("--num-procs", type=int, default=1,
                        help="independent server processes sharing the port (0: one per CPU)")
    parser.add_argument("--allow-websocket-origin", action="append", default=[],
                        help="extra host:port allowed to open the app's websocket (behind a proxy); a server on a "
                             "loopback address also answers requests naming this host")
    parser.add_argument("--use-xheaders", action="store_true",
                        help="behind a reverse proxy: take client addresses (login and request limits) from "
                             "its X-Real-Ip / X-Forwarded-For headers")
    parser.add_argument("--show", action="store_true", help="open a browser")
    oauth = parser.add_argument_group(
        "single sign-on through Panel's OAuth providers (optional; lcpanel's own /login works without)")
    oauth.add_argument("--oauth-provider", help="e.g. github, google, azure, generic (see Panel's docs)")
    oauth.add_argument("--oauth-key", help="the OAuth client id (or env PANEL_OAUTH_KEY)")
    oauth.add_argument("--oauth-secret", help="the OAuth client secret (or env PANEL_OAUTH_SECRET)")
    oauth.add_argument("--oauth-redirect-uri", help="this server's public URL, as registered with the provider")
    oauth.add_argument("--oauth-extra-params", default="{}", help="JSON, e.g. the generic provider's endpoints")
    oauth.add_argument("--oauth-optional", action="store_true",
                       help="visitors may skip the provider's login and stay anonymous")
    oauth.add_argument("--cookie-secret", help="signs Panel's OAuth cookies (or env PANEL_COOKIE_SECRET); "
                       "the same on every server of the deployment")


def _oauth_options(args) -> dict:
    import json
    import os

    if not args.oauth_provider:
        return {}
    try:
        extra = json.loads(args.oauth_extra_params)
    except json.JSONDecodeError as exc:
        raise UserError(f"--oauth-extra-params is not JSON: {exc}") from None
    secret = args.cookie_secret or os.environ.get("PANEL_COOKIE_SECRET")
    if not secret:
        raise UserError("OAuth needs --cookie-secret (or PANEL_COOKIE_SECRET): a long random string")
    options = dict(oauth_provider=args.oauth_provider, oauth_extra_params=extra, cookie_secret=secret,
                   oauth_optional=args.oauth_optional or None,
                   # lcpanel's own password login keeps /login; the provider's flow lives beside it
                   login_endpoint="/oauth/login", logout_endpoint="/oauth/logout")
    for name in ("oauth_key", "oauth_secret", "oauth_redirect_uri"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    return options


def _dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` writes every thread's stack to the server's stderr, the
    process going on: what a server that seems stuck is doing (forked children inherit it)."""
    import faulthandler
    import signal
    import sys

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)


def _serve(args) -> int:
    from tornado.process import task_id

    from ..app import App
    from ..core import offload
    from ..core.catalogs.basedir import Basedir
    from ..core.termination import Terminator
    from ..server import make_server

    Basedir(args.basedir)  # a clear error before anything starts
    auth = _oauth_options(args)
    app = App(args.basedir).start()
    # SIGTERM/SIGINT stop every process: the parent forwards them to its children
    terminator = Terminator().install()
    _dump_stacks_on_sigusr1()
    try:
        # with num_procs > 1 this forks: each child serves from here on
        server = make_server(app, address=args.address, port=args.port, num_procs=args.num_procs,
                             allow_websocket_origin=args.allow_websocket_origin, show=args.show, auth=auth,
                             use_xheaders=args.use_xheaders)
        terminator.serving(server.io_loop)
        if task_id() in (None, 0):  # the port is bound (a request now waits, not refused); said once
            procs = f" in {args.num_procs} processes" if args.num_procs != 1 else ""
            print(f"lcpanel serving {app.basedir} at http://{args.address}:{args.port}/{procs} "
                  f"(JSON API at /api/collections); Ctrl-C stops", flush=True)
        server.start()
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        terminator.uninstall()
        offload.shutdown(app, wait=True)  # a search or dataset write under way finishes
        if "products" in app.__dict__:
            app.products.shutdown(terminate=True)
        app.close()
    return 0


def _desktop_args(parser):
    parser.add_argument("basedir", help="an lcpanel basedir")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--browser-command", help="command that opens the URL: {url} in it is replaced by the "
                                                  "URL, else the URL is appended; the app stops "
                                                  "when this command exits. Default: an app window of Chromium, "
                                                  "Chrome or Edge if installed, else the default browser")


def _desktop(args) -> int:
    from ..desktop import run_desktop

    return run_desktop(args.basedir, port=args.port, browser_command=args.browser_command)


@hookimpl(trylast=True)
def register_views(app):
    return [Page("overview", "/", "lcpanel", _overview),
            Page("dataset", "/datasets/{dataset_id}", "dataset", _dataset),
            Page("object", "/objects/{collection}/{objectid}", "object", _object)]


@hookimpl(trylast=True)
def register_routes(app):
    from ..views.stylesheets import ROUTE, StylesheetHandler

    return [Route("stylesheets", ROUTE, StylesheetHandler)]


@hookimpl(trylast=True)
def register_commands(app):
    return [Command("serve", "serve the web app and JSON API of a basedir", _serve_args, _serve),
            Command("desktop", "open a basedir in a local app window (127.0.0.1, a free port)", _desktop_args,
                    _desktop)]
