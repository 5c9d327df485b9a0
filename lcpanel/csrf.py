"""Cross-site request forgery defences: which writes lcpanel refuses, and the tokens of
its two HTML forms (``/login``, ``/logout``).

A write (POST, PUT, PATCH, DELETE) that a browser's cookies authenticate must

- come from this origin: ``Sec-Fetch-Site: same-origin`` (set by the browser, scripts
  cannot forge it) or an ``Origin`` header naming this server's ``Host``; a request with
  neither is refused (every current browser sends one of them on such writes), and
- for the JSON API, carry ``Content-Type: application/json``: no HTML form can send that
  type, and a script on another origin cannot send it without a CORS preflight that
  lcpanel never grants.

Requests with an API key (``Authorization: Bearer``) are exempt: no browser adds that
header by itself. Requests with no cookie identity (a first visit) change nothing anyone
else owns; from a browser they still must not be cross-origin.

The login and logout forms also carry a token: an HMAC, with the basedir's secret, of
what the form acts on (the visitor's pre-login ``lcpanel_session`` cookie for /login,
the login session for /logout). A page on another site can neither read it nor send the
cookies it is bound to (they are ``SameSite=Lax``), so login CSRF fails there too.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
FORM_TOKEN_FIELD = "csrf_token"


def same_origin(request) -> bool:
    """True when the browser says the request comes from a page of this server."""
    if request.headers.get("Sec-Fetch-Site", "").strip().lower() == "same-origin":
        return True
    origin = request.headers.get("Origin", "").strip()
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return bool(parts.scheme in ("http", "https") and parts.netloc) and \
        parts.netloc.lower() == (request.host or "").lower()


def from_browser(request) -> bool:
    """True when the request carries the headers browsers add to writes."""
    return "Origin" in request.headers or "Sec-Fetch-Site" in request.headers


def is_json(request) -> bool:
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


def refusal(request, *, cookies: bool, json: bool, headerless_ok: bool = False) -> str | None:
    """Why this request must be refused as a possible cross-site write, or None.

    ``cookies``: the request is authenticated by cookies. ``json``: its body must be
    ``application/json``. ``headerless_ok``: a cookie write carrying neither ``Origin``
    nor ``Sec-Fetch-Site`` is a protocol client's (e.g. pyvo keeping the session cookie
    of a UWS job), not a browser's, and is let through."""
    if request.method not in WRITE_METHODS:
        return None
    if cookies and not same_origin(request) and (from_browser(request) or not headerless_ok):
        return ("cross-site write refused: a change made with this browser's cookies must come from a page of "
                "this server (Origin or Sec-Fetch-Site: same-origin); scripts use an API key "
                "(Authorization: Bearer)")
    if not cookies and from_browser(request) and not same_origin(request):
        return "cross-site write refused: this request comes from a page of another site"
    if json and request.method in BODY_METHODS and not is_json(request):
        return "send this change as JSON (Content-Type: application/json)"
    return None


def form_token(secret: bytes, purpose: str, binding: str) -> str:
    """The token a form for ``purpose`` ("login", "logout") carries when bound to
    ``binding`` (a cookie value of the visitor's)."""
    return hmac.new(secret, f"form|{purpose}|{binding}".encode(), hashlib.sha256).hexdigest()[:40]


def form_token_ok(secret: bytes, purpose: str, binding: str | None, token: str | None) -> bool:
    if not binding or not token or len(token) > 100:
        return False
    return hmac.compare_digest(form_token(secret, purpose, binding), token)
