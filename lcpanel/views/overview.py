"""The overview page (``/``): collections, their footprints on the sky, a search form per
search type, and the datasets the visitor can see.

- Collections come from the basedir's registry at each page load (a collection added
  while the server runs shows up on the next visit); each is a card with its
  description, citation, project, data release, size, kind and what it offers.
- The sky plot draws every collection's footprint (the HEALPix cells that hold its
  objects, from ``CollectionInfo.footprint``) as polygons in equatorial coordinates, RA
  increasing to the left as on the sky, with a marker at each collection's centre so a
  small field stays visible on the whole-sky view; cells that cross RA 0/360 are drawn
  on both sides of the wrap. "Zoom to" centres a collection. It is a plain Bokeh figure:
  HoloViews took 2-3 s per page to build ~800 cell polygons, Bokeh ``patches`` a few ms.
- Search types are found only through ``app.search_backends``; each gets a
  :class:`lcpanel.views.search_form.SearchForm`, picked from a wrapping row of pills
  (:class:`lcpanel.views.search_form.SearchTypes`: everyday types first, cone search
  chosen). The cone form starts with the first collection's field centre and a radius
  that covers the field (capped at the maximum).
- Datasets: public ones and the visitor's own (marked "yours"), newest first, filtered
  by text; the visitor is the JSON API's cookie identity (:mod:`lcpanel.views.theme`).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import panel as pn
import param

from ..core import clock
from ..core.catalogs.basedir import Basedir
from ..errors import UserError
from .search_form import SearchForm, SearchTypes
from ..visitor import session_viewer
from .theme import collection_colors, esc, html, page, plot_look, section, styled

log = logging.getLogger(__name__)

#: poles of the great circles drawn as guides (ICRS, degrees)
GALACTIC_POLE = (192.85948, 27.12825)
ECLIPTIC_POLE = (270.0, 66.560708)
SKY_HEIGHT = 400


# --- geometry (numpy only) ------------------------------------------------------------------


def _radec_to_xyz(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def great_circle(pole_ra: float, pole_dec: float, n: int = 721) -> list[tuple[np.ndarray, np.ndarray]]:
    """The great circle around a pole as (ra, dec) segments, split where RA wraps."""
    p = _radec_to_xyz(pole_ra, pole_dec)
    u = np.cross(p, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(p, u)
    t = np.linspace(0, 2 * np.pi, n)
    xyz = np.outer(np.cos(t), u) + np.outer(np.sin(t), v)
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1, 1)))
    breaks = np.where(np.abs(np.diff(ra)) > 180.0)[0] + 1
    return [(r, d) for r, d in zip(np.split(ra, breaks), np.split(dec, breaks)) if len(r) > 1]


def footprint_polygons(footprint: dict) -> list[dict]:
    """The footprint's HEALPix cells as polygons: dicts with x (RA), y (Dec), the cell's
    object count and centre. A cell crossing RA 0/360 comes twice, once on each side."""
    from cdshealpix.nested import vertices

    cells = np.asarray(footprint.get("cells") or [], dtype=np.uint64)
    counts = list(footprint.get("counts") or [0] * len(cells))
    if not len(cells):
        return []
    order = int(footprint.get("order", 0))
    step = 1 if order >= 6 else 2 ** min(4, 6 - order)  # curved edges of big cells
    lon, lat = vertices(cells, order, step=step)
    ra = np.asarray(lon.to_value("deg"), dtype=float)
    dec = np.asarray(lat.to_value("deg"), dtype=float)
    out = []
    for i in range(len(cells)):
        r, d = ra[i], dec[i]
        centre_ra = float(np.degrees(np.arctan2(np.sin(np.radians(r)).mean(), np.cos(np.radians(r)).mean())) % 360)
        base = {"objects": int(counts[i]), "cell": f"{centre_ra:.3f}, {d.mean():+.3f}"}
        if r.max() - r.min() > 180.0:
            out.append({"x": np.where(r < 180.0, r + 360.0, r), "y": d, **base})
            out.append({"x": np.where(r > 180.0, r - 360.0, r), "y": d, **base})
        else:
            out.append({"x": r, "y": d, **base})
    return out


@lru_cache(maxsize=64)
def _cached_polygons(key: str, footprint_json: str) -> list[dict]:
    import json

    return footprint_polygons(json.loads(footprint_json))


def _polygons(info) -> list[dict]:
    import json

    return _cached_polygons(f"{info.collection_id}:{info.added_at}", json.dumps(info.footprint, sort_keys=True))


def zoom_box(info) -> tuple[tuple[float, float], tuple[float, float]]:
    """RA and Dec limits that frame a collection (RA may run past 0 or 360): its objects'
    circle with a margin, at least as big as its footprint's cells (a field of a few
    arcseconds in one cell is framed at that cell's size, not degrees around it)."""
    ra, dec = info.center_ra or 0.0, info.center_decl or 0.0
    radius = info.radius_deg if info.radius_deg is not None else 1.0
    order = int((info.footprint or {}).get("order", 0))
    cell_deg = 58.6 / 2 ** order  # the side of a HEALPix cell of this order
    half_dec = max(1.5 * radius, 0.75 * cell_deg, 1.0 / 60)
    half_ra = min(180.0, half_dec * 2.0 / max(math.cos(math.radians(min(abs(dec) + half_dec, 89.0))), 0.05))
    lo_dec, hi_dec = max(-90.0, dec - half_dec), min(90.0, dec + half_dec)
    return (ra - half_ra, ra + half_ra), (lo_dec, hi_dec)


# --- the sky plot ---------------------------------------------------------------------------


def _degree_ticker():
    from bokeh.models import AdaptiveTicker, CompositeTicker, SingleIntervalTicker

    return CompositeTicker(tickers=[
        AdaptiveTicker(mantissas=[1, 2, 5], base=10, min_interval=1e-4, max_interval=10.0, num_minor_ticks=5),
        SingleIntervalTicker(interval=15.0, num_minor_ticks=3),
        SingleIntervalTicker(interval=30.0, num_minor_ticks=3),
    ])


# labels in degrees with as many decimals as the tick spacing needs; RA wrapped into [0, 360)
_TICK_DECIMALS = "const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1; " \
                 "const nd = step >= 1 ? 0 : Math.min(4, Math.ceil(-Math.log10(step) - 1e-9)); "


def _style(fig) -> None:
    from bokeh.models import CustomJSTickFormatter

    fig.xaxis.formatter = CustomJSTickFormatter(
        code=_TICK_DECIMALS + "const v = ((tick % 360) + 360) % 360; return v.toFixed(nd) + '°'")
    fig.yaxis.formatter = CustomJSTickFormatter(
        code=_TICK_DECIMALS + "return (tick > 0 ? '+' : '') + tick.toFixed(nd) + '°'")
    fig.xaxis.ticker = _degree_ticker()
    fig.yaxis.ticker = _degree_ticker()
    plot_look(fig)


def sky_figure(infos, colors: dict):
    """A Bokeh figure of every collection's footprint cells and centre, in equatorial
    coordinates with RA increasing to the left; the Galactic plane and the ecliptic as
    guides. Axis labels wrap RA into [0, 360) so the view can pan across RA 0."""
    from bokeh.models import ColumnDataSource, HoverTool, Legend, LegendItem, Range1d
    from bokeh.plotting import figure

    fig = figure(x_range=Range1d(360.0, 0.0), y_range=Range1d(-90.0, 90.0), height=SKY_HEIGHT,
                 sizing_mode="stretch_width", min_width=300, tools="pan,wheel_zoom,box_zoom,reset,save",
                 active_scroll="wheel_zoom", toolbar_location="above", x_axis_label="Right ascension (J2000)",
                 y_axis_label="Declination (J2000)", match_aspect=False, output_backend="canvas")
    _style(fig)
    items, guides = [], []
    hover_cells, hover_centres = [], []
    # the biggest footprints first, so smaller ones are drawn over them
    for info in sorted(infos, key=lambda i: -len(i.footprint.get("cells") or []) * 4.0 ** -i.footprint.get("order", 0)):
        color = colors[info.collection_id]
        renderers = []
        polys = _polygons(info)
        if polys:
            src = ColumnDataSource({
                "xs": [p["x"].tolist() for p in polys], "ys": [p["y"].tolist() for p in polys],
                "collection": [info.name] * len(polys), "objects": [p["objects"] for p in polys],
                "cell": [p["cell"] for p in polys]})
            cells = fig.patches("xs", "ys", source=src, fill_color=color, fill_alpha=0.45, line_color=color,
                                line_width=0.6, line_alpha=0.8, hover_fill_alpha=0.8)
            renderers.append(cells)
            hover_cells.append(cells)
        if info.center_ra is not None:
            other = info.center_ra - 360.0 if info.center_ra > 180 else info.center_ra + 360.0
            where = (f"RA {info.center_ra:.3f}°, Dec {info.center_decl:+.3f}°, radius {info.radius_deg or 0:.2f}°")
            src = ColumnDataSource({"x": [info.center_ra, other], "y": [info.center_decl] * 2,
                                    "collection": [info.name] * 2, "objects": [f"{info.nobjects:,}"] * 2,
                                    "where": [where] * 2})
            centre = fig.scatter("x", "y", source=src, size=12, marker="circle", fill_color=color, fill_alpha=0.3,
                                 line_color=color, line_width=2)
            renderers.append(centre)
            hover_centres.append(centre)
        if renderers:
            items.append(LegendItem(label=info.name, renderers=renderers))
    for pole, label, dash, color in ((GALACTIC_POLE, "Galactic plane", "solid", "#8f9aa3"),
                                     (ECLIPTIC_POLE, "Ecliptic", "dashed", "#8f9aa3")):
        segments = great_circle(*pole)
        r = fig.multi_line([list(x) for x, _ in segments], [list(y) for _, y in segments], line_color=color,
                           line_width=1.3, line_dash=dash, line_alpha=0.8)
        guides.append(LegendItem(label=label, renderers=[r]))
    for r in [c for c in fig.renderers if c in hover_centres]:  # centre markers on top
        fig.renderers.remove(r)
        fig.renderers.append(r)
    order = {i.name: n for n, i in enumerate(infos)}  # the legend lists collections like the cards
    items = sorted(items, key=lambda it: order.get(getattr(it.label, "value", it.label), 0)) + guides
    if hover_cells:
        fig.add_tools(HoverTool(renderers=hover_cells, tooltips=[
            ("Collection", "@collection"), ("Objects in cell", "@objects"), ("Cell centre", "@cell")]))
    if hover_centres:
        fig.add_tools(HoverTool(renderers=hover_centres, tooltips=[
            ("Collection", "@collection"), ("Objects", "@objects"), ("Field", "@where")]))
    legend = Legend(items=items, location="bottom_left", click_policy="hide", background_fill_alpha=0.85,
                    border_line_color="#dde3e8", label_text_font_size="11px", glyph_height=14, spacing=0,
                    padding=6, label_text_color="#29343c")
    fig.add_layout(legend)
    return fig


def frame(fig, info=None) -> None:
    """Point the figure at a collection, or at the whole sky."""
    if info is None:
        (x0, x1), (y0, y1) = (0.0, 360.0), (-90.0, 90.0)
    else:
        (x0, x1), (y0, y1) = zoom_box(info)
    fig.x_range.update(start=x1, end=x0)  # RA increases to the left
    fig.y_range.update(start=y0, end=y1)


# --- HTML fragments -----------------------------------------------------------------------


def _yes(flag: bool, text: str) -> str:
    return f'<span class="lcp-badge{"" if flag else " off"}">{"✓" if flag else "✗"} {esc(text)}</span>'


def collection_card(info, color: str) -> str:
    s = info.summary()
    kind = {"astrobase": "astrobase collection", "catalog": "catalog only"}.get(info.kind, info.kind)
    centre = ""
    if info.center_ra is not None:
        centre = (f"RA {info.center_ra:.3f}°, Dec {info.center_decl:+.3f}° "
                  f"<span class='lcp-muted'>(radius {info.radius_deg or 0:.2f}°)</span>")
    facts = [("Objects", f"{info.nobjects:,}"), ("Project", esc(info.project) or "—"),
             ("Data release", esc(info.datarelease) if info.datarelease else "—"), ("Field centre", centre or "—")]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    cite = (f'<p class="lcp-cite"><b>Cite:</b> {esc(info.citation)}</p>' if info.citation else "")
    desc = f'<p class="lcp-desc">{esc(info.description)}</p>' if info.description else ""
    return (
        f'<article class="lcp-card lcp-collection" data-collection="{esc(info.collection_id)}" '
        f'style="--swatch: {color}">'
        f'<div><h3>{esc(info.name)}</h3><span class="lcp-id">{esc(info.collection_id)}</span></div>'
        f'<div class="lcp-badges"><span class="lcp-badge">{esc(kind)}</span>'
        f'{_yes(s["has_lightcurves"], "light curves")}{_yes(s["has_field_image"], "field image")}</div>'
        f'<dl class="lcp-facts">{dl}</dl>{desc}{cite}</article>')


def when(stamp: str, now: datetime | None = None) -> str:
    """'5 min ago' with the full UTC time as a tooltip."""
    try:
        t = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return esc(stamp)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    now = now or clock.now()
    secs = max(0.0, (now - t).total_seconds())
    if secs < 60:
        text = "just now"
    elif secs < 3600:
        text = f"{int(secs // 60)} min ago"
    elif secs < 86400:
        text = f"{int(secs // 3600)} h ago"
    elif secs < 30 * 86400:
        text = f"{int(secs // 86400)} d ago"
    else:
        text = t.strftime("%Y-%m-%d")
    return f'<span title="{esc(t.strftime("%Y-%m-%d %H:%M:%S UTC"))}">{text}</span>'


def dataset_rows(items: list[dict], viewer, titles: dict[str, str]) -> str:
    rows = []
    for d in items:
        mine = d["owner"] == viewer.identity
        badge_mine = ' <span class="lcp-badge mine">yours</span>' if mine else ""
        vis = d["visibility"]
        colls = ", ".join(d.get("collections") or [])
        frozen = ' <span class="lcp-badge" title="frozen: a permanent, citable copy">frozen</span>' \
            if d.get("frozen") else ""
        more = "" if d["nmatched"] <= d["nobjects"] else f' <span class="lcp-muted">of {d["nmatched"]:,}</span>'
        rows.append(
            f'<tr class="lcp-dataset{" mine" if mine else ""}" data-dataset="{esc(d["dataset_id"])}">'
            f'<td><a class="lcp-name" href="/datasets/{esc(d["dataset_id"])}">{esc(d["name"])}</a>{badge_mine}'
            f'{frozen}<div class="lcp-muted" style="font-size:0.86em">{esc(colls)}</div></td>'
            f'<td>{esc(titles.get(d["search_type"], d["search_type"]))}</td>'
            f'<td class="num">{d["nobjects"]:,}{more}</td>'
            f'<td><span class="lcp-badge {esc(vis)}">{esc(vis)}</span></td>'
            f'<td>{when(d["updated"])}</td></tr>')
    return ('<table class="lcp-table lcp-datasets"><colgroup><col style="width:46%"><col style="width:16%">'
            '<col style="width:12%"><col style="width:12%"><col style="width:14%"></colgroup>'
            '<thead><tr><th>Dataset</th><th>Search</th>'
            '<th class="num">Objects</th><th>Visibility</th><th>Updated</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


# --- the page -------------------------------------------------------------------------------


class DatasetList(pn.viewable.Viewer):
    """Public datasets and the visitor's own, searchable by text."""

    app = param.Parameter(doc="the lcpanel App")
    query = param.String(default="", doc="text in the name or description, or a search type")
    only_mine = param.Boolean(default=False)
    limit = param.Integer(default=50)

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self._titles = {b.name: b.title or b.name for b in self.app.search_backends}
        self._search = pn.widgets.TextInput.from_param(
            self.param.query, label="", placeholder="Filter datasets by name, description or search type",
            sizing_mode="stretch_width", css_classes=["lcp-dataset-query"], margin=(0, 10, 8, 10))
        styled(self._search)
        self._search.param.watch(lambda e: setattr(self, "query", e.new), "value_input")
        self._mine = pn.widgets.Switch.from_param(self.param.only_mine, label="", margin=(10, 4, 8, 10), width=40)
        self._table = html("", css_classes=["lcp-dataset-list"], margin=(0, 10))
        self._refresh()

    @param.depends("query", "only_mine", watch=True)
    def _refresh(self) -> None:
        try:
            items = self.app.datasets.list(self.viewer, mine=self.only_mine, query=self.query.strip() or None,
                                           limit=self.limit)
        except UserError as exc:  # a too long query
            self._table.object = f'<p class="lcp-error-text">{esc(exc.message)}</p>'
            return
        if items:
            more = (f'<p class="lcp-help" style="margin-top:8px">Showing the {self.limit} most recently updated; '
                    'type in the box above to find others.</p>' if len(items) >= self.limit else "")
            self._table.object = dataset_rows(items, self.viewer, self._titles) + more
        elif self.query.strip():
            self._table.object = (f'<div class="lcp-empty">No dataset matches “{esc(self.query.strip())}”.</div>')
        elif self.only_mine:
            self._table.object = '<div class="lcp-empty">You have no datasets yet: run a search above.</div>'
        else:
            self._table.object = ('<div class="lcp-empty">No datasets yet. Every search makes one: run a search '
                                  'above, then share its link or make it public.</div>')

    def __panel__(self):
        mine_label = html('<span class="lcp-muted">only mine</span>', sizing_mode=None, width=80,
                          margin=(12, 10, 0, 0))
        return pn.Column(pn.Row(self._search, self._mine, mine_label, sizing_mode="stretch_width", margin=0),
                         self._table, sizing_mode="stretch_width", margin=0)


def default_cone(app, info) -> str | None:
    """A cone search ("ra dec radius_arcmin") that finds objects of collection ``info``:
    its field with a radius covering it, or, when the field is wider than the largest
    cone allowed (an all-sky catalog), the largest cone around one of its objects."""
    cap = app.config.search.cone_max_radius_arcmin
    radius = max(1, math.ceil((info.radius_deg or 0.1) * 60))
    ra, dec = info.center_ra, info.center_decl
    if ra is None or radius > cap:
        try:
            rows, _ = app.catalogs.get(info.collection_id).select(None, [], 1)
            ra, dec = app.catalogs.get(info.collection_id).fetch_values(rows, ["ra", "decl"])[0] if rows else (ra, dec)
        except Exception:  # noqa: BLE001 - the form then starts empty or on the field's centre
            log.warning("no object position for the default cone of %s", info.collection_id, exc_info=True)
    if ra is None or dec is None:
        return None
    return f"{float(ra):.4f} {float(dec):+.4f} {min(cap, radius):g}"


def served_example(app, infos, backend) -> dict:
    """The backend's example with what this server serves: the ADQL table
    ``lcpanel.<collection>`` and object ids of the first collection (not the demo's)."""
    example = dict(getattr(backend, "example", {}) or {})
    if not infos:
        return example
    first = infos[0].collection_id
    for name, value in example.items():
        if isinstance(value, str) and "lcpanel.demo" in value:
            example[name] = value.replace("lcpanel.demo", f"lcpanel.{first}")
    if "ids" in example:
        try:
            catalog = app.catalogs.get(first)
            rows, _ = catalog.select(None, [], 2)
            ids = [values[0] for values in catalog.fetch_values(rows, ["objectid"])]
        except Exception:  # noqa: BLE001 - the backend's own example then
            log.warning("no object ids for the example of %s", first, exc_info=True)
            ids = []
        if ids:
            example["ids"] = ids
    return example


class Overview(pn.viewable.Viewer):
    """The ``/`` page: collections, sky footprints, search forms and datasets."""

    app = param.Parameter(doc="the lcpanel App")

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self.infos = Basedir(self.app.basedir).collections()
        self.colors = collection_colors([i.collection_id for i in self.infos])
        self.forms: dict[str, SearchForm] = {}  # search type name -> its form, made when first shown
        self.datasets = DatasetList(app=self.app)
        self.types: SearchTypes | None = None
        self._layout = None

    def form(self, backend) -> SearchForm:
        """The form of search type ``backend`` (a SearchBackend class), made once."""
        if backend.name not in self.forms:
            form = SearchForm(app=self.app, backend=backend, prefill=self._prefill(backend), collections=self.infos,
                              example=served_example(self.app, self.infos, backend))
            # the dataset each search makes joins the list at once
            form.param.watch(lambda _e: self.datasets._refresh(), "last_dataset")
            self.forms[backend.name] = form
        return self.forms[backend.name]

    def _prefill(self, backend) -> dict:
        """The cone form starts on the first collection's field (:func:`default_cone`)."""
        example = getattr(backend, "example", {}) or {}
        coords = default_cone(self.app, self.infos[0]) if "coords" in example and self.infos else None
        return {"coords": coords} if coords else {}

    # --- parts ------------------------------------------------------------------------

    def _intro(self):
        n = len(self.infos)
        total = sum(i.nobjects for i in self.infos)
        if n:
            what = (f"{n} collection{'s' if n != 1 else ''} with {total:,} objects. Search them by position, "
                    "object id, cross-match, text or catalog columns; every search becomes a dataset you can "
                    "share, comment on and download (light curves, checkplots, period finding).")
        else:
            what = "This server has no collections yet."
        return html(f'<div class="lcp-intro"><h1>Light-curve collections</h1><p>{esc(what)}</p></div>',
                    margin=(12, 4, 6, 4))

    def _sky(self):
        if not self.infos:
            return section("Sky coverage", html('<div class="lcp-empty">Nothing to show yet.</div>',
                                                margin=(0, 10)))
        fig = sky_figure(self.infos, self.colors)
        options = {"Whole sky": ""} | {f"{i.name}": i.collection_id for i in self.infos}
        zoom = pn.widgets.Select(options=options, value="", label="", width=240, margin=(0, 10, 4, 10),
                                 css_classes=["lcp-sky-zoom"])
        by_id = {i.collection_id: i for i in self.infos}

        def on_zoom(event):
            frame(fig, by_id.get(event.new))

        styled(zoom)
        zoom.param.watch(on_zoom, "value")
        plot = pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width", min_height=SKY_HEIGHT, margin=0),
                         sizing_mode="stretch_width", margin=(0, 6), css_classes=["lcp-sky"])
        label = html('<span class="lcp-muted">Zoom to</span>', sizing_mode=None, width=60, margin=(8, 0, 0, 10))
        return section("Sky coverage", pn.Row(label, zoom, margin=0), plot,
                       subtitle="Where the collections' objects are (HEALPix cells holding objects, and each "
                                "field's centre). Hover for details; scroll to zoom; click a legend entry to "
                                "hide it.",
                       flex="1 1 520px")

    def _search(self):
        if not self.app.search_backends:
            return section("Search", html('<div class="lcp-empty">No search types are registered.</div>',
                                          margin=(0, 10)))
        # starts on the cone search, pre-filled with a field centre: ready to run
        types = self.types = SearchTypes(backends=list(self.app.search_backends), make_form=self.form)
        return section("Search", types, subtitle="Pick a search type; the result opens as a dataset.",
                       flex="1 1 520px" if self.infos else None)

    def _collections(self):
        if not self.infos:
            body = html('<div class="lcp-empty">No collections yet: add one with '
                        '<code>lcpanel add-collection BASEDIR COLLECTION_DIR</code> (or a plain catalog with '
                        '<code>lcpanel add-collection BASEDIR catalog.parquet</code>) and reload this page.</div>',
                        margin=(0, 10))
        else:
            cards = "".join(collection_card(i, self.colors[i.collection_id]) for i in self.infos)
            body = html(f'<div class="lcp-cards">{cards}</div>', css_classes=["lcp-collections"], margin=(0, 10))
        return section("Collections", body)

    def _datasets(self):
        return section("Datasets", self.datasets,
                       subtitle="Public datasets and your own (marked “yours”), newest first.",
                       css_classes=["lcp-datasets-section"])

    def __panel__(self):
        if self._layout is None:
            if self.infos:
                top = pn.FlexBox(self._search(), self._sky(), flex_wrap="wrap", gap="0 16px",
                                 sizing_mode="stretch_width", margin=0, align_items="flex-start")
                parts = [self._intro(), top, self._collections(), self._datasets()]
            else:  # first things first: how to add a collection
                parts = [self._intro(), self._collections(), self._search(), self._datasets()]
            self._layout = pn.Column(*parts, sizing_mode="stretch_width", margin=(0, 8, 24, 8),
                                     css_classes=["lcp-overview"])
        return self._layout

    def servable_page(self):
        return page("Collections", self, self.app)
