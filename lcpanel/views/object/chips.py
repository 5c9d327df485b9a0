"""Rows of period chips on the object page (periodogram picks, fold candidates, adopted
and saved periods) as one Bokeh model per row.

A Panel ``Button`` per chip, each with its ``Tooltip``, was ~10 % of an object page's
models. :class:`ChipRow` takes the chips as plain values; the browser builds them with
``textContent`` (the tooltip is the ``title`` attribute) and a click sends the chip's
index back as JSON text, with the version of the row it was drawn from; the action runs
on the server, looked up by that index among the chips it last gave
(:meth:`ChipRow.take_click`), so a visitor can only press a chip that is shown, and a
click on a row the server has redrawn since (a second click on a saved period's "x" after
the first deleted it and the chips moved) does nothing rather than press another chip.
"""

from __future__ import annotations

import json
from typing import Callable, NamedTuple

import param
from panel.reactive import ReactiveHTML

from ..colours import ACCENT_DARK
from ..tile_grid import MAKE_ELEMENT_JS, browser_message
from ..stylesheets import stylesheet

CHIPS_CSS = stylesheet("chips", f"""
.lcp-chips {{ display: flex; flex-wrap: wrap; align-items: center; }}
.lcp-chips button {{ font: inherit; font-size: 12.5px; padding: 2px 9px; margin: 2px 3px; cursor: pointer;
  font-variant-numeric: tabular-nums; border-radius: 999px; border: 1px solid #c9dbe8; background: #f3f8fb;
  color: {ACCENT_DARK}; line-height: 1.5; }}
.lcp-chips button:hover {{ background: #dcebf5; }}
.lcp-chips button:focus-visible {{ outline: 2px solid {ACCENT_DARK}; outline-offset: 1px; }}
.lcp-chips .lcp-chips-lead, .lcp-chips .lcp-chips-empty {{ color: #6b7780; margin: 0 4px 0 0; font-size: 13px; }}
""")


class Chip(NamedTuple):
    """One chip: its text, a CSS class for its holder (what pages and tests find it by),
    its tooltip, and what pressing it does."""

    label: str
    css: str
    tooltip: str
    action: Callable[[], None]


class ChipRow(ReactiveHTML):
    """Chips in a wrapping row, after an optional lead word; ``empty`` when there are none."""

    chips = param.List(default=[], doc="[label, css, tooltip] of each chip")
    lead = param.List(default=[], doc="[text] shown before the chips, or []")
    empty = param.List(default=[], doc="[text] shown when there are no chips, or []")
    version = param.Integer(default=0, doc="how many times the chips were given (a click names the one it saw)")
    clicked = param.String(default="", doc='JSON text {"i": index, "v": version, "n": count} sent by the browser')

    _template = '<div id="row" class="lcp-chips"></div>'

    # lists, not strings: Panel sanitizes a ReactiveHTML's string parameters as HTML
    _scripts = {
        "render": """
            state.draw = () => {""" + MAKE_ELEMENT_JS + """
              const items = [], version = data.version;
              if (data.chips.length && data.lead.length) items.push(make('span', 'lcp-chips-lead', data.lead[0]));
              data.chips.forEach(([label, css, tooltip], i) => {
                const holder = make('span', css), button = make('button', null, label);
                button.type = 'button';
                if (tooltip) button.title = tooltip;
                button.addEventListener('click', () => {
                  state.n = (state.n || 0) + 1;
                  data.clicked = JSON.stringify({i: i, v: version, n: state.n});
                });
                holder.append(button);
                items.push(holder);
              });
              if (!data.chips.length && data.empty.length) items.push(make('span', 'lcp-chips-empty', data.empty[0]));
              row.replaceChildren(...items);
            };
            state.draw();
        """,
        "chips": "state.draw();",
        "lead": "state.draw();",
        "empty": "state.draw();",
        "version": "state.draw();",
    }

    def __init__(self, **params):
        params.setdefault("stylesheets", [CHIPS_CSS])
        super().__init__(**params)
        self._actions: list[Callable[[], None]] = []
        self.param.watch(lambda e: self.take_click(e.new), "clicked")

    def show(self, chips: list[Chip], empty: str = "") -> None:
        """Show ``chips`` (``empty`` when there are none)."""
        self._actions = [c.action for c in chips]
        self.param.update(chips=[[c.label, c.css, c.tooltip] for c in chips], empty=[empty] if empty else [],
                          version=self.version + 1)

    @property
    def labels(self) -> list[str]:
        return [c[0] for c in self.chips]

    def press(self, index: int) -> None:
        """What a click on chip ``index`` does (as the browser's message would)."""
        self.take_click(json.dumps({"i": index, "v": self.version, "n": 0}))

    def take_click(self, raw: str) -> None:
        """Run the action of the chip a browser message names, if it is one shown; else nothing."""
        message = browser_message(raw, 200)
        if message is None or message.get("v") != self.version or isinstance(message.get("v"), bool):
            return
        index = message.get("i")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(self._actions):
            self._actions[index]()
