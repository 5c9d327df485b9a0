"""Period search on demand in Chromium: on the real HATNet object and on a demo object,
two methods (GLS, then PDM) run from the object page's "Period search" panel (its form
opened with "Set up a search"), each
result appears as a new periodogram row with its best period equal to the JSON API's,
and a pick button of a result folds the light curve at that period; and the ACF on the
HATNet object."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEARCH_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def ps_server(csv_collection, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_magcols_realdata import make_hat_collection

    tmp = tmp_path_factory.mktemp("psb")
    demo = tmp / "demo_csv"
    shutil.copytree(csv_collection, demo)
    hat = make_hat_collection(tmp / "hat")
    base = Basedir.init(tmp / "basedir")
    app = App(base.path)
    add_astrobase_collection(app, base, demo, collection_id="demo", show_progress=False)
    add_astrobase_collection(app, base, hat, collection_id="hat", show_progress=False)
    oid = app.catalogs.get("demo").query("SELECT objectid FROM object_catalog ORDER BY objectid LIMIT 1")[0][0]
    with served(base.path, tmp / "serve.log") as url:
        yield url, oid


def _run(page, method_label: str, nresults: int, options: dict) -> None:
    page.locator(".lcp-ps-method select").select_option(label=method_label)
    for name, value in options.items():
        box = page.locator(f".lcp-ps-{name} input")
        box.fill(str(value))
        box.press("Tab")
    page.locator(".lcp-ps-run button").click()
    expect(page.locator(".lcp-ps-state").last).to_be_visible(timeout=60_000)
    expect(page.locator(".lcp-ps-result")).to_have_count(nresults, timeout=SEARCH_TIMEOUT_MS)


def _search_and_fold(page, url: str, collection: str, oid: str, wait_idle, screenshot, shot: str) -> None:
    page.goto(f"{url}/objects/{collection}/{oid}", wait_until="domcontentloaded")
    wait_idle(page, timeout=120)
    expect(page.locator(".lcp-periodsearch")).to_be_visible()
    expect(page.locator(".lcp-ps-method")).to_have_count(0)  # the form is made when asked for
    page.locator(".lcp-ps-open button").click()
    expect(page.locator(".lcp-ps-method select")).to_be_visible()
    expect(page.locator(".lcp-ps-open")).to_have_count(0)
    opts = {"startp": 0.5, "endp": 10, "stepsize": 0.001}
    _run(page, "Generalized Lomb-Scargle", 1, opts)
    _run(page, "Phase dispersion minimization", 2, opts)
    expect(page.locator(".lcp-ps-state").last).to_have_attribute("data-status", "done")

    # the page's best periods are the API's (newest result first)
    listing = json.loads(page.request.get(f"{url}/api/collections/{collection}/objects/{oid}/periodsearch").text())
    results = {r["method"]: r for r in listing["results"]}
    assert set(results) == {"gls", "pdm"}
    rows = page.locator(".lcp-ps-result")
    expect(rows.nth(0)).to_contain_text("Phase dispersion minimization")
    expect(rows.nth(1)).to_contain_text("Generalized Lomb-Scargle")
    for i, method in enumerate(("pdm", "gls")):
        best = results[method]["bestperiod"]
        first_pick = rows.nth(i).locator(".lcp-pick button").first
        assert float(first_pick.inner_text().split()[0]) == pytest.approx(best, rel=1e-5)
    expect(rows.nth(0).locator(".lcp-periodogram canvas").first).to_be_visible()

    # fold at the GLS result's best period with its pick button
    pick = rows.nth(1).locator(".lcp-pick button").first
    pick.click()
    best = results["gls"]["bestperiod"]
    expect(page.locator(".lcp-fold-status")).to_contain_text(f"P = {best:.10g} d")
    assert float(page.locator(".lcp-fold-period input").input_value()) == pytest.approx(best, rel=1e-6)
    screenshot(page, shot)


def test_period_search_on_the_real_hatnet_object(page, ps_server, wait_idle, screenshot):
    url, _ = ps_server
    _search_and_fold(page, url, "hat", "HAT-579-0051858", wait_idle, screenshot, "periodsearch-hat")


def test_autocorrelation_on_the_real_hatnet_object(page, ps_server, wait_idle, screenshot):
    """The ACF (astrobase's, with lcpanel's gap filling and FFT autocorrelation) on the
    HATNet light curve's 199,136-step grid: a result row whose best period is the API's."""
    url, _ = ps_server
    page.goto(f"{url}/objects/hat/HAT-579-0051858", wait_until="domcontentloaded")
    wait_idle(page, timeout=120)
    page.locator(".lcp-ps-open button").click()
    before = page.locator(".lcp-ps-result").count()
    _run(page, "Autocorrelation", before + 1, {})
    expect(page.locator(".lcp-ps-state").last).to_have_attribute("data-status", "done")
    listing = json.loads(page.request.get(f"{url}/api/collections/hat/objects/HAT-579-0051858/periodsearch").text())
    acf = [r for r in listing["results"] if r["method"] == "acf"][-1]
    assert acf["nfrequencies"] > 100_000 and 0 < acf["bestperiod"] < 10
    row = page.locator(".lcp-ps-result").nth(0)
    expect(row).to_contain_text("Autocorrelation")
    first_pick = row.locator(".lcp-pick button").first
    assert float(first_pick.inner_text().split()[0]) == pytest.approx(acf["bestperiod"], rel=1e-5)
    expect(row.locator(".lcp-periodogram canvas").first).to_be_visible()
    screenshot(page, "periodsearch-hat-acf")


def test_period_search_on_a_demo_object_and_a_bad_value(page, ps_server, wait_idle, screenshot):
    url, oid = ps_server
    _search_and_fold(page, url, "demo", oid, wait_idle, screenshot, "periodsearch-demo")
    # a bad value: a message under its field, nothing started
    box = page.locator(".lcp-ps-startp input")
    box.fill("20")
    box.press("Tab")
    page.locator(".lcp-ps-run button").click()
    expect(page.locator(".lcp-ps-startp-error")).to_contain_text("must be below endp")
    expect(page.locator(".lcp-ps-result")).to_have_count(2)
