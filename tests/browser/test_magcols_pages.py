"""A collection with two magnitude columns in Chromium: the object page's magcol chooser
shows the other checkplot's data, the light-curve plot says what it shows (time column,
checkplot series vs the file as stored), and the dataset tiles name and switch their
magcol."""

from __future__ import annotations

import json

import numpy as np
import pytest
from playwright.sync_api import expect
from support.data import example_collection

from .conftest import page_api, served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the unphased light curve's client-side data (the source with x, t and mag)
LC_DATA_JS = """() => {
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "ColumnDataSource" && m.columns().includes("x") && m.columns().includes("mag"))
                return {n: m.get_length(), mag: Array.from(m.data.mag).slice(0, 20), t: Array.from(m.data.t).slice(0, 20)}
    return null
}"""
AXIS_LABELS_JS = """() => {
    const out = []
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "LinearAxis" && m.axis_label) out.push(m.axis_label)
    return out
}"""


@pytest.fixture(scope="module")
def two_server(tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    coll = example_collection(tmp_path_factory, "two_magcols", nobjects=6, seed=5, workers=2, nmagcols=2,
                              progress=False)
    base = Basedir.init(tmp_path_factory.mktemp("b2") / "basedir")
    add_astrobase_collection(App(base.path), base, coll, collection_id="two", show_progress=False)
    with served(base.path, tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url, coll


def _checkplot_series(coll, oid, magcol):
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.checkplot.pkl_io import _read_checkplot_picklefile

    ms = _read_checkplot_picklefile(str(coll / "checkplots" / f"checkplot-{oid}-{magcol}.pkl"))["magseries"]
    return np.asarray(ms["times"]), np.asarray(ms["mags"])


def _demo_reader():
    """The demo format's own reader module (examples/lcformats), independent of lcpanel."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "lcformats" / "lcpanel_demo_csv.py"
    spec = importlib.util.spec_from_file_location("demo_csv_reader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lc(page):
    return page.evaluate(LC_DATA_JS)


def test_switch_magcol_on_the_object_page(page, two_server, wait_idle, screenshot):
    url, coll = two_server
    oid = "LCP-000001"
    page.goto(f"{url}/objects/two/{oid}", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-magcol-current")).to_have_text("aep_000")
    t0, m0 = _checkplot_series(coll, oid, "aep_000")
    t1, m1 = _checkplot_series(coll, oid, "aep_001")
    assert not np.allclose(m0[:20], m1[:20])  # two apertures, different magnitudes
    data = _lc(page)
    assert data["n"] == len(m0) and np.allclose(data["mag"], m0[:20])
    labels = page.evaluate(AXIS_LABELS_JS)
    assert any(lab.startswith("bjd − ") and "[d]" in lab for lab in labels), labels
    assert "magnitude (aep_000)" in labels
    expect(page.locator(".lcp-lc-shown")).to_contain_text("checkplot: the")
    screenshot(page, "object-magcol-aep_000")

    page.locator("a.lcp-magcol-choice", has_text="aep_001").click()
    page.wait_for_url(f"{url}/objects/two/{oid}?magcol=aep_001")
    wait_idle(page)
    expect(page.locator(".lcp-magcol-current")).to_have_text("aep_001")
    data = _lc(page)
    assert data["n"] == len(m1) and np.allclose(data["mag"], m1[:20]) and np.allclose(data["t"], t1[:20])
    assert "magnitude (aep_001)" in page.evaluate(AXIS_LABELS_JS)
    link = page.locator(".lcp-downloads a", has_text="checkplot")
    expect(link).to_have_attribute("href", f"/api/collections/two/objects/{oid}/checkplot?magcol=aep_001")

    # the light curve as stored: every point of the file's aep_001 column
    page.locator(".lcp-lc-series button", has_text="as stored").click()
    expect(page.locator(".lcp-lc-shown")).to_contain_text("as stored: all 840 points")
    lcd = _demo_reader().read_lightcurve(str(next((coll / "lightcurves").glob(f"{oid}-*"))))
    t, m = np.asarray(lcd["bjd"], float), np.asarray(lcd["aep_001"], float)
    ok = np.isfinite(t) & np.isfinite(m)
    stored = _lc(page)
    assert stored["n"] == int(ok.sum()) and stored["n"] > len(m1) - 1
    assert np.allclose(stored["mag"], m[ok][:20]) and np.allclose(stored["t"], t[ok][:20])
    screenshot(page, "object-magcol-aep_001-stored")

    page.set_viewport_size({"width": 420, "height": 900})
    wait_idle(page)
    expect(page.locator(".lcp-magcol-current")).to_be_visible()
    screenshot(page, "object-magcol-420")


def test_unknown_magcol_says_which_exist(page, two_server, wait_idle):
    url, _coll = two_server
    page.goto(f"{url}/objects/two/LCP-000001?magcol=nope", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-object-missing")).to_contain_text("aep_000, aep_001")


def test_tiles_name_and_switch_their_magcol(page, two_server, wait_idle, screenshot):
    url, _coll = two_server
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    resp = page.request.post(f"{url}/api/search?visibility=unlisted", headers=page_api(url),
                             data=json.dumps({"type": "filter", "params": {"where": "ndet > 0"},
                                              "sort": "objectid"}))
    assert resp.ok, resp.text()
    page.goto(f"{url}/datasets/{resp.json()['dataset_id']}", wait_until="domcontentloaded")
    wait_idle(page)
    first = page.locator(".lcp-tile").first
    expect(first.locator(".lcp-tile-magcol")).to_have_text("aep_000")
    expect(first.locator("img").first).to_have_attribute("src", "/api/collections/two/objects/LCP-000000/tiles/"
                                                                "finder.png?magcol=aep_000")
    page.locator(".lcp-tile-magcol-select select").select_option("aep_001")
    expect(page.locator(".lcp-tile").first.locator(".lcp-tile-magcol")).to_have_text("aep_001")
    img = page.locator(".lcp-tile").first.locator("img").nth(1)
    expect(img).to_have_attribute("src", "/api/collections/two/objects/LCP-000000/tiles/unphased.png?magcol=aep_001")
    expect(page.locator(".lcp-tile").first.locator("h4 a")).to_have_attribute(
        "href", "/objects/two/LCP-000000?magcol=aep_001")
    screenshot(page, "dataset-tiles-magcol")


def test_search_form_says_what_was_searched_and_suggests_ids(page, two_server, wait_idle, screenshot):
    url, _coll = two_server
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    page.locator(".lcp-search-types").get_by_role("radio", name="Full text", exact=True).check()
    form = page.locator(".lcp-search-fulltext")
    form.locator(".lcp-field-query input").fill("lcp-00009")
    form.locator(".lcp-search button").click()
    message = form.locator(".lcp-form-message")
    expect(message).to_contain_text("No objects matched", timeout=30_000)
    expect(message).to_contain_text("nothing matched 'lcp-00009'")
    expect(message).to_contain_text("nearest ids: LCP-000000")
    screenshot(page, "search-no-match-hint")
    # and the prefix, typed in lower case, finds them all
    expect(form.locator(".lcp-search button")).to_have_text("Search", timeout=30_000)
    form.locator(".lcp-field-query input").fill("lcp-0000")
    form.locator(".lcp-search button").click()
    page.wait_for_url(f"{url}/datasets/*", timeout=30_000)
    wait_idle(page)
    expect(page.locator(".lcp-count")).to_have_text("6 of 6 matching")
