"""A server listening on this machine only answers requests that name this machine.

DNS rebinding: a page on another site points its own host name at 127.0.0.1, and the
browser sends the page's requests to a local ``lcpanel serve`` or ``lcpanel desktop`` as
requests of the page's own origin. ``Host`` and ``Origin`` then name the other site and
agree with each other, so the cross-site-write checks (:mod:`lcpanel.csrf`) pass, and the
page reads every answer: the survey's collections, its light curves, public datasets.
Binding to a loopback address is how an operator keeps unpublished data to this machine,
so a server bound to one refuses (403) any request whose ``Host`` is not a loopback IP
address, ``localhost`` or a ``*.localhost`` name (browsers resolve those themselves, RFC
6761), or a host the operator named with ``--allow-websocket-origin`` (the public name
behind a reverse proxy, which Bokeh's websocket needs there anyway). A request without a
``Host`` header (HTTP/1.0) cannot come from a browser and is let through.

A server bound to another address (``--address 0.0.0.0``) is reachable from the network
by the operator's choice and answers to any name, as Jupyter's servers do
(``allow_remote_access``).

:func:`install` puts the check in front of the Tornado application's routing
(:mod:`lcpanel.routegate`), so Bokeh's pages and websocket, static files, the JSON API and
the VO services are all covered.
"""

from __future__ import annotations

import ipaddress

from .routegate import add_gate

LOCAL_NAMES = ("localhost",)


def host_name(host: str) -> str:
    """The name in a ``Host`` header (or a ``host[:port]``), lower case, without its port,
    IPv6 brackets or a final dot."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def listens_on_loopback(address: str) -> bool:
    """Whether a server bound to ``address`` can only be reached from this machine."""
    name = host_name(address)
    return name in LOCAL_NAMES or _is_loopback_ip(name)


def allowed_host(host: str, named: set[str] | frozenset[str] = frozenset()) -> bool:
    """Whether a loopback server answers a request whose ``Host`` is ``host``; ``named``:
    host names the operator allowed."""
    name = host_name(host)
    return (name in LOCAL_NAMES or name.endswith(".localhost") or _is_loopback_ip(name)
            or name in named)


def install(tornado_app, address: str, allow_origins=()) -> None:
    """Refuse requests naming another host when ``address`` is a loopback address (see the
    module docstring); ``allow_origins``: the ``--allow-websocket-origin`` values
    (``host[:port]``), whose host names are answered too."""
    if not listens_on_loopback(address):
        return
    named = frozenset(host_name(origin) for origin in allow_origins)

    def gate(request, _delegate):
        if "Host" not in request.headers or allowed_host(request.host, named):
            return None
        return {"status": 403, "text": (
            f"403: this server listens on this machine only and does not answer requests for the host "
            f"{host_name(request.host)[:100]!r}; open it as http://localhost or http://127.0.0.1, or start it with "
            "--allow-websocket-origin NAME to answer to another name\n")}

    add_gate(tornado_app, "hostcheck", gate)
