"""The dataset page's checkplot tiles as one Bokeh model, each with its comment box.

A Panel column of an HTML pane and a ``TextInput`` per tile made a dataset page of 25
tiles ~170 Bokeh models, about half of the time the server spends building the page.
:class:`TileGrid` is one ``ReactiveHTML``: the page hands it each tile's facts as plain
values, the browser builds the tiles with ``textContent`` and DOM properties (no HTML
is parsed, so nothing in an object id, a collection name or a comment can become
markup), and a box's ``change`` (the visitor leaves the box or presses Enter) sends
``{"key", "text", "n"}`` as JSON text back to Python, checked there like any visitor's
input (:func:`take_comment`).

Tiles travel as lists, not dicts (BokehJS makes a dict a ``Map``), and not as one HTML
string: Panel passes a ``ReactiveHTML``'s string parameters through its HTML sanitizer,
which drops ``class`` attributes.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import param
from panel.reactive import ReactiveHTML

#: most characters of a message from a tile's box read at all
MAX_MESSAGE_CHARS = 20_000


class Tile(NamedTuple):
    """One tile: its dataset key (``collection/objectid``), what its heading shows and
    links to, its images as ``(alt, src)`` and its last comments as ``(author, text)``."""

    key: str
    objectid: str
    collection: str
    href: str
    magcol: str
    images: list[tuple[str, str]]
    comments: list[tuple[str, str]]

    def as_list(self) -> list:
        """The tile as :class:`TileGrid` takes it: lists all the way down."""
        return [*self[:5], [list(x) for x in self.images], [list(x) for x in self.comments]]


#: the browser-built components' one way to make an element: text goes in as
#: ``textContent``, never parsed as HTML (TileGrid, :class:`lcpanel.views.object.chips.ChipRow`)
MAKE_ELEMENT_JS = """
              const make = (tag, cls, text) => {
                const e = document.createElement(tag);
                if (cls) e.className = cls;
                if (text != null) e.textContent = text;
                return e;
              };"""


class TileGrid(ReactiveHTML):
    """A grid of :class:`Tile`; ``comment`` is the last box a visitor left with text in it."""

    tiles = param.List(default=[], doc="the tiles, each a Tile.as_list()")
    max_chars = param.Integer(default=2000, doc="most characters a comment box takes")
    comment = param.String(default="", doc='JSON text {"key": ..., "text": ..., "n": ...} sent by the browser')

    _template = '<div id="grid" class="lcp-tiles"></div>'

    # ``n`` makes the same text left twice in a box a new value (a param only triggers on a change)
    _scripts = {
        "render": """
            state.draw = () => {""" + MAKE_ELEMENT_JS + """
              const cards = [];
              for (const [key, objectid, collection, href, magcol, images, comments] of data.tiles) {
                const card = make('div', 'lcp-tile-card'), tile = make('div', 'lcp-tile'), head = make('h4');
                const link = make('a', null, objectid);
                link.href = href;
                head.append(link, ' ', make('span', 'lcp-muted', collection));
                if (magcol) head.append(' ', make('span', 'lcp-badge lcp-tile-magcol', magcol));
                const imgs = make('div', 'imgs');
                for (const [alt, src] of images) {
                  const img = make('img');
                  img.loading = 'lazy';
                  img.alt = alt;
                  img.onerror = () => { img.style.display = 'none'; };
                  img.src = src;
                  imgs.append(img);
                }
                if (!images.length) imgs.append(make('p', 'lcp-muted', 'no checkplot'));
                tile.append(head, imgs);
                for (const [author, text] of comments) {
                  const line = make('p', 'comments');
                  line.append(make('b', null, author), ': ' + text);
                  tile.append(line);
                }
                const box = make('input', 'lcp-comment-box');
                box.type = 'text';
                box.maxLength = data.max_chars;
                box.placeholder = 'comment… (saved when you leave the box)';
                box.setAttribute('aria-label', 'comment on ' + objectid);
                box.dataset.key = key;
                const holder = make('div', 'lcp-comment');
                holder.append(box);
                card.append(tile, holder);
                cards.push(card);
              }
              if (!cards.length) cards.push(make('p', 'lcp-empty', 'No objects on this page.'));
              grid.replaceChildren(...cards);
            };
            state.draw();
            grid.addEventListener('change', (event) => {
              const box = event.target;
              if (!box.matches || !box.matches('input.lcp-comment-box')) return;
              const text = box.value.trim();
              if (!text) return;
              state.n = (state.n || 0) + 1;
              data.comment = JSON.stringify({key: box.dataset.key, text: text, n: state.n});
            });
        """,
        "tiles": "state.draw();",
    }


def take_comment(raw: str, keys) -> tuple[str, str] | None:
    """``(key, text)`` from what a tile's box sent, if it names one of ``keys`` (the tiles
    shown) and has text; else None."""
    message = browser_message(raw, MAX_MESSAGE_CHARS)
    if message is None:
        return None
    key, text = message.get("key"), message.get("text")
    if not isinstance(key, str) or key not in keys or not isinstance(text, str) or not text.strip():
        return None
    return key, text.strip()


def browser_message(raw, max_chars: int) -> dict | None:
    """A JSON object a component's script sent (at most ``max_chars``), or None for anything else."""
    if not isinstance(raw, str) or not raw or len(raw) > max_chars:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
