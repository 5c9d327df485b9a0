"""A large dataset's pages, file manifest and products do not hold up the server's other
requests (issue 15's "nothing slow on the event loop", for what issue 18 made large).

A user's search may keep 100,000 objects. Reading such a dataset (its pickle) and writing
its per-object URL manifest took 50-75 ms and ~0.9 s of the event loop, during which the
process answered nobody else (``benchmarks/bench_load.py`` prints how long other requests
wait meanwhile). Here: every such request reads the dataset on a worker thread, and the
manifest lists every file of every object with its id quoted as one path segment.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote

import pytest
from support.servers import running_server, server_in_thread
from support.threads import all_on_workers, record_threads
from support.vo_data import FILE_KINDS, add_large_dataset, build_basedir

from lcpanel.app import App
from lcpanel.core.datasets import DatasetStore

NROWS = 100_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """The basedir and the id of its dataset of NROWS objects."""
    path, _cols = build_basedir(tmp_path_factory.mktemp("big"))
    return path, add_large_dataset(path, NROWS)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.status, resp.read()


def test_the_manifest_lists_every_file_of_every_object(big):
    path, dsid = big
    with running_server(path) as (url, _proc):
        status, body = _get(f"{url}/api/datasets/{dsid}/urls")
        assert status == 200
        expected = [f"{url}/api/collections/field/objects/{quote(f'big {i}/x', safe='')}/{kind}"
                    for i in range(NROWS) for kind, _col in FILE_KINDS]
        assert body.decode().splitlines() == expected
        status, body = _get(f"{url}/api/datasets/{dsid}/urls?kind=lightcurve&format=csv")
        assert body.decode().splitlines() == [line + "?format=csv" for line in expected[::3]]
        last = json.loads(_get(f"{url}/api/datasets/{dsid}?start={NROWS - 10}")[1])["rows"][-1]
        assert last["objectid"] == f"big {NROWS - 1}/x"


def test_every_request_about_a_dataset_reads_it_on_a_worker_thread(big, monkeypatch):
    path, dsid = big
    app = App(path)
    with server_in_thread(app) as url:
        reads = record_threads(monkeypatch, DatasetStore, "_read")
        for part in ("", "?start=99000", "/urls", "/urls?kind=lightcurve", "/products"):
            assert _get(f"{url}/api/datasets/{dsid}{part}")[0] == 200
        assert len(reads) == 5 and all_on_workers(reads), reads
