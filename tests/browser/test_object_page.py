"""The object page (/objects/<collection>/<objectid>) in Chromium: header, Bokeh plots,
the interactive phase fold (typed period, invalid period, periodogram pick, bins), the
review form saved and seen after a reload with its history, the full-text search finding
the new tag, and the message pages for a plain-catalog object and an unknown object."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from .conftest import REVIEWER, page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the client-side length of the phase-fold plot's data (each point is drawn twice)
FOLD_LENGTH_JS = """() => {
    for (const doc of Bokeh.documents)
        for (const m of doc.all_models)
            if (m.type === "ColumnDataSource" && m.columns().includes("phase") && m.columns().includes("t"))
                return m.get_length()
    return null
}"""


def search(page, server, spec: dict) -> list[dict]:
    resp = page.request.post(f"{server.url}/api/search", data=json.dumps(spec), headers=page_api(server.url))
    assert resp.ok, resp.text()
    return resp.json()["rows"]


def reviewed_variable(page, server) -> dict:
    rows = search(page, server, {"type": "filter", "collections": ["demo"], "sort": "objectid",
                                 "params": {"where": "aep_000_objectisvar = 1 and aep_000_varperiod > 0"}})
    assert rows, "the demo collection should have reviewed periodic variables"
    return rows[0]


def object_url(server, collection: str, objectid: str) -> str:
    return f"{server.url}/objects/{quote(collection, safe='')}/{quote(objectid, safe='')}"


def open_object(page, url: str, wait_idle) -> float:
    started = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    wait_idle(page)
    return time.perf_counter() - started


def type_into(page, selector: str, text: str) -> None:
    box = page.locator(selector)
    box.fill(text)
    box.press("Enter")


def test_object_page_fold_and_review(page, lcpanel_server, wait_idle, screenshot):
    page.goto(lcpanel_server.url + "/", wait_until="domcontentloaded")  # the session cookie
    wait_idle(page)
    star = reviewed_variable(page, lcpanel_server)
    oid, period = star["objectid"], star["aep_000_varperiod"]
    url = object_url(lcpanel_server, "demo", oid)
    seconds = open_object(page, url, wait_idle)
    print(f"object page {oid}: interactive after {seconds:.2f} s")

    # header
    expect(page.locator(".lcp-objectid")).to_have_text(oid)
    expect(page.locator(".lcp-position")).to_contain_text(f"{star['ra']:.6f}")
    expect(page.locator(".lcp-position")).to_contain_text(f"{star['decl']:+.6f}")
    expect(page.locator(".lcp-isvar")).to_have_text("variable")
    expect(page.locator(".lcp-varperiod")).to_have_text(f"{period:.10g}")
    expect(page.locator(".lcp-object-header img.lcp-finder")).to_be_visible()
    assert page.locator(".lcp-object-header img.lcp-finder").evaluate("img => img.complete && img.naturalWidth") > 0
    download = page.locator(".lcp-downloads a", has_text="CSV")
    assert download.get_attribute("href").endswith(f"/objects/{quote(oid)}/lightcurve?format=csv")
    assert page.request.get(lcpanel_server.url + download.get_attribute("href")).ok

    # the Bokeh plots rendered: unphased light curve, one periodogram per method, the fold
    expect(page.locator(".lcp-unphased canvas").first).to_be_visible()
    nmethods = page.locator(".lcp-method").count()
    assert nmethods >= 1
    assert page.locator(".lcp-periodogram canvas").count() >= nmethods
    expect(page.locator(".lcp-folded canvas").first).to_be_visible()
    # each method's phased plot from the checkplot, fetched by URL beside the page, loaded
    phased = page.locator(".lcp-phased-png img")
    assert phased.count() == nmethods
    for i in range(nmethods):
        img = phased.nth(i)
        img.scroll_into_view_if_needed()
        assert img.get_attribute("src").startswith(f"/api/collections/demo/objects/{quote(oid)}/tiles/method-{i}.png")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    status = page.locator(".lcp-fold-status")
    expect(status).to_contain_text(f"P = {period:.10g} d")  # starts at the adopted period
    screenshot(page, "object")

    # type a period: twice the adopted one, then the adopted one again
    double = f"{2 * period:.7f}"
    type_into(page, ".lcp-fold-period input", double)
    expect(status).to_contain_text(f"P = {float(double):.10g} d")
    typed = f"{period:.7f}"
    type_into(page, ".lcp-fold-period input", typed)
    expect(status).to_contain_text(f"P = {float(typed):.10g} d")
    npoints = int(re.search(r"([\d,]+) points", status.inner_text()).group(1).replace(",", ""))
    assert npoints == star["aep_000_ndet"]
    assert page.evaluate(FOLD_LENGTH_JS) == 2 * npoints  # two cycles

    # an invalid period: a message next to the field, the fold unchanged
    before = status.inner_text()
    type_into(page, ".lcp-fold-period input", "-1")
    expect(page.locator(".lcp-period-error")).to_contain_text("greater than 0")
    assert status.inner_text() == before

    # a periodogram peak: the period field takes its value and the message goes away
    pick = page.locator(".lcp-pick button").nth(1)
    label = float(pick.inner_text().split()[0])
    pick.click()
    field = page.locator(".lcp-fold-period input")
    expect(field).not_to_have_value("-1")
    assert abs(float(field.input_value()) - label) <= 1e-5 * label
    expect(status).to_contain_text(f"P = {float(field.input_value()):.10g} d")
    expect(page.locator(".lcp-period-error")).to_have_text("")

    # back to the adopted period, with binned medians; keep it as a candidate
    type_into(page, ".lcp-fold-period input", typed)
    type_into(page, ".lcp-fold-bins input", "50")
    expect(status).to_contain_text("medians in 50 bins")
    page.locator(".lcp-add-candidate button").click()
    expect(page.locator(".lcp-candidates")).to_contain_text(f"{float(typed):.8g} d")
    screenshot(page, "object-fold")

    # review: anonymous visitors see the variability info locked and a way to log in
    review = page.locator(".lcp-review")
    expect(review).to_contain_text("Only the collection's staff may change the variability info")
    expect(page.locator(".lcp-adopt")).to_be_hidden()
    review.locator("a", has_text="log in").click()
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#username", REVIEWER[0])
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("wrong password")
    page.fill("#password", REVIEWER[1])
    screenshot(page, "login")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/objects/demo/{quote(oid)}")
    wait_idle(page)
    expect(page.locator(".lcp-account")).to_contain_text("reviewer")
    expect(page.locator(".lcp-account")).to_contain_text("staff")
    expect(page.locator(".lcp-review")).to_contain_text("You may change the variability info")

    # as staff: new tags and a comment, saved, seen after a reload with the history
    tag = "e2etag" + uuid.uuid4().hex[:8]
    tags = f"{star['aep_000_vartags']}, {tag}" if star.get("aep_000_vartags") else tag
    comment = f"checked the eclipse depth by eye ({tag})"
    page.locator(".lcp-edit-tags input").fill(tags)
    page.locator(".lcp-edit-comments textarea").fill(comment)
    page.locator(".lcp-save-review button").click()
    expect(page.locator(".lcp-review-message")).to_contain_text("Saved", timeout=20_000)
    open_object(page, url, wait_idle)
    expect(page.locator(".lcp-vartags")).to_contain_text(tag)
    expect(page.locator(".lcp-comment-list")).to_contain_text(comment)
    hist = page.locator(".lcp-history")
    expect(hist).to_contain_text("vartags")
    expect(hist).to_contain_text("comment")
    expect(hist).to_contain_text("you")
    expect(hist).to_contain_text(tag)
    screenshot(page, "object-review")

    # searches see the edit at once
    rows = search(page, lcpanel_server, {"type": "fulltext", "params": {"query": tag}, "collections": ["demo"]})
    assert [r["objectid"] for r in rows] == [oid]
    assert not [m for m in page.lcp_console if m.startswith(("error", "pageerror"))], page.lcp_console


def test_object_without_checkplot_and_unknown_object(page, lcpanel_server, wait_idle):
    plain = search(page, lcpanel_server, {"type": "filter", "params": {"where": "vmag > 0"},
                                          "collections": ["wrapfield"], "sort": "objectid", "limit": 1})[0]
    open_object(page, object_url(lcpanel_server, "wrapfield", plain["objectid"]), wait_idle)
    expect(page.locator(".lcp-no-checkplot")).to_contain_text("No checkplot for this object")
    expect(page.locator(".lcp-objectid")).to_have_text(plain["objectid"])
    expect(page.locator(".lcp-position")).to_contain_text(f"{plain['ra']:.6f}")
    expect(page.locator("a.lcp-back")).to_have_attribute("href", "/")

    for collection, objectid, said in [("demo", "no/such object", "no object 'no/such object'"),
                                       ("nosuchcollection", "x", "no collection 'nosuchcollection'")]:
        answer = page.goto(object_url(lcpanel_server, collection, objectid), wait_until="domcontentloaded")
        wait_idle(page)  # the page works (its Bokeh session came up) though answered 404
        assert answer.status == 404
        expect(page.locator(".lcp-object-missing")).to_contain_text(said)
    # a mistyped id: the nearest ids, as links that open their objects
    known = search(page, lcpanel_server, {"type": "filter", "params": {"where": "ndet > 0"},
                                          "collections": ["demo"], "sort": "objectid", "limit": 1})[0]["objectid"]
    typo = known[:-2] + known[-1]
    assert page.goto(object_url(lcpanel_server, "demo", typo), wait_until="domcontentloaded").status == 404
    wait_idle(page)
    nearest = page.locator(".lcp-object-missing a", has_text=known)
    expect(nearest).to_have_attribute("href", f"/objects/demo/{quote(known, safe='')}")
    nearest.click()
    expect(page.locator(".lcp-objectid")).to_have_text(known, timeout=60_000)
    # another writing of an id: sent to the object's own page
    answer = page.goto(object_url(lcpanel_server, "demo", known.lower()), wait_until="domcontentloaded")
    wait_idle(page)
    assert answer.url.endswith(f"/objects/demo/{quote(known, safe='')}") and answer.status == 200
    expect(page.locator(".lcp-objectid")).to_have_text(known)
    for m in page.lcp_console:
        assert "Traceback" not in m
