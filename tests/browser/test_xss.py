"""Hostile strings in every field anyone can set, shown to another user and to an
anonymous visitor: no script may run (issue 12, finding 1).

A rogue staff member ("mallory", with an API key) and a rogue operator fill every field
with :data:`PAYLOADS` through the real paths: the operator's collection metadata and
object ids (``add_catalog_collection``), the JSON API (searches echoing the ids, dataset
names and descriptions, per-object comments on datasets, saved periods' labels), API key
labels (the user store), the object page's review form (comments and tags, as mallory in
the browser).
Then an admin ("boss", who sees every key) and an anonymous visitor open every page:
overview, each dataset, each object, account, login (with a hostile ``next``).

A page fails when a dialog opens, when ``window.__xss`` (which every payload tries to
set) is set, when any element in the page or its shadow roots carries a payload as an
event handler, a ``javascript:`` URL, ``srcdoc`` or script text (escaping must hold even
where the Content-Security-Policy would block the script), or when the browser reports
a CSP violation (the conftest's ``page`` fixture).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect

from support.data import random_catalog, set_config, write_table

from .conftest import CSP_CONSOLE, served, wait_idle

#: each tries to set window.__xss to its number (and to open a dialog)
PAYLOADS = [
    '<script>window.__xss=1;alert(1)</script>',
    '<img src=x onerror="window.__xss=2;alert(2)">',
    '<svg onload="window.__xss=3;alert(3)">',
    '<svg><script>window.__xss=4</script></svg>',
    '"><img src=x onerror=window.__xss=5>',
    "'><img src=x onerror=window.__xss=6>",
    '" onmouseover="window.__xss=7" autofocus onfocus="window.__xss=7" x="',
    "' autofocus onfocus='window.__xss=8' x='",
    'javascript:window.__xss=9;alert(9)',
    '[click me](javascript:window.__xss=10)',
    '![x](x" onerror="window.__xss=11)',
    '<a href="javascript:window.__xss=12">link</a>',
    "{{constructor.constructor('window.__xss=13')()}} {{ 7*7 }} {% raw %}",
    '${window.__xss=14}`;window.__xss=14;`',
    '</script><script>window.__xss=15</script>',
    '<iframe srcdoc="<script>parent.__xss=16</script>"></iframe>',
    '<details open ontoggle="window.__xss=17">',
    '<body onload=window.__xss=18>',
    '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=19>',
    '\u202e<img src=x onerror=window.__xss=20>\u202c',
    '\uff1cimg src=x onerror=window.__xss=21\uff1e',
    '<input autofocus onfocus=window.__xss=22>',
    '<object data="javascript:window.__xss=23"></object>',
    '&lt;img src=x onerror=window.__xss=24&gt;',
    '<!--<img src="--><img src=x onerror=window.__xss=25//">',
    '%3Cimg%20src%3Dx%20onerror%3Dwindow.__xss%3D26%3E',
    '<form action="javascript:window.__xss=27"><button>go</button></form>',
    '<style>*{background:url("javascript:window.__xss=28")}</style><b style="x:expression(window.__xss=28)">b</b>',
    '*__xss29* <b>bold</b> _x_ # heading <!-- c --> <img src=x onerror=window.__xss=29>',
    '<IMG SRC=x oNeRrOr=window.__xss=30>',
]

#: every element attribute and script text in the page and its shadow roots that holds a payload
SCAN_JS = r"""() => {
    const bad = []
    const visit = (root) => {
        for (const el of root.querySelectorAll('*')) {
            for (const a of Array.from(el.attributes)) {
                const n = a.name.toLowerCase(), v = a.value || ''
                if (!/__xss/.test(v)) continue
                if (n.startsWith('on') || n === 'srcdoc' || n === 'style'
                    || (/^(href|src|action|formaction|data|xlink:href)$/.test(n) && /^\s*javascript:/i.test(v)))
                    bad.push(`<${el.tagName.toLowerCase()} ${n}="${v.slice(0, 80)}">`)
            }
            if (el.tagName === 'SCRIPT' && /__xss/.test(el.textContent))
                bad.push('<script>' + el.textContent.slice(0, 80))
            if (el.tagName === 'IFRAME' || el.tagName === 'OBJECT' || el.tagName === 'EMBED') {
                const src = el.getAttribute('src') || el.getAttribute('data') || ''
                if (/__xss/.test(src) || el.hasAttribute('srcdoc')) bad.push(`<${el.tagName.toLowerCase()}>`)
            }
            if (el.shadowRoot) visit(el.shadowRoot)
        }
    }
    visit(document)
    return bad
}"""

ADMIN = ("boss", "pw-of-the-boss-1")
MALLORY = ("mallory", "pw-of-mallory-1")


def _api(url: str, path: str, token: str, body: dict | None = None, **query) -> dict:
    full = url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    req = urllib.request.Request(full, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def hostile(csv_collection, tmp_path_factory):
    """A served basedir whose every settable string is a payload; yields (url, facts)."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection
    from lcpanel.core.access.users import UserStore

    root = tmp_path_factory.mktemp("xss")
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    everything = " ".join(PAYLOADS)
    add_astrobase_collection(app, base, csv_collection, collection_id="demo", show_progress=False,
                             meta={"name": PAYLOADS[1], "description": everything, "citation": PAYLOADS[4],
                                   "project": PAYLOADS[6]})
    cols = random_catalog(len(PAYLOADS) + 5, seed=5, center=(10.0, 20.0), radius_deg=1.0)
    cols["objectid"] = cols["objectid"].astype(object)
    cols["objectid"][:len(PAYLOADS)] = PAYLOADS
    cols["objectid"] = cols["objectid"].astype(str)
    add_catalog_collection(app, base, write_table(cols, root / "hostile.parquet"), collection_id="hostile",
                           meta={"name": PAYLOADS[2], "description": everything, "citation": everything[:2000],
                                 "project": PAYLOADS[5]}, show_progress=False)
    users = UserStore(base.path)
    users.add_user(*ADMIN, "admin")
    users.add_user(*MALLORY, "staff")
    token, _ = users.issue_key("user:mallory", "staff", label="scripts", days=1)
    for p in PAYLOADS:
        users.issue_key("user:mallory", "staff", label=p[:200], days=1)
    demo_oid = app.catalogs.get("demo").query("SELECT objectid FROM object_catalog ORDER BY objectid LIMIT 1")[0][0]
    # these tests are about escaping: the anonymous crawl of every page must not spend the
    # request budget the search-form test then needs (tests/test_reviews.py covers budgets)
    set_config(base.path, "[limits]\nanonymous_requests_per_minute = 0\n"
                                  "[quotas]\nanonymous_disk_mb = 0.0\nanonymous_product_mb = 0.0\n")

    with served(base.path, root / "serve.log") as url:
        datasets = []
        for i, p in enumerate(PAYLOADS):
            out = _api(url, "/api/search", token,
                       {"type": "objectid", "params": {"ids": [p, PAYLOADS[(i + 1) % len(PAYLOADS)]]},
                        "collections": ["hostile"], "limit": 10},
                       visibility="public", name=p[:200], description=everything)
            ds = out["dataset_id"]
            _api(url, f"/api/datasets/{ds}", token, {"name": p[:200], "comment": p,
                                                     "object_comment": {"key": f"hostile/{p}", "text": p}})
            datasets.append(ds)
        # saved periods' labels are shown on the object page, in its period chips
        periods = f"/api/collections/demo/objects/{urllib.parse.quote(demo_oid, safe='')}/reviews/periods"
        for i, p in enumerate(PAYLOADS[:12]):
            _api(url, periods, token, {"period": 1.0 + i / 10, "label": p[:80]})
        yield {"url": url, "datasets": datasets, "demo_oid": demo_oid, "token": token}


def _attack_guard(page):
    """Record dialogs; payloads that run set window.__xss."""
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _check(page, url: str, dialogs: list[str], what: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    if "/login" not in url:
        wait_idle(page, timeout=60)
    page.wait_for_timeout(300)  # broken images fail, focus and toggle events fire
    ran = page.evaluate("() => window.__xss")
    injected = page.evaluate(SCAN_JS)
    assert ran is None, f"payload {ran} ran on {what}"
    assert not dialogs, f"a dialog opened on {what}: {dialogs}"
    assert not injected, f"markup from a payload on {what}: {injected}"
    csp = [m for m in getattr(page, "lcp_console", []) if CSP_CONSOLE in m]
    assert not csp, f"the CSP had to block something on {what}: {csp[:3]}"


def _login(page, url: str, user: tuple[str, str], next_path: str = "/account") -> None:
    page.goto(url + "/login?next=" + urllib.parse.quote(next_path), wait_until="domcontentloaded")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")
    page.wait_for_url("**" + next_path)


def test_review_form_payloads_are_saved_as_text(page, hostile):
    """Mallory (staff) writes payloads as an object's comments and tags through the page."""
    url = hostile["url"]
    _login(page, url, MALLORY)
    page.goto(f"{url}/objects/demo/{hostile['demo_oid']}", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    tags = ", ".join(p.replace(",", " ") for p in (PAYLOADS[1], PAYLOADS[2], PAYLOADS[4], PAYLOADS[16]))
    page.locator(".lcp-edit-tags input").fill(tags[:500])
    page.locator(".lcp-edit-comments textarea").fill("\n".join(PAYLOADS))
    page.locator(".lcp-save-review button").click()
    expect(page.locator(".lcp-review-message")).to_contain_text("Saved", timeout=30_000)
    # comments are appended to the object's comment list (the record's row is the survey's own)
    expect(page.locator(".lcp-comment-list")).to_contain_text(PAYLOADS[1], timeout=20_000)


@pytest.mark.parametrize("who", ["admin", "anonymous"])
def test_no_payload_runs_on_any_page(page, hostile, who):
    url = hostile["url"]
    dialogs = _attack_guard(page)
    if who == "admin":
        _login(page, url, ADMIN)
    datasets = hostile["datasets"] if who == "admin" else hostile["datasets"][:4]
    objects = PAYLOADS if who == "admin" else PAYLOADS[:3]
    pages = [("overview", "/"), ("account", "/account"), ("object demo", f"/objects/demo/{hostile['demo_oid']}")]
    pages += [(f"dataset {i}", f"/datasets/{ds}") for i, ds in enumerate(datasets)]
    pages += [(f"object {i}", "/objects/hostile/" + urllib.parse.quote(p, safe="")) for i, p in enumerate(objects)]
    pages += [(f"login next {i}", "/login?next=" + urllib.parse.quote(p, safe="")) for i, p in
              enumerate(PAYLOADS[:6])]
    for what, path in pages:
        _check(page, url + path, dialogs, f"{what} as {who}")

    # the payloads are there, shown as text
    page.goto(f"{url}/objects/demo/{hostile['demo_oid']}", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    expect(page.locator(".lcp-saved-periods")).to_contain_text(PAYLOADS[1][:24])
    page.goto(f"{url}/datasets/{hostile['datasets'][1]}", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    expect(page.locator(".lcp-dataset-header h1")).to_have_text(PAYLOADS[1])
    assert PAYLOADS[1] in page.locator("#header").inner_text() or PAYLOADS[1] in page.title()
    page.goto(url + "/", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    expect(page.locator(".lcp-collection h3").first).to_have_text(PAYLOADS[1])
    expect(page.locator(".lcp-dataset-list")).to_contain_text(PAYLOADS[2])
    if who == "admin":
        page.goto(url + "/account", wait_until="domcontentloaded")
        wait_idle(page, timeout=60)
        expect(page.locator(".lcp-every-key")).to_contain_text(PAYLOADS[1])
    assert page.evaluate("() => window.__xss") is None and not dialogs


def test_search_form_echoes_a_hostile_filter_as_text(page, hostile):
    """A search parameter echoed back in an error message stays text."""
    dialogs = _attack_guard(page)
    page.goto(hostile["url"] + "/", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    form = page.locator(".lcp-search-form:visible")
    form.locator(".lcp-field-filter input").fill("vmag < " + PAYLOADS[1])
    form.locator(".lcp-search button").click()
    expect(form.locator(".lcp-field-filter .lcp-error-text")).to_contain_text("'<", timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None and not dialogs
    assert not page.evaluate(SCAN_JS)
