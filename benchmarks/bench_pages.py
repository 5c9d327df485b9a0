"""Benchmark: what the server spends building a page, the dataset page's tiles above all.

Opening a page of a Panel app builds its Bokeh document on the server before the answer
is sent; that is most of the server's work for a page view (profiled: ~85 % for a dataset
page). This prints p50/p95 of ``GET`` of the overview, a dataset page (25 tiles) and an
object page against ``lcpanel serve``, and, measured in the same run with ``panel serve``
and the same client:

- the floor: a page of one HTML pane;
- 25 tiles laid out as Panel components (a column of an HTML pane and a text input
  per tile, the dataset page's layout until 2026-12-07) and the same 25 tiles as one
  :class:`lcpanel.views.tile_grid.TileGrid` (the layout since).

It also prints the bytes of each page's document as the server sends it over the
websocket (Bokeh's PULL-DOC-REPLY: JSON and binary buffers, built in this process), and
what the same document would weigh with lcpanel's CSS as text in every component and the
checkplot's phased PNGs embedded as base64 (the pages until 2026-12-07; see
:mod:`lcpanel.views.stylesheets` and ``tiles/method-<n>.png``).

    .venv/bin/python benchmarks/bench_pages.py [--objects 30] [--repeat 30]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import add_smoke_option, load_generator, out_dir, parse_args, start_server, stop_server

TILES = 25

_PANEL_PAGES = r'''
import panel as pn
from lcpanel.views.tile_grid import TileGrid

HEAD = ('<div class="lcp-tile"><h4><a href="/objects/bench/OBJ-{i:06d}">OBJ-{i:06d}</a> '
        '<span class="lcp-muted">bench</span></h4><div class="imgs">'
        + "".join(f'<img alt="{name}" src="/tiles/{name}.png">' for name in ("finder", "unphased", "phased-0"))
        + "</div></div>")


def floor():
    return pn.pane.HTML("<p>one pane</p>")


def widgets():  # a Column (HTML pane + TextInput) per tile in a FlexBox
    cards = [pn.Column(pn.pane.HTML(HEAD.format(i=i), sizing_mode="stretch_width", margin=0),
                       pn.widgets.TextInput(placeholder="comment", sizing_mode="stretch_width"),
                       styles={"min-width": "300px", "flex": "1 1 300px", "max-width": "440px"})
             for i in range({tiles})]
    return pn.FlexBox(*cards, gap="12px", sizing_mode="stretch_width")


def grid():  # the same facts as one TileGrid
    tiles = [[f"bench/OBJ-{i:06d}", f"OBJ-{i:06d}", "bench", f"/objects/bench/OBJ-{i:06d}", "",
              [[name, f"/tiles/{name}.png"] for name in ("finder", "unphased", "phased-0")], []]
             for i in range({tiles})]
    return TileGrid(tiles=tiles, sizing_mode="stretch_width")

'''


def _panel_apps(root: Path) -> list[Path]:
    """One script per page for ``panel serve`` (a script's name is its route)."""
    body = _PANEL_PAGES.replace("{tiles}", str(TILES))
    paths = []
    for name in ("floor", "widgets", "grid"):
        path = root / f"{name}.py"
        path.write_text(body + f"\n{name}().servable()\n")
        paths.append(path)
    return paths


class Client:
    """GETs over one keep-alive connection, keeping the cookies the server sets (a page
    view of a returning visitor, not a new one each time)."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> int:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        self.conn.request("GET", path, headers=headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
        for value in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return len(body)


def timed(client: Client, path: str, repeat: int) -> list[float]:
    client.get(path)  # the first view of a page loads its modules and warms caches
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        client.get(path)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def row(label: str, ms: list[float], base: float | None = None, note: str = "") -> float:
    p50 = statistics.median(ms)
    p95 = sorted(ms)[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    ratio = f"{p50 / base:8.1f}x" if base else " " * 9
    print(f"  {label:<52s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  {ratio}  {note}", flush=True)
    return p50


def document_bytes(make_page, checkplot=None) -> tuple[int, int, int]:
    """(bytes sent, bytes of lcpanel's CSS had it been text in each component, bytes of
    the phased PNGs of ``checkplot`` had they been embedded) of the page ``make_page()``
    builds."""
    import base64

    import panel as pn
    from bokeh.document import Document
    from bokeh.models import ImportedStyleSheet
    from bokeh.protocol import Protocol

    from lcpanel.core.objects.checkplots import method_plots
    from lcpanel.views.stylesheets import PREFIX, css_file

    doc = Document()
    pn.state.curdoc = doc
    try:
        template = make_page()
        template.server_doc(doc)
    finally:
        pn.state.curdoc = None
    msg = Protocol().create("PULL-DOC-REPLY", "bench", doc)
    sent = len(msg.content_json) + sum(len(b.data) for b in msg.buffers)
    css = 0
    for model in doc.models:
        for sheet in getattr(model, "stylesheets", None) or []:
            if isinstance(sheet, ImportedStyleSheet) and sheet.url.startswith(PREFIX):
                css += len(json.dumps(css_file(sheet.url[len(PREFIX):]).decode()))
    # as Panel's PNG pane sent them: base64 in an <img> of an HTML pane
    pngs = sum(len(base64.b64encode(p["png"])) + 60 for p in method_plots(checkplot or {}) if p and p["png"])
    return sent, css, pngs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=30, help="objects in the example collection (>= 25: a full "
                                                                  "page of tiles)")
    parser.add_argument("--repeat", type=int, default=30)
    add_smoke_option(parser, objects=3, repeat=2)
    args = parse_args(parser)
    print("# page build benchmark" + (" (smoke mode: figures mean nothing)" if args.smoke else ""), flush=True)

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.search import run_search

    root = out_dir(True)  # a fresh temporary directory (removed at exit)
    source = args.example
    if source is None:
        source = root / "collection"
        load_generator().make_collection(source, nobjects=args.objects, seed=7, lcformat="lcpanel-demo-csv",
                                         workers=2)
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    add_astrobase_collection(app, base, source, collection_id="bench", show_progress=False)
    result = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["bench"],
                              "sort": "objectid", "limit": 1000})
    ds = app.datasets.create(result, "user:bench", visibility="public")
    oid = ds.data["objectid"][0]
    shown = min(ds.nobjects, TILES)
    print(f"{ds.nobjects} objects; the dataset page shows {shown} tiles; {args.repeat} views of each page")

    proc, url = start_server(base.path, timeout=120)
    try:
        client = Client(url)
        print("lcpanel serve:")
        pages = [("overview /", "/"), (f"dataset page ({shown} tiles)", f"/datasets/{ds.dataset_id}"),
                 ("object page", f"/objects/bench/{oid}")]
        measured = {label: timed(client, path, args.repeat) for label, path in pages}
    finally:
        stop_server(proc)

    with tempfile.TemporaryDirectory(prefix="lcpanel-bench-pages-") as tmp:
        scripts = _panel_apps(Path(tmp))
        proc, purl = start_server(Path(tmp), timeout=120, command=lambda port: [
            sys.executable, "-m", "panel", "serve", *map(str, scripts), "--port", str(port), "--address",
            "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}", "--liveness"])
        try:
            pclient = Client(purl)
            floor = timed(pclient, "/floor", args.repeat)
            widgets = timed(pclient, "/widgets", args.repeat)
            grid = timed(pclient, "/grid", args.repeat)
        finally:
            stop_server(proc)

    from lcpanel.views.dataset_page import DatasetPage
    from lcpanel.views.object_page import ObjectPage
    from lcpanel.views.overview import Overview

    print("page documents as sent over the websocket (built in this process; before = lcpanel's CSS as text in each "
          "component and the phased PNGs embedded, as until 2026-12-07):")
    obj = ObjectPage(app=app, collection="bench", objectid=oid)
    for label, make, cp in (("overview /", lambda: Overview(app=app).servable_page(), None),
                            (f"dataset page ({shown} tiles)",
                             lambda: DatasetPage(app=app, dataset_id=ds.dataset_id).servable_page(), None),
                            ("object page", obj.servable_page, obj.rec.checkplot)):
        sent, css, pngs = document_bytes(make, cp)
        before = sent + css + pngs
        print(f"  {label:<52s} {sent / 1e3:8.1f} KB  before {before / 1e3:8.1f} KB  ({before / sent:.1f}x; CSS "
              f"{css / 1e3:.1f} KB, PNGs {pngs / 1e3:.1f} KB)", flush=True)

    base_ms = statistics.median(floor)
    for label, ms in measured.items():
        row(label, ms, base_ms, "vs the floor")
    print(f"panel serve, the same client ({TILES} tiles of 3 images each):")
    row("floor: a page of one HTML pane (baseline)", floor)
    w = row(f"{TILES} tiles as Panel components (until 2026-12-07)", widgets, base_ms, "vs the floor")
    g = row(f"{TILES} tiles as one TileGrid", grid, base_ms, "vs the floor")
    own = f"{(w - base_ms) / (g - base_ms):.1f}x less" if g - base_ms >= 1.0 else "no more than the floor, within its noise"
    print(f"  tiles' own cost above the floor: components {w - base_ms:.1f} ms, TileGrid {g - base_ms:.1f} ms ({own})")


if __name__ == "__main__":
    main()
