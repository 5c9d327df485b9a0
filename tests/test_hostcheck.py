"""A server listening on this machine only answers to this machine's names (DNS rebinding).

A page on another site can point its own host name at 127.0.0.1 ("DNS rebinding"). The
browser then sends the page's requests to a local ``lcpanel serve`` (or ``lcpanel
desktop``) as requests of the page's own origin: ``Host`` and ``Origin`` name the other
site, ``Sec-Fetch-Site`` says same-origin, so the cross-site-write checks pass, and the
page reads every answer. Binding to 127.0.0.1 is how an operator keeps a survey's
unpublished data to this machine; it only does so if a request naming another host is
refused (as Jupyter's servers refuse it).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request

import pytest
from support.clients import send
from support.servers import running_server

from lcpanel.hostcheck import allowed_host, host_name, listens_on_loopback

EVIL = "rebind.attacker.example"


def _request(url: str, path: str, host: str, *, body: dict | None = None, origin: str | None = None):
    headers = {"Host": host, "Accept": "*/*"}
    if origin:
        headers |= {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    return send(urllib.request.Request(url + path, data=data, headers=headers), timeout=60)


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def _ndatasets(app) -> int:
    with sqlite3.connect(app.basedir / "datasets" / "index.sqlite") as conn:
        return conn.execute("SELECT count(*) FROM datasets").fetchone()[0]


@pytest.mark.parametrize("header, name", [
    ("localhost:5006", "localhost"), ("LOCALHOST.", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
    ("[::1]:5006", "::1"), ("[::1]", "::1"), ("Survey.Example.org:8443", "survey.example.org"), ("", ""),
])
def test_the_host_name_of_a_host_header(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("header, ok", [
    ("localhost:5006", True), ("127.0.0.1:5006", True), ("127.0.0.2", True), ("[::1]:5006", True),
    ("app.localhost:5006", True),  # browsers resolve *.localhost to loopback themselves (RFC 6761)
    (f"{EVIL}:5006", False), ("127.0.0.1.nip.io:5006", False), ("localhost.attacker.example", False),
    ("10.0.0.5:5006", False), ("[::ffff:10.0.0.5]:5006", False), ("0.0.0.0:5006", False),
    ("survey.example.org:8443", True),  # named by the operator
])
def test_which_hosts_a_loopback_server_answers_to(header, ok):
    assert allowed_host(header, {"survey.example.org"}) is ok


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.1.1", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("192.168.1.5", False), ("survey.example.org", False),
])
def test_which_addresses_are_this_machine_only(address, loopback):
    assert listens_on_loopback(address) is loopback


def test_a_rebound_host_name_gets_nothing_from_a_local_server(demo_server, demo_app):
    port = _port(demo_server)
    for path in ("/api/collections", "/api/collections/demo", "/", "/liveness"):
        status, headers, body = _request(demo_server, path, f"{EVIL}:{port}")
        assert status == 403, (path, status)
        assert b"demo" not in body and "Content-Security-Policy" in headers
        assert b"host" in body.lower()
    # the same requests under this machine's names are answered
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, _headers, body = _request(demo_server, "/api/collections", host)
        assert status == 200 and b"demo" in body


def test_a_rebound_page_cannot_write(demo_server, demo_app):
    port = _port(demo_server)
    before = _ndatasets(demo_app)
    search = {"type": "cone", "params": {"coords": "290 45 60"}}
    status, _headers, body = _request(demo_server, "/api/search", f"{EVIL}:{port}", body=search,
                                      origin=f"http://{EVIL}:{port}")
    assert status == 403, body
    assert _ndatasets(demo_app) == before
    # the check is the Host header's, not the search's: the same request from this machine is saved
    status, _headers, body = _request(demo_server, "/api/search", f"127.0.0.1:{port}", body=search,
                                      origin=f"http://127.0.0.1:{port}")
    assert status == 200, body
    assert _ndatasets(demo_app) == before + 1


def test_the_operator_names_the_public_host_with_allow_websocket_origin(demo_app):
    with running_server(demo_app.basedir, "--allow-websocket-origin", "survey.example.org:8443") as (url, _proc):
        status, _headers, body = _request(url, "/api/collections", "survey.example.org:8443")
        assert status == 200 and b"demo" in body
        status, _headers, _body = _request(url, "/api/collections", f"{EVIL}:8443")
        assert status == 403
