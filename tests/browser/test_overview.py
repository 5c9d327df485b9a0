"""The overview page (/) in Chromium: collections, sky plot, search forms, dataset list."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATASET_URL = re.compile(r"/datasets/([0-9a-f]{64})$")


def open_overview(page, server, wait_idle) -> dict:
    """Load / and wait until Bokeh is idle; the seconds each step took."""
    started = time.perf_counter()
    page.goto(server.url + "/", wait_until="domcontentloaded")
    loaded = time.perf_counter() - started
    wait_idle(page)
    expect(page.locator(".lcp-overview"), "the overview did not render").to_have_count(1)
    timing = {"domcontentloaded_s": round(loaded, 2), "interactive_s": round(time.perf_counter() - started, 2)}
    print(f"overview timing: {timing}")
    return timing


#: the built-in search types, first on the form and in this order
EVERYDAY = ["Cone search", "Object ids", "Cross-match", "Full text", "Column filter"]


def cone_form(page):
    return page.locator(".lcp-search-cone")


def search_type(page, title):
    """The pill (a radio button) of a search type above the search form."""
    return page.locator(".lcp-search-types").get_by_role("radio", name=title, exact=True)


def assert_pills_inside(page) -> None:
    """Every search type's pill is shown whole inside the search panel: none cut off."""
    panel = page.locator(".lcp-search-panel").bounding_box()
    labels = page.locator(".lcp-search-types label")
    for i in range(labels.count()):
        label = labels.nth(i)
        expect(label).to_be_visible()
        box = label.bounding_box()
        assert box["width"] > 20 and box["height"] > 15, (label.inner_text(), box)
        assert panel["x"] - 0.5 <= box["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"] + 0.5, \
            (label.inner_text(), box, panel)
        assert panel["y"] - 0.5 <= box["y"] and box["y"] + box["height"] <= panel["y"] + panel["height"] + 0.5, \
            (label.inner_text(), box, panel)


def test_overview_shows_collections_sky_and_a_pill_per_search_type(page, lcpanel_server, wait_idle, screenshot):
    open_overview(page, lcpanel_server, wait_idle)

    cards = page.locator(".lcp-collection")
    expect(cards).to_have_count(len(lcpanel_server.collections))
    for cid, name in lcpanel_server.collections.items():
        card = page.locator(f'.lcp-collection[data-collection="{cid}"]')
        expect(card.locator("h3")).to_have_text(name)
        expect(card).to_contain_text("Objects")
    expect(page.locator('.lcp-collection[data-collection="demo"]')).to_contain_text("✓ light curves")
    expect(page.locator('.lcp-collection[data-collection="wrapfield"]')).to_contain_text("catalog only")

    # the sky plot is a Bokeh canvas
    expect(page.locator(".lcp-sky canvas").first).to_be_visible()

    # one pill per registered search type: the everyday ones first, then the plugins' by title;
    # the cone search is chosen; all of them fit in the panel (they wrap onto more lines)
    types = page.request.get(lcpanel_server.url + "/api/search/types").json()["types"]
    assert {t["type"] for t in types} >= {"objectid", "cone", "xmatch", "fulltext", "filter"}
    pills = page.locator(".lcp-search-types label")
    expect(pills).to_have_count(len(types))
    others = sorted((t["title"] for t in types if t["title"] not in EVERYDAY), key=str.casefold)
    assert [t.strip() for t in pills.all_inner_texts()] == EVERYDAY + others
    expect(search_type(page, "Cone search")).to_be_checked()
    expect(page.locator(".lcp-search-form").filter(visible=True)).to_have_count(1)
    assert_pills_inside(page)
    # each with a generated form and a Search button
    for t in types:
        search_type(page, t["title"]).check()
        form = page.locator(f".lcp-search-{t['type']}")
        expect(form.locator(".lcp-search button")).to_be_visible()
        for name in t["params"]:
            expect(form.locator(f".lcp-field-{name}")).to_have_count(1)
        expect(page.locator(".lcp-search-form").filter(visible=True)).to_have_count(1)
    # the keyboard: the arrow keys move between the types
    search_type(page, "Cone search").check()
    search_type(page, "Cone search").focus()
    page.keyboard.press("ArrowRight")
    expect(search_type(page, "Object ids")).to_be_checked()
    expect(page.locator(".lcp-search-objectid .lcp-field-ids")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(search_type(page, "Cone search")).to_be_checked()
    search_type(page, "Cone search").blur()
    # a form keeps what was typed into it while another type is chosen
    search_type(page, "Object ids").check()
    page.locator(".lcp-search-objectid .lcp-field-ids textarea").fill("LCP-000003")
    search_type(page, "Full text").check()
    expect(page.locator(".lcp-search-objectid")).to_be_hidden()
    search_type(page, "Object ids").check()
    expect(page.locator(".lcp-search-objectid .lcp-field-ids textarea")).to_have_value("LCP-000003")
    search_type(page, "Cone search").check()
    # the cone form starts on the first collection's field
    prefilled = re.compile(r"^290\.\d{4} \+45\.\d{4} \d+$")
    expect(cone_form(page).locator(".lcp-field-coords input")).to_have_value(prefilled)

    # the page gave this browser a signed session cookie, as the JSON API would
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert re.fullmatch(r"[0-9a-f]{32}\.[0-9a-f]{32}", cookies["lcpanel_session"]["value"])
    screenshot(page, "overview")

    # narrow windows: the pills wrap onto more lines, still all inside the panel (which at
    # 760 px fits the window; on a phone the form's field rows are wider than the window)
    for width in (760, 420):
        page.set_viewport_size({"width": width, "height": 1000})
        expect(pills.last).to_be_visible()
        page.wait_for_timeout(200)  # Bokeh re-lays out after the resize
        assert_pills_inside(page)
        if width >= 760:
            panel = page.locator(".lcp-search-panel").bounding_box()
            assert panel["x"] >= 0 and panel["x"] + panel["width"] <= width, panel
    screenshot(page, "overview-narrow")


def test_cone_search_from_the_form_opens_the_dataset(page, lcpanel_server, wait_idle, screenshot):
    open_overview(page, lcpanel_server, wait_idle)
    ra, dec = lcpanel_server.star
    coords = cone_form(page).locator(".lcp-field-coords input")
    coords.fill(f"{ra:.6f} {dec:+.6f} 1")
    cone_form(page).locator(".lcp-search button").click()
    expect(page).to_have_url(DATASET_URL, timeout=30_000)

    dataset_id = DATASET_URL.search(page.url).group(1)
    # the same browser context's cookies: the dataset belongs to this visitor
    resp = page.request.get(f"{lcpanel_server.url}/api/datasets/{dataset_id}")
    assert resp.ok, resp.text()
    data = resp.json()
    assert data["search_type"] == "cone" and data["nobjects"] >= 1
    assert data["visibility"] == "unlisted"
    assert data["can_edit"] is True
    assert data["rows"][0]["dist_arcsec"] < 1.0


def test_bad_coordinates_show_an_error_next_to_the_field(page, lcpanel_server, wait_idle, screenshot):
    open_overview(page, lcpanel_server, wait_idle)
    form = cone_form(page)
    form.locator(".lcp-field-coords input").fill("19:99:00 +45 banana")
    form.locator(".lcp-search button").click()

    error = form.locator(".lcp-field-coords .lcp-field-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile(r"\w{4,}"))
    expect(error).to_have_css("color", "rgb(179, 38, 30)")  # the theme's DANGER: it reads as an error
    expect(form.locator(".lcp-field-filter .lcp-field-error")).to_be_hidden()
    expect(form.locator(".lcp-form-message")).to_be_hidden()
    assert page.url.rstrip("/") == lcpanel_server.url
    screenshot(page, "overview-search-error")

    # a good position with a bad column filter: the error moves under the filter field
    # (the first search has ended: its button is back before the next click)
    expect(form.locator(".lcp-search button")).to_have_text("Search", timeout=30_000)
    ra, dec = lcpanel_server.star
    form.locator(".lcp-field-coords input").fill(f"{ra:.6f} {dec:+.6f} 1")
    form.locator(".lcp-field-filter input").fill("nosuchcolumn < 3")
    form.locator(".lcp-search button").click()
    expect(form.locator(".lcp-field-filter .lcp-field-error")).to_contain_text("nosuchcolumn")
    expect(error).to_be_hidden()
    assert page.url.rstrip("/") == lcpanel_server.url


def test_dataset_list_shows_public_and_own_datasets_only(page, playwright, lcpanel_server, wait_idle, screenshot):
    url = lcpanel_server.url
    ra, dec = lcpanel_server.star
    spec = {"type": "cone", "params": {"coords": f"{ra:.6f} {dec:+.6f} 2"}}
    other = playwright.request.new_context(base_url=url)
    try:
        public = other.post("/api/search?visibility=public&name=Public%20list%20test", data=spec,
                            headers=page_api(url))
        hidden = other.post("/api/search?visibility=private&name=Someone%20else%27s%20private%20set", data=spec,
                            headers=page_api(url))
        assert public.ok and hidden.ok, (public.text(), hidden.text())
        public_id = public.json()["dataset_id"]
    finally:
        other.dispose()
    # made through the API by this browser context before it ever loaded a page
    mine = page.request.post(f"{url}/api/search?visibility=private&name=My%20private%20set", data=spec,
                             headers=page_api(url))
    assert mine.ok, mine.text()

    open_overview(page, lcpanel_server, wait_idle)
    table = page.locator(".lcp-dataset-list")
    expect(table).to_contain_text("Public list test")
    expect(table).to_contain_text("My private set")
    expect(table).not_to_contain_text("Someone else's private set")
    expect(page.locator("tr.lcp-dataset", has_text="My private set").locator(".lcp-badge.mine")).to_be_visible()
    expect(page.locator("tr.lcp-dataset", has_text="Public list test").locator(".lcp-badge.mine")).to_have_count(0)
    link = page.locator("tr.lcp-dataset", has_text="Public list test").locator("a.lcp-name")
    expect(link).to_have_attribute("href", f"/datasets/{public_id}")
    screenshot(page, "overview-datasets")

    query = page.locator(".lcp-dataset-query input")
    query.fill("Public list")
    expect(table).not_to_contain_text("My private set")
    expect(table).to_contain_text("Public list test")
    query.fill("no such dataset anywhere")
    expect(table).to_contain_text("No dataset matches")


def test_a_search_without_matches_stays_on_the_form_and_says_so(page, lcpanel_server, wait_idle, screenshot):
    open_overview(page, lcpanel_server, wait_idle)
    form = cone_form(page)
    form.locator(".lcp-field-coords input").fill("120.0 +10.0 1")
    form.locator(".lcp-search button").click()
    message = form.locator(".lcp-form-message")
    expect(message).to_contain_text("No objects matched")
    expect(message).to_contain_text("no dataset was saved")
    assert message.locator("a").count() == 0
    assert page.url.rstrip("/") == lcpanel_server.url
    # nothing was saved for this visitor
    mine = page.request.get(f"{lcpanel_server.url}/api/datasets?mine=1").json()["datasets"]
    assert not any(d["nobjects"] == 0 for d in mine)


@pytest.mark.parametrize("kind,title,fields,check", [
    ("objectid", "Object ids", {"ids": "LCP-000003\nLCP-000005"},
     lambda d: {r["objectid"] for r in d["rows"]} == {"LCP-000003", "LCP-000005"}),
    ("xmatch", "Cross-match", {"targets": "STAR", "radius_arcsec": "2"},
     lambda d: d["nobjects"] == 1 and d["rows"][0]["input_id"] == "mine"),
    ("fulltext", "Full text", {"query": "eclipsing binary"},
     lambda d: d["nobjects"] >= 1),  # and the same objects as the API finds (below)
    ("filter", "Column filter", {"where": "vmag < 13"},
     lambda d: d["nobjects"] >= 1 and all(r["vmag"] < 13 for r in d["rows"])),
])
def test_each_search_type_from_its_form_to_a_dataset(page, lcpanel_server, wait_idle, kind, title, fields, check):
    open_overview(page, lcpanel_server, wait_idle)
    search_type(page, title).check()
    form = page.locator(f".lcp-search-{kind}")
    ra, dec = lcpanel_server.star
    for name, value in fields.items():
        value = value.replace("STAR", f"mine {ra:.7f} {dec:+.7f}")
        field = form.locator(f".lcp-field-{name} textarea, .lcp-field-{name} input").first
        field.fill(value)
    form.locator(".lcp-search button").click()
    expect(page).to_have_url(DATASET_URL, timeout=30_000)
    wait_idle(page)
    expect(page.locator(".lcp-dataset-header")).to_contain_text(kind)
    dataset_id = DATASET_URL.search(page.url).group(1)
    data = page.request.get(f"{lcpanel_server.url}/api/datasets/{dataset_id}?stop=1000").json()
    assert data["search_type"] == kind
    assert check(data), [{k: v for k, v in r.items() if isinstance(v, str)} for r in data["rows"][:2]]
    # the form and the JSON API give the same objects for the same search
    same = page.request.post(f"{lcpanel_server.url}/api/search", data=json.dumps(data["spec"]),
                             headers=page_api(lcpanel_server.url)).json()
    assert {(r["collection"], r["objectid"]) for r in same["rows"]} == \
        {(r["collection"], r["objectid"]) for r in data["rows"]}
