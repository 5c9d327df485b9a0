"""Security headers on every answer of the server: Content-Security-Policy, framing,
MIME sniffing and referrer.

:class:`SecurityHeaders` is a Tornado output transform; :func:`install` puts it in front of
Bokeh's Tornado application (:mod:`lcpanel.server`), so Bokeh/Panel pages, static files,
the JSON API, the login page and error pages all get the headers, whoever wrote the
handler.

What the page policy allows, and why (measured with Panel 1.10 / Bokeh 3.10, Chromium)
-------------------------------------------------------------------------------------
- ``script-src 'self' 'nonce-…'``: a Panel page carries a few inline scripts (the
  websocket tracker, the loader, Bokeh's embed call with the session's token), different
  in each response. Neither Bokeh nor Panel can mark their script tags with a nonce, so
  this transform adds a fresh random nonce to every inline ``<script>`` of the page when
  it is sent, and to es-module-shims' options (``<script type="esms-options">``): Panel
  loads es-module-shims on every page, before those scripts, and it gives the nonce to
  the scripts it makes (its feature test is an inline script in a ``srcdoc`` frame; with
  hashes of the page's scripts instead of a nonce it was refused on every page).
  Marking what the server itself rendered is safe because nothing a visitor can set
  reaches the server-rendered HTML unescaped (the template title is escaped,
  :mod:`lcpanel.views.escaping`); everything else arrives over the websocket and is put
  in the page by BokehJS, where an injected ``<script>``, event handler or
  ``javascript:`` URL has no nonce and is blocked.
- ``'unsafe-hashes'`` with the hashes of lcpanel's own few inline event handlers
  (:data:`lcpanel.views.escaping.INLINE_HANDLERS`: hide a missing figure, copy a new
  API key...): an injected handler with any other text is refused.
- ``'unsafe-eval'``: Panel's bundle evaluates code when it loads and Bokeh compiles every
  ``CustomJS`` callback (Panel's ``jscallback``, the plots' tick formatters, lcpanel's
  navigation and cookie helpers) with ``new Function``; without it no page renders. It
  does not let injected markup run: a string is evaluated only by script already running.
  (``blob:`` is not needed: es-module-shims' blob script carries the nonce.)
- ``style-src 'self' 'unsafe-inline'``: Bokeh and Panel put ``<style>`` elements into every
  component's shadow root and set ``style`` attributes at run time (without it Chromium
  refused 300 to 7,500 styles per page and nothing was laid out). Style cannot run script.
- ``img-src 'self' data: blob:`` (Bokeh's toolbar icons are data: URIs, the save tool
  makes a blob), ``connect-src 'self'`` (the websocket and the API; CSP 3 matches ws: to
  the page's own host), ``font-src 'self' data:``, ``object-src 'none'``,
  ``base-uri 'self'``, ``form-action 'self'`` (login and logout forms),
  ``frame-ancestors 'none'``.

Every other answer (JSON, images, files, scripts and styles fetched by pages) gets
``default-src 'none'; frame-ancestors 'none'``, so a file that a browser might render
(an SVG, an HTML file inside a collection) can run nothing.

All answers also get ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets

from tornado.web import OutputTransform

#: script ``type`` values a browser executes (an empty type is JavaScript)
_EXECUTABLE_TYPES = {"", "text/javascript", "application/javascript", "module", "text/ecmascript"}
_TYPE = re.compile(rb"""\btype\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_SRC = re.compile(rb"\bsrc\s*=", re.IGNORECASE)

#: the policy of HTML pages, before the script hashes are added
PAGE_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self' 'unsafe-eval'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
#: the policy of everything that is not an HTML page
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
OTHER_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def sha256_source(text: str | bytes) -> str:
    """The CSP source expression (``'sha256-...'``) of a script's or handler's text."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


def _script_type(attrs: bytes) -> str | None:
    """The ``type`` of an inline ``<script>`` tag with these attributes (None for ``src=``)."""
    if _SRC.search(attrs):
        return None
    kind = _TYPE.search(attrs)
    value = next((g for g in kind.groups() if g is not None), b"") if kind else b""
    return value.strip().lower().decode("ascii", "replace")


def add_nonce(body: bytes, nonce: str) -> bytes:
    """``body`` with ``nonce`` on each of its executable inline ``<script>`` elements, and
    in es-module-shims' options (it loads before them and gives the nonce to the scripts
    it makes). Only lower-case ``<script`` tags are marked: the way Bokeh and Panel write
    them. (A scan with ``find``: a regular expression took 0.1 ms on a 13 KiB page.)"""
    out, pos = [], 0
    mark = f' nonce="{nonce}"'.encode("ascii")
    while True:
        start = body.find(b"<script", pos)
        if start < 0:
            break
        tag_end = body.find(b">", start)
        close = body.find(b"</script", tag_end)
        if tag_end < 0 or close < 0:
            break
        attrs = body[start + 7:tag_end]
        if attrs[:1] not in (b"", b" ", b"\t", b"\n", b"\r", b"/"):  # <scripts>, not a script tag
            out.append(body[pos:start + 7])
            pos = start + 7
            continue
        kind = _script_type(attrs)
        out.append(body[pos:start + 7])
        if kind in _EXECUTABLE_TYPES:
            out.append(mark + body[start + 7:close])
        elif kind == "esms-options":
            out.append(attrs + b">" + _esms_options(body[tag_end + 1:close], nonce))
        else:
            out.append(body[start + 7:close])
        pos = close
    out.append(body[pos:])
    return b"".join(out)


def _esms_options(text: bytes, nonce: str) -> bytes:
    try:
        options = json.loads(text)
    except ValueError:
        return text
    if not isinstance(options, dict):
        return text
    return json.dumps({**options, "nonce": nonce}).encode()


@functools.lru_cache(maxsize=1)
def _handler_hashes() -> tuple[str, ...]:
    try:
        from .views.escaping import INLINE_HANDLERS
    except ImportError:  # pages not installed: no handlers to allow
        return ()
    return tuple(sorted({sha256_source(js) for js in INLINE_HANDLERS}))


def page_policy(nonce: str | None) -> str:
    """The Content-Security-Policy of an HTML page whose inline scripts carry ``nonce``
    (None: the page is sent in pieces and no inline script is allowed)."""
    directives = dict(PAGE_DIRECTIVES)
    extra = [f"'nonce-{nonce}'"] if nonce else []
    handlers = _handler_hashes()
    if handlers:
        extra += ["'unsafe-hashes'", *handlers]
    if extra:
        directives["script-src"] += " " + " ".join(extra)
    return "; ".join(f"{k} {v}" for k, v in directives.items())


class SecurityHeaders(OutputTransform):
    """Adds the headers to every answer (a handler that set one itself keeps its own)."""

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        for name, value in OTHER_HEADERS.items():
            if name not in headers:
                headers[name] = value
        if "Content-Security-Policy" not in headers:
            ctype = headers.get("Content-Type", "").lower()
            if ctype.startswith("text/html"):
                nonce = None
                if finishing and chunk:
                    nonce = secrets.token_urlsafe(18)
                    chunk = add_nonce(chunk, nonce)
                    if "Content-Length" in headers:
                        headers["Content-Length"] = str(len(chunk))
                headers["Content-Security-Policy"] = page_policy(nonce)
            else:
                headers["Content-Security-Policy"] = OTHER_POLICY
        return status_code, headers, chunk


def install(tornado_app) -> None:
    """Put :class:`SecurityHeaders` first among the application's output transforms (before
    compression, which would hide the page's scripts from it)."""
    if SecurityHeaders not in tornado_app.transforms:
        tornado_app.transforms.insert(0, SecurityHeaders)
