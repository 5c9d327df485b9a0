"""A page's websocket takes messages up to what a page can send, not Bokeh's 20 MB.

Bokeh parses every websocket message on the event loop. A script holding a page's session
token could send messages of up to 20 MB, each read into memory and parsed; the largest
message a page of lcpanel sends is a cross-match list typed into the search form (at most
``[search] max_upload_bytes`` of text, 1 MB by default).
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.servers import running_server
from support.vo_data import build_basedir
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from lcpanel.config import SearchSettings
from lcpanel.server import websocket_max_message_bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, _cols = build_basedir(tmp_path_factory.mktemp("ws"))
    with running_server(path) as (url, _proc):
        yield url


async def _still_open_after(url: str, size: int) -> bool:
    """Whether a page's websocket stays open after a text message of ``size`` bytes."""
    with urllib.request.urlopen(url + "/", timeout=60) as resp:
        token = re.search(r'"token":\s*"([^"]+)"', resp.read().decode()).group(1)
    conn = await websocket_connect(HTTPRequest(url.replace("http", "ws", 1) + "/ws", headers={"Origin": url}),
                                   subprotocols=["bokeh", token], max_message_size=64 << 20)
    try:
        assert await asyncio.wait_for(conn.read_message(), 30)  # Bokeh's ACK
        await conn.write_message("x" * size)
        return await asyncio.wait_for(conn.read_message(), 30) is not None
    except WebSocketClosedError:
        return False
    finally:
        conn.close()


def _run(coro):
    """``coro``'s result, from an event loop of its own (another test of the session may
    leave one running in this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_a_message_over_the_cap_closes_the_websocket(server):
    cap = websocket_max_message_bytes(SearchSettings())
    assert cap < 20 << 20
    assert _run(_still_open_after(server, SearchSettings().max_upload_bytes * 2))
    assert not _run(_still_open_after(server, cap + 1))


def test_the_cap_leaves_room_for_the_largest_cross_match_list():
    for upload in (1_000_000, 10_000_000):
        assert websocket_max_message_bytes(SearchSettings(max_upload_bytes=upload)) >= 4 * upload
