"""Hostile visitors against cookies, sessions and forms (issue 12, findings 2-5 and 7),
through ``lcpanel serve``: cross-site writes refused and changing nothing, login and
logout form tokens, logins that end, ``next`` that never leaves the site, lcpanel's
cookies kept out of Bokeh session tokens, private files 0600, product errors without
server paths, and login back-off per account and per address."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from support.clients import send
from support.data import set_config
from support.servers import running_server

from lcpanel.core.access.auth import LOGIN_COOKIE
from lcpanel.core.access.identity import COOKIE_NAME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hostile_server(csv_collection, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.access.users import UserStore

    base = Basedir.init(tmp_path_factory.mktemp("hostile") / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    set_config(base.path, "[limits]\nanonymous_requests_per_minute = 0\nuser_requests_per_minute = 0\n")
    store = UserStore(base.path)
    for name in ("alice", "bob", "carol", "dave", "erin", "nina"):
        store.add_user(name, f"pw-of-{name}", "user")
    key = store.issue_key("user:bob", "user")[0]
    store.close()
    with running_server(base.path, "--use-xheaders") as (url, _proc):
        yield url, base.path, key


class Browser:
    """A cookie jar and the headers a browser would add; nothing implied."""

    def __init__(self, url):
        self.url = url
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def call(self, path, data: bytes | None = None, method=None, headers=None):
        return send(urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {}),
                    self.opener)

    def page_json(self, path, body=None, method=None):
        """As a page of the server sends it: JSON, same Origin."""
        data = json.dumps(body).encode() if body is not None else None
        status, _, raw = self.call(path, data, method, {"Content-Type": "application/json", "Origin": self.url})
        return status, json.loads(raw) if raw else None

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def login(browser: Browser, name: str) -> None:
    status, data = browser.page_json("/api/login", {"username": name, "password": f"pw-of-{name}"})
    assert status == 200, data


def new_dataset(browser: Browser, name="mine") -> str:
    status, data = browser.page_json(f"/api/search?visibility=public&name={name}",
                                     {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 2})
    assert status == 200, data
    return data["dataset_id"]


OTHER_PORT = "http://127.0.0.1:1"  # same site, another origin


def cross_site_attempts(url):
    """(what, body bytes, headers) of writes a page elsewhere can make with the visitor's cookies."""
    body = json.dumps({"name": "pwned"}).encode()
    form = b"name=pwned"
    return [
        ("fetch text/plain, same-site other port", body, {"Content-Type": "text/plain", "Origin": OTHER_PORT,
                                                          "Sec-Fetch-Site": "same-site"}),
        ("form post from another site", form, {"Content-Type": "application/x-www-form-urlencoded",
                                               "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}),
        ("JSON claiming another origin", body, {"Content-Type": "application/json", "Origin": OTHER_PORT}),
        ("JSON with Origin null", body, {"Content-Type": "application/json", "Origin": "null"}),
        ("JSON, same-site fetch metadata", body, {"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}),
        ("JSON without Origin or Sec-Fetch-Site", body, {"Content-Type": "application/json"}),
        ("text/plain from this origin", body, {"Content-Type": "text/plain", "Origin": url}),
        ("form from this origin", form, {"Content-Type": "application/x-www-form-urlencoded", "Origin": url}),
        ("no content type, this origin", body, {"Origin": url}),
    ]


def test_cross_site_writes_with_cookies_are_refused_and_change_nothing(hostile_server):
    url, basedir, _ = hostile_server
    alice = Browser(url)
    login(alice, "alice")
    ds = new_dataset(alice)
    keys_before = alice.page_json("/api/keys")[1]["keys"]
    for what, body, headers in cross_site_attempts(url):
        for path, method in ((f"/api/datasets/{ds}", "POST"), ("/api/keys", "POST"),
                             (f"/api/datasets/{ds}/products", "POST"), (f"/api/datasets/{ds}/freeze", "POST"),
                             ("/api/search?visibility=public&name=pwned", "POST"), ("/api/logout", "POST")):
            status, resp_headers, raw = alice.call(path, body, method, headers)
            assert status == 403, (what, path, status, raw[:300])
            assert resp_headers["Content-Type"].startswith("application/json")
            assert "cross-site" in json.loads(raw)["error"] or "JSON" in json.loads(raw)["error"]
    for what, _, headers in cross_site_attempts(url)[:6]:
        assert alice.call(f"/api/datasets/{ds}", None, "DELETE", headers)[0] == 403, what
    # nothing changed: the name, the dataset itself, her keys, products, datasets, and she is still logged in
    status, data = alice.page_json(f"/api/datasets/{ds}?stop=1")
    assert status == 200 and data["name"] == "mine" and not data.get("frozen_from")
    assert alice.page_json("/api/keys")[1]["keys"] == keys_before
    assert alice.page_json(f"/api/datasets/{ds}/products")[1]["products"] == []
    assert not [d for d in alice.page_json("/api/datasets?mine=1")[1]["datasets"] if d["name"] == "pwned"]
    assert alice.page_json("/api/whoami")[1]["identity"] == "user:alice"
    # the same writes from her own pages work (Origin, or Sec-Fetch-Site when a proxy rewrites Host)
    assert alice.page_json(f"/api/datasets/{ds}", {"name": "renamed"})[0] == 200
    status, _, _ = alice.call(f"/api/datasets/{ds}", json.dumps({"name": "renamed again"}).encode(), "POST",
                              {"Content-Type": "application/json; charset=utf-8", "Sec-Fetch-Site": "same-origin",
                               "Origin": "https://proxy.example"})
    assert status == 200
    assert alice.page_json(f"/api/datasets/{ds}?stop=1")[1]["name"] == "renamed again"


def test_anonymous_session_writes_are_checked_too(hostile_server):
    url, _, _ = hostile_server
    anon = Browser(url)
    ds = new_dataset(anon, "anon-set")
    assert anon.cookie(COOKIE_NAME)
    status, _, _ = anon.call(f"/api/datasets/{ds}", b'{"visibility": "private"}', "POST",
                             {"Content-Type": "text/plain", "Origin": OTHER_PORT})
    assert status == 403
    assert anon.call(f"/api/datasets/{ds}", None, "DELETE", {"Origin": OTHER_PORT})[0] == 403
    assert anon.page_json(f"/api/datasets/{ds}?stop=1")[1]["visibility"] == "public"


def test_api_keys_are_exempt(hostile_server):
    url, _, key = hostile_server
    script = Browser(url)
    status, _, raw = script.call("/api/search?name=by-key", json.dumps({"type": "filter", "params": {
        "where": "ndet > 0"}, "limit": 1}).encode(), "POST", {"Authorization": f"Bearer {key}"})
    assert status == 200, raw
    ds = json.loads(raw)["dataset_id"]
    status, _, _ = script.call(f"/api/datasets/{ds}", b'{"name": "renamed by key"}', "POST",
                               {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"})
    assert status == 200
    # a bearer request never falls back to the cookie's identity, so no cookie rides on it
    assert script.cookie(COOKIE_NAME) is None


def test_vo_job_writes_with_cookies(hostile_server):
    """UWS jobs (form posts by standard): a browser's cross-site post with the visitor's
    cookie is refused; pyvo-like clients (a cookie, no browser headers) and same-origin
    pages go through."""
    url, basedir, _ = hostile_server
    anon = Browser(url)
    anon.call("/api/whoami")  # the session cookie
    assert anon.cookie(COOKIE_NAME)
    form = urllib.parse.urlencode({"LANG": "ADQL", "QUERY": "SELECT TOP 1 objectid FROM lcpanel.demo"}).encode()
    jobs_dir = basedir / "vo" / "jobs"
    before = set(os.listdir(jobs_dir)) if jobs_dir.exists() else set()
    for headers in ({"Origin": OTHER_PORT}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example"}):
        status, _, raw = anon.call("/tap/async", form, "POST", headers)
        assert status == 403 and b"cross-site" in raw, (headers, status, raw[:200])
    assert (set(os.listdir(jobs_dir)) if jobs_dir.exists() else set()) == before
    status, headers, _ = anon.call("/tap/async", form, "POST", {})  # pyvo keeps the cookie, sends no Origin
    assert status == 303
    job = headers["Location"].rsplit("/", 1)[1]
    assert anon.call(f"/tap/async/{job}", b"ACTION=DELETE", "POST", {"Origin": OTHER_PORT})[0] == 403
    assert anon.call(f"/tap/async/{job}", None, "DELETE", {"Origin": "http://evil.example"})[0] == 403
    assert anon.call(f"/tap/async/{job}")[0] == 200
    assert anon.call(f"/tap/async/{job}", b"ACTION=DELETE", "POST", {"Origin": url})[0] == 303
    assert anon.call(f"/tap/async/{job}")[0] == 404


def _form_token(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def test_login_form_csrf(hostile_server):
    url, _, _ = hostile_server
    attacker, victim = Browser(url), Browser(url)
    token = _form_token(attacker.call("/login")[2])
    victim.call("/login")  # the victim has a session cookie of their own
    fields = {"username": "carol", "password": "pw-of-carol", "next": "/", "csrf_token": token}
    same = {"Content-Type": "application/x-www-form-urlencoded", "Origin": url}
    # the attacker's token in the victim's browser, from this origin or not, never logs the victim in
    for headers in (same, {**same, "Origin": OTHER_PORT}, {**same, "Origin": "http://evil.example"}):
        status, _, raw = victim.call("/login", urllib.parse.urlencode(fields).encode(), "POST", headers)
        assert status == 403, (headers, status)
    # no token, or the right token from another origin or with no origin: refused
    own = _form_token(victim.call("/login")[2])
    for token_value, headers in ((None, same), (own, {**same, "Origin": OTHER_PORT}),
                                 (own, {"Content-Type": "application/x-www-form-urlencoded"})):
        data = {k: v for k, v in {**fields, "csrf_token": token_value}.items() if v is not None}
        assert victim.call("/login", urllib.parse.urlencode(data).encode(), "POST", headers)[0] == 403
    assert victim.page_json("/api/whoami")[1]["role"] == "anonymous"
    # the JSON login refuses another site's page (text/plain or JSON)
    for headers in ({"Content-Type": "text/plain", "Origin": OTHER_PORT},
                    {"Content-Type": "application/json", "Origin": "http://evil.example"},
                    {"Content-Type": "text/plain"}):
        body = json.dumps({"username": "carol", "password": "pw-of-carol"}).encode()
        assert victim.call("/api/login", body, "POST", headers)[0] == 403, headers
    assert victim.page_json("/api/whoami")[1]["role"] == "anonymous"
    # the victim's own form works
    status, headers, _ = victim.call("/login", urllib.parse.urlencode({**fields, "csrf_token": own}).encode(),
                                     "POST", same)
    assert status == 302 and victim.page_json("/api/whoami")[1]["identity"] == "user:carol"


def test_logout_form_needs_its_token(hostile_server):
    url, _, _ = hostile_server
    dave = Browser(url)
    login(dave, "dave")
    same = {"Content-Type": "application/x-www-form-urlencoded", "Origin": url}
    assert dave.call("/logout", b"", "POST", same)[0] == 403
    assert dave.call("/logout", b"csrf_token=0123", "POST", same)[0] == 403
    assert dave.page_json("/api/whoami")[1]["identity"] == "user:dave"
    # the token the pages put in the header's log-out form (lcpanel.visitor.logout_token)
    from lcpanel.core.access.identity import Signer, basedir_secret
    from lcpanel.csrf import form_token

    token = form_token(Signer(basedir_secret(hostile_server[1])).secret, "logout", dave.cookie(LOGIN_COOKIE))
    assert dave.call("/logout", f"csrf_token={token}".encode(), "POST", {**same, "Origin": OTHER_PORT})[0] == 403
    status, headers, _ = dave.call("/logout", f"csrf_token={token}".encode(), "POST", same)
    assert status == 302 and dave.page_json("/api/whoami")[1]["role"] == "anonymous"


def _as_cookie(value: str) -> dict:
    return {"Cookie": f"{LOGIN_COOKIE}={value}"}


def test_logins_end_on_logout_password_change_and_removal(hostile_server):
    url, basedir, _ = hostile_server

    def who(cookie):
        status, _, raw = Browser(url).call("/api/whoami", headers=_as_cookie(cookie))
        return json.loads(raw)["identity"]

    # logout (JSON and form) ends that login for whoever kept a copy of the cookie
    first, second = Browser(url), Browser(url)
    login(first, "erin")
    login(second, "erin")
    stolen = first.cookie(LOGIN_COOKIE)
    assert who(stolen) == "user:erin"
    assert first.page_json("/api/logout", {})[0] == 200
    assert who(stolen).startswith("anon:")
    assert who(second.cookie(LOGIN_COOKIE)) == "user:erin"  # another browser's login goes on
    # a password change (the CLI, as the operator runs it) ends every login of the account
    kept = second.cookie(LOGIN_COOKIE)
    done = subprocess.run([sys.executable, "-m", "lcpanel", "users", str(basedir), "passwd", "erin",
                           "--password-stdin"], input="a new password\n", capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert who(kept).startswith("anon:")
    # removing the account ends its logins
    third = Browser(url)
    status, _ = third.page_json("/api/login", {"username": "erin", "password": "a new password"})
    assert status == 200 and who(third.cookie(LOGIN_COOKIE)) == "user:erin"
    done = subprocess.run([sys.executable, "-m", "lcpanel", "users", str(basedir), "remove", "erin"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert who(third.cookie(LOGIN_COOKIE)).startswith("anon:")
    # the login cookie is random, HttpOnly, and names no one
    assert "erin" not in third.cookie(LOGIN_COOKIE)


NASTY_NEXT = [
    "//evil.example/x", "/%09/evil.example/x", "/\t/evil.example", "/%0a/x", "/\n/x", "/\r\n/x",
    "/\\evil.example", "/\\\\evil.example", "\\\\evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
    "/%2F/evil.example", "/%2f%2fevil.example", "http://evil.example", "https:evil.example", "javascript:alert(1)",
    "data:text/html,x", "evil.example", " //evil.example", "/\u2028/evil.example", "/\x00/evil.example",
    "//%09evil.example", "/ /evil.example", "\x7f//evil.example", "/" + "a" * 5000, "/é\u202e/x",
]


@pytest.mark.parametrize("target", NASTY_NEXT)
def test_next_never_leaves_the_site(hostile_server, target):
    url, _, _ = hostile_server
    browser = Browser(url)
    status, _, page = browser.call("/login?next=" + urllib.parse.quote(target, safe=""))
    assert status == 200
    shown = re.search(rb'name="next" value="([^"]*)"', page).group(1).decode()
    # (each case from its own address: this is not about login budgets)
    fields = {"username": "nina", "password": "pw-of-nina", "next": target, "csrf_token": _form_token(page)}
    status, headers, raw = browser.call("/login", urllib.parse.urlencode(fields).encode(), "POST",
                                        {"Content-Type": "application/x-www-form-urlencoded", "Origin": url,
                                         "X-Real-Ip": f"10.9.0.{NASTY_NEXT.index(target) + 1}"})
    assert status == 302, (status, raw[:300])
    location = headers["Location"]
    for where in (location, shown):
        # as a browser reads it: tabs/newlines dropped, backslashes as slashes
        seen = re.sub(r"[\x00-\x20\x7f]", "", urllib.parse.unquote(where)).replace("\\", "/")
        assert seen.startswith("/") and not seen.startswith("//"), (target, where)
        assert not urllib.parse.urlsplit(seen).netloc
    if "evil" in target or ":" in target:
        assert location == "/", (target, location)


@pytest.mark.parametrize("target", NASTY_NEXT)
def test_safe_next_in_process(target):
    """The same list against the one function every redirect after login goes through."""
    from lcpanel.plugins.accounts import _safe_next

    got = _safe_next(target)
    seen = re.sub(r"[\x00-\x20\x7f]", "", urllib.parse.unquote(got)).replace("\\", "/")
    assert seen.startswith("/") and not seen.startswith("//") and not urllib.parse.urlsplit(seen).netloc, got
    assert got.isascii() and not re.search(r"[\x00-\x20\x7f]", got), got  # a valid Location header
    if "evil" in target or ":" in target:
        assert got == "/", (target, got)


def test_local_next_is_kept(hostile_server):
    url, _, _ = hostile_server
    browser = Browser(url)
    page = browser.call("/login")[2]
    fields = {"username": "nina", "password": "pw-of-nina", "next": "/datasets/abc?start=10#rows",
              "csrf_token": _form_token(page)}
    status, headers, _ = browser.call("/login", urllib.parse.urlencode(fields).encode(), "POST",
                                      {"Content-Type": "application/x-www-form-urlencoded", "Origin": url})
    assert status == 302 and headers["Location"] == "/datasets/abc?start=10#rows"


def _token_payloads(text: str) -> list[dict]:
    """The payloads of every Bokeh session token in a page or autoload.js answer."""
    from bokeh.util.token import get_token_payload

    tokens = set(re.findall(r'(eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+){0,2})', text))
    out = []
    for token in tokens:
        try:
            out.append(get_token_payload(token))
        except Exception:
            continue
    return out


def test_lcpanel_cookies_stay_out_of_bokeh_session_tokens(hostile_server):
    url, _, _ = hostile_server
    alice = Browser(url)
    login(alice, "alice")
    alice.call("/api/whoami")
    secrets_ = [alice.cookie(LOGIN_COOKIE), alice.cookie(COOKIE_NAME)]
    assert all(secrets_)
    cookie_header = f"{LOGIN_COOKIE}={secrets_[0]}; {COOKIE_NAME}={secrets_[1]}; other=visible"
    for path in ("/account", "/", "/account/autoload.js?bokeh-autoload-element=x&bokeh-app-path=/account"
                                  "&bokeh-absolute-url=" + urllib.parse.quote(url + "/account")):
        status, headers, raw = Browser(url).call(path, headers={"Cookie": cookie_header,
                                                                "Authorization": "Bearer lcp_not_a_key"}
                                                 if path.startswith("/account") and "autoload" not in path
                                                 else {"Cookie": cookie_header})
        if status == 401:  # a bad bearer token is refused by the API only; pages ignore the header
            pytest.fail(f"{path} answered 401")
        assert status == 200, (path, status)
        text = raw.decode("utf-8", "replace")
        payloads = _token_payloads(text)
        assert payloads, f"no session token found in {path}"
        for payload in payloads:
            dumped = json.dumps(payload, default=repr)
            assert secrets_[0] not in dumped and secrets_[1] not in dumped, (path, payload)
            assert LOGIN_COOKIE not in dumped and COOKIE_NAME not in dumped
            assert "lcp_not_a_key" not in dumped
            assert payload.get("cookies", {}).get("other") == "visible"  # other cookies still pass (Panel's own)
        assert secrets_[0] not in text and secrets_[1] not in text
    # yet the page knows who is visiting: the account page names her
    status, _, raw = Browser(url).call("/account", headers={"Cookie": cookie_header})
    assert status == 200


def test_anonymous_page_cookie_is_httponly(hostile_server):
    url, _, _ = hostile_server
    status, headers, raw = Browser(url).call("/account")
    assert status == 200
    lines = [v for k, v in headers.items() if k.lower() == "set-cookie" and v.startswith(COOKIE_NAME + "=")]
    assert len(lines) == 1, headers.get_all("Set-Cookie")
    attrs = [a.strip().lower() for a in lines[0].split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
    value = lines[0].split(";")[0].split("=", 1)[1]
    # the API takes it as the same anonymous identity the page acted for
    status, _, raw = Browser(url).call("/api/whoami", headers={"Cookie": f"{COOKIE_NAME}={value}"})
    assert json.loads(raw)["identity"].startswith("anon:")
    status, headers2, _ = Browser(url).call("/account", headers={"Cookie": f"{COOKIE_NAME}={value}"})
    assert not [v for k, v in headers2.items() if k.lower() == "set-cookie" and COOKIE_NAME in v]
    assert "document.cookie" not in raw.decode("utf-8", "replace")


def test_login_backoff_per_account_and_per_address(hostile_server):
    """An attacker guessing at one account is slowed (429 with a short Retry-After), and
    so is one rotating addresses; the account's owner, from elsewhere, and other accounts
    from the attacker's own address (a proxy everyone shares) still log in."""
    url, _, _ = hostile_server

    def attempt(name, password, address):
        body = json.dumps({"username": name, "password": password}).encode()
        status, headers, _ = Browser(url).call("/api/login", body, "POST",
                                               {"Content-Type": "application/json", "X-Real-Ip": address})
        return status, headers

    codes = [attempt("bob", f"guess-{i}", "10.0.0.1")[0] for i in range(12)]
    assert codes[0] == 400 and codes[-1] == 429
    status, headers = attempt("bob", "guess-x", "10.0.0.1")
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 10  # a back-off of seconds, not a lock
    # the owner from another address, and another account from the attacker's address: fine
    assert attempt("bob", "pw-of-bob", "10.0.0.2")[0] == 200
    assert attempt("alice", "pw-of-alice", "10.0.0.1")[0] == 200
    # rotating addresses: the account's own budget runs out
    rotated = [attempt("carol", f"guess-{i}", f"10.1.{i // 250}.{i % 250}")[0] for i in range(45)]
    assert rotated.count(429) >= 5 and rotated[:20].count(400) == 20


# --- in process ---------------------------------------------------------------------------


def test_private_files_are_0600_whatever_the_umask(tmp_path):
    from lcpanel.core.access.identity import basedir_secret
    from lcpanel.core.access.ratelimit import RateLimiter
    from lcpanel.core.access.users import UserStore

    class Limits:
        burst = 2

        def requests_per_minute(self, role):
            return 60

    old = os.umask(0o002)
    try:
        store = UserStore(tmp_path)
        store.add_user("alice", "pw-of-alice")
        basedir_secret(tmp_path)
        limiter = RateLimiter(tmp_path, Limits())
        limiter.check("ip:1", "anonymous")
        files = [tmp_path / "users.sqlite", tmp_path / "users.sqlite-wal", tmp_path / ".secret", limiter.path]
        for path in files:
            assert path.exists(), path
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path, oct(path.stat().st_mode))
        # an older world-readable file is tightened when opened
        store.close()
        os.chmod(tmp_path / "users.sqlite", 0o644)
        os.chmod(tmp_path / ".secret", 0o644)
        UserStore(tmp_path).users()
        basedir_secret(tmp_path)
        assert stat.S_IMODE((tmp_path / "users.sqlite").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / ".secret").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert not list(tmp_path.glob(".secret.*.tmp"))


def test_failed_product_says_which_object_and_why_without_paths(tmp_path):
    from dataclasses import asdict

    from lcpanel.core.products import Entry, ProductStore, build_product

    store = ProductStore(tmp_path)
    missing = tmp_path / "collections" / "demo" / "HAT-123-0000001-hatlc.csv.gz"
    key = "a" * 64
    with store.connect() as conn:
        conn.execute("INSERT INTO products (key, builder, options, filename, status, done, total, heartbeat, created, "
                     "updated) VALUES (?, 'lightcurves', '{}', 'x.zip', 'queued', 0, 1, ?, 'now', 'now')",
                     (key, time.time()))
    entry = Entry(arcname="lightcurves/demo/HAT-123-0000001.csv", kind="file", source=str(missing))
    build_product(str(store.index_path), key, [asdict(entry)], str(store.file_path(key, "lightcurves")))
    status = store.status(key)
    assert status["status"] == "failed"
    error = status["error"]
    assert str(tmp_path) not in error and "collections/demo/HAT" not in error and not re.search(r"(^|[\s'\"(])/", error)
    assert "HAT-123-0000001" in error and "missing" in error.lower(), error
