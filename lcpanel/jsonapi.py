"""Base Tornado handler for lcpanel's JSON API: JSON in, JSON out, and errors as JSON
with a 4xx status and a clear message, never a stack trace or a file path."""

from __future__ import annotations

import json
import logging
import math
import re
from typing import ClassVar

import numpy as np
import orjson
from tornado.web import HTTPError, RequestHandler

from .errors import Forbidden, TooLarge, TooManyRequests, UserError

log = logging.getLogger(__name__)


def _float32_as_written(obj):
    """float32 values as the shortest decimal of the float32 (0.1, not 0.10000000149011612),
    as orjson writes them."""
    return obj.astype(str).astype(np.float64) if isinstance(obj, np.ndarray) else float(str(obj))


def to_jsonable(obj):
    """Plain JSON types from numpy scalars/arrays; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.float32)) and obj.dtype == np.float32:
        obj = _float32_as_written(obj)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


def _numpy_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(data) -> str:
    """JSON text; numpy values converted on the way, NaN and infinities as null.

    orjson writes it (numpy arrays and scalars natively; NaN as null); what it refuses
    (integers over 64 bits, lone surrogates) takes the standard library's encoder after a
    recursive clean-up. A 70-row search answer takes 0.04 ms, against 0.26 ms with
    ``json.dumps``."""
    try:
        return orjson.dumps(data, default=_numpy_default, option=_ORJSON_OPTIONS).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(to_jsonable(data), allow_nan=False)


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (strings skipped), without
    parsing it: a body nested 100,000 deep is refused before the parser recurses."""
    if not body:
        return 0
    bare = np.frombuffer(_JSON_STRING.sub(b'""', body), dtype=np.uint8)
    steps = np.zeros(len(bare), dtype=np.int32)
    steps[(bare == ord("[")) | (bare == ord("{"))] = 1
    steps[(bare == ord("]")) | (bare == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


class APIMixin:
    """The app, the viewer's identity, cross-site write checks and JSON errors, for any
    Tornado handler."""

    #: cookie-authenticated writes must send ``application/json`` (:mod:`lcpanel.csrf`)
    json_writes: ClassVar[bool] = False
    #: let cookie writes without Origin and Sec-Fetch-Site through (protocol clients)
    headerless_cookie_writes: ClassVar[bool] = False

    def initialize(self, app):
        self.app = app

    def prepare(self):
        """Every request: who is asking (a bad API key is a 401), whether a write comes
        from this site (else 403), and their request budget."""
        viewer = self.viewer()
        self.refuse_cross_site_writes()
        self.app.rate_limiter.spend(viewer, self.request.remote_ip)

    def viewer(self):
        """Who is asking (:mod:`lcpanel.core.access.auth`); a new anonymous visitor gets a signed
        session cookie."""
        from .core.access.auth import LOGIN_COOKIE
        from .core.access.identity import COOKIE_NAME

        cached = getattr(self, "_viewer", None)
        if cached is not None:
            return cached
        cookies = {name: self.get_cookie(name) for name in (COOKIE_NAME, LOGIN_COOKIE)}
        oauth_user = None
        if self.application.settings.get("cookie_secret"):
            raw = self.get_secure_cookie("user")
            oauth_user = raw.decode("utf-8", "replace") if raw else None
        resolved = self.app.auth.resolve({k: v for k, v in cookies.items() if v},
                                         self.request.headers.get("Authorization"), oauth_user)
        if resolved.new_session_cookie:
            self.set_session_cookie(resolved.new_session_cookie)
        self._via = resolved.via
        self._cookie_auth = resolved.via != "key" and resolved.new_session_cookie is None
        self._viewer = resolved.viewer
        return self._viewer

    def set_session_cookie(self, value: str) -> None:
        """Store a new anonymous session cookie (HttpOnly, like every lcpanel cookie)."""
        from .core.access.identity import COOKIE_NAME

        self.set_cookie(COOKIE_NAME, value, httponly=True, samesite="Lax", expires_days=365,
                        secure=self.request.protocol == "https")

    def refuse_cross_site_writes(self, *, json: bool | None = None, cookies: bool | None = None) -> None:
        """403 for a write that may come from another site (:mod:`lcpanel.csrf`); API-key
        requests are exempt. ``json``/``cookies`` override the class's and the viewer's."""
        from .csrf import WRITE_METHODS, refusal

        if self.request.method not in WRITE_METHODS:
            return
        self.viewer()
        if self._via == "key":
            return
        reason = refusal(self.request, cookies=self._cookie_auth if cookies is None else cookies,
                         json=self.json_writes if json is None else json,
                         headerless_ok=self.headerless_cookie_writes)
        if reason:
            raise Forbidden(reason)

    def send_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(dumps(data))

    def _handle_request_exception(self, e: BaseException) -> None:
        if self._finished:
            return
        self.clear_header("Content-Disposition")
        if isinstance(e, UserError):
            if isinstance(e, TooManyRequests):
                self.set_header("Retry-After", str(max(1, math.ceil(e.retry_after))))
            elif e.status == 401:
                self.set_header("WWW-Authenticate", 'Bearer realm="lcpanel"')
            self.send_json(e.to_dict(), status=e.status)
            return
        if isinstance(e, HTTPError):
            self.send_json({"error": e.log_message or self._reason, "type": "HTTPError"}, status=e.status_code)
            return
        log.exception("internal error on %s %s", self.request.method, self.request.path)
        self.send_json({"error": "internal server error", "type": "InternalError"}, status=500)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": self._reason, "type": "HTTPError"}))


class JSONHandler(APIMixin, RequestHandler):
    """Handlers get the app in ``initialize`` and answer with :meth:`send_json`."""

    json_writes = True

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def json_body(self, max_bytes: int) -> dict:
        body = self.request.body or b""
        if len(body) > max_bytes:
            raise TooLarge(f"request body is {len(body)} bytes; the limit is {max_bytes}")
        # nothing nests deeper than it has opening brackets: most bodies skip the count
        depth = json_depth(body) if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH else 0
        if depth > MAX_JSON_DEPTH:
            raise UserError(f"request body nests arrays and objects {depth} deep; the limit is {MAX_JSON_DEPTH}")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"request body is not valid JSON: {exc}") from None
        except ValueError as exc:  # e.g. an integer of more digits than Python converts
            raise UserError(f"request body holds a value that cannot be read: {str(exc)[:120]}") from None
        if not isinstance(data, dict):
            raise UserError("request body must be a JSON object")
        return data
