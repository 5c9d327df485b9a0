"""The plugin in Chromium: its search type gets a pill and a generated form on ``/``, runs
from it to a dataset, and its product builders are offered on the dataset page."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATASET_URL = re.compile(r"/datasets/([0-9a-f]{64})$")


def test_period_search_from_the_web_form(page, ps_server, ps_app, wait_idle, screenshot, tmp_path):
    from lcpanel.plugin_api import run_search

    page.goto(ps_server + "/", wait_until="domcontentloaded")
    wait_idle(page)
    # its search type's pill (a radio button) comes after the built-in ones, inside the panel
    pills = page.locator(".lcp-search-types label")
    titles = [t.strip() for t in pills.all_inner_texts()]
    assert titles[:5] == ["Cone search", "Object ids", "Cross-match", "Full text", "Column filter"]
    assert {"Period range", "Sky box"} <= set(titles[5:])
    pill = page.locator(".lcp-search-types").get_by_role("radio", name="Period range", exact=True)
    expect(pill).to_be_visible()
    pill.check()
    form = page.locator(".lcp-search-period")
    # the form is generated from the parameters: labels with units, the method's choices
    expect(form.locator(".lcp-field-min_period_days")).to_contain_text("Min period (days)")
    expect(form.locator(".lcp-field-method select")).to_have_value("any")
    form.locator(".lcp-field-min_period_days input").fill("0.5")
    form.locator(".lcp-field-max_period_days input").fill("5")
    form.locator(".lcp-field-method select").select_option("gls")
    form.locator(".lcp-field-collections input").first.click()
    form.locator(".choices__item--choice", has_text="(demo)").first.click()
    page.keyboard.press("Escape")
    screenshot(page, "periodsearch-form")
    form.locator(".lcp-search button").click()

    expect(page).to_have_url(DATASET_URL, timeout=30_000)
    wait_idle(page)
    want = run_search(ps_app, {"type": "period", "collections": ["demo"],
                               "params": {"min_period_days": 0.5, "max_period_days": 5.0, "method": "gls"}})
    assert want.nmatched > 0
    header = page.locator(".lcp-dataset-header")
    expect(header).to_contain_text("period")
    expect(header.locator(".lcp-count")).to_have_text(f"{want.nreturned} of {want.nmatched} matching")

    # the plugin's builder is in the product list: build the CSV and download it
    page.locator("select").filter(has_text="Light curves").select_option("Period-finding table (CSV)")
    page.locator(".lcp-build button").click()
    link = page.locator(".lcp-product-status a.lcp-download")
    expect(link).to_be_visible(timeout=60_000)
    expect(link).to_contain_text("periodfinding_csv-")
    with page.expect_download() as info:
        link.click()
    target = tmp_path / "pf.zip"
    info.value.save_as(target)
    with zipfile.ZipFile(target) as zf:
        rows = zf.read("periodfinding.csv").decode().splitlines()
    assert len(rows) == 1 + 2 * want.nmatched  # header, then gls and bls per object
    screenshot(page, "periodsearch-dataset")
