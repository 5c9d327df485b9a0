"""The account page, ``/account``, for every visitor: who you are (identity, role, your
limits), your API keys with a form that issues one, and, for admins, every key.

It acts for :func:`lcpanel.visitor.session_viewer`, the identity the JSON API sees
for the same browser, so a key made here acts for the owner of the datasets made in this
browser. A new key's token is shown once, in this browser session only: the server keeps
its SHA256 (:mod:`lcpanel.core.access.users`); reloading the page forgets it.

Key creation counts against the visitor's request budget like ``POST /api/keys``.
"""

from __future__ import annotations

import logging
import math

import panel as pn
import param

from ..core.clock import now_iso
from ..core.access.users import MAX_KEY_DAYS, MAX_LABEL, APIKey
from ..errors import UserError
from .escaping import COPY_TOKEN, SELECT_SELF, handler
from ..visitor import login_url, session_viewer
from .theme import PANE_CSS, esc, html, page, section, styled
from .stylesheets import stylesheet

log = logging.getLogger(__name__)

DEFAULT_DAYS = 90
#: width of the column holding the Revoke buttons (the header keeps the same space)
ACTION_WIDTH = 92

#: the account page's panes: the shared pane CSS and the page's own, one file
ACCOUNT_CSS = stylesheet("account", PANE_CSS + """
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; color: #1d2a33;
       background: #eef1f4; padding: 1px 6px; border-radius: 4px; }
.lcp-whoami { display: grid; grid-template-columns: max-content minmax(0, 1fr); column-gap: 18px; row-gap: 6px;
              margin: 0; font-size: 0.95em; }
.lcp-whoami dt { color: var(--lcp-muted); }
.lcp-whoami dd { margin: 0; color: #1d2a33; overflow-wrap: anywhere; }
@media (max-width: 700px) { .lcp-whoami { column-gap: 10px; } .lcp-whoami dt { max-width: 120px; } }
.lcp-role-badge { font-weight: 600; }
.lcp-note { margin: 10px 0 0 0; padding: 10px 12px; border-radius: 8px; background: #f6f9fb;
            border: 1px solid #e1e8ee; color: #34414b; line-height: 1.45; font-size: 0.93em; }
.lcp-keyrow { display: grid; grid-template-columns: var(--cols); column-gap: 12px; align-items: center;
              font-size: 0.92em; padding: 6px 8px; min-height: 22px; }
.lcp-keyrow.head { color: var(--lcp-muted); font-weight: 600; }
.lcp-keyrow > span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.lcp-keyrow .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
.lcp-keyrow .none { color: #8a959e; font-style: italic; }
.lcp-status { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.85em;
              border: 1px solid; }
.lcp-status.active { background: #e6f4ea; color: #1e6b35; border-color: #bfe0c9; }
.lcp-status.revoked { background: #fde8e7; color: #8c1d18; border-color: #f4c7c3; }
.lcp-status.expired { background: #f3f4f6; color: #7a848c; border-color: #e1e4e8; }
.lcp-token-box { border: 1px solid #bfe0c9; background: #f3faf5; border-radius: 8px; padding: 12px 14px; }
.lcp-token-box p { margin: 0 0 8px 0; line-height: 1.45; }
.lcp-token-box .lcp-token-line { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; }
.lcp-token-box input { flex: 1; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
                       font-size: 0.95em; padding: 6px 8px; border: 1px solid #b8c3cc; border-radius: 6px;
                       background: #fff; color: #1d2a33; min-width: 0; }
.lcp-token-box button { padding: 6px 14px; border-radius: 6px; border: 1px solid #1f5f8b; background: #1f5f8b;
                        color: #fff; cursor: pointer; font-size: 0.95em; }
.lcp-token-box pre { margin: 0; padding: 8px 10px; background: #1d2a33; color: #e8eef3; border-radius: 6px;
                     font-size: 0.88em; white-space: pre-wrap; word-break: break-all; }
.lcp-ok-text { color: #1e6b35; font-size: 0.9em; margin: 0 0 6px 0; }
""")


def _html(text: str, **kwargs) -> pn.pane.HTML:
    return html(text, sheet=ACCOUNT_CSS, **kwargs)


def key_status(key: APIKey) -> str:
    if key.revoked:
        return "revoked"
    return "expired" if key.expires <= now_iso() else "active"


def _stamp(value: str | None) -> str:
    """'2026-11-20 14:03' with the full UTC time as a tooltip."""
    if not value:
        return '<span class="none">—</span>'
    return f'<span title="{esc(value)}">{esc(value[:16].replace("T", " "))}</span>'


def _limit(value: int) -> str:
    return "unlimited" if not value else f"{value:,}"


def _request_host() -> str:
    """``http://host:port`` of the request that opened this session (for the curl example)."""
    request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
    headers = getattr(request, "headers", None) or {}
    host = headers.get("Host") or "127.0.0.1:5006"
    proto = headers.get("X-Forwarded-Proto") or getattr(request, "protocol", None) or "http"
    return f"{esc(proto)}://{esc(host)}"


class KeyTable(pn.viewable.Viewer):
    """A list of API keys, one row each, with a Revoke button on the active ones.
    ``owners`` adds each key's identity and role (the admins' list of every key)."""

    keys = param.List(default=[])
    owners = param.Boolean(default=False)
    empty = param.String(default="No API keys yet.")

    def __init__(self, on_revoke, **params):
        super().__init__(**params)
        self._on_revoke = on_revoke
        #: what the last Revoke did (kept across re-renders)
        self.message = _html("", css_classes=["lcp-revoke-message"], margin=0)
        self._column = pn.Column(sizing_mode="stretch_width", margin=(0, 10),
                                 css_classes=["lcp-keys-all" if self.owners else "lcp-keys"])
        self._render()

    @property
    def _cols(self) -> str:
        if self.owners:
            return "minmax(140px, 1.6fr) minmax(90px, 1.2fr) 92px 145px 120px 120px 80px"
        return "minmax(140px, 2fr) 145px 125px 125px 80px"

    def _row(self, cells: list[str], head: bool = False, key: APIKey | None = None):
        classes = "lcp-keyrow head" if head else "lcp-keyrow"
        pane = _html(f'<div class="{classes}" style="--cols: {self._cols}">{"".join(cells)}</div>',
                     margin=0, align="center")
        if key is not None and key_status(key) == "active":
            action = styled(pn.widgets.Button(label="Revoke", color="danger", variant="outline",
                                              width=ACTION_WIDTH - 12, height=30, margin=(3, 0, 3, 12), align="center",
                                              css_classes=["lcp-revoke"]))
            action.on_click(lambda event, k=key: self._on_revoke(k, self))
        else:
            action = pn.Spacer(width=ACTION_WIDTH, height=1 if head else 30, margin=0)
        classes = ["lcp-key-head"] if head else ["lcp-key-row", f"lcp-key-{key.key_id}"]
        border = "2px solid #dde3e8" if head else "1px solid #edf0f2"
        return pn.Row(pane, action, sizing_mode="stretch_width", margin=0, css_classes=classes,
                      styles={"border-bottom": border, "align-items": "center"})

    @param.depends("keys", watch=True)
    def _render(self) -> None:
        if not self.keys:
            self._column.objects = [self.message,
                                    _html(f'<div class="lcp-empty">{self.empty}</div>', margin=(0, 0, 4, 0))]
            return
        head = ["Owner", "Label", "Role"] if self.owners else ["Label"]
        head += ["Key id", "Created (UTC)", "Expires (UTC)", "Status"]
        rows = [self._row([f"<span>{h}</span>" for h in head], head=True)]
        for key in self.keys:
            status = key_status(key)
            label = (f'<span title="{esc(key.label)}">{esc(key.label)}</span>' if key.label
                     else '<span class="none">no label</span>')
            cells = ([f'<span class="mono" title="{esc(key.identity)}">{esc(key.identity)}</span>', label,
                      f"<span>{esc(key.role)}</span>"] if self.owners else [label])
            cells += [f'<span class="mono lcp-key-id">{esc(key.key_id)}</span>', _stamp(key.created),
                      _stamp(key.expires),
                      f'<span><span class="lcp-status {status} lcp-key-status">{status}</span></span>']
            rows.append(self._row(cells, key=key))
        self._column.objects = [self.message, *rows]

    def __panel__(self):
        return self._column


class AccountPage(pn.viewable.Viewer):
    """The ``/account`` page."""

    app = param.Parameter(doc="the lcpanel App")

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self.limits = self.app.config.limits
        self.label = styled(pn.widgets.TextInput(
            label="Label", placeholder="what the key is for, e.g. nightly cross-match", max_length=MAX_LABEL,
            sizing_mode="stretch_width", css_classes=["lcp-key-label"], margin=(0, 10, 0, 10)))
        self.days = styled(pn.widgets.IntInput(
            label=f"Lifetime (days, at most {MAX_KEY_DAYS:,})", value=DEFAULT_DAYS, step=30, width=200,
            css_classes=["lcp-key-days"], margin=(0, 10, 0, 0)))
        self.create = styled(pn.widgets.Button(label="Create key", color="primary", width=130,
                                               margin=(22, 10, 0, 0), css_classes=["lcp-create-key"]))
        self.create.on_click(self._create)
        self.form_message = _html("", css_classes=["lcp-key-message"], margin=(6, 10, 0, 10))
        self.token_box = _html("", css_classes=["lcp-new-token"], margin=(10, 10, 4, 10), visible=False)
        self.mine = KeyTable(self._revoke, empty="You have no API keys yet: create one below.")
        self.everyone = KeyTable(self._revoke, owners=True, empty="Nobody has an API key yet.") \
            if self.viewer.admin else None
        self._layout = None
        self._refresh()

    # --- actions -----------------------------------------------------------------------

    def _refresh(self) -> None:
        self.mine.keys = self.app.users.keys(self.viewer.identity)
        if self.everyone is not None:
            self.everyone.keys = self.app.users.keys(None)

    def _client(self) -> str:
        """The rate limiter's name for this visitor, as the JSON API counts them."""
        if self.viewer.role != "anonymous":
            return self.viewer.identity
        request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
        ip = getattr(request, "remote_ip", None)
        return f"ip:{ip}" if ip else self.viewer.identity

    def _days(self) -> float:
        days = self.days.value
        if days is None:
            raise UserError("give the key's lifetime in days", field="days")
        if not 1 <= days <= MAX_KEY_DAYS:
            raise UserError(f"a key's lifetime is 1 to {MAX_KEY_DAYS:,} days, not {days:,}", field="days")
        return days

    def _create(self, event=None) -> None:
        self.token_box.visible = False
        self.token_box.object = ""
        try:
            wait = self.app.rate_limiter.check(self._client(), self.viewer.role)
            if wait > 0:
                raise UserError(f"too many requests; retry in {math.ceil(wait)} s")
            token, key = self.app.users.issue_key(self.viewer.identity, self.viewer.role,
                                                  label=(self.label.value or "").strip(), days=self._days())
        except UserError as exc:
            self.form_message.object = f'<p class="lcp-error-text lcp-key-error">{esc(exc.message)}</p>'
            return
        log.info("API key %s issued to %s from the account page", key.key_id, self.viewer.identity)
        self.form_message.object = ""
        self.label.value = ""
        self._clear_messages()
        named = f" “{esc(key.label)}”" if key.label else ""
        self.token_box.object = (
            f'<div class="lcp-token-box"><p><b>Your new API key{named}</b>, valid until '
            f'{esc(key.expires[:16].replace("T", " "))} UTC. Copy it now: it is shown only this once '
            '(the server keeps only a hash of it).</p>'
            f'<div class="lcp-token-line"><input class="lcp-token" readonly value="{esc(token)}" '
            f'aria-label="API key" onclick="{handler(SELECT_SELF)}">'
            f'<button type="button" onclick="{handler(COPY_TOKEN)}">Copy'
            '</button></div><p>Scripts send it as a bearer token, for example:</p>'
            f'<pre class="lcp-curl">curl -H "Authorization: Bearer {esc(token)}" '
            f'{_request_host()}/api/whoami</pre></div>')
        self.token_box.visible = True
        self._refresh()

    def _clear_messages(self) -> None:
        for table in (self.mine, self.everyone):
            if table is not None:
                table.message.object = ""

    def _revoke(self, key: APIKey, table: KeyTable) -> None:
        self._clear_messages()
        try:
            self.app.users.revoke_key(key.key_id, None if self.viewer.admin else self.viewer.identity)
        except UserError as exc:
            table.message.object = f'<p class="lcp-error-text">{esc(exc.message)}</p>'
        else:
            log.info("API key %s (of %s) revoked by %s from the account page", key.key_id, key.identity,
                     self.viewer.identity)
            whose = "" if key.identity == self.viewer.identity else f" of {esc(key.identity)}"
            table.message.object = (f'<p class="lcp-ok-text">Key <code>{esc(key.key_id)}</code>{whose} '
                                    'revoked: requests with it are now refused (HTTP 401).</p>')
        self._refresh()

    # --- parts -------------------------------------------------------------------------

    def _intro(self):
        return _html('<div class="lcp-intro"><h1>Account</h1><p>Who this server takes you for, your limits, '
                     'and API keys that let scripts act as you.</p></div>', margin=(12, 4, 6, 4))

    def _who(self):
        v = self.viewer
        if v.role == "anonymous":
            who = ('<b class="lcp-who">anonymous session</b> '
                   f'<code class="lcp-identity">{esc(v.identity)}</code>')
            note = ('<p class="lcp-note">You are not logged in. This browser’s session cookie owns the datasets '
                    'you make here: another browser, or clearing cookies, starts a new anonymous session, and '
                    'datasets of the old one are reachable only through their links. API keys you create act '
                    'for this session. '
                    f'<a class="lcp-account-login" href="{esc(login_url("/account"))}">Log in</a> for a name that follows '
                    'you between browsers and higher limits.</p>')
        else:
            kind, name = v.identity.split(":", 1) if ":" in v.identity else ("", v.identity)
            via = " <span class='lcp-muted'>(single sign-on)</span>" if kind == "oauth" else ""
            who = (f'<b class="lcp-who">{esc(name)}</b>{via} '
                   f'<code class="lcp-identity">{esc(v.identity)}</code>')
            note = ""
        roles = {"anonymous": "a visitor without an account", "user": "logged in",
                 "staff": "may review objects’ variability info", "admin": "sees and manages every dataset and key"}
        role = (f'<span class="lcp-badge lcp-role-badge">{esc(v.role)}</span> '
                f'<span class="lcp-muted">{esc(roles.get(v.role, ""))}</span>')
        rpm = (f'<span class="lcp-rpm">{_limit(self.limits.requests_per_minute(v.role))}</span> '
               '<span class="lcp-muted">(JSON API, shared by your scripts)</span>')
        max_rows = (f'<span class="lcp-max-rows">{_limit(self.limits.max_rows(v.role))}</span> '
                    '<span class="lcp-muted">(at most, per search)</span>')
        rows = [("You are", who), ("Role", role), ("Requests per minute", rpm), ("Rows per dataset", max_rows)]
        dl = "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in rows)
        return section("Who you are", _html(f'<dl class="lcp-whoami">{dl}</dl>{note}',
                                            css_classes=["lcp-account-who"], margin=(0, 10)))

    def _keys(self):
        form = pn.Row(self.label, self.days, self.create, sizing_mode="stretch_width", margin=0,
                      css_classes=["lcp-key-form"])
        form_title = _html('<h3 class="lcp-section-title" style="font-size:1.05em;margin-top:14px">'
                           'Create a key</h3>', margin=(6, 10, 4, 10))
        return section("API keys for scripts", self.mine, form_title, form, self.form_message,
                       self.token_box,
                       subtitle="A key lets a script use the JSON API as you, with your role, until it expires "
                                "or you revoke it. Send it as <code>Authorization: Bearer &lt;key&gt;</code>.",
                       css_classes=["lcp-api-keys"])

    def _all_keys(self):
        return section("Every API key", self.everyone,
                       subtitle="As an admin you see every key on this server and may revoke any of them.",
                       css_classes=["lcp-every-key"])

    def __panel__(self):
        if self._layout is None:
            parts = [self._intro(), self._who(), self._keys()]
            if self.everyone is not None:
                parts.append(self._all_keys())
            self._layout = pn.Column(*parts, sizing_mode="stretch_width", margin=(0, 8, 24, 8),
                                     css_classes=["lcp-account-page"])
        return self._layout

    def servable_page(self):
        return page("Account", self, self.app)
