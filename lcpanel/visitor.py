"""Who is visiting a page: the identity of a browser session, the same as the JSON API's.

The pages draw nothing here (:mod:`lcpanel.views.theme` has the look); they ask this module
who is looking (:func:`session_viewer`), from where (:func:`client_address`), what the
header's account links show (:func:`account_links`) and where to log in (:func:`login_url`).

The JSON API knows an anonymous visitor by the ``lcpanel_session`` cookie: a random
token and its HMAC made with the basedir's secret (:mod:`lcpanel.core.access.identity`),
set ``HttpOnly`` by the API when missing. The web pages must use the same identity so
a dataset made in the browser is "mine" in the API and the other way round.

:func:`session_viewer` reads the cookies of the request that opened the Bokeh session,
server-side (:func:`lcpanel.pagecookies.request_cookies`): lcpanel's login and session
cookies are kept out of the session token Bokeh embeds in the page, where any script of
the site could read them. When the visitor has no valid session cookie, the session makes
a fresh signed value right away (so the page can act for the visitor at once) and queues
it on that request (:func:`lcpanel.pagecookies.queue_cookie`): it arrives with the page
as an ``HttpOnly``, ``SameSite=Lax`` cookie, and the API accepts it like one it set itself.
The header's log-out form carries :func:`logout_token`, bound to the login session
(:mod:`lcpanel.csrf`).

Two tabs opened for the first time at the same instant each make a token; the one
rendered last wins and datasets made in the other tab belong to an identity the browser
no longer holds (they stay reachable by their unguessable URL).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote

import panel as pn

from .core.access.auth import LOGIN_COOKIE
from .core.access.identity import COOKIE_NAME
from .core.datasets import Principal
from .csrf import form_token
from .pagecookies import SESSION_COOKIE_MAX_AGE_S, queue_cookie, raw_request, request_cookies
from .views.periodic import every

# per Bokeh document (one per browser session): the viewer, its log-out token, the page's navigator...
_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_NO_DOC: dict = {}

#: how often an open page checks that its login session still exists (ms)
LOGIN_CHECK_MS = 5000


def session_state() -> dict:
    """What this browser session keeps between calls (a throwaway dict outside a session)."""
    doc = pn.state.curdoc
    if doc is None:
        return _NO_DOC
    return _SESSIONS.setdefault(doc, {})


def session_viewer(app) -> Principal:
    """The visitor of this browser session, identified like the JSON API does
    (:mod:`lcpanel.core.access.auth`): a login, Panel's OAuth user, or the signed anonymous
    ``lcpanel_session`` cookie; a new anonymous visitor's cookie is sent with the page.
    """
    state = session_state()
    viewer = state.get("viewer")
    if viewer is not None:
        return viewer
    cookies = request_cookies()
    resolved = app.auth.resolve(cookies, None, _oauth_user(cookies))
    if resolved.new_session_cookie:
        queue_cookie(raw_request(), COOKIE_NAME, resolved.new_session_cookie, SESSION_COOKIE_MAX_AGE_S)
    if resolved.via == "login":
        state["logout_token"] = form_token(app.signer.secret, "logout", cookies[LOGIN_COOKIE])
        state["login_secret"] = cookies[LOGIN_COOKIE]
    state["viewer"] = resolved.viewer
    return resolved.viewer


def client_address() -> str | None:
    """The browser session's client address (anonymous visitors' disk quota is per address)."""
    request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
    return getattr(request, "remote_ip", None)


def logout_token() -> str:
    """The token of this session's log-out form ('' when not logged in with a password)."""
    return session_state().get("logout_token", "")


def login_url(next_path: str = "/") -> str:
    """The log-in page, coming back to ``next_path`` (a path on this server)."""
    return "/login?next=" + quote(next_path, safe="/")


@dataclass(frozen=True)
class AccountLinks:
    """What a page header shows of its visitor (unescaped: the view escapes it)."""

    #: False for an anonymous visitor: the header offers "Log in"
    logged_in: bool
    #: the account name ('' when anonymous)
    name: str = ""
    #: the role to show beside the name ('' for anonymous visitors and plain users)
    role: str = ""
    #: the hidden token of the log-out form ('' when not logged in with a password)
    logout_token: str = ""


def account_links(viewer: Principal) -> AccountLinks:
    """The header's account links for ``viewer``."""
    if viewer.role == "anonymous":
        return AccountLinks(logged_in=False)
    return AccountLinks(logged_in=True, name=viewer.identity.split(":", 1)[1],
                        role="" if viewer.role == "user" else viewer.role, logout_token=logout_token())


def end_with_login(app, state: dict, navigate: Callable[[str], None]) -> None:
    """Send an open page to the login page (through ``navigate``) once its login session
    has ended (logout in another tab, password change, account removed): its widgets act
    for no one after."""
    secret = state.get("login_secret")

    def check():
        if secret and app.auth.login_user(secret) is None:
            callback = state.pop("login_check", None)
            if callback is not None:
                callback.stop()
            state["login_secret"] = None
            location = pn.state.location
            navigate(login_url(location.pathname if location is not None and location.pathname else "/"))

    if secret and "login_check" not in state:
        state["login_check"] = every(check, LOGIN_CHECK_MS)


def _oauth_user(cookies: dict) -> str | None:
    """The user Panel's OAuth provider signed into the ``user`` cookie, if any. (Not
    ``pn.state.user``: it also answers "guest" for an unsigned ``is_guest`` cookie.)"""
    from panel.config import config
    from tornado.web import decode_signed_value

    raw = cookies.get("user")
    if not raw or not config.cookie_secret:
        return None
    decoded = decode_signed_value(config.cookie_secret, "user", raw)
    return decoded.decode("utf-8", "replace") if decoded else None
