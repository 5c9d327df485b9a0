"""A search form generated from a search backend's parameters.

A plugin's search type gets a form without any UI code: :class:`SearchForm` makes one
widget per ``param`` parameter of the backend class (text areas for ``text_params`` and
lists, text inputs for strings, number inputs, check boxes, selects), with the
backend's ``example`` as placeholders and each parameter's doc as its tooltip, plus the
fields every search type shares: collections, column filter, sort, limit and the
visibility of the dataset the search makes.

Search runs :func:`lcpanel.core.search.run_search` on the app's offload threads
(:mod:`lcpanel.core.offload`: the page stays responsive and shows a spinner, and the
search counts against the process's cap of heavy requests, as the API's do; a full
process says it is busy), makes a dataset owned by the visitor
(:func:`lcpanel.visitor.session_viewer`, the JSON API's identity; the dataset store
tells plugins, ``dataset_created``) and sends the browser to ``/datasets/<id>``.

Errors: a :class:`lcpanel.errors.UserError` naming a field is shown under that field;
others at the top of the form. A field name that is no widget (a full-text query error
says ``fts``) goes under the search type's main parameter when its ``example`` names
exactly one.

No match: no dataset is made (an empty one would only take disk); the browser stays on
the form, which says that nothing matched and nothing was saved, so the visitor can change
the search at once with everything they typed still in place.

:class:`SearchTypes` puts the forms of all search types on one page: a row of pills (one
per type, wrapping onto more lines as types are added, so none is ever cut off) above the
chosen type's form. The pills are native radio buttons (Tab reaches the group, arrow keys
move between types). Order: the everyday types (:data:`EVERYDAY_TYPES`) first, then the
others (plugins', e.g. ADQL) by title; the registry's order is not used, since plugin hook
calls make it depend on installation order.
"""

from __future__ import annotations

import functools
import logging
import math

import panel as pn
import param

from ..core.datasets import DEFAULT_VISIBILITY, VISIBILITIES
from ..core.access.quotas import save_search
from ..core.offload import offloader
from ..core.search import SearchSpec, run_search
from ..errors import UserError
from .budget import spend
from .escaping import md
from ..visitor import client_address, session_viewer
from .theme import (
    ACCENT,
    ACCENT_DARK,
    ACCENT_LIGHT,
    STYLESHEET,
    esc,
    navigate,
    styled,
)
from .stylesheets import stylesheet

log = logging.getLogger(__name__)

COMMON_FIELDS = ("collections", "filter", "sort", "limit", "visibility")
VISIBILITY_LABELS = {
    "unlisted": "Unlisted: anyone with the link",
    "public": "Public: listed on this page",
    "private": "Private: only you",
}
_WORDS = {"ra": "RA", "dec": "Dec", "decl": "Dec", "id": "ID", "ids": "Object IDs", "fts": "Full text",
          "coords": "Coordinates"}
_UNITS = {"arcmin": "arcmin", "arcsec": "arcsec", "deg": "deg", "mag": "mag", "days": "days", "s": "s"}

#: the built-in search types people use most, shown first and in this order
EVERYDAY_TYPES = ("cone", "objectid", "xmatch", "fulltext", "filter")
#: the search type selected when the page opens (else the first one)
DEFAULT_TYPE = "cone"

#: the search-type picker: Bokeh's inline radio group as a wrapping row of pills; the radio
#: input covers its pill, invisible, so a click anywhere on the pill selects and keyboard
#: focus stays on a real radio button (its outline is drawn around the pill)
PILLS_CSS = stylesheet("search-pills", f"""
.bk-input-group.bk-inline {{ flex-wrap: wrap; gap: 8px 6px; white-space: normal; height: auto; }}
.bk-input-group.bk-inline > *:not(:first-child) {{ margin-left: 0; }}
.bk-input-group > label {{ position: relative; display: inline-flex; margin: 0; max-width: 100%; }}
.bk-input-group > label > input[type="radio"] {{ position: absolute; inset: 0; width: 100%; height: 100%;
  margin: 0; opacity: 0; cursor: pointer; z-index: 1; }}
.bk-input-group > label > input[type="radio"] + span {{ top: 0; margin: 0; padding: 5px 14px;
  border: 1px solid #c5d0d8; border-radius: 999px; background: #ffffff; color: #34414b;
  font-size: 14px; font-weight: 500; line-height: 1.35; text-align: center;
  transition: background-color 0.12s, border-color 0.12s, color 0.12s; }}
.bk-input-group > label:hover > input[type="radio"] + span {{ border-color: {ACCENT}; color: {ACCENT};
  background: {ACCENT_LIGHT}; }}
.bk-input-group > label > input[type="radio"]:checked + span {{ background: {ACCENT}; border-color: {ACCENT};
  color: #ffffff; }}
.bk-input-group > label:hover > input[type="radio"]:checked + span {{ background: {ACCENT_DARK};
  border-color: {ACCENT_DARK}; }}
.bk-input-group > label > input[type="radio"]:focus-visible + span {{ outline: 2px solid {ACCENT};
  outline-offset: 2px; }}
.bk-input-group > label > input[type="radio"]:disabled + span {{ opacity: 0.5; }}
""")

#: added to a widget's stylesheets while its field has an error
INVALID_CSS = stylesheet("invalid-input", """
.bk-input, .bk-input-group .bk-input, .choices__inner { border-color: #b3261e !important;
  box-shadow: 0 0 0 1px #b3261e33; }
""")


def param_label(name: str) -> str:
    """'radius_arcmin' -> 'Radius (arcmin)', 'ra' -> 'RA', 'ids' -> 'Object IDs'."""
    if name in _WORDS:
        return _WORDS[name]
    parts = name.split("_")
    unit = None
    if len(parts) > 1 and parts[-1] in _UNITS:
        unit = _UNITS[parts.pop()]
    words = [_WORDS.get(p, p) for p in parts]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text


def _example_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _placeholder(example, doc: str, optional: bool) -> str:
    """The example value, else a short doc, else 'optional' (the full doc is the tooltip)."""
    if example not in (None, "", [], ()):
        text = _example_text(example)
        return text if "\n" in text else f"e.g. {text}"
    if doc and len(doc) <= 28:
        return doc
    return "optional" if optional else ""


def order_backends(backends) -> list:
    """The search backends in the order the page offers them: :data:`EVERYDAY_TYPES` in
    that order, then the others by title (then name)."""
    backends = list(backends)
    rank = {name: i for i, name in enumerate(EVERYDAY_TYPES)}
    everyday = sorted((b for b in backends if b.name in rank), key=lambda b: rank[b.name])
    others = sorted((b for b in backends if b.name not in rank),
                    key=lambda b: ((b.title or b.name).casefold(), b.name))
    return everyday + others


def type_labels(backends) -> dict[str, str]:
    """Search type name -> the label of its pill: its title, with its name added when two
    types share a title (a label must pick exactly one type)."""
    titles = [b.title or b.name for b in backends]
    return {b.name: (t if titles.count(t) == 1 else f"{t} ({b.name})") for b, t in zip(backends, titles)}


class SearchForm(pn.viewable.Viewer):
    """The form of one search type (a :class:`lcpanel.core.search.SearchBackend` class)."""

    app = param.Parameter(doc="the lcpanel App")
    backend = param.Parameter(doc="the SearchBackend subclass this form fills in")
    prefill = param.Dict(default={}, doc="initial values of the backend's parameters")
    collections = param.List(default=[], doc="collection infos offered in the collections field")
    example = param.Dict(default=None, doc="the placeholders' example (default: the backend's own)")
    last_dataset = param.String(default="", doc="id of the dataset the last search made (watch it)")

    def __init__(self, **params):
        super().__init__(**params)
        self.fields: dict[str, pn.widgets.Widget] = {}
        self.errors: dict[str, pn.pane.HTML] = {}
        self._kinds: dict[str, str] = {}
        settings = self.app.config.search
        example = dict(self.example if self.example is not None else getattr(self.backend, "example", {}) or {})
        names = self.backend.param_names()
        # the example's parameters first: they are the search's main input
        names = [n for n in names if n in example] + [n for n in names if n not in example]
        for name in names:
            self._widget(name, example.get(name))
        # text inputs and text areas get a row each; numbers, choices and flags share one
        wide = [n for n in names if self._kinds[n] in ("text", "textarea", "lines")]
        small = [n for n in names if n not in wide]
        rows = [self._field(n, self.fields[n]) for n in wide]
        if small:
            only_flags = all(self._kinds[n] == "bool" for n in small)
            for n in small:
                if self._kinds[n] == "bool":
                    self.fields[n].margin = (6, 10, 8, 10) if only_flags else (32, 10, 8, 10)
            rows.append(pn.FlexBox(*[self._field(n, self.fields[n], flex="1 1 160px") for n in small],
                                   flex_wrap="wrap", gap="0", sizing_mode="stretch_width", margin=0))

        self.fields["collections"] = pn.widgets.MultiChoice(
            label="Collections", options={f"{esc(c.name)} ({esc(c.collection_id)})": c.collection_id for c in self.collections},  # HTML labels
            placeholder="All collections", description="leave empty to search every collection",
            sizing_mode="stretch_width", solid=False, delete_button=True)
        self.fields["filter"] = pn.widgets.TextInput(
            label="Column filter", placeholder="e.g. vmag < 12 and ndet > 1000",
            description="conditions on catalog columns (< <= = != >= >, between, like, in, is null; "
                        "and, or, not), applied on top of this search", sizing_mode="stretch_width")
        default_sort = ", ".join(c if d == "ASC" else f"-{c}" for c, d in getattr(self.backend, "default_sort", ()))
        self.fields["sort"] = pn.widgets.TextInput(
            label="Sort", placeholder="e.g. vmag, -ndet",
            description="columns to sort by, '-' for descending, e.g. 'vmag, -ndet'"
                        + (f"; by default: {default_sort}" if default_sort else ""), sizing_mode="stretch_width")
        self.fields["limit"] = pn.widgets.IntInput(
            label="Limit", value=settings.default_limit, start=1, end=settings.max_limit, step=100,
            description=f"at most this many objects (maximum {settings.max_limit:,})", sizing_mode="stretch_width")
        self.fields["visibility"] = pn.widgets.Select(
            label="Dataset visibility", value=DEFAULT_VISIBILITY,
            options={VISIBILITY_LABELS.get(v, v): v for v in VISIBILITIES},
            description="who can find the dataset this search makes", sizing_mode="stretch_width")

        for widget in self.fields.values():
            styled(widget)
        common = pn.Column(
            self._field("collections", self.fields["collections"]),
            # one row, wrapping in narrow windows
            pn.FlexBox(self._field("filter", self.fields["filter"], flex="3 1 200px"),
                       self._field("sort", self.fields["sort"], flex="2 1 140px"),
                       self._field("limit", self.fields["limit"], flex="1 1 100px"),
                       flex_wrap="wrap", gap="0", sizing_mode="stretch_width", margin=0),
            sizing_mode="stretch_width", margin=0)

        self.button = pn.widgets.Button(label="Search", color="primary", width=140,
                                        height=38, margin=(18, 10, 5, 10), css_classes=["lcp-search"])
        styled(self.button)
        self.button.on_click(self._on_click)
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, sizing_mode="stretch_width",
                                     css_classes=["lcp-form-message"], margin=(0, 10))
        footer = pn.FlexBox(self._field("visibility", self.fields["visibility"], flex="0 1 300px"), self.button,
                            flex_wrap="wrap", justify_content="space-between", align_items="flex-end", gap="0",
                            sizing_mode="stretch_width", margin=0)
        intro = pn.pane.HTML(f'<p class="lcp-help">{esc(self.backend.description)}</p>',
                             stylesheets=[STYLESHEET], sizing_mode="stretch_width", margin=(8, 10, 4, 10))
        self._layout = pn.Column(
            intro, self.message, *rows,
            pn.pane.HTML("", height=1, sizing_mode="stretch_width", margin=(10, 10, 6, 10),
                         styles={"border-top": "1px solid #e3e8ec"}),
            common, footer,
            sizing_mode="stretch_width", css_classes=["lcp-search-form", f"lcp-search-{self.backend.name}"],
            margin=(0, 0, 8, 0))

    # --- building -------------------------------------------------------------------------

    def _widget(self, name: str, example) -> pn.widgets.Widget:
        p = self.backend.param[name]
        doc = (p.doc or "").strip()
        label = param_label(name)
        value = self.prefill.get(name, p.default)
        text_params = getattr(self.backend, "text_params", ())
        placeholder = _placeholder(example, doc, optional=p.allow_None or p.default in ("", None, []))
        common = {"label": label, "description": doc or None, "sizing_mode": "stretch_width"}
        if isinstance(p, param.Boolean):
            text = f"{label}: {doc}" if doc and len(doc) <= 80 else label
            widget = pn.widgets.Checkbox(label=text, value=bool(value))
            kind = "bool"
        elif isinstance(p, param.Selector) and not isinstance(p, param.ListSelector):
            options = list(p.objects) if not isinstance(p.objects, dict) else p.objects
            widget = pn.widgets.Select(options=options, value=value, **common)
            kind = "select"
        elif isinstance(p, param.ListSelector):
            widget = pn.widgets.MultiChoice(options=list(p.objects), value=list(value or []), **common)
            kind = "multi"
        elif isinstance(p, param.List) or name in text_params:
            text = _example_text(value)
            widget = pn.widgets.TextAreaInput(value=text, placeholder=placeholder, rows=4, auto_grow=True,
                                              max_rows=14, resizable="height", **common)
            kind = "lines" if isinstance(p, param.List) else "textarea"
        elif isinstance(p, param.Integer):
            widget = pn.widgets.IntInput(value=value, placeholder=placeholder, **common)
            kind = "int"
        elif isinstance(p, param.Number):
            widget = pn.widgets.FloatInput(value=value, placeholder=placeholder, **common)
            kind = "float"
        else:
            widget = pn.widgets.TextInput(value="" if value is None else str(value), placeholder=placeholder,
                                          **common)
            kind = "text"
        self._kinds[name] = kind
        self.fields[name] = widget
        return widget

    def _field(self, name: str, widget, *, width=None, flex=None) -> pn.Column:
        """The widget with an (initially hidden) error line under it."""
        error = pn.pane.HTML("", visible=False, stylesheets=[STYLESHEET], css_classes=["lcp-field-error"],
                             sizing_mode="stretch_width", margin=(0, 10, 4, 10))
        self.errors[name] = error
        kwargs = {"css_classes": ["lcp-field", f"lcp-field-{name}"], "margin": 0}
        if width:
            kwargs["width"] = width
        elif flex:
            flex = f"{flex} 1 0" if isinstance(flex, int) else flex
            kwargs.update(sizing_mode="stretch_width", styles={"flex": flex}, min_width=120)
        else:
            kwargs["sizing_mode"] = "stretch_width"
        return pn.Column(widget, error, **kwargs)

    # --- values ---------------------------------------------------------------------------

    def params(self) -> dict:
        """The backend's parameters as typed in, leaving out the empty ones (defaults apply)."""
        out = {}
        for name in self.backend.param_names():
            widget = self.fields[name]
            value = widget.value
            if self._kinds[name] == "lines":
                value = [line.strip() for line in (value or "").splitlines() if line.strip()]
                if not value:
                    continue
            elif (value is None or (isinstance(value, str) and not value.strip())
                  or (isinstance(value, float) and math.isnan(value))
                  or (isinstance(value, bool) and value == self.backend.param[name].default)):
                continue
            out[name] = value
        return out

    def spec(self) -> SearchSpec:
        data = {
            "type": self.backend.name,
            "params": self.params(),
            "collections": list(self.fields["collections"].value) or None,
            "filter": self.fields["filter"].value.strip() or None,
            "sort": self.fields["sort"].value.strip() or None,
            "limit": self.fields["limit"].value,
        }
        if data["limit"] is None:
            raise UserError("give a limit (a positive number of objects)", field="limit")
        return SearchSpec.from_dict(data)

    # --- errors ---------------------------------------------------------------------------

    def clear_errors(self) -> None:
        for name, pane in self.errors.items():
            if pane.visible:
                pane.object, pane.visible = "", False
                widget = self.fields[name]
                widget.stylesheets = [css for css in widget.stylesheets if css != INVALID_CSS]
        self.message.visible = False

    def _target(self, field: str | None) -> str | None:
        if not field:
            return None
        if field in self.errors:
            return field
        example = getattr(self.backend, "example", {}) or {}
        if len(example) == 1 and next(iter(example)) in self.errors:
            return next(iter(example))
        return None

    def show_error(self, message: str, field: str | None = None) -> None:
        target = self._target(field)
        if target is not None:
            pane = self.errors[target]
            pane.object = f'<p class="lcp-error-text" role="alert">⚠ {esc(message)}</p>'
            pane.visible = True
            widget = self.fields[target]
            widget.stylesheets = [*widget.stylesheets, INVALID_CSS]
        else:
            self.show_message(message, "danger")

    def show_message(self, text: str, kind: str = "info", *, markdown: bool = False) -> None:
        self.message.alert_type = kind
        self.message.object = text if markdown else md(text)
        self.message.visible = True

    # --- running --------------------------------------------------------------------------

    def _run(self, spec: SearchSpec, viewer, visibility: str, address: str | None = None):
        result = run_search(self.app, spec, viewer)
        ds = save_search(self.app, result, viewer, address, visibility=visibility)
        return result, ds

    def _button_state(self, searching: bool) -> None:
        """"Searching…" (and the loading spinner) on the button, or back to "Search".

        Scheduled on the page's session, one update per change, so that the two reach the
        browser in the order they were made. Made directly, an update can take either of
        Panel's two ways to the browser (written at once, or by Bokeh when the event being
        handled is done): under load the end of a quick search ("Search") was written
        before its start ("Searching…"), which then stayed on the button."""
        update = functools.partial(self.button.param.update, loading=searching,
                                   name="Searching…" if searching else "Search")
        pn.state.execute(update, schedule=True)

    async def _on_click(self, event=None) -> None:
        await self.search()

    async def search(self):
        """Run the search as filled in; returns the dataset, or None after an error."""
        self.clear_errors()
        viewer = session_viewer(self.app)
        try:
            spec = self.spec()
        except UserError as exc:
            self.show_error(exc.message, exc.field)
            return None
        refused = spend(self.app, viewer)
        if refused is not None:
            self.show_message(refused, "danger")
            return None
        visibility = self.fields["visibility"].value
        self._button_state(searching=True)
        try:
            result, ds = await offloader(self.app).run(self._run, spec, viewer, visibility, client_address())
        except UserError as exc:
            self.show_error(exc.message, exc.field)
            return None
        except Exception:
            log.exception("search failed: %s", spec)
            self.show_message("The search failed because of an internal error; it has been logged.", "danger")
            return None
        finally:
            self._button_state(searching=False)
        notes = "".join(f"\n- {md(m)}" for m in result.messages[:5])
        if ds is None:
            self.show_message(
                f"**No objects matched** this search ({result.elapsed_ms:.0f} ms), so no dataset was saved."
                f"{notes}", "warning", markdown=True)
            return None
        url = f"/datasets/{ds.dataset_id}"
        self.last_dataset = ds.dataset_id
        self.show_message(f"Found {result.summary()}. Opening the dataset…", "success")
        navigate(url)
        return ds

    def __panel__(self):
        return self._layout


class SearchTypes(pn.viewable.Viewer):
    """The search type picker (a wrapping row of pills) above the chosen type's form.

    A form is made and put in the page when its type is first chosen (the page loads with
    one form: making all eight took ~0.4-0.6 s of a home page's ~1.3 s on a 2-core machine)
    and is then only hidden and shown, keeping what was typed into it. (Taking a form out
    of the page and putting it back, as ``pn.Tabs(dynamic=True)`` does, left its widgets
    out of sync with the browser after quick switches with the arrow keys.) ``value`` is
    the chosen search type's name.
    """

    backends = param.List(default=[], doc="the search types (SearchBackend classes), any order")
    make_form = param.Callable(doc="the SearchForm of a search type, the same one each time; asked for when "
                                   "the type is first chosen")
    value = param.String(default="", doc="the name of the chosen search type")

    def __init__(self, **params):
        super().__init__(**params)
        backends = order_backends(self.backends)
        self.backends = backends
        by_name = {b.name: b for b in backends}
        self._by_name = by_name
        labels = type_labels(backends)
        value = self.value
        if value not in by_name:
            value = DEFAULT_TYPE if DEFAULT_TYPE in by_name else (backends[0].name if backends else "")
        self.picker = pn.widgets.RadioBoxGroup(
            options={labels[b.name]: b.name for b in backends}, value=value or None, inline=True,
            label="Search type", sizing_mode="stretch_width", margin=(4, 10, 6, 10),
            css_classes=["lcp-search-types"], stylesheets=[PILLS_CSS])
        self.picker.param.watch(lambda e: setattr(self, "value", e.new), "value")
        self._body = pn.Column(sizing_mode="stretch_width", margin=0)
        self._rendered: dict[str, pn.viewable.Viewable] = {}  # type name -> its form's layout
        self._layout = pn.Column(self.picker, self._body, sizing_mode="stretch_width", margin=(0, 4),
                                 css_classes=["lcp-search-panel"])
        with param.parameterized.discard_events(self):
            self.value = value
        self._show()

    @property
    def form(self) -> SearchForm | None:
        """The chosen search type's form (from :attr:`make_form`)."""
        backend = self._by_name.get(self.value)
        return None if backend is None else self.make_form(backend)

    @param.depends("value", watch=True)
    def _show(self) -> None:
        if self.value not in self._by_name:
            self.value = self.picker.value or ""  # not a search type: keep the chosen one
            return
        self.picker.value = self.value
        for name, layout in self._rendered.items():
            layout.visible = name == self.value
        if self.value not in self._rendered:
            layout = self._rendered[self.value] = self.form.__panel__()
            layout.visible = True
            self._body.append(layout)

    def __panel__(self):
        return self._layout
