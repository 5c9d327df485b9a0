"""The notebook client waits out the server's rate limit instead of failing.

Every API request spends from the client's budget (``[limits]``); over it the server
answers 429 with ``Retry-After`` (503 with ``Retry-After`` when a process is full). A
script fetching a dataset's light curves one by one (``Client.object_file`` over
``Client.urls``) met 429 after the burst and stopped with an error, though the server
had said when to come back.
"""

from __future__ import annotations

import pytest
from support.data import set_config
from support.servers import running_server
from support.vo_data import build_basedir

from lcpanel.client import Client, ClientError

RPM, BURST = 60, 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path, _cols = build_basedir(tmp_path_factory.mktemp("ratelimited"))
    set_config(path, f"[limits]\nanonymous_requests_per_minute = {RPM}\nburst = {BURST}\n")
    with running_server(path) as (url, _proc):
        yield url


def test_the_client_waits_as_the_server_asks_and_gets_every_answer(server):
    client = Client(server)
    answers = [client.search_types() for _ in range(BURST + 3)]
    assert all(answers) and len(answers) == BURST + 3
    # three requests over the burst: each was told to come back (Retry-After: 1) and did
    assert client.waits >= 3 and client.waited_s >= client.waits


def test_a_client_told_not_to_wait_reports_the_limit(server):
    client = Client(server, max_wait_s=0)
    with pytest.raises(ClientError) as caught:
        for _ in range(BURST + 3):
            client.search_types()
    assert caught.value.status == 429 and "retry" in caught.value.message
