"""Accounts and API keys of one basedir, in ``BASEDIR/users.sqlite``.

Roles, from least to most trusted: ``anonymous`` (a visitor with only a session
cookie), ``user`` (logged in), ``staff`` (reviewers: may change objects' variability
info) and ``admin`` (sees and manages every dataset). Passwords are stored as scrypt
hashes (``hashlib.scrypt``, a memory-hard KDF from the standard library); API keys as
the SHA256 of 32 random bytes (high entropy, so no slow hash is needed), shown to their
owner once. A key acts for the identity it was issued to, with the role that identity
had when the key was issued or less, until it expires or is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from ...errors import Conflict, NotFound, UserError
from ..clock import now
from .private import private_file
from ..wal import connect_wal

USERS_FILE = "users.sqlite"
ROLES = ("anonymous", "user", "staff", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
KEY_PREFIX = "lcp_"
KEY_TOKEN = re.compile(r"^lcp_([0-9a-f]{16})_([0-9A-Za-z_-]{43})$")
MAX_KEY_DAYS = 3650
MAX_LABEL = 200
#: key rows and accounts a thread remembers at most (then it starts again)
KNOWN_MAX = 1024

# scrypt cost: ~40 ms and 16 MiB per hash on this class of machine
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    pwhash   TEXT,
    role     TEXT NOT NULL,
    created  TEXT NOT NULL,
    -- changes on every password change: sessions signed with an older value stop working
    session_epoch TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id   TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    identity TEXT NOT NULL,
    role     TEXT NOT NULL,
    label    TEXT NOT NULL,
    created  TEXT NOT NULL,
    expires  TEXT NOT NULL,
    revoked  TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_identity ON api_keys(identity);
-- one row per login (a browser's login cookie holds the secret whose SHA256 is sid_sha256):
-- logging out, a password change and removing the account delete rows, ending logins at once
CREATE TABLE IF NOT EXISTS login_sessions (
    sid_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created  REAL NOT NULL,
    expires  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_sessions_username ON login_sessions(username);
"""


SESSION_SECRET = re.compile(r"^[0-9A-Za-z_-]{43}$")


def _sid_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def role_rank(role: str) -> int:
    return ROLES.index(role)


def check_role(role) -> str:
    if role not in ROLES[1:]:
        raise UserError(f"role must be one of {', '.join(ROLES[1:])}, not {role!r}", field="role")
    return role


def check_username(name) -> str:
    if not isinstance(name, str) or not USERNAME.match(name):
        raise UserError("a user name is 1-64 characters: lower-case letters, digits, '_', '.', '-', "
                        "starting with a letter or digit", field="username")
    return name


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Constant work whether or not ``stored`` exists, so timing does not tell user names."""
    try:
        _, n, r, p, salt, digest = (stored or "").split("$")
        params, salt_b, want = {"n": int(n), "r": int(r), "p": int(p)}, bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        params, salt_b, want = _SCRYPT, b"\0" * 16, b""
    got = hashlib.scrypt(password.encode(), salt=salt_b, dklen=32, **params)
    return bool(want) and hmac.compare_digest(got, want)


def _check_password(password) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    return password


@dataclass(frozen=True)
class User:
    username: str
    role: str
    created: str
    session_epoch: str

    @property
    def identity(self) -> str:
        return f"user:{self.username}"


@dataclass(frozen=True)
class APIKey:
    key_id: str
    identity: str
    role: str
    label: str
    created: str
    expires: str
    revoked: str | None

    def to_dict(self) -> dict:
        return {"key_id": self.key_id, "identity": self.identity, "role": self.role, "label": self.label,
                "created": self.created, "expires": self.expires, "revoked": self.revoked,
                "active": self.revoked is None and self.expires > now().isoformat()}


class InvalidKey(UserError):
    """A bearer token that is not a valid, current API key (HTTP 401)."""

    status = 401


class UserStore:
    """Users and API keys; safe to use from several threads and processes."""

    def __init__(self, basedir: str | Path):
        self.path = Path(basedir) / USERS_FILE
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():  # never across a fork
            private_file(self.path)
            conn = connect_wal(self.path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.executescript(SCHEMA)
            self._local.conn, self._local.pid, self._local.known = conn, os.getpid(), None
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.known = None

    def _exists(self) -> bool:
        return getattr(self._local, "conn", None) is not None or self.path.exists()

    def _known(self) -> dict:
        """This thread's memory of key rows and accounts read since users.sqlite last
        changed: emptied when another connection committed (``PRAGMA data_version``, any
        process) or this one wrote (``total_changes``), so a revoked key or a changed
        role counts from the next request on. Every API request verifies its key and
        its owner's role; this spares it the two queries."""
        conn = self._connect()
        version = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        local = self._local
        if getattr(local, "known", None) is None or local.known_version != version or len(local.known) > KNOWN_MAX:
            local.known, local.known_version = {}, version
        return local.known

    def memory(self) -> dict | None:
        """This thread's memory of what it read from users.sqlite (see :meth:`_known`),
        for callers that remember what they derived from it; None when there is no
        users.sqlite yet (nothing to remember)."""
        return self._known() if self._exists() else None

    # --- users ------------------------------------------------------------------------

    def add_user(self, username: str, password: str | None, role: str = "user") -> User:
        """A new account; ``password`` None makes one that cannot log in with a password
        (for identities from an OAuth provider that need a role)."""
        check_username(username)
        check_role(role)
        pwhash = hash_password(_check_password(password)) if password is not None else None
        try:
            self._connect().execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                                    (username, pwhash, role, now().isoformat(timespec="seconds"),
                                     secrets.token_hex(8)))
        except sqlite3.IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        return self.user(username)

    def user(self, username: str) -> User:
        found = self.find_user(username)
        if found is None:
            raise NotFound(f"no user {username!r}")
        return found

    def find_user(self, username) -> User | None:
        if not isinstance(username, str) or not USERNAME.match(username):
            return None
        if not self._exists():
            return None
        known = self._known()
        if ("user", username) not in known:
            row = self._connect().execute(
                "SELECT username, role, created, session_epoch FROM users WHERE username = ?", (username,)).fetchone()
            known["user", username] = User(**dict(row)) if row else None
        return known["user", username]

    def users(self) -> list[User]:
        rows = self._connect().execute("SELECT username, role, created, session_epoch FROM users ORDER BY username")
        return [User(**dict(r)) for r in rows]

    def authenticate(self, username, password) -> User | None:
        """The user if ``password`` is theirs, else None (same work either way)."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return None
        row = None
        if isinstance(username, str) and USERNAME.match(username) and self.path.exists():
            row = self._connect().execute("SELECT pwhash FROM users WHERE username = ?", (username,)).fetchone()
        ok = verify_password(password, row["pwhash"] if row else None)
        return self.find_user(username) if ok else None

    def set_password(self, username: str, password: str) -> None:
        """A new password; every login of the account ends."""
        pwhash = hash_password(_check_password(password))
        self._update_user(username, "pwhash = ?, session_epoch = ?", (pwhash, secrets.token_hex(8)))
        self.end_sessions(username)

    def set_role(self, username: str, role: str) -> None:
        self._update_user(username, "role = ?", (check_role(role),))

    def remove_user(self, username: str) -> None:
        """Delete the account and revoke its keys (its datasets stay, owned by ``user:<name>``)."""
        user = self.user(username)
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM users WHERE username = ?", (username,))
            conn.execute("DELETE FROM login_sessions WHERE username = ?", (username,))
            conn.execute("UPDATE api_keys SET revoked = ? WHERE identity = ? AND revoked IS NULL",
                         (now().isoformat(timespec="seconds"), user.identity))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _update_user(self, username: str, assignments: str, params: tuple) -> None:
        check_username(username)
        cur = self._connect().execute(f"UPDATE users SET {assignments} WHERE username = ?", (*params, username))
        if cur.rowcount == 0:
            raise NotFound(f"no user {username!r}")

    # --- login sessions ---------------------------------------------------------------

    def start_session(self, username: str, max_age_s: float) -> str:
        """A new login of ``username`` for ``max_age_s`` seconds: the secret for the
        browser's cookie (only its SHA256 is stored)."""
        secret = secrets.token_urlsafe(32)
        now = time.time()
        conn = self._connect()
        conn.execute("DELETE FROM login_sessions WHERE expires < ?", (now,))
        conn.execute("INSERT INTO login_sessions VALUES (?, ?, ?, ?)",
                     (_sid_hash(secret), check_username(username), now, now + max_age_s))
        return secret

    def session_user(self, secret) -> User | None:
        """The account a current login secret belongs to, else None."""
        if not isinstance(secret, str) or not SESSION_SECRET.match(secret) or not self.path.exists():
            return None
        row = self._connect().execute(
            "SELECT u.username, u.role, u.created, u.session_epoch FROM login_sessions s "
            "JOIN users u ON u.username = s.username WHERE s.sid_sha256 = ? AND s.expires > ?",
            (_sid_hash(secret), time.time())).fetchone()
        return User(**dict(row)) if row else None

    def end_session(self, secret) -> None:
        """Log this one login out (a no-op for an unknown secret)."""
        if isinstance(secret, str) and SESSION_SECRET.match(secret) and self.path.exists():
            self._connect().execute("DELETE FROM login_sessions WHERE sid_sha256 = ?", (_sid_hash(secret),))

    def end_sessions(self, username: str) -> None:
        """Log ``username`` out everywhere."""
        self._connect().execute("DELETE FROM login_sessions WHERE username = ?", (username,))

    # --- API keys ---------------------------------------------------------------------

    def issue_key(self, identity: str, role: str, *, label: str = "", days: float = 90) -> tuple[str, APIKey]:
        """(token, key): the token is shown once; only its hash is kept."""
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}", field="role")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_KEY_DAYS:
            raise UserError(f"a key lives between a moment and {MAX_KEY_DAYS} days; days={days!r}", field="days")
        if not isinstance(label, str) or len(label) > MAX_LABEL:
            raise UserError(f"a key's label is text of at most {MAX_LABEL} characters", field="label")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        created = now()
        key = APIKey(key_id, identity, role, label, created.isoformat(timespec="seconds"),
                     (created + timedelta(days=days)).isoformat(timespec="seconds"), None)
        self._connect().execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                                (key_id, hashlib.sha256(secret.encode()).hexdigest(), identity, role, label,
                                 key.created, key.expires))
        return f"{KEY_PREFIX}{key_id}_{secret}", key

    def verify_key(self, token: str) -> APIKey:
        """The key ``token`` names; :class:`InvalidKey` if it is malformed, unknown,
        expired or revoked (the message says which, never whose)."""
        match = KEY_TOKEN.match(token or "")
        if not match:
            raise InvalidKey("the bearer token is not an lcpanel API key (lcp_<id>_<secret>)")
        row = None
        if self._exists():
            known = self._known()
            row = known.get(("key", match.group(1)))
            if row is None:
                row = self._connect().execute("SELECT * FROM api_keys WHERE key_id = ?", (match.group(1),)).fetchone()
                if row is not None:  # only keys that exist are remembered
                    known["key", match.group(1)] = row
        want = row["secret_sha256"] if row else "0" * 64
        got = hashlib.sha256(match.group(2).encode()).hexdigest()
        if not hmac.compare_digest(got, want) or row is None:
            raise InvalidKey("unknown API key")
        key = APIKey(**{k: row[k] for k in APIKey.__dataclass_fields__})
        if key.revoked:
            raise InvalidKey("this API key was revoked")
        if key.expires <= now().isoformat(timespec="seconds"):
            raise InvalidKey("this API key has expired; ask for a new one")
        return key

    def keys(self, identity: str | None = None) -> list[APIKey]:
        """Keys issued to ``identity`` (every key when None), newest first."""
        sql, params = "SELECT * FROM api_keys", ()
        if identity is not None:
            sql, params = sql + " WHERE identity = ?", (identity,)
        rows = self._connect().execute(sql + " ORDER BY created DESC, key_id", params).fetchall()
        return [APIKey(**{k: r[k] for k in APIKey.__dataclass_fields__}) for r in rows]

    def revoke_key(self, key_id: str, identity: str | None = None) -> APIKey:
        """Revoke a key; with ``identity`` only one issued to it (others are not found)."""
        if not isinstance(key_id, str) or not re.fullmatch(r"[0-9a-f]{16}", key_id):
            raise NotFound("no such API key")
        conn = self._connect()
        row = conn.execute("SELECT identity FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        if row is None or (identity is not None and row["identity"] != identity):
            raise NotFound("no such API key")
        conn.execute("UPDATE api_keys SET revoked = COALESCE(revoked, ?) WHERE key_id = ?",
                     (now().isoformat(timespec="seconds"), key_id))
        return next(k for k in self.keys(row["identity"]) if k.key_id == key_id)
