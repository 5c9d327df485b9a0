"""Who is asking: one resolution of a request's credentials to a :class:`Principal`, used by
the JSON API, the VO routes and the web pages alike.

In order of precedence:

1. ``Authorization: Bearer lcp_...``: an API key. A bad, expired or revoked key is an
   error (HTTP 401), never a silent fall-back to anonymous.
2. The ``lcpanel_login`` cookie set by ``/login``: the random secret of a server-side
   login session (:meth:`UserStore.start_session`; only its SHA256 is stored). It stops
   working after :data:`LOGIN_MAX_AGE_S` and at once on logout, on a password change and
   when the account is removed. The role is read from the user store on every request,
   so role changes take effect at once.
3. The ``user`` cookie of Panel's auth providers (``lcpanel serve --oauth-provider ...``
   or ``--basic-auth``): identity ``user:<name>`` with that account's role when an
   account of that name exists, else ``oauth:<name>`` with role ``user``.
4. The anonymous ``lcpanel_session`` cookie (made on first visit): role ``anonymous``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ..clock import now_iso
from ..datasets import Principal
from .identity import COOKIE_NAME, Signer, anonymous_identity
from .users import InvalidKey, User, UserStore, role_rank

LOGIN_COOKIE = "lcpanel_login"
LOGIN_MAX_AGE_S = 30 * 86400
MAX_OAUTH_NAME = 200


@dataclass(frozen=True)
class Resolved:
    viewer: Principal
    #: how the viewer was recognised: key, login, oauth or session
    via: str
    #: a new anonymous session cookie to store in the browser, or None
    new_session_cookie: str | None = None


class Authenticator:
    def __init__(self, signer: Signer, users: UserStore):
        self.signer = signer
        self.users = users

    def login_cookie(self, user: User) -> str:
        """The cookie value of a new login session of ``user``."""
        return self.users.start_session(user.username, LOGIN_MAX_AGE_S)

    def login_user(self, cookie: str | None) -> User | None:
        """The account a login cookie names, if its session is current."""
        return self.users.session_user(cookie)

    def logout(self, cookie: str | None) -> None:
        """End the login session of this cookie (a no-op if there is none)."""
        self.users.end_session(cookie)

    def _key_principal(self, token: str) -> Principal:
        """Who API key ``token`` speaks for, with the key's role capped by its account's
        current role. Once verified, the answer is remembered by the thread under the
        SHA256 of the whole token (a wrong secret never matches it) until users.sqlite
        changes or the key expires: a script's requests cost one ``PRAGMA`` each."""
        memory = self.users.memory()
        slot = ("principal", hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest())
        hit = memory.get(slot) if memory is not None else None
        if hit is not None and hit[1] > now_iso():
            return hit[0]
        key = self.users.verify_key(token)
        role = key.role
        if key.identity.startswith("user:"):
            user = self.users.find_user(key.identity[5:])
            role = min(role, user.role if user else "anonymous", key=role_rank)
        principal = Principal(key.identity, role)
        if memory is not None:
            memory[slot] = (principal, key.expires)
        return principal

    def resolve(self, cookies: Mapping[str, str], authorization: str | None = None,
                oauth_user: str | None = None) -> Resolved:
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidKey("send an API key as 'Authorization: Bearer lcp_...'")
            return Resolved(self._key_principal(token.strip()), "key")
        user = self.login_user(cookies.get(LOGIN_COOKIE))
        if user is not None:
            return Resolved(Principal(user.identity, user.role), "login")
        if oauth_user and len(oauth_user) <= MAX_OAUTH_NAME:
            account = self.users.find_user(oauth_user)
            if account is not None:
                return Resolved(Principal(account.identity, account.role), "oauth")
            return Resolved(Principal(f"oauth:{oauth_user}", "user"), "oauth")
        token = self.signer.token(cookies.get(COOKIE_NAME))
        if token is not None:
            return Resolved(Principal(anonymous_identity(token)), "session")
        cookie, token = self.signer.new_cookie()
        return Resolved(Principal(anonymous_identity(token)), "session", new_session_cookie=cookie)

