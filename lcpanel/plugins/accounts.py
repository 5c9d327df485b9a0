"""Built-in accounts plugin: logging in and out, API keys, and their CLI.

Routes:

- ``GET /login`` (a small form) and ``POST /login`` (form fields ``username``,
  ``password``, ``next``, ``csrf_token``); ``POST /logout`` (``csrf_token``): see
  :mod:`lcpanel.csrf`
- ``POST /api/login`` (JSON ``{"username", "password"}``), ``POST /api/logout``,
  ``GET /api/whoami``
- ``GET /api/keys`` (your keys; admins add ``?all=1``), ``POST /api/keys``
  (``{"label": "...", "days": 30}``: a key for whoever asks, shown once),
  ``DELETE /api/keys/<key_id>``

Page: ``/account`` (:mod:`lcpanel.views.account_page`): who you are, your limits, and
your API keys (create, revoke; admins see every key).

Commands (run as the basedir's operator)::

    lcpanel users BASEDIR add NAME [--role user|staff|admin] [--password-stdin]
    lcpanel users BASEDIR list | remove NAME | set-role NAME ROLE | passwd NAME [--password-stdin]
    lcpanel keys BASEDIR create (--user NAME | --anonymous) [--days 90] [--label TEXT]
    lcpanel keys BASEDIR list [--user NAME] | revoke KEY_ID
"""

from __future__ import annotations

import getpass
import sys
from urllib.parse import quote, unquote, urlsplit

from tornado.web import RequestHandler

from ..core.access.auth import LOGIN_COOKIE, LOGIN_MAX_AGE_S
from ..core.access.identity import COOKIE_NAME
from ..csrf import FORM_TOKEN_FIELD, form_token, form_token_ok
from ..errors import Forbidden, TooManyRequests, UserError
from ..extension import Command, Page, Route
from ..hookspecs import hookimpl
from ..jsonapi import APIMixin, JSONHandler

#: login attempts (per minute, burst): from one address at one account, at one account from
#: anywhere, and from one address at any account. Budgets refill continuously, so a guesser
#: waits seconds between tries (a back-off, never a lock); one address alone cannot drain
#: an account's budget, and an attacker sharing a proxy's address with others only slows
#: logins to the accounts they guess at (run ``lcpanel serve --use-xheaders`` behind a
#: proxy so addresses are the visitors' own).
LOGIN_BUDGETS = (("login:addr+user", 10, 5), ("login:user", 30, 30), ("login:addr", 60, 60))


def _throttle(handler, username) -> None:
    """429 when one of :data:`LOGIN_BUDGETS` is spent (an attempt takes from each in turn)."""
    name = username if isinstance(username, str) else ""
    address = handler.request.remote_ip
    clients = {"login:addr+user": f"login:{address}|{name[:200]}", "login:user": f"login-user:{name[:200]}",
               "login:addr": f"login-addr:{address}"}
    for kind, rpm, burst in LOGIN_BUDGETS:
        wait = handler.app.rate_limiter.take(clients[kind], rpm, burst)
        if wait > 0:
            raise TooManyRequests(f"too many login attempts; retry in {int(wait) + 1} s", retry_after=wait)


async def _login(handler, username, password):
    """Check credentials (attempts limited by :func:`_throttle`; the ~40 ms of scrypt off
    the event loop) and set the login cookie of a new server-side login session."""
    from ..core.offload import offloader

    _throttle(handler, username)
    user = await offloader(handler.app).run(handler.app.users.authenticate, username, password)
    if user is None:
        raise UserError("unknown user name or wrong password", field="password")
    old = handler.get_cookie(LOGIN_COOKIE)
    if old:
        handler.app.auth.logout(old)
    handler.set_cookie(LOGIN_COOKIE, handler.app.auth.login_cookie(user), httponly=True, samesite="Lax",
                       expires_days=LOGIN_MAX_AGE_S / 86400, secure=handler.request.protocol == "https")
    return user


def _logout(handler) -> None:
    """End this browser's login session on the server and forget its cookie."""
    handler.app.auth.logout(handler.get_cookie(LOGIN_COOKIE))
    handler.clear_cookie(LOGIN_COOKIE)


def _safe_next(target) -> str:
    """A path on this server to go to after logging in; anything else is ``/``.

    Control characters and whitespace are removed first (browsers drop them, so
    ``/%09/host`` would otherwise lead off-site); what remains, also percent-decoded,
    must be a path: one leading ``/``, no backslash (browsers read ``/\\host`` as
    ``//host``), no scheme, no host."""
    if not isinstance(target, str):
        return "/"
    cleaned = "".join(c for c in target[:2000] if c.isprintable() and not c.isspace() and c != "\\")
    decoded = unquote(cleaned)
    if (not cleaned.startswith("/") or cleaned.startswith("//") or "\\" in target or "\\" in decoded
            or "".join(c for c in decoded if c.isprintable() and not c.isspace()).startswith("//")):
        return "/"
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return "/"
    return quote(cleaned, safe="/?#&=%:@!$'()*+,;[]")  # a Location header holds ASCII only


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · lcpanel</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f6f9; color: #1d2733; }}
header {{ background: #1f5f8b; color: #fff; padding: 14px 24px; font-size: 20px; }}
header a {{ color: #fff; text-decoration: none; }}
main {{ max-width: 380px; margin: 60px auto; background: #fff; border-radius: 8px; padding: 28px 32px;
        box-shadow: 0 1px 4px rgba(0,0,0,.12); }}
h1 {{ font-size: 22px; margin: 0 0 6px; }} p {{ color: #5b6b7b; font-size: 14px; }}
label {{ display: block; font-size: 14px; margin: 14px 0 4px; }}
input {{ width: 100%; box-sizing: border-box; padding: 8px 10px; font-size: 15px; border: 1px solid #c5cfd9;
         border-radius: 5px; }}
button {{ margin-top: 20px; width: 100%; padding: 9px; font-size: 15px; background: #1f5f8b; color: #fff;
          border: 0; border-radius: 5px; cursor: pointer; }}
.error {{ background: #fdecea; color: #8a1c12; padding: 8px 10px; border-radius: 5px; font-size: 14px; }}
</style></head><body><header><a href="/">lcpanel</a></header><main>
<h1>Log in</h1><p>Logged in, your datasets follow you between browsers, and scripts can use
API keys issued to you. Searching works without an account.</p>{error}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<input type="hidden" name="csrf_token" value="{token}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required
 maxlength="64" value="{username}">
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required maxlength="1024">
<button type="submit">Log in</button></form></main></body></html>"""


class LoginPage(APIMixin, RequestHandler):
    """The login form. Its token is bound to the visitor's ``lcpanel_session`` cookie
    (made here if missing); a post must carry both and come from this site."""

    def prepare(self):
        pass  # the form itself costs nothing; attempts are limited in _login

    def _binding(self) -> str:
        cookie = self.get_cookie(COOKIE_NAME)
        if self.app.signer.token(cookie) is None:
            cookie, _ = self.app.signer.new_cookie()
            self.set_session_cookie(cookie)
        return cookie

    def _render(self, error: str = "", username: str = "", status: int = 200):
        from ..views.theme import esc

        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        token = form_token(self.app.signer.secret, "login", self._binding())
        self.finish(LOGIN_PAGE.format(error=f'<p class="error">{esc(error)}</p>' if error else "",
                                      next=esc(_safe_next(self.get_argument("next", "/"))),
                                      username=esc(username[:64]), token=esc(token)))

    def get(self):
        self._render()

    async def post(self):
        self.refuse_cross_site_writes(cookies=True)
        if not form_token_ok(self.app.signer.secret, "login", self.get_cookie(COOKIE_NAME),
                             self.get_body_argument(FORM_TOKEN_FIELD, "")):
            raise Forbidden("the login form has expired or came from another site; open /login and try again")
        username = self.get_body_argument("username", "")[:200]
        try:
            await _login(self, username, self.get_body_argument("password", "")[:2000])
        except TooManyRequests as exc:
            self.set_header("Retry-After", str(int(exc.retry_after) + 1))
            return self._render(exc.message, username, status=429)
        except UserError as exc:  # the form again, with the message (a page, not an API answer)
            return self._render(exc.message, username)
        self.redirect(_safe_next(self.get_body_argument("next", "/")))


class LogoutPage(APIMixin, RequestHandler):
    """The header's log-out button: a form whose token is bound to the login session
    (:func:`lcpanel.visitor.logout_token`)."""

    def prepare(self):
        pass

    def post(self):
        self.refuse_cross_site_writes(cookies=True)
        login = self.get_cookie(LOGIN_COOKIE)
        if login and self.app.auth.login_user(login) is not None and not form_token_ok(
                self.app.signer.secret, "logout", login, self.get_body_argument(FORM_TOKEN_FIELD, "")):
            raise Forbidden("the log-out form has expired or came from another site; reload the page")
        _logout(self)
        self.redirect("/")


def _whoami(handler) -> dict:
    viewer = handler.viewer()
    return {"identity": viewer.identity, "role": viewer.role,
            "max_rows": handler.app.config.limits.max_rows(viewer.role),
            "requests_per_minute": handler.app.config.limits.requests_per_minute(viewer.role)}


class LoginAPI(JSONHandler):
    def prepare(self):
        pass  # a login must be possible whatever the previous identity; attempts are limited in _login

    async def post(self):
        # JSON only, and never from another site's page (login CSRF); scripts send no Origin
        self.refuse_cross_site_writes(json=True, cookies=False)
        body = self.json_body(max_bytes=4096)
        user = await _login(self, body.get("username"), body.get("password"))
        self.send_json({"identity": user.identity, "role": user.role})


class LogoutAPI(JSONHandler):
    def post(self):
        _logout(self)
        self.send_json({"logged_out": True})


class WhoAmI(JSONHandler):
    def get(self):
        self.send_json(_whoami(self))


class KeysAPI(JSONHandler):
    def get(self):
        viewer = self.viewer()
        everyone = self.get_query_argument("all", "0") in ("1", "true")
        if everyone and not viewer.admin:
            raise Forbidden("only admins may list every API key")
        keys = self.app.users.keys(None if everyone else viewer.identity)
        self.send_json({"keys": [k.to_dict() for k in keys]})

    def post(self):
        viewer = self.viewer()
        body = self.json_body(max_bytes=4096)
        unknown = set(body) - {"label", "days"}
        if unknown:
            raise UserError(f"unknown key {sorted(unknown)[0]!r}; give label and days")
        token, key = self.app.users.issue_key(viewer.identity, viewer.role, label=body.get("label", ""),
                                              days=body.get("days", 90))
        out = key.to_dict()
        out["token"] = token
        out["usage"] = "send it as the header 'Authorization: Bearer <token>'; it is shown only now"
        self.send_json(out, status=201)


class KeyAPI(JSONHandler):
    def delete(self, key_id):
        viewer = self.viewer()
        key = self.app.users.revoke_key(key_id, None if viewer.admin else viewer.identity)
        self.send_json(key.to_dict())


@hookimpl
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("login-page", r"/login/?", LoginPage, kwargs),
        Route("logout-page", r"/logout/?", LogoutPage, kwargs),
        Route("api-login", r"/api/login/?", LoginAPI, kwargs),
        Route("api-logout", r"/api/logout/?", LogoutAPI, kwargs),
        Route("api-whoami", r"/api/whoami/?", WhoAmI, kwargs),
        Route("api-keys", r"/api/keys/?", KeysAPI, kwargs),
        Route("api-key", r"/api/keys/([^/]+)/?", KeyAPI, kwargs),
    ]


def _account_page(app):
    from ..views.account_page import AccountPage

    return AccountPage(app=app).servable_page()


@hookimpl
def register_views(app):
    return [Page("account", "/account", "account", _account_page)]


# --- CLI ------------------------------------------------------------------------------------


def _store(basedir):
    from ..core.catalogs.basedir import Basedir
    from ..core.access.users import UserStore

    return UserStore(Basedir(basedir).path)


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the passwords differ")
    return first


def _users_args(parser):
    parser.add_argument("basedir")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("add", help="create an account")
    p.add_argument("name")
    p.add_argument("--role", default="user", choices=["user", "staff", "admin"])
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--no-password", action="store_true",
                   help="no password login (an OAuth identity of this name gets the account's role)")
    sub.add_parser("list", help="list the accounts")
    p = sub.add_parser("remove", help="delete an account and revoke its API keys")
    p.add_argument("name")
    p = sub.add_parser("set-role", help="change an account's role")
    p.add_argument("name")
    p.add_argument("role", choices=["user", "staff", "admin"])
    p = sub.add_parser("passwd", help="set a new password (logs the account out everywhere)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")


def _users(args) -> int:
    store = _store(args.basedir)
    if args.action == "add":
        password = None if args.no_password else _read_password(args)
        user = store.add_user(args.name, password, args.role)
        print(f"added {user.username} ({user.role})")
    elif args.action == "list":
        for user in store.users():
            print(f"{user.username:24s} {user.role:8s} {user.created}")
    elif args.action == "remove":
        store.remove_user(args.name)
        print(f"removed {args.name}; its API keys are revoked")
    elif args.action == "set-role":
        store.set_role(args.name, args.role)
        print(f"{args.name} is now {args.role}")
    elif args.action == "passwd":
        store.set_password(args.name, _read_password(args))
        print(f"password of {args.name} changed; its login sessions have ended")
    return 0


def _keys_args(parser):
    parser.add_argument("basedir")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="issue an API key (printed once)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the account the key acts for (with its role)")
    who.add_argument("--anonymous", action="store_true", help="a key for a fresh anonymous identity")
    p.add_argument("--days", type=float, default=90, help="lifetime in days (default 90)")
    p.add_argument("--label", default="", help="what the key is for")
    p = sub.add_parser("list", help="list keys (not their secrets)")
    p.add_argument("--user")
    p = sub.add_parser("revoke", help="revoke a key at once")
    p.add_argument("key_id")


def _keys(args) -> int:
    import secrets

    store = _store(args.basedir)
    if args.action == "create":
        if args.user:
            user = store.user(args.user)
            identity, role = user.identity, user.role
        else:
            identity, role = "anon:key-" + secrets.token_hex(12), "anonymous"
        token, key = store.issue_key(identity, role, label=args.label, days=args.days)
        print(f"key {key.key_id} for {identity} ({role}), expires {key.expires}", file=sys.stderr)
        print(token)
    elif args.action == "list":
        identity = store.user(args.user).identity if args.user else None
        for key in store.keys(identity):
            d = key.to_dict()
            state = "active" if d["active"] else ("revoked" if key.revoked else "expired")
            print(f"{key.key_id}  {state:8s} {key.identity:32s} {key.role:9s} expires {key.expires}  {key.label}")
    elif args.action == "revoke":
        store.revoke_key(args.key_id)
        print(f"revoked {args.key_id}")
    return 0


@hookimpl
def register_commands(app):
    return [Command("users", "manage the accounts of a basedir", _users_args, _users),
            Command("keys", "issue, list and revoke API keys", _keys_args, _keys)]
