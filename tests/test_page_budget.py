"""Page sessions per client address are budgeted, like API requests.

Opening a page makes a Bokeh session on the server: ~0.4 s of CPU to build the page and
~5 MB held until the session is dropped (15-30 s after its browser goes away). Nothing
limited how many one address could open: 44 page requests in 20 s took a server from
133 to 356 MB, and a client asking for pages in a loop kept the server's cores busy. A
page's websocket can also make a session, so websocket connections have a budget too.
"""

from __future__ import annotations

import base64
import os
import socket
import urllib.request
from urllib.parse import urlsplit

import pytest
from support.clients import send
from support.data import set_config
from support.servers import running_server
from support.vo_data import build_basedir

from lcpanel.config import LimitSettings
from lcpanel.core.access.auth import LOGIN_COOKIE
from lcpanel.core.access.users import UserStore


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, _cols = build_basedir(tmp_path_factory.mktemp("pages"))
    set_config(path, "[limits]\npage_views_per_minute = 6\npage_burst = 2\n")
    users = UserStore(path)
    for name in ("ana", "ben"):
        users.add_user(name, "a long enough password")
    with running_server(path, "--use-xheaders") as (url, _proc):
        yield url, {name: users.start_session(name, 3600) for name in ("ana", "ben")}


def _get(url: str, address: str, login: str | None = None):
    headers = {"X-Real-Ip": address} | ({"Cookie": f"{LOGIN_COOKIE}={login}"} if login else {})
    return send(urllib.request.Request(url, headers=headers), timeout=120)


def _websocket_handshake(url: str, address: str) -> bytes:
    """The status line of a websocket handshake to the home page's /ws."""
    host = urlsplit(url).netloc
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {url}\r\n"
            f"X-Real-Ip: {address}\r\n\r\n").encode()
    with socket.create_connection((urlsplit(url).hostname, urlsplit(url).port), timeout=60) as sock:
        sock.sendall(head)
        return sock.recv(4096).split(b"\r\n", 1)[0]


def test_an_address_opening_pages_beyond_its_budget_is_told_to_wait(server):
    server, _logins = server
    statuses = [_get(server + "/", "10.0.0.1") for _ in range(3)]
    assert [s for s, _h, _b in statuses[:2]] == [200, 200]
    status, headers, body = statuses[2]
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert b"pages" in body and b"<script" not in body.lower()
    # the address's API budget is its own, and other addresses still get pages
    assert _get(server + "/api/search/types", "10.0.0.1")[0] == 200
    assert _get(server + "/", "10.0.0.2")[0] == 200


def test_websocket_connections_have_a_budget_too(server):
    server, _logins = server
    lines = [_websocket_handshake(server, "10.0.0.3") for _ in range(3)]
    assert not any(b" 429 " in line for line in lines[:2]), lines
    assert b" 429 " in lines[2], lines


def test_people_logged_in_behind_one_address_have_a_budget_each(server):
    """A department behind one NAT address: its logged-in members are counted apart, as
    the API counts them; a forged or expired login cookie counts as the address's."""
    server, logins = server
    address = "10.0.0.4"
    assert [_get(server + "/", address)[0] for _ in range(3)] == [200, 200, 429]
    assert _get(server + "/", address, login="not-a-login-secret")[0] == 429
    for name in ("ana", "ben"):
        assert [_get(server + "/", address, login=logins[name])[0] for _ in range(3)] == [200, 200, 429]


def test_the_default_budget_lets_a_person_browse():
    limits = LimitSettings()
    assert limits.page_views_per_minute >= 60 and limits.page_burst >= 20
