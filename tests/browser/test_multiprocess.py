"""``lcpanel serve --num-procs 2``: independent processes serve the same basedir; pages and
datasets work whichever process answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from live_server import free_port, wait_live

from .conftest import ROOT, page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def two_process_server(lcpanel_basedir, tmp_path_factory):
    basedir = lcpanel_basedir[0]
    port = free_port()
    log = tmp_path_factory.mktemp("serve2") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lcpanel", "serve", str(basedir), "--port", str(port),
                                 "--num-procs", "2"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_live(url, proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


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
