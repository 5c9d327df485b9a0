"""Every page at 420 px wide (a phone held upright): nothing sticks out to the right (the
page never scrolls sideways and no element is cut off at the window's edge, except inside
a box that scrolls on purpose, like a wide table), every plot is at least 300 px wide and
inside the window, and the header's Account / Log in link is on screen and works."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from .conftest import page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH = 420

#: what sticks out of the window at the right: the page's sideways scroll, and each
#: visible element (shadow DOM included) whose right edge is past the window unless a
#: box made to scroll sideways holds it (a table's body, an ``lcp-scroll-x`` box; not any
#: Panel column, whose ``overflow: auto`` would hide what is cut off); and the width of every Bokeh plot's canvas
MEASURE_JS = """() => {
    const W = window.innerWidth
    const SCROLLERS = /^(tabulator-tableholder|lcp-scroll-x)$/
    const all = []
    const walk = root => { for (const el of root.querySelectorAll('*')) { all.push(el); if (el.shadowRoot) walk(el.shadowRoot) } }
    walk(document)
    const parent = el => el.parentElement || (el.getRootNode() && el.getRootNode().host) || null
    const scrolled = el => {
        for (let p = parent(el); p; p = parent(p)) {
            if (p.classList && p.classList.contains('bk-Canvas')) return true  // a plot clips its glyphs
            if (p.classList && p.classList.contains('tabulator-header')) return true  // scrolls with the table body
            const s = getComputedStyle(p)
            if ((s.overflowX === 'auto' || s.overflowX === 'scroll') && p.getBoundingClientRect().right <= W + 1
                && p.classList && [...p.classList].some(c => SCROLLERS.test(c))) return true
        }
        return false
    }
    const name = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\\s+/).slice(0, 3).join('.') : '')
    const out = []
    for (const el of all) {
        const r = el.getBoundingClientRect()
        if (r.width < 1 || r.height < 1) continue
        const s = getComputedStyle(el)
        if (s.visibility === 'hidden' || s.display === 'none') continue
        if (r.right > W + 1 && !scrolled(el)) out.push(`${name(el)} right=${Math.round(r.right)}`)
    }
    const plots = all.filter(el => el.classList && el.classList.contains('bk-Canvas'))
        .map(el => el.getBoundingClientRect()).filter(r => r.width > 0 && r.height > 0)
        .map(r => ({left: Math.round(r.left), width: Math.round(r.width)}))
    return {innerWidth: W, scrollWidth: document.scrollingElement.scrollWidth, outside: out.slice(0, 15),
            noutside: out.length, plots}
}"""


def assert_fits(page, *, min_plots: int = 0) -> dict:
    """The page fits a 420 px window (see MEASURE_JS); returns the measures."""
    m = page.evaluate(MEASURE_JS)
    print(json.dumps(m))
    assert m["innerWidth"] == WIDTH
    assert m["scrollWidth"] <= m["innerWidth"], m
    assert m["noutside"] == 0, m["outside"]
    assert len(m["plots"]) >= min_plots, m["plots"]
    for plot in m["plots"]:
        assert plot["width"] >= 300 and plot["left"] >= 0 and plot["left"] + plot["width"] <= WIDTH + 1, m["plots"]
    return m


def assert_account_link_works(page, anonymous: bool = True) -> None:
    """The header's Log in (anonymous) and Account links are on screen, and Account opens /account."""
    links = [page.locator(".lcp-account-link")] + ([page.locator(".lcp-login")] if anonymous else [])
    for link in links:
        expect(link).to_be_visible()
        link.scroll_into_view_if_needed()
        box = link.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, box
    page.locator(".lcp-account-link").click()
    expect(page).to_have_url(re.compile(r"/account(\?|$)"))


@pytest.fixture
def phone(page):
    page.set_viewport_size({"width": WIDTH, "height": 900})
    return page


def _open(page, url, wait_idle):
    page.goto(url, wait_until="domcontentloaded")
    wait_idle(page)
    page.wait_for_timeout(300)  # Bokeh lays plots out once more after the first idle


def test_overview_at_420(phone, lcpanel_server, wait_idle, screenshot):
    _open(phone, lcpanel_server.url + "/", wait_idle)
    expect(phone.locator(".lcp-overview")).to_have_count(1)
    screenshot(phone, "narrow-overview")
    assert_fits(phone, min_plots=1)  # the sky plot
    # the header's "Search types" opens the page, not the JSON
    expect(phone.locator(".lcp-header-links a", has_text="Search types")).to_have_attribute("href", "/search/types")
    assert_account_link_works(phone)


def test_dataset_page_at_420(phone, lcpanel_server, wait_idle, screenshot):
    tiles = {}  # every tile image the page asked for -> HTTP status
    phone.on("response", lambda r: tiles.__setitem__(r.url, r.status) if "/tiles/" in r.url else None)
    _open(phone, lcpanel_server.url + "/", wait_idle)
    resp = phone.request.post(f"{lcpanel_server.url}/api/search", headers=page_api(lcpanel_server.url),
                              data=json.dumps({"type": "cone", "params": {"coords": "290 45 40"},
                                               "collections": ["demo"]}))
    assert resp.ok, resp.text()
    _open(phone, f"{lcpanel_server.url}/datasets/{resp.json()['dataset_id']}", wait_idle)
    expect(phone.locator(".lcp-dataset-header")).to_have_count(1)
    # the variability flag in words, not 0-3
    expect(phone.locator(".lcp-objects .tabulator-cell[tabulator-field$='objectisvar']").first).to_have_text(
        re.compile(r"^(unreviewed|variable|not variable|can't tell|)$"))
    screenshot(phone, "narrow-dataset")  # a viewport as tall as the page: every lazy tile loads
    assert_fits(phone)
    # tiles name their magcol and ask only for images their checkplot has
    expect(phone.locator(".lcp-tile-magcol").first).to_have_text("aep_000")
    phone.wait_for_timeout(1000)
    assert tiles and all(status == 200 for status in tiles.values()), {u: s for u, s in tiles.items() if s != 200}
    assert_account_link_works(phone)


def _open_object(page, server, wait_idle) -> None:
    """The object page of the demo's first object (by id) with a period."""
    _open(page, server.url + "/", wait_idle)
    resp = page.request.post(f"{server.url}/api/search", headers=page_api(server.url),
                             data=json.dumps({"type": "filter", "collections": ["demo"], "sort": "objectid",
                                              "params": {"where": "aep_000_varperiod > 0"}, "limit": 1}))
    _open(page, f"{server.url}/objects/demo/{resp.json()['rows'][0]['objectid']}", wait_idle)


def test_object_page_at_420(phone, lcpanel_server, wait_idle, screenshot):
    _open_object(phone, lcpanel_server, wait_idle)
    screenshot(phone, "narrow-object")
    assert_fits(phone, min_plots=3)  # light curve, periodogram, fold
    assert_account_link_works(phone)


def test_account_page_at_420(phone, lcpanel_server, wait_idle, screenshot):
    _open(phone, lcpanel_server.url + "/account", wait_idle)
    screenshot(phone, "narrow-account")
    assert_fits(phone)
    assert_account_link_works(phone)


@pytest.mark.parametrize("path", ["/login", "/tap", "/search/types"])
def test_plain_pages_at_420(phone, lcpanel_server, screenshot, path):
    resp = phone.goto(lcpanel_server.url + path, wait_until="load")
    assert resp.ok and resp.headers["content-type"].startswith("text/html"), (path, resp.headers)
    if path == "/search/types":  # every registered type, by its title
        for t in phone.request.get(lcpanel_server.url + "/api/search/types").json()["types"]:
            expect(phone.locator(f"section#{t['type']} h2")).to_contain_text(t["title"])
    screenshot(phone, "narrow-" + path.strip("/").replace("/", "-"))
    assert_fits(phone)


#: the header's title text (each line's box) against the busy indicator's box
HEADER_JS = """() => {
    const title = document.querySelector('#header .app-header')
    const busy = document.querySelector('#header .pn-busy-container')
    if (!title || !busy) return {missing: true}
    const range = document.createRange()
    range.selectNodeContents(title)
    const lines = [...range.getClientRects()].filter(r => r.width > 0)
    const b = busy.getBoundingClientRect()
    const hits = lines.filter(r => r.left < b.right && r.right > b.left && r.top < b.bottom && r.bottom > b.top)
    return {hits: hits.length, busy: [b.left, b.top, b.right, b.bottom].map(Math.round),
            lines: lines.map(r => [r.left, r.top, r.right, r.bottom].map(Math.round))}
}"""


def test_a_long_title_never_runs_under_the_busy_indicator(phone, lcpanel_server, wait_idle):
    """On an object page (the longest titles: object id and collection name) at the widths
    of common phones, the title wraps before the busy indicator in the header's corner
    instead of running under it (at 390 px its last letter did)."""
    _open_object(phone, lcpanel_server, wait_idle)
    for width in (360, 375, 390, 412, 420):
        phone.set_viewport_size({"width": width, "height": 900})
        phone.wait_for_function("w => window.innerWidth === w", arg=width)  # (measuring lays the page out)
        m = phone.evaluate(HEADER_JS)
        assert not m.get("missing") and m["lines"], m
        assert m["hits"] == 0, (width, m)
