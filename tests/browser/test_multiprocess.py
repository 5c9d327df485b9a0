"""``lcpanel serve --num-procs 2``: independent processes serve the same basedir; pages and
datasets work whichever process answers."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from support.servers import running_server

from .conftest import ROOT, page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_process_server(lcpanel_basedir, tmp_path_factory):
    basedir = lcpanel_basedir[0]
    log = tmp_path_factory.mktemp("serve2") / "serve.log"
    with running_server(basedir, "--num-procs", "2", log=log, cwd=ROOT, timeout=90.0) as (url, _proc):
        yield url


def test_pages_and_datasets_across_processes(page, two_process_server, wait_idle, screenshot):
    url = two_process_server
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-collection")).to_have_count(2)
    made = []
    for _ in range(6):  # several requests: the kernel spreads them over both processes
        resp = page.request.post(f"{url}/api/search?visibility=private", headers=page_api(url),
                                 data=json.dumps({"type": "cone", "params": {"coords": "290 45 20"}}))
        assert resp.ok
        made.append(resp.json()["dataset_id"])
    for ds in made:
        assert page.request.get(f"{url}/api/datasets/{ds}").ok
    page.goto(f"{url}/datasets/{made[0]}", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-dataset-header")).to_have_count(1)
    mine = page.request.get(f"{url}/api/datasets?mine=1").json()["datasets"]
    assert set(made) <= {d["dataset_id"] for d in mine}
    screenshot(page, "dataset-two-processes")
