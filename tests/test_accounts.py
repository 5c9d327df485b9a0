"""Accounts, logins, API keys and rate limits: the stores in process, then through
``lcpanel serve`` (login form, JSON login, bearer keys, 429 with Retry-After, Panel's
OAuth cookie) and the ``lcpanel users`` / ``lcpanel keys`` commands."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from http.cookiejar import CookieJar

import pytest
from support.clients import send
from support.data import catalog_basedir, set_config
from support.servers import running_server

from lcpanel.core.access.auth import LOGIN_COOKIE, Authenticator
from lcpanel.core.access.identity import COOKIE_NAME, Signer
from lcpanel.core.access.ratelimit import RateLimiter
from lcpanel.core.access.users import InvalidKey, UserStore, verify_password
from lcpanel.errors import Conflict, NotFound, UserError

# --- the stores ------------------------------------------------------------------------


def test_passwords_are_hashed_and_checked(tmp_path):
    store = UserStore(tmp_path)
    store.add_user("alice", "correct horse", "staff")
    raw = store._connect().execute("SELECT pwhash FROM users").fetchone()[0]
    assert "correct horse" not in raw and raw.startswith("scrypt$")
    assert verify_password("correct horse", raw) and not verify_password("correct hors", raw)
    assert store.authenticate("alice", "correct horse").role == "staff"
    assert store.authenticate("alice", "wrong password") is None
    assert store.authenticate("nobody", "correct horse") is None
    assert store.authenticate("../etc/passwd", "x" * 10) is None
    assert store.authenticate("alice", None) is None


@pytest.mark.parametrize("name,password,role,error", [
    ("Alice", "long enough", "user", UserError),     # upper case
    ("a" * 65, "long enough", "user", UserError),
    ("../x", "long enough", "user", UserError),
    ("bob", "short", "user", UserError),
    ("bob", "long enough", "root", UserError),
    ("bob", "long enough", "anonymous", UserError),  # an account is never anonymous
])
def test_bad_accounts_are_refused(tmp_path, name, password, role, error):
    store = UserStore(tmp_path)
    with pytest.raises(error):
        store.add_user(name, password, role)
    assert store.users() == []


def test_duplicate_and_missing_users(tmp_path):
    store = UserStore(tmp_path)
    store.add_user("alice", "correct horse")
    with pytest.raises(Conflict):
        store.add_user("alice", "another one")
    with pytest.raises(NotFound):
        store.set_role("bob", "staff")
    with pytest.raises(NotFound):
        store.remove_user("bob")


def test_api_keys_expire_and_revoke(tmp_path):
    store = UserStore(tmp_path)
    token, key = store.issue_key("user:alice", "user", label="nightly", days=1)
    assert token.startswith("lcp_") and store.verify_key(token).identity == "user:alice"
    stored = store._connect().execute("SELECT secret_sha256 FROM api_keys").fetchone()[0]
    assert token.split("_", 2)[2] not in stored
    # a tampered secret, an unknown id, garbage
    with pytest.raises(InvalidKey, match="unknown"):
        store.verify_key(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(InvalidKey, match="unknown"):
        store.verify_key("lcp_0123456789abcdef_" + token.split("_", 2)[2])
    with pytest.raises(InvalidKey, match="not an lcpanel API key"):
        store.verify_key("Bearer nonsense")
    # expired: move its expiry into the past
    token2, key2 = store.issue_key("user:alice", "user", days=1)
    past = (store._connect().execute("SELECT expires FROM api_keys WHERE key_id = ?", (key2.key_id,)).fetchone()[0])
    from datetime import datetime
    old = (datetime.fromisoformat(past) - timedelta(days=2)).isoformat(timespec="seconds")
    store._connect().execute("UPDATE api_keys SET expires = ? WHERE key_id = ?", (old, key2.key_id))
    with pytest.raises(InvalidKey, match="expired"):
        store.verify_key(token2)
    # revoked: only by its owner (others do not even learn it exists) or an admin
    with pytest.raises(NotFound):
        store.revoke_key(key.key_id, identity="user:bob")
    store.verify_key(token)
    store.revoke_key(key.key_id, identity="user:alice")
    with pytest.raises(InvalidKey, match="revoked"):
        store.verify_key(token)
    with pytest.raises(UserError):
        store.issue_key("user:alice", "user", days=0)
    with pytest.raises(UserError):
        store.issue_key("user:alice", "user", days=10**6)


def test_authenticator_precedence_and_session_epoch(tmp_path):
    store = UserStore(tmp_path)
    auth = Authenticator(Signer(b"k" * 32), store)
    alice = store.add_user("alice", "correct horse", "user")
    # nothing: a new anonymous session
    first = auth.resolve({})
    assert first.viewer.role == "anonymous" and first.new_session_cookie
    again = auth.resolve({COOKIE_NAME: first.new_session_cookie})
    assert again.viewer == first.viewer and again.new_session_cookie is None
    # a login cookie wins over the session cookie
    login = auth.login_cookie(alice)
    who = auth.resolve({COOKIE_NAME: first.new_session_cookie, LOGIN_COOKIE: login})
    assert (who.viewer.identity, who.viewer.role, who.via) == ("user:alice", "user", "login")
    # role changes apply at once; a password change ends the login
    store.set_role("alice", "staff")
    assert auth.resolve({LOGIN_COOKIE: login}).viewer.role == "staff"
    store.set_password("alice", "battery staple")
    assert auth.resolve({LOGIN_COOKIE: login}).viewer.role == "anonymous"
    # a forged login cookie (another name, same MAC) is anonymous
    forged = "bob" + login[len("alice"):]
    store.add_user("bob", "correct horse", "admin")
    assert auth.resolve({LOGIN_COOKIE: forged}).viewer.role == "anonymous"
    # a key wins over everything and is capped by the account's current role
    token, _ = store.issue_key("user:bob", "admin")
    assert auth.resolve({LOGIN_COOKIE: auth.login_cookie(store.user("alice"))}, f"Bearer {token}").viewer.identity \
        == "user:bob"
    store.set_role("bob", "user")
    assert auth.resolve({}, f"Bearer {token}").viewer.role == "user"
    with pytest.raises(InvalidKey):
        auth.resolve({}, "Basic YWxpY2U6eA==")
    # Panel's OAuth user: an account of the same name gives its role, else role user
    assert auth.resolve({}, None, "bob").viewer == auth.resolve({LOGIN_COOKIE: auth.login_cookie(store.user("bob"))}).viewer
    oauth = auth.resolve({}, None, "carol@example.org").viewer
    assert (oauth.identity, oauth.role) == ("oauth:carol@example.org", "user")
    store.remove_user("bob")
    with pytest.raises(InvalidKey, match="revoked"):
        auth.resolve({}, f"Bearer {token}")


class _Limits:
    burst = 5

    def requests_per_minute(self, role):
        # staff: one request a minute, so nothing refills while the processes start
        return {"anonymous": 60, "staff": 1, "admin": 0}[role]


def _take_many(path, n, out):
    limiter = RateLimiter(path, _Limits())
    out.put([limiter.check("user:shared", "staff") for _ in range(n)])


def test_rate_limit_budget_is_shared_between_processes(tmp_path):
    limiter = RateLimiter(tmp_path, _Limits())
    assert [limiter.check("ip:1", "anonymous") for _ in range(5)] == [0.0] * 5
    wait = limiter.check("ip:1", "anonymous")
    assert 0 < wait <= 1.0  # one request per second after the burst
    assert limiter.check("ip:2", "anonymous") == 0  # budgets are per client
    assert all(limiter.check("user:admin", "admin") == 0 for _ in range(100))  # 0 = unlimited
    # two processes drawing on one client's budget get the burst between them, not each
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_many, args=(tmp_path, 4, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    allowed = sum(1 for r in results for w in r if w == 0)
    assert allowed == 5, results  # the burst, once between them


# --- through the server -----------------------------------------------------------------


def _cli(*args, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "lcpanel", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory):
    base, _cols = catalog_basedir(tmp_path_factory.mktemp("accounts"), 500, seed=5, radius_deg=0.5,
                                  meta={"name": "Field"})
    set_config(base.path, "[limits]\nanonymous_requests_per_minute = 60\nburst = 8\nanonymous_max_rows = 50\n"
                          "user_requests_per_minute = 0\n")
    for name, role in (("alice", "user"), ("sam", "staff"), ("root", "admin")):
        done = _cli("users", str(base.path), "add", name, "--role", role, "--password-stdin",
                    stdin=f"pw-of-{name}\n")
        assert done.returncode == 0, done.stderr
    cookie_secret = "s" * 40
    oauth = ["--oauth-provider", "generic", "--oauth-key", "lcpanel-test", "--oauth-secret", "not-used-offline",
             "--oauth-optional", "--cookie-secret", cookie_secret,
             "--oauth-extra-params", json.dumps({"AUTHORIZE_URL": "http://127.0.0.1:9/auth",
                                                 "TOKEN_URL": "http://127.0.0.1:9/token",
                                                 "USER_URL": "http://127.0.0.1:9/user"})]
    with running_server(base.path, *oauth) as (url, _proc):
        yield url, base.path, cookie_secret


class Client:
    def __init__(self, url, token=None, cookies=None):
        self.url, self.token = url, token
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())
        self.cookies = cookies or {}

    def call(self, path, body=None, method=None, form=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        else:  # a browser on a page of this server (lcpanel.csrf)
            headers["Origin"] = self.url
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return send(urllib.request.Request(self.url + path, data=data, headers=headers, method=method), self.opener)

    def json(self, path, body=None, method=None):
        status, headers, raw = self.call(path, body, method)
        return status, json.loads(raw) if raw else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def form_token(page: bytes) -> str:
    """The CSRF token of the login form in ``page``."""
    import re

    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def test_login_form_and_json_login(accounts_server):
    url, _, _ = accounts_server
    client = Client(url)
    status, _, page = client.call("/login?next=/datasets/abc")
    assert status == 200 and b'name="password"' in page and b'value="/datasets/abc"' in page
    token = form_token(page)
    # wrong password: the form again with the message, no login cookie
    status, _, page = client.call("/login", form={"username": "alice", "password": "nope", "next": "/",
                                                  "csrf_token": token})
    assert status == 200 and b"wrong password" in page
    assert client.json("/api/whoami")[1]["role"] == "anonymous"
    # right password: a redirect to next (never off-site) and a login
    status, headers, _ = client.call("/login", form={"username": "alice", "password": "pw-of-alice",
                                                     "next": "//evil.example/x", "csrf_token": token})
    assert status == 302 and headers["Location"] == "/"
    assert client.json("/api/whoami")[1] == {"identity": "user:alice", "role": "user", "max_rows": 100000,
                                             "requests_per_minute": 0}
    assert client.json("/api/logout", {})[0] == 200
    assert client.json("/api/whoami")[1]["role"] == "anonymous"
    # JSON login
    status, data = client.json("/api/login", {"username": "sam", "password": "pw-of-sam"})
    assert status == 200 and data["role"] == "staff"
    assert client.json("/api/whoami")[1]["identity"] == "user:sam"
    status, data = client.json("/api/login", {"username": "sam", "password": "wrong"})
    assert status == 400 and "password" in data["error"]


def test_keys_over_the_api(accounts_server):
    url, basedir, _ = accounts_server
    alice = Client(url)
    assert alice.json("/api/login", {"username": "alice", "password": "pw-of-alice"})[0] == 200
    status, key = alice.json("/api/keys", {"label": "my script", "days": 7})
    assert status == 201 and key["identity"] == "user:alice" and key["token"].startswith("lcp_")
    script = Client(url, token=key["token"])
    assert script.json("/api/whoami")[1]["identity"] == "user:alice"
    # datasets made with the key belong to alice and are listed as hers in the browser session
    status, made = script.json("/api/search", {"type": "cone", "params": {"coords": "290 45 10"}},)
    assert status == 200
    mine = {d["dataset_id"] for d in alice.json("/api/datasets?mine=1")[1]["datasets"]}
    assert made["dataset_id"] in mine
    # the key list shows the key without its secret; another user cannot revoke it
    listed = alice.json("/api/keys")[1]["keys"]
    assert [k["key_id"] for k in listed] == [key["key_id"]] and "token" not in listed[0]
    sam = Client(url)
    sam.json("/api/login", {"username": "sam", "password": "pw-of-sam"})
    assert sam.json(f"/api/keys/{key['key_id']}", method="DELETE")[0] == 404
    assert sam.json("/api/keys?all=1")[0] == 403
    root = Client(url)
    root.json("/api/login", {"username": "root", "password": "pw-of-root"})
    assert key["key_id"] in {k["key_id"] for k in root.json("/api/keys?all=1")[1]["keys"]}
    # revoked: a clear 401, never a silent fall-back to anonymous
    assert alice.json(f"/api/keys/{key['key_id']}", method="DELETE")[0] == 200
    status, headers, raw = script.call("/api/whoami")
    assert status == 401 and "revoked" in json.loads(raw)["error"] and headers["WWW-Authenticate"]
    assert Client(url, token="lcp_nonsense").json("/api/collections")[0] == 401
    # the CLI sees the same keys
    listing = _cli("keys", str(basedir), "list", "--user", "alice")
    assert listing.returncode == 0 and key["key_id"] in listing.stdout and "revoked" in listing.stdout
    created = _cli("keys", str(basedir), "create", "--user", "sam", "--days", "1", "--label", "ci")
    assert created.returncode == 0
    assert Client(url, token=created.stdout.strip()).json("/api/whoami")[1]["role"] == "staff"
    bad = _cli("keys", str(basedir), "create", "--user", "nobody")
    assert bad.returncode == 2 and "no user 'nobody'" in bad.stderr


def test_login_attempts_are_limited(accounts_server):
    url, _, _ = accounts_server
    guesser = Client(url)
    started = time.monotonic()
    codes = [guesser.json("/api/login", {"username": "root", "password": f"guess-{i}"})[0] for i in range(14)]
    elapsed = time.monotonic() - started
    # a burst of 5 tries, then one more per 6 s (10 a minute) as the budget refills: on a
    # loaded machine the slow password checks of the burst take seconds, so count them
    assert 429 in codes and 1 <= codes.count(400) <= 5 + elapsed / 6 + 1, (codes, elapsed)
    # even the right password waits: asked right after a refusal (the budget refills only
    # every 6 s, so it can fall between the two; then guess again and ask again)
    for _ in range(3):
        assert 429 in (guesser.json("/api/login", {"username": "root", "password": "guess-again"})[0]
                       for _ in range(10))
        if guesser.json("/api/login", {"username": "root", "password": "pw-of-root"})[0] == 429:
            break
    else:
        raise AssertionError("the right password was let in right after a refused guess, three times")


def test_panel_oauth_cookie_gives_identity(accounts_server):
    """The ``user`` cookie Panel's OAuth provider signs maps to an account's role, or to
    an ``oauth:`` identity; an unsigned one is ignored."""
    from tornado.web import create_signed_value

    url, _, secret = accounts_server
    # the provider's flow is mounted beside lcpanel's own /login
    status, headers, _ = Client(url).call("/oauth/login")
    assert status == 302 and headers["Location"].startswith("http://127.0.0.1:9/auth?")
    assert Client(url).call("/login")[0] == 200
    signed = create_signed_value(secret, "user", "sam").decode()
    assert Client(url, cookies={"user": signed}).json("/api/whoami")[1]["identity"] == "user:sam"
    other = create_signed_value(secret, "user", "dana@example.org").decode()
    who = Client(url, cookies={"user": other}).json("/api/whoami")[1]
    assert (who["identity"], who["role"]) == ("oauth:dana@example.org", "user")
    assert Client(url, cookies={"user": "sam", "is_guest": "1"}).json("/api/whoami")[1]["role"] == "anonymous"


def test_users_cli(tmp_path):
    from lcpanel.core.catalogs.basedir import Basedir

    base = Basedir.init(tmp_path / "b")
    assert _cli("users", str(base.path), "add", "eve", "--password-stdin", stdin="pw-of-eve-1\n").returncode == 0
    dup = _cli("users", str(base.path), "add", "eve", "--password-stdin", stdin="pw-of-eve-1\n")
    assert dup.returncode == 2 and "already exists" in dup.stderr
    short = _cli("users", str(base.path), "add", "fay", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "8 to 1024 characters" in short.stderr
    assert _cli("users", str(base.path), "set-role", "eve", "admin").returncode == 0
    listing = _cli("users", str(base.path), "list")
    assert "eve" in listing.stdout and "admin" in listing.stdout and "fay" not in listing.stdout
    assert _cli("users", str(base.path), "remove", "eve").returncode == 0
    assert "eve" not in _cli("users", str(base.path), "list").stdout


def test_anonymous_rate_limit_and_row_cap(accounts_server):
    url, basedir, _ = accounts_server
    anon = Client(url)
    # the budget: 8 at once, then one per second; the 429 says when to come back
    codes, retry = [], None
    for _ in range(40):
        status, headers, raw = anon.call("/api/collections")
        codes.append(status)
        if status == 429:
            retry = int(headers["Retry-After"])
            assert "per minute" in json.loads(raw)["error"]
            break
    assert 429 in codes and 1 <= retry <= 2
    # a user (unlimited here) is not held back by the address's anonymous budget
    alice = Client(url, token=_cli("keys", str(basedir), "create", "--user", "alice").stdout.strip())
    assert all(alice.json("/api/collections")[0] == 200 for _ in range(20))
    time.sleep(retry + 0.2)
    # anonymous searches keep at most 50 rows; asking for more is a clear 400
    status, data = anon.json("/api/search", {"type": "cone", "params": {"coords": "290 45 30"}, "limit": 500})
    assert status == 400 and "50 rows for anonymous users" in data["error"] and "API key" in data["error"]


def _statements(store: UserStore) -> list[str]:
    seen: list[str] = []
    store._connect().set_trace_callback(seen.append)
    return seen


def _staff_with_key(path):
    """A user store with staff account alice, a one-day staff key of hers, and an
    authenticator: (store, authenticator, token, key)."""
    store = UserStore(path)
    store.add_user("alice", "pw-of-alice", "staff")
    token, key = store.issue_key("user:alice", "staff", days=1)
    return store, Authenticator(Signer(b"k" * 32), store), token, key


def test_a_key_in_use_costs_no_users_query_until_users_sqlite_changes(tmp_path):
    """Every API request verifies its key and the owner's current role: once verified, a
    key and an account are remembered by the thread, and any commit to users.sqlite (this
    connection's, another connection's, another thread's) is seen by the next request."""
    import threading

    store, auth, token, key = _staff_with_key(tmp_path)
    assert auth.resolve({}, f"Bearer {token}").viewer.role == "staff"
    seen = _statements(store)
    for _ in range(3):
        assert auth.resolve({}, f"Bearer {token}").viewer.role == "staff"
    assert not [s for s in seen if "SELECT" in s.upper()], seen  # only PRAGMA data_version

    other = UserStore(tmp_path)  # another connection, as another process has
    other.set_role("alice", "user")
    assert auth.resolve({}, f"Bearer {token}").viewer.role == "user"
    thread = threading.Thread(target=lambda: UserStore(tmp_path).set_role("alice", "staff"))
    thread.start()
    thread.join()
    assert auth.resolve({}, f"Bearer {token}").viewer.role == "staff"
    with pytest.raises(InvalidKey, match="unknown"):  # a wrong secret is never taken from memory
        auth.resolve({}, f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}")
    other.revoke_key(key.key_id)
    with pytest.raises(InvalidKey, match="revoked"):
        auth.resolve({}, f"Bearer {token}")

    token2, key2 = store.issue_key("user:alice", "staff", days=1)
    assert auth.resolve({}, f"Bearer {token2}").viewer.identity == "user:alice"
    store.revoke_key(key2.key_id)  # this very connection
    with pytest.raises(InvalidKey, match="revoked"):
        auth.resolve({}, f"Bearer {token2}")
    token3, _ = store.issue_key("user:alice", "staff", days=1)
    assert auth.resolve({}, f"Bearer {token3}").viewer.role == "staff"
    store.remove_user("alice")  # revokes every key of the account
    with pytest.raises(InvalidKey, match="revoked"):
        auth.resolve({}, f"Bearer {token3}")


def test_a_remembered_key_still_expires_and_still_needs_its_whole_secret(tmp_path, monkeypatch):
    """A key verified once is remembered by the thread (:meth:`Authenticator._key_principal`),
    but the remembered answer is never used after the key's expiry, nor for a token
    that differs from it anywhere."""
    from datetime import timedelta

    import lcpanel.core.access.auth as auth_module
    import lcpanel.core.access.users as users_module
    from lcpanel.core.clock import now

    store, auth, token, _ = _staff_with_key(tmp_path)
    assert auth.resolve({}, f"Bearer {token}").viewer.identity == "user:alice"
    seen = _statements(store)
    assert auth.resolve({}, f"Bearer {token}").viewer.role == "staff"
    assert not [s for s in seen if "SELECT" in s.upper()], seen  # answered from memory
    for cut in (len(token) - 1, len(token) // 2):  # one changed character of the secret
        forged = token[:cut] + ("A" if token[cut] != "A" else "B") + token[cut + 1:]
        with pytest.raises(InvalidKey):
            auth.resolve({}, f"Bearer {forged}")
    with pytest.raises(InvalidKey):
        auth.resolve({}, f"Bearer {token}x")
    later = now() + timedelta(days=2)
    monkeypatch.setattr(auth_module, "now_iso", lambda: later.isoformat(timespec="seconds"))
    monkeypatch.setattr(users_module, "now", lambda: later)
    with pytest.raises(InvalidKey, match="expired"):
        auth.resolve({}, f"Bearer {token}")


def test_the_rate_limiter_is_the_gcra_and_a_refused_request_writes_nothing(tmp_path, monkeypatch):
    """Budgets follow the generic cell rate algorithm, computed here apart (a clock that
    only this test moves, random gaps, bursts and clients); a refused request leaves the
    shared table as it was."""
    import random as rnd

    import lcpanel.core.access.ratelimit as ratelimit

    clock = [1.7e9]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    limiter = RateLimiter(tmp_path, _Limits())
    tat: dict[str, float] = {}

    def expected(client: str, rpm: float, burst: int) -> float:
        interval = 60.0 / rpm
        now = clock[0]
        t = max(tat.get(client, now), now)
        wait = t - max(0, burst - 1) * interval - now
        if wait > 0:
            return wait
        tat[client] = t + interval
        return 0.0

    gen = rnd.Random(7)
    refused = 0
    for _ in range(3000):
        clock[0] += gen.choice([0.0, 0.0, 0.01, 0.3, 1.0, 2.5, 40.0])
        client = gen.choice(["ip:1", "ip:2", "user:x"])
        rpm, burst = gen.choice([(60, 5), (60, 5), (120, 1), (7.5, 3)])
        got = limiter.take(client, rpm, burst)
        assert got == pytest.approx(expected(client, rpm, burst), abs=1e-9), client
        refused += got > 0
    assert 300 < refused < 2700  # both outcomes were exercised

    clock[0] += 3600
    assert [limiter.take("ip:9", 60, 2) for _ in range(2)] == [0, 0]
    before = limiter.path.read_bytes()
    assert limiter.take("ip:9", 60, 2) == pytest.approx(1.0)
    assert limiter.path.read_bytes() == before
    assert limiter.take("ip:10", 60, 2) == 0 and limiter.path.read_bytes() != before


def test_a_forked_server_process_opens_its_own_users_connection(tmp_path):
    """``lcpanel serve --num-procs N`` forks; a SQLite connection (and what the thread
    remembered through it) must not cross a fork."""
    import os

    store = UserStore(tmp_path)
    token, _ = store.issue_key("user:alice", "user", days=1)
    store.verify_key(token)
    parent_conn = store._connect()
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only with a connection of its own that works
        ok = store._connect() is not parent_conn and store.verify_key(token).identity == "user:alice"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
