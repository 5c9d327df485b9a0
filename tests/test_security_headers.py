"""Security headers and server-rendered escaping, over HTTP against ``lcpanel serve``.

- Finding 1 of issue 12 (stored XSS): a dataset renamed to markup must not appear as
  markup in the page the server renders (the template title).
- Every answer (pages, the login page, the JSON API, API errors, static files) carries
  Content-Security-Policy, X-Frame-Options, X-Content-Type-Options and Referrer-Policy;
  a page's CSP allows its own inline scripts through a nonce that is new in each answer
  (found here with the standard library's HTML parser, independently of the server's
  regex), the few inline handlers lcpanel writes by their hashes, and no
  ``'unsafe-inline'`` script.

That the pages still work under the policy is proven in the browser (tests/browser/,
whose conftest fails on any CSP violation in the console).
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from html.parser import HTMLParser

import pytest
from support.clients import send

from lcpanel.core.access.users import UserStore
from lcpanel.security_headers import add_nonce, page_policy
from lcpanel.views.escaping import INLINE_HANDLERS, esc, handler, md

HOSTILE = '<img src=x onerror="window.__xss=1;alert(1)">'


def fetch(url: str, *, data: dict | None = None, token: str | None = None, method: str | None = None):
    headers = {"Accept": "*/*"}
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return send(urllib.request.Request(url, data=body, headers=headers, method=method), timeout=60)


class _Scripts(HTMLParser):
    """Collects the text of executable inline <script> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.scripts: list[tuple[str | None, str]] = []  # (nonce, text)
        self._current: list[str] | None = None
        self._nonce: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag != "script":
            return
        attrs = dict(attrs)
        kind = (attrs.get("type") or "").strip().lower()
        if "src" not in attrs and kind in ("", "text/javascript", "application/javascript", "module"):
            self._current = []
            self._nonce = attrs.get("nonce")

    def handle_data(self, data):
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._current is not None:
            self.scripts.append((self._nonce, "".join(self._current)))
            self._current = None


def inline_scripts(html: str) -> list[tuple[str | None, str]]:
    parser = _Scripts()
    parser.feed(html)
    return parser.scripts


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def csp_directives(value: str) -> dict[str, list[str]]:
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_common(headers, what: str) -> dict[str, list[str]]:
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    csp = headers.get("Content-Security-Policy")
    assert csp, f"no Content-Security-Policy on {what}"
    policy = csp_directives(csp)
    assert policy.get("frame-ancestors") == ["'none'"], what
    return policy


@pytest.fixture(scope="module")
def hostile_dataset(demo_app, demo_server):
    """A public dataset renamed to markup by its owner (a user with an API key)."""
    store = UserStore(demo_app.basedir)
    store.add_user("mallory", "pw-of-mallory-1", "user")
    token, _key = store.issue_key("user:mallory", "user", label="attack", days=1)
    status, _h, body = fetch(demo_server + "/api/search?visibility=public",
                             data={"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["demo"],
                                   "limit": 3}, token=token)
    assert status == 200, body
    dataset_id = json.loads(body)["dataset_id"]
    status, _h, body = fetch(demo_server + f"/api/datasets/{dataset_id}",
                             data={"name": HOSTILE, "description": HOSTILE}, token=token)
    assert status == 200, body
    return dataset_id


def test_dataset_name_is_not_markup_in_the_server_rendered_page(demo_server, hostile_dataset):
    status, headers, body = fetch(demo_server + f"/datasets/{hostile_dataset}")
    assert status == 200
    html = body.decode()
    assert HOSTILE not in html, "the dataset's name is in the page as markup (stored XSS)"
    assert "<img" not in html.lower(), "an <img> tag reached the server-rendered page"
    assert "&lt;img src=x onerror=" in html, "the name is shown (escaped) in the page header"


@pytest.mark.parametrize("path", ["/", "/account", "/datasets/{dataset}", "/objects/demo/{objectid}",
                                  "/datasets/" + "0" * 64, "/login"])
def test_pages_carry_a_policy_allowing_only_their_own_inline_scripts(demo_server, demo_app, hostile_dataset,
                                                                     path):
    objectid = demo_app.catalogs.get("demo").query("SELECT objectid FROM object_catalog LIMIT 1")[0][0]
    url = demo_server + path.format(dataset=hostile_dataset, objectid=objectid)
    status, headers, body = fetch(url)
    assert status == (404 if path.endswith("0" * 64) else 200), (url, status)  # no such dataset: 404, same page
    assert headers.get("Content-Type", "").startswith("text/html")
    policy = assert_common(headers, path)
    script_src = policy["script-src"]
    assert "'unsafe-inline'" not in script_src, "inline script must not be allowed wholesale"
    assert "'strict-dynamic'" not in script_src, "scripts added by allowed scripts must not be trusted"
    assert policy["object-src"] == ["'none'"]
    nonces = [s[len("'nonce-"):-1] for s in script_src if s.startswith("'nonce-")]
    scripts = inline_scripts(body.decode())
    if path == "/login":
        assert not scripts
        return
    assert scripts, "a Panel page has inline scripts (else this test checks nothing)"
    assert len(nonces) == 1 and len(nonces[0]) >= 22, script_src
    for nonce, script in scripts:
        assert nonce == nonces[0], f"an inline script of {path} is not allowed by its CSP: {script[:80]!r}"
    _status, again, _body = fetch(url)
    assert nonces[0] not in again["Content-Security-Policy"], "a nonce must not be used twice"
    hashes = {s for s in script_src if s.startswith("'sha256-")}
    assert hashes == {sha256(js) for js in INLINE_HANDLERS}, "only lcpanel's own inline handlers, by hash"
    assert "'unsafe-hashes'" in script_src


@pytest.mark.parametrize("path,status", [("/api/collections", 200), ("/api/datasets", 200),
                                         ("/api/no-such-thing", 404), ("/api/datasets/bad", 404)])
def test_api_answers_carry_the_headers(demo_server, path, status):
    got, headers, _body = fetch(demo_server + path)
    assert got == status
    policy = assert_common(headers, path)
    assert policy["default-src"] == ["'none'"], "a JSON answer may load and run nothing"


def test_api_write_errors_carry_the_headers(demo_server):
    got, headers, _body = fetch(demo_server + "/api/search", data={"type": "nope"})
    assert 400 <= got < 500
    assert_common(headers, "POST /api/search error")


def test_static_files_carry_the_headers(demo_server):
    status, headers, body = fetch(demo_server + "/")
    scripts = [line.split('src="', 1)[1].split('"', 1)[0] for line in body.decode().splitlines()
               if "<script" in line and 'src="' in line]
    local = [s for s in scripts if s.startswith("/") or s.startswith("static")]
    assert local, scripts
    for src in local[:3]:
        url = demo_server + (src if src.startswith("/") else "/" + src)
        got, headers, _ = fetch(url)
        assert got == 200, url
        policy = assert_common(headers, src)
        assert policy["default-src"] == ["'none'"]


# --- the helpers, without a server ------------------------------------------------------------


def test_add_nonce_marks_only_executable_inline_scripts():
    assert add_nonce(b"<scripts><script>x()</script>", "n") == b'<scripts><script nonce="n">x()</script>'
    body = (b'<head><script type="esms-options">{"shimMode": true}</script><script src="/static/a.js"></script>'
            b'</head><body><script type="application/json" id="d">{"a": "</scr"}</script>'
            b'<SCRIPT>one()</SCRIPT><script type="text/javascript">two("<b>")</script >'
            b'<script type="module">three()</script></body>')
    out = add_nonce(body, "N0nce").decode()
    found = inline_scripts(out)
    # upper case is not how Bokeh and Panel write script tags: left without a nonce
    assert [(n, t) for n, t in found] == [(None, "one()"), ("N0nce", 'two("<b>")'), ("N0nce", "three()")]
    assert '<script src="/static/a.js"></script>' in out and '<script type="application/json" id="d">' in out
    assert json.loads(out.split('<script type="esms-options">')[1].split("</script>")[0]) == {
        "shimMode": True, "nonce": "N0nce"}


def test_page_policy_has_no_inline_wildcard():
    policy = csp_directives(page_policy("abc"))
    assert "'nonce-abc'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert csp_directives(page_policy(None))["script-src"].count("'nonce-") == 0


@pytest.mark.parametrize("text", ['<img src=x onerror="a()">', "'\"><svg onload=x>", "a & b", None, 5])
def test_esc_leaves_no_markup(text):
    out = esc(text)
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    import html

    assert html.unescape(out) == ("" if text is None else str(text))


def test_md_is_literal_text_in_markdown():
    import panel as pn

    text = "[x](javascript:alert(1)) ![i](x) <b>*em*</b> _u_ `c` # h"
    rendered = pn.pane.Markdown(md(text)).get_root().text
    import html

    shown = html.unescape(html.unescape(rendered))  # the model's text is HTML, escaped for transport
    assert "<a" not in shown and "<img" not in shown and "<em>" not in shown and "<code>" not in shown
    assert "[x](javascript:alert(1))" in shown and "<b>*em*</b>" in shown


def test_handler_refuses_unlisted_handlers():
    assert handler("this.select()") == "this.select()"
    with pytest.raises(ValueError):
        handler("alert(1)")
