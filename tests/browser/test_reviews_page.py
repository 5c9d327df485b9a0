"""Reviews through the object page in Chromium (and the JSON API beside it) leave the
survey's collection directory exactly as it was; comments are appended with author and
time; a spent request budget refuses a save with a visible message and writes nothing."""

from __future__ import annotations

import json
import shutil
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from support.data import set_config

from .conftest import served

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STAFF = ("curator", "pw-of-curator-1")
USER = ("limited", "pw-of-limited-1")
#: users get 2 requests a minute after a burst of 40: enough to load a page, and a budget
#: the test can spend from outside before clicking
CONFIG = "[limits]\nuser_requests_per_minute = 2\nburst = 40\n"


@pytest.fixture(scope="module")
def review_server(csv_collection, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    root = tmp_path_factory.mktemp("reviews")
    source = root / "survey" / "demo_csv"
    shutil.copytree(csv_collection, source)
    base = Basedir.init(root / "basedir")
    set_config(base.path, CONFIG)
    app = App(base.path)
    info = add_astrobase_collection(app, base, source, collection_id="demo", show_progress=False)
    app.users.add_user(*STAFF, "staff")
    app.users.add_user(*USER, "user")
    with served(base.path, root / "serve.log") as url:
        yield url, base, info, source


def tree_digest(path):
    from test_reviews import tree_digest as digest

    return digest(path)


def log_in(page, url: str, who: tuple[str, str], wait_idle) -> None:
    page.goto(f"{url}/login?next={quote(page.url.replace(url, '') or '/')}", wait_until="domcontentloaded")
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    wait_idle(page)


def open_object(page, url: str, oid: str, wait_idle) -> None:
    page.goto(f"{url}/objects/demo/{quote(oid, safe='')}", wait_until="domcontentloaded")
    wait_idle(page)
    expect(page.locator(".lcp-review")).to_be_visible(timeout=30_000)


def save(page, *, comment: str | None = None, tags: str | None = None) -> None:
    if tags is not None:
        page.locator(".lcp-edit-tags input").fill(tags)
    if comment is not None:
        page.locator(".lcp-edit-comments textarea").fill(comment)
    page.locator(".lcp-save-review button").click()


def test_reviews_through_the_page_and_the_api_leave_the_collection_directory_untouched(
        browser, review_server, wait_idle, screenshot):
    from lcpanel.config import Config
    from lcpanel.core.objects import reviews
    from lcpanel.core.access.ratelimit import RateLimiter

    url, base, info, source = review_server
    before = tree_digest(source)
    from test_checkplots import all_checkplots, reviewed_variable

    oid = reviewed_variable(all_checkplots(source))
    message = ".lcp-review-message"

    # an anonymous visitor comments: appended, listed with "you" and the time
    anon = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = anon.new_page()
    open_object(page, url, oid, wait_idle)
    expect(page.locator(".lcp-edit-tags input")).to_be_disabled()
    save(page, comment="anonymous: the secondary eclipse looks shallower")
    expect(page.locator(message)).to_contain_text("Saved", timeout=20_000)
    expect(page.locator(".lcp-comment-list")).to_contain_text("the secondary eclipse looks shallower")
    expect(page.locator(".lcp-comment-list")).to_contain_text("you")
    expect(page.locator(".lcp-edit-comments textarea")).to_have_value("")

    # staff: tags and a comment; the anonymous comment stays, staff cannot delete it
    staff = browser.new_context(viewport={"width": 1400, "height": 1000})
    spage = staff.new_page()
    spage.goto(url + "/", wait_until="domcontentloaded")
    log_in(spage, url, STAFF, wait_idle)
    open_object(spage, url, oid, wait_idle)
    expect(spage.locator(".lcp-review")).to_contain_text("You may change the variability info")
    save(spage, tags="zzbrowsertag, EA", comment="curator: period confirmed")
    expect(spage.locator(message)).to_contain_text("Saved", timeout=20_000)
    expect(spage.locator(".lcp-vartags")).to_contain_text("zzbrowsertag")
    comments = spage.locator(".lcp-comment-list")
    expect(comments).to_contain_text("the secondary eclipse looks shallower")
    expect(comments).to_contain_text("curator: period confirmed")
    expect(spage.locator(".lcp-delete-comment")).to_have_count(1)  # only the curator's own
    screenshot(spage, "object-reviews")

    # the JSON API beside the page, with the staff member's login cookie
    api = f"{url}/api/collections/demo/objects/{quote(oid, safe='')}/reviews"
    headers = {"Content-Type": "application/json", "Origin": url}
    resp = spage.request.post(api, data=json.dumps({"comment": "curator via the API"}), headers=headers)
    assert resp.status == 201, resp.text()
    resp = spage.request.post(api, data=json.dumps({"varinfo": {"varperiod": 2.125}}), headers=headers)
    assert resp.ok, resp.text()
    resp = page.request.post(api, data=json.dumps({"varinfo": {"vartags": "zzanonhack"}}), headers=headers)
    assert resp.status == 403
    data = spage.request.get(api).json()
    assert [c["text"] for c in data["comments"]] == [
        "anonymous: the secondary eclipse looks shallower", "curator: period confirmed", "curator via the API"]
    assert data["values"]["vartags"] == "zzbrowsertag, EA" and data["values"]["varperiod"] == 2.125

    # the curator deletes their own page comment through the page
    spage.locator(".lcp-delete-comment button").click()
    expect(spage.locator(message)).to_contain_text("Comment deleted", timeout=20_000)
    expect(comments).not_to_contain_text("curator: period confirmed")

    # a user whose request budget is spent: a visible message, nothing written
    user = browser.new_context(viewport={"width": 420, "height": 900})
    upage = user.new_page()
    upage.goto(url + "/", wait_until="domcontentloaded")
    log_in(upage, url, USER, wait_idle)
    open_object(upage, url, oid, wait_idle)
    limits = Config.load(base.path).limits
    limiter = RateLimiter(base.path, limits)
    while limiter.take("user:limited", limits.requests_per_minute("user"), limits.burst) == 0:
        pass
    n_before = len(reviews.comments(base, "demo", oid))
    save(upage, comment="this one must not be saved")
    expect(upage.locator(message)).to_contain_text("too many requests", timeout=20_000)
    expect(upage.locator(message)).to_be_visible()
    screenshot(upage, "object-review-budget-420")
    assert len(reviews.comments(base, "demo", oid)) == n_before
    assert "this one must not be saved" not in json.dumps(reviews.history(base, "demo", oid))

    # the anonymous visitor sees the reviews after a reload
    open_object(page, url, oid, wait_idle)
    expect(page.locator(".lcp-comment-list")).to_contain_text("curator via the API")
    expect(page.locator(".lcp-vartags")).to_contain_text("zzbrowsertag")
    for ctx in (anon, staff, user):
        ctx.close()

    assert tree_digest(source) == before
