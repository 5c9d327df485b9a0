"""Test clients: HTTP requests to a test server, answered as (status, headers, body)
whatever the status (an HTTP error is an answer to check, not an exception)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def send(req: urllib.request.Request, opener=None, timeout: float = 30.0):
    """(status, headers, body bytes) of ``req`` sent through ``opener`` (a plain
    ``urlopen`` if None), for 4xx/5xx answers too."""
    open_ = opener.open if opener is not None else urllib.request.urlopen
    try:
        with open_(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def call(url: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
    """POST (GET without a body) JSON to ``url``: (status, decoded JSON answer)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    status, _headers, answer = send(urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}))
    return status, json.loads(answer)
