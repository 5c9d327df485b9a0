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

from .private import private_file

SECRET_FILE = ".secret"
COOKIE_NAME = "lcpanel_session"


def basedir_secret(basedir: str | Path) -> bytes:
    """The basedir's signing secret, created on first use: written to a private temporary
    file and linked into place, so no process ever reads a half-written secret and the
    first writer wins a race. An existing file readable by others is made 0600."""
    path = Path(basedir) / SECRET_FILE
    if path.exists():
        private_file(path)
        return bytes.fromhex(path.read_text().strip())
    tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    private_file(tmp).write_text(secrets.token_hex(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


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
