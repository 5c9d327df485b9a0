"""The dataset page, ``/datasets/<id>``: header (editable by its owner), the objects in a
server-side paginated table with row selection, product downloads with build progress
and SHA256, the finder chart, and checkplot tiles with a quick comment box per object.

Images (finder chart, tiles) are ``<img>`` tags pointing at the JSON API's PNG routes, so
the browser loads them asynchronously and the page never waits for them; the API checks
the same cookie identity as the page.
"""

from __future__ import annotations

import json
import logging
import math
from urllib.parse import quote

import pandas as pd
import panel as pn
import param

from ..core.datasets import object_key
from ..core.urls import object_page_path, object_path
from ..core.objects.magcols import checkplot_column, collection_magcols
from ..core.access.quotas import product_check
from ..errors import UserError
from ..pagestatus import answer_status
from .budget import spend
from .periodic import every
from .escaping import md
from ..visitor import client_address, session_viewer
from .colours import ACCENT
from .theme import STYLESHEET, esc, html, page, section, styled
from .tile_grid import Tile, TileGrid, take_comment
from .stylesheets import stylesheet

log = logging.getLogger(__name__)

PAGE_SIZE = 25
#: columns shown in the table when the dataset has them (the rest are in downloads)
PREFERRED = ("ra", "decl", "dist_arcsec", "input_id", "matched_id", "fts_rank", "vmag", "sdssr", "jmag", "ndet")
VAR_SUFFIXES = ("objectisvar", "varperiod", "vartags")
TILES_CSS = stylesheet("tiles", f"""
.lcp-tiles {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(300px, 100%), 1fr)); gap: 12px; }}
.lcp-tile-card {{ display: flex; flex-direction: column; gap: 6px; min-width: 0; }}
.lcp-tile {{ background: #fff; border: 1px solid #dde3e8; border-radius: 8px; padding: 8px; flex: 1 1 auto; }}
.lcp-tile h4 {{ margin: 0 0 6px 0; font-size: 0.98em; overflow-wrap: anywhere; }}
.lcp-tile .imgs {{ display: grid; grid-template-columns: 1fr 1fr; gap: 4px; }}
.lcp-tile img {{ width: 100%; border: 1px solid #eef1f4; border-radius: 4px; background: #fafbfc; min-height: 60px; }}
.lcp-tile .lcp-tile-magcol {{ font: 0.8em ui-monospace, SFMono-Regular, Menlo, monospace; color: #17476a;
                             background: #e8f0f6; border-radius: 999px; padding: 1px 7px; margin-left: 4px; }}
.lcp-tile .comments {{ font-size: 0.85em; color: #5b6770; margin: 4px 0 0 0; overflow-wrap: anywhere; }}
.lcp-comment-box {{ width: 100%; box-sizing: border-box; padding: 6px 10px; font: inherit; font-size: 0.9em;
                    background: #fff; color: #1d2a33; border: 1px solid #b8c3cc; border-radius: 6px; }}
.lcp-comment-box:focus {{ border-color: {ACCENT}; box-shadow: 0 0 0 3px rgba(31, 95, 139, 0.18); outline: none; }}
.lcp-comment-box::placeholder {{ color: #8a959e; }}
""")


def build_status_line(status: dict) -> str:
    """The line beside a running product build's progress bar: files done of the total,
    the rate (files per second since the request, as the status gives it) and the time
    left at that rate; escaped HTML."""
    done, total, rate = status.get("done") or 0, status.get("total") or 0, status.get("rate")
    parts = [f"{esc(status['status'])}: {done:,} of {total:,} files"]
    if rate:
        left = math.ceil(max(total - done, 0) / rate) or 1
        speed = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
        parts += [f"{speed} files/s", f"about {_duration(left)} left"]
    # a narrow screen wraps the line between its parts, not inside one
    return " · ".join(f'<span class="lcp-nowrap">{part}</span>' for part in parts)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, secs = divmod(seconds, 60)
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def tile_url(collection: str, objectid: str, name: str) -> str:
    return f"{object_path(collection, objectid)}/tiles/{name}.png"


def tile_names(found: dict) -> list[str]:
    """Of finder, unphased, phased-0 and phased-1, the images an object's tiles
    (:func:`lcpanel.core.objects.checkplots.tiles`) have: the ones the tile route serves."""
    return ([n for n in ("finder", "unphased") if found.get(n) is not None]
            + [f"phased-{k}" for k, tile in enumerate(found.get("phased", [])[:2]) if tile.get("png") is not None])


def variability_words(values) -> list[str]:
    """An ``objectisvar`` column in words (0 unreviewed, 1 variable, 2 not variable,
    3 can't tell; blank when missing)."""
    from ..core.objects.annotations import OBJECTISVAR

    out = []
    for v in values:
        try:
            out.append(OBJECTISVAR.get(int(v), str(v)))
        except (TypeError, ValueError):  # None, NaN
            out.append("")
    return out


def every_object_label(nobjects: int) -> str:
    """The choice of a product of every object of a dataset, as its button reads."""
    if nobjects == 1:
        return "The 1 object"
    return f"All {nobjects:,} objects" if nobjects else "No objects"


class DatasetPage(pn.viewable.Viewer):
    app = param.Parameter()
    dataset_id = param.String()

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self.message = pn.pane.Alert("", visible=False, alert_type="info", sizing_mode="stretch_width")
        try:
            self.ds = self.app.datasets.get(self.dataset_id, self.viewer)
        except UserError as exc:
            self.ds = None
            self.error = exc.message
            return
        self.can_edit = self.viewer.owns(self.ds)
        self.frame = self._frame()
        self.table = pn.widgets.Tabulator(
            self.frame[self._shown_columns()], pagination="remote", page_size=PAGE_SIZE, selectable="checkbox",
            show_index=False, disabled=True, sizing_mode="stretch_width",
            formatters=self._formatters(), header_filters=False, layout="fit_data_table",
            css_classes=["lcp-objects"])
        self.selection_note = html("", css_classes=["lcp-muted"])
        self.table.param.watch(self._on_selection, "selection")
        self.tiles = TileGrid(sizing_mode="stretch_width", stylesheets=[STYLESHEET, TILES_CSS], margin=0,
                              max_chars=self.app.datasets.max_comment_chars)
        self.tiles.param.watch(lambda e: self._on_tile_comment(e.new), "comment")
        self.collection_magcols = self._collection_magcols()
        choices = list(dict.fromkeys(m for ms in self.collection_magcols.values() for m in ms))
        self.magcol_select = styled(pn.widgets.Select(
            label="Magnitude column", options=choices, value=choices[0] if choices else None, width=200,
            css_classes=["lcp-tile-magcol-select"], visible=len(choices) > 1))
        self.magcol_select.param.watch(lambda e: self._render_tiles(), "value")
        self.table.param.watch(lambda e: self._render_tiles(), "page")
        self._render_tiles()
        self.products = self._products_panel()

    # --- data --------------------------------------------------------------------------

    def _frame(self) -> pd.DataFrame:
        data = self.ds.data
        frame = pd.DataFrame({name: data[name] for name in self.ds.column_names()})
        frame.insert(0, "object", [f'<a href="{object_page_path(c, o)}">{esc(o)}</a>'
                                   for c, o in zip(data["collection"], data["objectid"])])
        for name in frame.columns:
            if name.endswith("objectisvar"):
                frame[name] = variability_words(frame[name])
        return frame

    def _formatters(self) -> dict:
        from bokeh.models.widgets.tables import NumberFormatter

        out = {"object": {"type": "html"}}
        for col in self.ds.columns:
            if col["sqltype"] == "REAL":
                digits = 6 if col["name"] in ("ra", "decl") else 3
                out[col["name"]] = NumberFormatter(format="0." + "0" * digits, text_align="right")
        return out

    def _shown_columns(self) -> list[str]:
        names = self.ds.column_names()
        shown = ["object", "collection"] + [c for c in PREFERRED if c in names]
        shown += [c for c in names if c.endswith(VAR_SUFFIXES)][:3]
        return shown

    def _page_rows(self) -> list[int]:
        start = (max(self.table.page, 1) - 1) * PAGE_SIZE
        order = self.table.current_view.index.tolist() if self.table.sorters else list(range(len(self.frame)))
        return order[start:start + PAGE_SIZE]

    def _selected_keys(self) -> list[str]:
        keys = self.ds.keys()
        return [keys[i] for i in self.table.selection]

    # --- header ------------------------------------------------------------------------

    def _header(self):
        ds = self.ds
        more = "at least " if ds.nmatched_is_lower_bound else ""
        mine = "you" if ds.owner == self.viewer.identity else esc(ds.owner)
        badges = [f'<span class="lcp-badge {esc(ds.visibility)}">{esc(ds.visibility)}</span>']
        if ds.frozen:
            badges.append('<span class="lcp-badge">frozen: permanent</span>')
        if ds.parent:
            badges.append(f'<span class="lcp-badge off">from <a href="/datasets/{esc(ds.parent)}">'
                          f'{esc(ds.parent[:12])}…</a></span>')
        spec = json.dumps(ds.spec.get("params", {}))
        facts = (
            f'<dl class="lcp-facts"><dt>search</dt><dd><b>{esc(ds.spec.get("type"))}</b> '
            f'<code>{esc(spec[:300])}</code></dd>'
            + (f'<dt>filter</dt><dd><code>{esc(ds.spec.get("filter"))}</code></dd>' if ds.spec.get("filter") else "")
            + f'<dt>objects</dt><dd class="lcp-count">{ds.nobjects:,} of {more}{ds.nmatched:,} matching</dd>'
            f'<dt>collections</dt><dd>{esc(", ".join(ds.collections))}</dd>'
            f'<dt>owner</dt><dd>{mine}</dd>'
            f'<dt>created</dt><dd>{esc(ds.created[:19].replace("T", " "))} UTC · updated '
            f'{esc(ds.updated[:19].replace("T", " "))} UTC</dd></dl>')
        notes = "".join(f'<p class="lcp-help">{esc(m)}</p>' for m in ds.messages)
        head = html(f'<div class="lcp-intro"><h1>{esc(ds.name)}</h1><p>{esc(ds.description)}</p></div>'
                    f'<div class="lcp-badges" style="margin:6px 0">{"".join(badges)}</div>{facts}{notes}',
                    css_classes=["lcp-dataset-header"])
        items = [head, self.message]
        if self.can_edit and not ds.frozen:
            items.append(self._edit_form())
        elif self.can_edit:
            items.append(html('<p class="lcp-help">A frozen dataset never changes; editing makes a new '
                              'version.</p>'))
        return section("Dataset", *items)

    def _edit_form(self):
        ds = self.ds
        name = pn.widgets.TextInput(label="Name", value=ds.name, max_length=200, sizing_mode="stretch_width")
        desc = pn.widgets.TextAreaInput(label="Description", value=ds.description, max_length=10_000,
                                        sizing_mode="stretch_width", height=70)
        vis = pn.widgets.Select(label="Visibility", value=ds.visibility, options=["public", "unlisted", "private"],
                                width=140)
        save = pn.widgets.Button(label="Save", color="primary", width=90, css_classes=["lcp-save"])
        freeze = pn.widgets.Button(label="Freeze a citable copy", color="default", width=190,
                                   css_classes=["lcp-freeze"])

        def on_save(_):
            self._edit({"name": name.value, "description": desc.value, "visibility": vis.value}, "saved")

        def on_freeze(_):
            refused = spend(self.app, self.viewer)
            if refused is not None:
                self._say(refused, "danger")
                return
            try:
                frozen = self.app.datasets.freeze(ds.dataset_id, self.viewer)
            except UserError as exc:
                self._say(md(exc.message), "danger")
                return
            self._say(f'Frozen: permanent link <a href="/datasets/{frozen.dataset_id}">/datasets/'
                      f'{frozen.dataset_id}</a>', "success")

        save.on_click(on_save)
        freeze.on_click(on_freeze)
        return pn.Column(pn.Row(name, vis, sizing_mode="stretch_width"), desc, pn.Row(save, freeze),
                         sizing_mode="stretch_width")

    def _edit(self, changes: dict, what: str) -> bool:
        refused = spend(self.app, self.viewer)
        if refused is not None:
            self._say(refused, "danger")
            return False
        try:
            self.ds, changed = self.app.datasets.edit(self.ds.dataset_id, self.viewer, changes)
        except UserError as exc:
            self._say(md(exc.message), "danger")
            return False
        if changed:
            self._say(f"{what}: {', '.join(sorted(changed))}", "success")
        return True

    def _say(self, text: str, kind: str = "info") -> None:
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = True

    # --- table and selection -----------------------------------------------------------

    def _on_selection(self, event) -> None:
        n = len(event.new)
        self.selection_note.object = f"{n} selected" if n else "none selected: products cover every object"
        self.scope.options = [every_object_label(self.ds.nobjects)] + ([f"{n} selected"] if n else [])
        self.scope.value = self.scope.options[-1]

    def _objects(self):
        return section("Objects", self.table, self.selection_note,
                       subtitle="Sort by a column header; tick rows to make products of a selection. "
                                "An object's name opens its page.")

    # --- products ----------------------------------------------------------------------

    def _products_panel(self):
        builders = {b.title or b.name: b for b in self.app.product_builders}
        self.builder = pn.widgets.Select(label="Product", options=list(builders), width=200)
        self._builders = builders
        self.fmt = pn.widgets.Select(label="Light-curve format", options=["original"], width=170)
        self.scope = pn.widgets.RadioButtonGroup(options=[every_object_label(self.ds.nobjects)],
                                                color="light")
        self.build = pn.widgets.Button(label="Build zip", color="primary", width=110,
                                       css_classes=["lcp-build"])
        self.progress = pn.indicators.Progress(value=0, max=100, width=240, visible=False, bar_color="primary",
                                               margin=(4, 0))  # flush with the status line under it
        self.status = html("", css_classes=["lcp-product-status"])
        self.existing = html("")
        self._key = None
        self._poll = None

        self.lc_options = self._lc_options_row()

        def on_builder(event=None):
            options = self._builders[self.builder.value].options.get("format")
            self.fmt.options = list(options) if options else ["original"]
            self.fmt.visible = bool(options)
            on_format()

        def on_format(event=None):
            wanted = bool(getattr(self._builders[self.builder.value], "request_options", None)) \
                and self.fmt.visible and self.fmt.value != "original"
            if wanted and self._choices is None:
                self._fill_lc_options()
            self.lc_options.visible = wanted

        self.builder.param.watch(on_builder, "value")
        self.fmt.param.watch(on_format, "value")
        on_builder()
        self.build.on_click(self._start_build)
        self._show_existing()
        # top to bottom: what to build, its options, which objects, then Build
        return section("Downloads", pn.Row(self.builder, self.fmt), self.lc_options, pn.Row(self.scope, self.build),
                       pn.Column(self.progress, self.status, margin=0),
                       self.existing,
                       subtitle="Zips are built in the background; each holds a SHA256SUMS manifest. "
                                f'<a href="/api/datasets/{self.ds.dataset_id}/urls">Per-object URLs</a> '
                                "for wget/curl.")

    def _lc_options_row(self):
        """Light-curve options (converted formats): magnitude columns, times, quality mask;
        choices read once from the dataset's light curves (:func:`request_choices`)."""
        self._choices = None
        self.magcol = pn.widgets.Select(label="Series (magcol)", options={"all": ""}, width=170,
                                        css_classes=["lcp-opt-magcol"])
        self.times = pn.widgets.Select(label="Times", options={"as stored": ""}, width=170,
                                       css_classes=["lcp-opt-times"])
        self.mask = pn.widgets.Select(label="Quality mask", options={"keep every point": ""}, width=250,
                                      css_classes=["lcp-opt-mask"])
        return pn.FlexBox(self.magcol, self.times, self.mask, flex_wrap="wrap", visible=False,
                          css_classes=["lcp-lc-options"])

    def _fill_lc_options(self) -> None:
        from ..core.objects.lcchoices import request_choices

        try:
            self._choices = request_choices(self.app, self.ds)
        except Exception:  # an unreadable light curve: the form offers no options, builds say why
            log.exception("light-curve options of dataset %s", self.ds.dataset_id)
            self._choices = {"magcol": [], "times": [], "mask": []}
        self.magcol.options = {"all": "", **{m: m for m in self._choices["magcol"]}}
        self.times.options = {"as stored": "", **{t: t for t in self._choices["times"]}}
        self.mask.options = {"keep every point": "",
                             **{f"{how} points failing {m}": f"{how}:{m}" for m in self._choices["mask"]
                                for how in ("drop", "flag")}}

    def _start_build(self, _=None) -> None:
        builder = self._builders[self.builder.value]
        options = {"format": self.fmt.value} if "format" in builder.options else {}
        if self.lc_options.visible:
            if self.magcol.value:
                options["magcol"] = self.magcol.value
            if self.times.value:
                options["times"] = self.times.value
            if self.mask.value:
                options["masked"], _, options["mask"] = self.mask.value.partition(":")
        objects = self._selected_keys() if self.scope.value.endswith("selected") else None
        refused = spend(self.app, self.viewer)
        if refused is not None:
            self.status.object = f'<p class="lcp-field-error">{esc(refused)}</p>'
            return
        try:
            status = self.app.products.request(self.app, self.ds, builder.name, options, objects,
                                               check=product_check(self.app, self.viewer, client_address()))
        except UserError as exc:
            self.status.object = f'<p class="lcp-field-error">{esc(exc.message)}</p>'
            return
        self._key = status["key"]
        self.progress.visible = True
        self._show_status(status)
        if status["status"] not in ("done", "failed") and self._poll is None:
            self._poll = every(self._tick, 400)

    def _tick(self) -> None:
        status = self.app.products.status(self._key)
        self._show_status(status)
        if status["status"] in ("done", "failed") and self._poll is not None:
            self._poll.stop()
            self._poll = None
            self._show_existing()

    def _download_link(self, status: dict) -> str:
        url = f"/api/datasets/{self.ds.dataset_id}/products/{status['key']}/download"
        size = f"{(status['size'] or 0) / 1e6:.2f} MB"
        return (f'<a class="lcp-download" href="{url}" download="{esc(status["filename"])}">'
                f'{esc(status["filename"])}</a> ({size})<br><span class="lcp-muted">SHA256 '
                f'<code class="lcp-sha">{esc(status["sha256"])}</code></span>')

    def _show_status(self, status: dict) -> None:
        self.progress.value = int(round(status["progress"] * 100))
        if status["status"] == "done":
            self.progress.visible = False
            self.status.object = "Ready: " + self._download_link(status)
        elif status["status"] == "failed":
            self.progress.visible = False
            self.status.object = f'<p class="lcp-field-error">The build failed: {esc(status["error"])}</p>'
        else:
            self.status.object = build_status_line(status)

    def _show_existing(self) -> None:
        done = [s for s in self.app.products.for_dataset(self.ds.dataset_id) if s["status"] == "done"]
        if not done:
            self.existing.object = ""
            return
        def options(o: dict) -> str:  # the format, then any other option (two products may differ only there)
            rest = ", ".join(f"{k}={v}" for k, v in o.items() if k != "format")
            return o.get("format", "") + (f" ({rest})" if rest else "")

        rows = "".join(f'<tr><td>{esc(s["builder"])}</td><td>{esc(options(s["options"]))}</td>'
                       f'<td>{"all" if s["selection"] == "all" else "selection"}</td>'
                       f'<td>{self._download_link(s)}</td></tr>' for s in done)
        self.existing.object = ('<table class="lcp-table"><tr><th>product</th><th>format</th><th>objects</th>'
                                f'<th>download</th></tr>{rows}</table>')

    # --- finder chart and tiles ----------------------------------------------------------

    def _finder(self):
        with_field = [c for c in self.ds.collections if self.app.catalogs.get(c).info.field_fits]
        if not with_field:
            return None
        imgs = "".join(f'<figure style="margin:0"><img loading="lazy" alt="finder chart of {esc(c)}" '
                       f'style="max-width:100%;width:760px" src="/api/datasets/{self.ds.dataset_id}/finder.png'
                       f'?collection={quote(c)}&size=760"><figcaption class="lcp-muted">{esc(c)}</figcaption></figure>'
                       for c in with_field)
        return section("Finder chart", html(imgs, css_classes=["lcp-finder"]),
                       subtitle="The dataset's objects on the collection's field image.")

    def _collection_magcols(self) -> dict[str, list[str]]:
        out = {}
        for cid in self.ds.collections:
            try:
                out[cid] = collection_magcols(self.app.catalogs.get(cid).info.columns)
            except UserError:  # a collection removed since
                out[cid] = []
        return out

    def _tile_magcol(self, cid: str) -> str | None:
        """The chosen magcol when the collection has it, else the collection's default."""
        have = self.collection_magcols.get(cid) or []
        return self.magcol_select.value if self.magcol_select.value in have else (have[0] if have else None)

    def _render_tiles(self) -> None:
        data = self.ds.data
        tiles = []
        for i in self._page_rows():
            cid, oid = data["collection"][i], data["objectid"][i]
            key = object_key(cid, oid)
            magcol = self._tile_magcol(cid)
            q = f"?magcol={quote(magcol, safe='')}" if magcol else ""
            column = checkplot_column(magcol) if magcol and checkplot_column(magcol) in data else "cpfname"
            names = self._tile_names(cid, oid, column) if data.get(column, [None] * self.ds.nobjects)[i] else []
            comments = [(str(c["author"])[:14], str(c["text"])) for c in self.ds.object_comments.get(key, [])[-3:]]
            tiles.append(Tile(key, str(oid), str(cid), object_page_path(cid, oid) + q, magcol or "",
                              [(name, tile_url(cid, oid, name) + q) for name in names], comments))
        self._tile_keys = {t.key for t in tiles}
        self.tiles.tiles = [t.as_list() for t in tiles]

    def _on_tile_comment(self, raw: str) -> None:
        taken = take_comment(raw, self._tile_keys)
        if taken is not None:
            self._comment(*taken)

    def _tile_names(self, cid: str, oid: str, column: str) -> list[str]:
        """The tile images this object's checkplot has, of finder, unphased, phased-0 and
        phased-1: the page asks for no image that is not there. (The checkplot read here
        is cached for the image requests that follow.)"""
        from ..core.objects.checkplots import load_checkplot, tiles

        try:
            path = self.app.catalogs.get(cid).object_file(oid, column)
            found = tiles(load_checkplot(path)) if path is not None else None
        except Exception:  # noqa: BLE001 - an unreadable checkplot: no tiles, the page still works
            log.warning("no tiles for %s/%s", cid, oid, exc_info=True)
            return []
        return tile_names(found) if found is not None else []

    def _comment(self, key: str, text: str) -> None:
        text = (text or "").strip()
        if not text:
            return
        if self._edit({"object_comment": {"key": key, "text": text}}, "comment saved"):
            self._render_tiles()

    # --- layout ----------------------------------------------------------------------------

    def __panel__(self):
        if self.ds is None:
            return section("Dataset not found", html(
                f'<p class="lcp-empty lcp-dataset-missing">{esc(self.error[:1].upper() + self.error[1:])}. It may '
                'be private, deleted, or the link may be mistyped. <a href="/">Back to the collections</a>.</p>'))
        parts = [self._header(), self._objects(), self.products]
        finder = self._finder()
        tabs = pn.Tabs(("Tiles", section("Tiles", self.magcol_select, self.tiles,
                                         subtitle="The objects on the table's current page: finder, light curve "
                                                  "and phased light curves from their checkplots, of the magnitude "
                                                  "column named on each tile.")),
                       dynamic=False, sizing_mode="stretch_width")
        if finder is not None:
            tabs.append(("Finder chart", finder))
        return pn.Column(*parts, tabs, sizing_mode="stretch_width")

    def servable_page(self):
        if self.ds is None:
            answer_status(404)
        return page(self.ds.name if self.ds is not None else "Dataset not found", [self], self.app)
