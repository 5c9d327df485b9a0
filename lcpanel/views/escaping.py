"""Escaping for every string a visitor, a user or an operator can set, wherever a page
shows it: the one place views get it from.

- :func:`esc`: text for HTML (element content and quoted attribute values), for HTML
  panes, Tabulator ``html`` cells, the template title and Choices-based widget labels
  (Bokeh's ``MultiChoice`` renders its labels as HTML).
- :func:`md`: text for Markdown panes (``pn.pane.Markdown``, ``pn.pane.Alert``): HTML
  escaped and Markdown's punctuation backslash-escaped, so neither tags nor links,
  images or emphasis can be injected.
- :data:`INLINE_HANDLERS` and :func:`handler`: lcpanel's own inline event handlers. The
  Content-Security-Policy (:mod:`lcpanel.security_headers`) allows exactly these texts
  (``'unsafe-hashes'``), so an ``on...`` attribute must be written
  ``f'onclick="{handler(js)}"'`` with ``js`` one of them.

Bokeh's own text (axis and legend labels, button labels, ``Select`` options, hover
tooltips given as ``(label, "@field")`` pairs) is set as text by BokehJS and needs no
escaping; escaping it would show the entities.
"""

from __future__ import annotations

import html as _html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")

#: the inline event handlers lcpanel's pages use (their exact text; see the docstring)
HIDE_BROKEN_FIGURE = "this.style.visibility='hidden'"
SELECT_SELF = "this.select()"
LOGIN_WITH_NEXT = "this.href='/login?next='+encodeURIComponent(location.pathname+location.search)"
#: copy the new API key in the input next to the button (inside the HTML pane's shadow root)
COPY_TOKEN = ("const i=this.parentNode.querySelector('input'); i.select(); const b=this; "
              "const done=()=>{b.textContent='Copied'; setTimeout(()=>b.textContent='Copy', 1500)}; "
              "if (navigator.clipboard) {navigator.clipboard.writeText(i.value).then(done, "
              "()=>{document.execCommand('copy'); done()})} else {document.execCommand('copy'); done()}")
#: on a form that leaves the page (log-out): the page's own navigations give way to it
MARK_LEAVING = "window.lcpLeaving=true"
INLINE_HANDLERS = frozenset({HIDE_BROKEN_FIGURE, SELECT_SELF, LOGIN_WITH_NEXT, COPY_TOKEN,
                             MARK_LEAVING})


def esc(value) -> str:
    """``value`` as HTML text or a quoted attribute value (None is empty)."""
    return _html.escape("" if value is None else str(value), quote=True)


def md(value) -> str:
    """``value`` as literal text inside Markdown (None is empty)."""
    text = "" if value is None else str(value)
    return _html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=True)


def handler(js: str) -> str:
    """An inline event handler's attribute value; only :data:`INLINE_HANDLERS` are allowed."""
    if js not in INLINE_HANDLERS:
        raise ValueError("an inline event handler the Content-Security-Policy does not allow; add it to "
                         "lcpanel.views.escaping.INLINE_HANDLERS")
    return esc(js)
