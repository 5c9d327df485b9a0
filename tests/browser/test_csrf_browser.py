"""Cross-site request forgery in Chromium (issue 12, finding 2): a logged-in visitor
opens an attacker's page served on another port of the same host (same site, another
origin) or on another site (the app as ``localhost``, the attacker as ``127.0.0.1``).
The page tries ``fetch()`` with ``text/plain`` and JSON bodies, HTML form posts (a
``text/plain`` form shaped as JSON, login CSRF with the attacker's own form token, a
log-out), and nothing changes in the store: every request that reaches the server is
answered 403 and the visitor is still logged in as themselves. Then the visitor logs out
with the page's own log-out button, which works."""

from __future__ import annotations

import http.server
import json
import re
import threading
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar

import pytest
from playwright.sync_api import expect

from lcpanel.core.access.users import UserStore
from lcpanel.visitor import LOGIN_CHECK_MS

from .conftest import page_api

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ATTACK_JS = r"""
async function attack(app, ds, mallory) {
  const log = [];
  const text = (body) => ({method: "POST", credentials: "include", mode: "no-cors",
                           headers: {"Content-Type": "text/plain"}, body: JSON.stringify(body)});
  const json = (method, body) => ({method, credentials: "include", mode: "cors",
                                   headers: {"Content-Type": "application/json"},
                                   body: body === undefined ? undefined : JSON.stringify(body)});
  const tries = [
    ["rename (text/plain)", `${app}/api/datasets/${ds}`, text({name: "pwned", visibility: "public"})],
    ["key (text/plain)", `${app}/api/keys`, text({label: "pwned"})],
    ["build (text/plain)", `${app}/api/datasets/${ds}/products`, text({builder: "lightcurves"})],
    ["freeze (text/plain)", `${app}/api/datasets/${ds}/freeze`, text({})],
    ["search (text/plain)", `${app}/api/search?name=pwned`, text({type: "filter", params: {where: "ndet > 0"}})],
    ["logout api (text/plain)", `${app}/api/logout`, text({})],
    ["login api (text/plain)", `${app}/api/login`, text({username: mallory.name, password: mallory.password})],
    ["rename (JSON, CORS)", `${app}/api/datasets/${ds}`, json("POST", {name: "pwned"})],
    ["delete (CORS)", `${app}/api/datasets/${ds}`, json("DELETE")],
  ];
  for (const [what, url, init] of tries) {
    try { await fetch(url, init); log.push([what, "sent"]); } catch (e) { log.push([what, "blocked: " + e]); }
  }
  // HTML forms, each into its own frame
  const forms = [
    ["rename (text/plain form)", `${app}/api/datasets/${ds}`, "text/plain",
     {'{"name": "pwned", "x": "': '"}'}],
    ["key (form)", `${app}/api/keys`, "application/x-www-form-urlencoded", {label: "pwned"}],
    ["login CSRF (form)", `${app}/login`, "application/x-www-form-urlencoded",
     {username: mallory.name, password: mallory.password, next: "/", csrf_token: mallory.token}],
    ["logout (form)", `${app}/logout`, "application/x-www-form-urlencoded", {csrf_token: "guess"}],
  ];
  await Promise.all(forms.map(([what, action, enctype, fields], i) => new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.name = "f" + i;
    document.body.appendChild(frame);
    const form = document.createElement("form");
    form.method = "POST"; form.action = action; form.enctype = enctype; form.target = frame.name;
    for (const [k, v] of Object.entries(fields)) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = k; input.value = v;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    frame.addEventListener("load", () => { log.push([what, "posted"]); resolve(); }, {once: true});
    setTimeout(() => { log.push([what, "timeout"]); resolve(); }, 15000);
    form.submit();
  })));
  window.attackLog = log;
  window.attackDone = true;
}
"""


class _Attacker(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (f"<!doctype html><html><head><title>cute cats</title><script>{ATTACK_JS}</script></head>"
                "<body><h1>Nothing to see here</h1></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def attacker_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _mallory(app: str, basedir) -> dict:
    """The attacker's own account and a login-form token bound to the attacker's own session."""
    name, password = "mallory-" + uuid.uuid4().hex[:6], "pw-of-mallory"
    UserStore(basedir).add_user(name, password, "user")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(app + "/login", timeout=30) as resp:
        token = re.search(rb'name="csrf_token" value="([^"]+)"', resp.read()).group(1).decode()
    return {"name": name, "password": password, "token": token}


def _log_in_to_the_account_page(page, app: str, user: tuple[str, str], wait_idle) -> None:
    """Log ``user`` in through the real form (its CSRF token and same-origin post), landing on /account."""
    page.goto(app + "/login?next=/account", wait_until="domcontentloaded")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/account", wait_until="commit", timeout=60_000)
    wait_idle(page, timeout=60)
    expect(page.locator(".lcp-account .lcp-user")).to_contain_text(user[0])


@pytest.mark.parametrize("layout", ["same-site other port", "other site"])
def test_attacker_pages_change_nothing(page, lcpanel_server, attacker_port, wait_idle, screenshot, layout):
    port = urllib.parse.urlsplit(lcpanel_server.url).port
    if layout == "same-site other port":
        app, attacker = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{attacker_port}/cats"
    else:
        app, attacker = f"http://localhost:{port}", f"http://127.0.0.1:{attacker_port}/cats"
    victim = ("victim-" + uuid.uuid4().hex[:6], "pw-of-the-victim")
    UserStore(lcpanel_server.basedir).add_user(victim[0], victim[1], "user")
    mallory = _mallory(app, lcpanel_server.basedir)

    # the victim logs in and makes a dataset
    _log_in_to_the_account_page(page, app, victim, wait_idle)
    made = page.request.post(app + "/api/search?visibility=private&name=victim-set", headers=page_api(app),
                             data=json.dumps({"type": "filter", "params": {"where": "ndet > 0"}, "limit": 2}))
    assert made.ok, made.text()
    ds = made.json()["dataset_id"]

    def state():
        got = page.request.get(f"{app}/api/datasets/{ds}?stop=1")
        return {"dataset": (got.status, got.json().get("name"), got.json().get("visibility")),
                "keys": page.request.get(app + "/api/keys").json()["keys"],
                "products": page.request.get(f"{app}/api/datasets/{ds}/products").json()["products"],
                "mine": sorted(d["name"] for d in page.request.get(app + "/api/datasets?mine=1").json()["datasets"]),
                "whoami": page.request.get(app + "/api/whoami").json()["identity"]}

    before = state()
    assert before["dataset"] == (200, "victim-set", "private") and before["whoami"] == f"user:{victim[0]}"

    # the attack: every request to the app that the browser sends is recorded with its answer
    seen = []
    page.on("response", lambda r: seen.append((r.request.method, r.url, r.status))
            if r.url.startswith(app) else None)
    page.goto(attacker, wait_until="domcontentloaded")
    page.evaluate("([app, ds, mallory]) => attack(app, ds, mallory)", [app, ds, mallory])
    page.wait_for_function("window.attackDone === true", timeout=60_000)
    log = page.evaluate("window.attackLog")
    writes = [(m, u, s) for m, u, s in seen if m in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes, f"no attack request reached the server: {log}"
    assert all(status == 403 for _, _, status in writes), writes
    assert any("/login" in u for _, u, _ in writes) and any("/api/keys" in u for _, u, _ in writes), writes

    # nothing changed, and the victim is still the victim (not logged out, not logged in as mallory)
    after = state()
    assert after == before, (before, after, log)
    page.goto(app + "/account", wait_until="domcontentloaded")
    wait_idle(page, timeout=60)
    expect(page.locator(".lcp-account .lcp-user")).to_contain_text(victim[0])
    screenshot(page, f"csrf-after-attack-{layout.replace(' ', '-')}")

    # the page's own log-out button (a form with its token) works, and ends the login
    page.locator(".lcp-account button[type=submit]").click()
    page.wait_for_url(re.compile(r"/$"), wait_until="commit", timeout=60_000)
    assert page.request.get(app + "/api/whoami").json()["role"] == "anonymous"


def test_open_page_leaves_when_its_login_ends(page, lcpanel_server, wait_idle):
    """A page opened while logged in stops acting for the account once the login ends
    elsewhere (here: a log-out through the API from the same browser): it goes to the
    login page within seconds."""
    app = lcpanel_server.url
    user = ("leaver-" + uuid.uuid4().hex[:6], "pw-of-the-leaver")
    UserStore(lcpanel_server.basedir).add_user(user[0], user[1], "user")
    _log_in_to_the_account_page(page, app, user, wait_idle)
    assert page.request.post(app + "/api/logout", headers=page_api(app), data="{}").ok
    page.wait_for_url(re.compile(r"/login\?next=(/|%2F)account"), wait_until="commit", timeout=60_000)
    assert page.request.get(app + "/api/whoami").json()["role"] == "anonymous"


def test_log_out_lands_home_even_when_the_server_answers_slowly(page, lcpanel_server, wait_idle):
    """The header's log-out button ends the login and leaves for the home page, even when
    the answer takes longer than the page's login check (5 s): the page being left must
    not send its visitor to the login page instead (the check sees the login ended, and
    its navigation used to cancel the log-out's)."""
    app = lcpanel_server.url.rstrip("/")
    user = ("slowout-" + uuid.uuid4().hex[:6], "pw-of-the-slow-leaver")
    UserStore(lcpanel_server.basedir).add_user(user[0], user[1], "user")
    _log_in_to_the_account_page(page, app, user, wait_idle)

    answered = []

    def slow_log_out(route):
        # the server ends the login now; the browser gets its answer 2 login checks later
        answer = route.fetch(max_redirects=0)
        answered.append(answer.status)
        page.wait_for_timeout(2 * LOGIN_CHECK_MS)
        route.fulfill(response=answer)

    page.route(re.compile(r"/logout$"), slow_log_out)
    page.locator(".lcp-account button[type=submit]").click()
    page.wait_for_url(re.compile(r"^[^?#]*://[^/]+/$"), wait_until="commit", timeout=60_000)
    assert answered == [302]
    assert page.request.get(app + "/api/whoami").json()["role"] == "anonymous"
