"""Anonymous identities: a random session token in an HMAC-signed cookie.

The basedir keeps a secret (``BASEDIR/.secret``, created once, mode 0600) that every
server process shares, so a cookie signed by one process is accepted by the others. The
owner string of an anonymous visitor is ``anon:`` plus a digest of their token; the
token itself never appears in datasets or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = ".secret"
COOKIE_NAME = "lcpanel_session"


def basedir_secret(basedir: str | Path) -> bytes:
    """The basedir's signing secret, created on first use (race-free across processes)."""
    path = Path(basedir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return bytes.fromhex(value)


class Signer:
    def __init__(self, secret: bytes):
        self.secret = secret

    def _mac(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()[:32]

    def new_cookie(self) -> tuple[str, str]:
        """(cookie value, token) for a new anonymous session."""
        token = secrets.token_hex(16)
        return f"{token}.{self._mac(token)}", token

    def token(self, cookie: str | None) -> str | None:
        """The session token if the cookie is one of ours, else None."""
        if not cookie or cookie.count(".") != 1 or len(cookie) > 100:
            return None
        token, mac = cookie.split(".")
        if len(token) != 32 or not hmac.compare_digest(mac, self._mac(token)):
            return None
        return token


def anonymous_identity(token: str) -> str:
    return "anon:" + hashlib.sha256(token.encode()).hexdigest()[:24]
