"""The object page's fold tools and data views in Chromium, on the real HATNet object of
tests/realdata (two apertures' checkplots made by astrobase's own pipeline) and on the
demo collection: ×2 / ÷2, error bars, two saved periods seen by another visitor, the
Fourier fit and the variability features, switching magcol and time column, the quality
mask toggle on the light curve as stored, and a cleared review field shown empty."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import REVIEWER, served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]

#: renderers of the fold plot, client-side: is the error-bar (Segment) renderer visible
ERRBARS_JS = """() => {
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "GlyphRenderer" && m.glyph && m.glyph.type === "Segment") return m.visible
    return null
}"""
#: the unphased light curve's points and its grey masked points, client-side
LC_COUNTS_JS = """() => {
    const out = {}
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "GlyphRenderer" && m.data_source && m.data_source.name === "lcp-lc-points")
                out.shown = m.data_source.get_length()
            else if (m.type === "GlyphRenderer" && m.data_source && m.data_source.name === "lcp-lc-masked") {
                out.masked = m.data_source.get_length()
                out.masked_visible = m.visible
            }
    return out
}"""
AXIS_LABELS_JS = """() => {
    const out = []
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "LinearAxis" && m.axis_label) out.push(m.axis_label)
    return out
}"""
OVERFLOW_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _realdata_module():
    name = "lcpanel_test_magcols_realdata"
    if name not in sys.modules:
        sys.path.insert(0, str(TESTS))  # its own imports (test_api...) are siblings
        spec = importlib.util.spec_from_file_location(name, TESTS / "test_magcols_realdata.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture(scope="module")
def hat_server(tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    real = _realdata_module()
    coll = real.make_hat_collection(tmp_path_factory.mktemp("hat") / "hat")
    base = Basedir.init(tmp_path_factory.mktemp("hatb") / "basedir")
    add_astrobase_collection(App(base.path), base, coll, collection_id="hat", show_progress=False)
    with served(base.path, tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield url, real


def wait_period(page, value: float, timeout: float = 30.0) -> None:
    """Wait until the fold's status line shows ``value`` (to its 10 significant digits)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            shown = period_shown(page)
        except AttributeError:  # not folded yet
            shown = None
        if shown is not None and abs(shown - value) <= 2e-9 * value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the fold shows P = {shown}, not {value}")
        page.wait_for_timeout(100)


def period_shown(page) -> float:
    text = page.locator(".lcp-fold-status").inner_text()
    return float(re.search(r"P = ([0-9.eE+-]+) d", text).group(1))


def test_fold_tools_and_data_views_on_the_real_hat_object(page, hat_server, wait_idle, screenshot, browser):
    url, real = hat_server
    oid = real.OID
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{url}/objects/hat/{oid}", wait_until="domcontentloaded")
    wait_idle(page)
    status = page.locator(".lcp-fold-status")
    expect(status).to_contain_text("folded at P = ")
    p0 = period_shown(page)

    # ×2 and ÷2
    page.locator(".lcp-fold-double button").click()
    wait_period(page, 2 * p0)
    page.locator(".lcp-fold-half button").click()
    page.locator(".lcp-fold-half button").click()
    wait_period(page, p0 / 2)
    assert period_shown(page) == pytest.approx(p0 / 2, rel=1e-9)

    # error bars on and off
    assert page.evaluate(ERRBARS_JS) is False
    page.locator(".lcp-fold-errbars input").check()
    page.wait_for_function(f"() => ({ERRBARS_JS})() === true", timeout=20_000)
    assert page.evaluate(ERRBARS_JS) is True

    # save two periods: p0/2 with a label, then p0
    page.locator(".lcp-save-label input").fill("half <of> GLS")
    page.locator(".lcp-save-period button").click()
    saved = page.locator(".lcp-saved-periods")
    expect(saved).to_contain_text(f"{p0 / 2:.8g} d · half <of> GLS", timeout=20_000)
    page.locator(".lcp-fold-double button").click()
    wait_period(page, p0)
    page.locator(".lcp-save-period button").click()
    expect(saved.locator("button", has_text=f"{p0:.8g} d")).to_be_visible(timeout=20_000)
    expect(page.locator(".lcp-shared-epoch-value")).not_to_be_empty()

    # the Fourier fit at this period, with its chi2, and the variability features
    page.locator(".lcp-fit button").click()
    expect(page.locator(".lcp-fit-shown")).to_contain_text("reduced χ²", timeout=60_000)
    expect(page.locator(".lcp-fit-shown")).to_contain_text(f"{p0:.10g}")
    page.locator(".lcp-features-compute button").click()
    expect(page.locator(".lcp-features-table")).to_contain_text("Stetson J", timeout=60_000)
    screenshot(page, "object-fold-tools-hat-1400")

    # another visitor sees both saved periods and folds at one of them
    other = browser.new_context()
    try:
        p2 = other.new_page()
        p2.goto(f"{url}/objects/hat/{oid}", wait_until="domcontentloaded")
        wait_idle(p2)
        saved2 = p2.locator(".lcp-saved-periods")
        expect(saved2).to_contain_text(f"{p0 / 2:.8g} d · half <of> GLS")
        expect(saved2.locator(".lcp-delete-period")).to_have_count(0)  # not theirs to delete
        saved2.locator("button", has_text=f"{p0 / 2:.8g} d").click()
        expect(p2.locator(".lcp-fold-status")).to_contain_text(f"P = {p0 / 2:.10g} d")
    finally:
        other.close()

    # the light curve as stored, in bjd, with the aiq_000 mask hiding then greying points
    page.locator(".lcp-lc-series button", has_text="as stored").click()
    expect(page.locator(".lcp-lc-shown")).to_contain_text("as stored: all")
    page.locator(".lcp-lc-timecol select").select_option("bjd")
    expect(page.locator(".lcp-lc-time")).to_have_text("bjd")
    page.wait_for_function(f"() => ({AXIS_LABELS_JS})().some(l => l.startsWith('bjd − ') && l.endsWith('(BJD_TDB)'))",
                           timeout=20_000)
    before = page.evaluate(LC_COUNTS_JS)["shown"]
    page.locator(".lcp-lc-mask select").select_option("aiq_000_good")
    count = page.locator(".lcp-lc-masked-count")
    expect(count).to_be_visible()
    masked = int(count.inner_text().replace(",", ""))
    assert masked > 0
    try:
        page.wait_for_function(f"() => ({LC_COUNTS_JS})().shown === {before - masked}", timeout=20_000)
    except Exception:
        raise AssertionError(f"{page.evaluate(LC_COUNTS_JS)} points drawn; {before} - {masked} expected") from None
    page.locator(".lcp-lc-show-masked input").check()
    page.wait_for_function(f"() => ({LC_COUNTS_JS})().masked_visible === true", timeout=20_000)
    assert page.evaluate(LC_COUNTS_JS)["masked"] == masked
    screenshot(page, "object-stored-masked-hat-1400")

    # the other aperture
    page.locator("a.lcp-magcol-choice", has_text="atf_000").click()
    page.wait_for_url(f"{url}/objects/hat/{oid}?magcol=atf_000")
    wait_idle(page)
    expect(page.locator(".lcp-magcol-current")).to_have_text("atf_000")
    assert "magnitude (atf_000)" in page.evaluate(AXIS_LABELS_JS)
    expect(page.locator(".lcp-saved-periods")).to_contain_text(f"{p0 / 2:.8g} d")  # periods are the object's

    page.set_viewport_size({"width": 420, "height": 900})
    wait_idle(page)
    expect(page.locator(".lcp-fold-double button")).to_be_visible()
    overflow = page.evaluate(OVERFLOW_JS)
    screenshot(page, "object-fold-tools-hat-420")
    assert overflow <= 1, f"the page is {overflow} px wider than a 420 px screen"
    assert not [m for m in page.lcp_console if m.startswith(("error", "pageerror"))], page.lcp_console


def test_fold_tools_on_the_demo_and_a_cleared_review_field(page, lcpanel_server, wait_idle, screenshot):
    import json

    from .conftest import page_api

    url = lcpanel_server.url
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    resp = page.request.post(f"{url}/api/search", headers=page_api(url), data=json.dumps(
        {"type": "filter", "collections": ["demo"], "sort": "objectid",
         "params": {"where": "ndet > 0"}}))
    assert resp.ok, resp.text()
    oid = resp.json()["rows"][-1]["objectid"]  # the last object: not the one other page tests review
    page.goto(f"{url}/login?next=/objects/demo/{oid}", wait_until="domcontentloaded")
    page.fill("#username", REVIEWER[0])
    page.fill("#password", REVIEWER[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"**/objects/demo/{oid}")
    wait_idle(page)
    status = page.locator(".lcp-fold-status")
    expect(status).to_contain_text("folded at P = ")
    p0 = period_shown(page)
    page.locator(".lcp-fold-double button").click()
    wait_period(page, 2 * p0)
    page.locator(".lcp-save-period button").click()
    page.locator(".lcp-fold-half button").click()
    wait_period(page, p0)
    page.locator(".lcp-save-period button").click()
    saved = page.locator(".lcp-saved-periods")
    expect(saved.locator("button", has_text=f"{2 * p0:.8g} d")).to_be_visible(timeout=20_000)
    expect(saved.locator("button", has_text=f"{p0:.8g} d")).to_be_visible(timeout=20_000)
    page.locator(".lcp-fold-errbars input").check()

    # staff: a period in the review form, saved, then cleared: the field shows empty
    # both saves say "Saved: varperiod": each is waited for through its own line in the
    # edit history (a save waits up to 30 s for the catalog's write lock: the timeouts
    # are longer, so a failure shows the form's own message)
    box = page.locator(".lcp-edit-period input")
    edits = page.locator(".lcp-history tr", has_text="varperiod")
    box.fill("1.2345")
    page.locator(".lcp-save-review button").click()
    expect(page.locator(".lcp-review-message")).to_contain_text("Saved: varperiod", timeout=45_000)
    expect(edits).to_have_count(1, timeout=45_000)
    box.fill("")
    box.press("Tab")
    page.locator(".lcp-save-review button").click()
    expect(edits).to_have_count(2, timeout=45_000)
    expect(edits.first.locator("td").last).to_have_text("1.2345 → —")  # the newest first
    expect(page.locator(".lcp-review-message")).to_contain_text("Saved: varperiod")
    expect(box).to_have_value("")
    page.reload(wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-edit-period input")).to_have_value("")
    assert "NaN" not in page.locator(".lcp-object-header").inner_text()
    screenshot(page, "object-fold-tools-demo-1400")
    assert not [m for m in page.lcp_console if m.startswith(("error", "pageerror"))], page.lcp_console


def test_a_click_that_arrives_with_a_pending_change_is_not_lost(page, lcpanel_server, wait_idle):
    """The error-bar box and ×2 clicked in one tick: Panel holds the box's change for
    50 ms and, when the click arrives meanwhile, applies it outside the document's lock;
    a plot change made then must not fail and take the click with it (before: Bokeh's
    "_pending_writes should be non-None" in the server log, the click lost)."""
    import json

    from .conftest import page_api

    url = lcpanel_server.url
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    resp = page.request.post(f"{url}/api/search", headers=page_api(url), data=json.dumps(
        {"type": "filter", "collections": ["demo"], "sort": "objectid", "params": {"where": "ndet > 0"}}))
    assert resp.ok, resp.text()
    oid = resp.json()["rows"][0]["objectid"]
    page.goto(f"{url}/objects/demo/{oid}", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-fold-status")).to_contain_text("folded at P = ")
    assert page.evaluate(ERRBARS_JS) is False
    box = page.locator(".lcp-fold-errbars input").element_handle()
    double = page.locator(".lcp-fold-double button").element_handle()
    for shown in (False, True, False):
        p0 = period_shown(page)
        page.evaluate("([box, double]) => { box.click(); double.click() }", [box, double])
        wait_period(page, 2 * p0)
        page.wait_for_function(f"() => ({ERRBARS_JS})() === {'false' if shown else 'true'}", timeout=20_000)
    log = lcpanel_server.log_tail(400)
    assert "_pending_writes should be non-None" not in log, log
