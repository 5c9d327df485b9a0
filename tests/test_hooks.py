"""One fake plugin per hook: a tiny plugin registered into a fresh App proves that the hook
is called with the documented arguments and that what it returns is used.

The ``test_hook_<name>`` functions are checked against the hook specs, so a new hook
without a test here fails :func:`test_every_hook_has_a_fake_plugin_test`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pickle
import sqlite3
import threading
from collections import defaultdict
import urllib.request
import zipfile
from contextlib import closing
from pathlib import Path

import numpy as np
import param
import pytest
from support.data import random_catalog, write_table
from support.servers import server_in_thread

from lcpanel.plugin_api import (
    OPERATOR, App, Basedir, CatalogBase, Catalog, Command, Entry, Hits, JSONHandler, LCFormat, LightCurve, Page,
    ProductBuilder, Route, SearchBackend, add_astrobase_collection, add_catalog_collection, hookimpl, run_search)
from test_plugin_contract import hook_specs

CONE = {"type": "cone", "params": {"coords": "150.0 20.0 30"}}


def test_every_hook_has_a_fake_plugin_test():
    tested = {name[len("test_hook_"):] for name in globals() if name.startswith("test_hook_")}
    assert tested == set(hook_specs())


class Calls:
    """What a fake plugin was called with, hook by hook."""

    def __init__(self):
        self.calls: dict[str, list[dict]] = {}
        self.events: dict[str, threading.Event] = defaultdict(threading.Event)

    def record(self, hook: str, **kwargs):
        self.calls.setdefault(hook, []).append(kwargs)
        self.events[hook].set()


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    """A basedir with one plain catalog, ``field``: 200 objects within 1 deg of (150, 20)."""
    root = tmp_path_factory.mktemp("hooks")
    base = Basedir.init(root / "basedir")
    cols = random_catalog(200, seed=21, center=(150.0, 20.0), radius_deg=1.0)
    add_catalog_collection(App(base.path), base, write_table(cols, root / "field.parquet"), collection_id="field",
                           show_progress=False)
    return base


def catalog_objectids(base: Basedir, collection_id: str) -> list[str]:
    """The collection's object ids in row order, read from its SQLite file directly."""
    path = base.collection(collection_id).catalog_sqlite
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return [r[0] for r in conn.execute("SELECT objectid FROM object_catalog ORDER BY row_id")]


def read_member(app, status: dict, name: str) -> bytes:
    with zipfile.ZipFile(app.products.file_path(status["key"], status["builder"])) as zf:
        return zf.read(name)


# --- registration hooks -----------------------------------------------------------------------


class EveryNth(SearchBackend):
    """Every ``step``-th object of a collection, in row order."""

    name = param.String(default="every_nth", constant=True)
    title = "Every n-th"
    step = param.Integer(default=2, bounds=(1, 100), doc="keep one object in this many")

    def prepare(self, settings):
        self.prepared_with = settings

    def search_collection(self, catalog, flt, sort, limit):
        ids, _ = catalog.select(flt, [], 10**6)
        kept = ids[:: self.step]
        return Hits(row_ids=kept[:limit], nmatched=len(kept))


def test_hook_register_search_backends(field):
    calls = Calls()

    class Plugin:
        @hookimpl
        def register_search_backends(self, app):
            calls.record("register_search_backends", app=app)
            return [EveryNth]

    app = App(field.path, plugins=(Plugin(),))
    assert calls.calls["register_search_backends"] == [{"app": app}]
    assert app.search_backends.get("every_nth") is EveryNth
    result = run_search(app, {"type": "every_nth", "params": {"step": 7}})
    assert [r["objectid"] for r in result.rows] == catalog_objectids(field, "field")[::7]
    assert result.nmatched == len(range(0, 200, 7))


def test_search_backends_get_their_context(field):
    seen = []

    class Remembers(EveryNth):
        name = param.String(default="remembers", constant=True)

        def search_collection(self, catalog, flt, sort, limit):
            seen.append(self.context)
            return super().search_collection(catalog, flt, sort, limit)

    class Plugin:
        @hookimpl
        def register_search_backends(self, app):
            return [Remembers]

    app = App(field.path, plugins=(Plugin(),))
    run_search(app, {"type": "remembers"})
    [context] = seen
    assert context.app is app and context.catalogs is app.catalogs and context.settings is app.config.search


class ObjectIds(ProductBuilder):
    name = "objectid_list"
    title = "Object ids"
    options = {"sep": ("newline", "comma")}
    planned: list = []

    def plan(self, app, dataset, rows, options):
        self.planned.append({"app": app, "dataset": dataset, "rows": rows, "options": options})
        sep = "\n" if options["sep"] == "newline" else ","
        return [Entry(arcname="ids.txt", kind="bytes",
                      data=sep.join(dataset.data["objectid"][i] for i in rows).encode())]


def test_hook_register_product_builders(field):
    calls = Calls()

    class Plugin:
        @hookimpl
        def register_product_builders(self, app):
            calls.record("register_product_builders", app=app)
            return [ObjectIds]

    app = App(field.path, plugins=(Plugin(),))
    try:
        assert calls.calls["register_product_builders"] == [{"app": app}]
        ds = app.datasets.create(run_search(app, CONE), OPERATOR.identity)
        status = app.products.request(app, ds, "objectid_list", {"sep": "comma"}, wait=True)
        assert status["status"] == "done"
        plan = ObjectIds.planned[-1]
        assert plan["app"] is app and plan["dataset"].dataset_id == ds.dataset_id
        assert plan["rows"] == list(range(ds.nobjects)) and plan["options"] == {"sep": "comma"}
        assert read_member(app, status, "ids.txt").decode().split(",") == list(ds.data["objectid"])
    finally:
        app.products.shutdown()


class TextFormat(LCFormat):
    """Whitespace text, ``time mag err`` per line (module level: workers import it by name)."""

    name = "hooks-text"
    title = "time mag err"

    @classmethod
    def from_spec(cls, spec, base):
        fmt = cls()
        fmt.base = base
        return fmt

    def to_spec(self):
        return {"kind": self.name}

    def read(self, path):
        t, m, e = np.loadtxt(path, unpack=True, ndmin=2)
        return LightCurve(objectid=Path(path).name.split(".")[0], columns={"time": t, "mag": m, "err": e},
                          column_info={"time": {"unit": "d", "description": "BJD_TDB"}},
                          time_columns=("time",), mag_columns=("mag",), err_columns=("err",))


def text_collection(root: Path, n: int = 4) -> Path:
    """A minimal astrobase-style collection whose light curves are :class:`TextFormat` files."""
    src = root / "textlcs"
    (src / "lightcurves").mkdir(parents=True)
    rng = np.random.default_rng(3)
    ids = [f"TXT-{i}" for i in range(n)]
    for objectid in ids:
        data = np.column_stack([2460000 + np.sort(rng.uniform(0, 10, 30)), rng.normal(12, 0.1, 30),
                                rng.uniform(0.01, 0.02, 30)])
        np.savetxt(src / "lightcurves" / f"{objectid}.txt", data, fmt="%.6f")
    objects = {"objectid": np.array(ids), "ra": np.linspace(150, 150.1, n), "decl": np.full(n, 20.0),
               "lcfname": np.array([f"lightcurves/{o}.txt" for o in ids])}
    with open(src / "lclist-catalog.pkl", "wb") as fh:
        pickle.dump({"objects": objects, "lcformat": "hooks-text"}, fh)
    return src


def test_hook_register_lc_formats(tmp_path):
    calls = Calls()

    class Plugin:
        @hookimpl
        def register_lc_formats(self, app):
            calls.record("register_lc_formats", app=app)
            return [TextFormat]

    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path, plugins=(Plugin(),))
    try:
        assert calls.calls["register_lc_formats"] == [{"app": app}]
        src = text_collection(tmp_path)
        info = add_astrobase_collection(app, base, src, collection_id="text", lcformat={"kind": "hooks-text"},
                                        show_progress=False)
        assert info.lcformat == {"kind": "hooks-text"}
        ds = app.datasets.create(run_search(app, {"type": "cone", "params": {"coords": "150.05 20 10"}}),
                                 OPERATOR.identity)
        status = app.products.request(app, ds, "lightcurves", {"format": "csv"}, wait=True)
        assert status["status"] == "done", status["error"]
        for objectid in ds.data["objectid"]:
            text = read_member(app, status, f"lightcurves/text/{objectid}.csv").decode()
            rows = list(csv.reader(line for line in io.StringIO(text) if not line.startswith("#")))
            assert rows[0] == ["time", "mag", "err"]
            expected = np.loadtxt(src / "lightcurves" / f"{objectid}.txt")
            assert np.array_equal(np.array(rows[1:], dtype=float), expected)
    finally:
        app.products.shutdown()


PAGES_BUILT: list = []


def hello_page(app):
    import panel as pn

    PAGES_BUILT.append(app)
    return pn.pane.Markdown(f"hellofromaplugin {len(app.catalogs.ids())} collections")


class HelloHandler(JSONHandler):
    def get(self):
        self.send_json({"hello": "plugin", "collections": self.app.catalogs.ids()})


class WebPlugin:
    def __init__(self):
        self.calls = Calls()

    @hookimpl
    def register_views(self, app):
        self.calls.record("register_views", app=app)
        return [Page(name="hello", route="/hello-plugin", title="Hello", factory=hello_page)]

    @hookimpl
    def register_routes(self, app):
        self.calls.record("register_routes", app=app)
        return [Route("hello-api", r"/api/hello-plugin", HelloHandler, {"app": app})]


@pytest.fixture(scope="module")
def web(field):
    """The web server (in a thread) of an app with :class:`WebPlugin`; yields (url, app, plugin)."""
    plugin = WebPlugin()
    app = App(field.path, plugins=(plugin,)).start()
    try:
        with server_in_thread(app) as url:
            yield url, app, plugin
    finally:
        app.close()


def test_hook_register_views(web):
    url, app, plugin = web
    assert plugin.calls.calls["register_views"] == [{"app": app}]
    with urllib.request.urlopen(url + "/hello-plugin", timeout=60) as resp:
        page = resp.read().decode()
    assert "<title>Hello</title>" in page
    assert PAGES_BUILT == [app]  # the page's factory built this session's view


def test_hook_register_routes(web):
    url, app, plugin = web
    assert plugin.calls.calls["register_routes"] == [{"app": app}]
    with urllib.request.urlopen(url + "/api/hello-plugin", timeout=60) as resp:
        assert json.load(resp) == {"hello": "plugin", "collections": ["field"]}


def test_hook_register_commands(field, capsys):
    from lcpanel.cli import build_parser

    calls = Calls()

    def add_arguments(parser):
        parser.add_argument("basedir")
        parser.add_argument("--times", type=int, default=1)

    def run(args):
        calls.record("run", args=args)
        print("hello " * args.times + str(App(args.basedir).catalogs.ids()))
        return 5

    class Plugin:
        @hookimpl
        def register_commands(self, app):
            calls.record("register_commands", app=app)
            return [Command("hello-plugin", "say hello", add_arguments, run)]

    app = App(plugins=(Plugin(),))
    assert calls.calls["register_commands"] == [{"app": app}]
    args = build_parser(app).parse_args(["hello-plugin", str(field.path), "--times", "2"])
    assert args._run(args) == 5
    assert capsys.readouterr().out == "hello hello ['field']\n"


# --- catalogs ---------------------------------------------------------------------------------


class CountingCatalog(CatalogBase):
    """A plugin catalog over a collection's SQLite catalog that counts what searches ask."""

    def __init__(self, info, settings):
        super().__init__(info, settings)
        self.inner = Catalog(info, settings)
        self.asked: list[str] = []

    @property
    def skyindex(self):
        self.asked.append("skyindex")
        return self.inner.skyindex

    def fetch_values(self, row_ids, names):
        self.asked.append("fetch_values")
        return self.inner.fetch_values(row_ids, names)

    def passing(self, row_ids, flt):
        self.asked.append("passing")
        return self.inner.passing(row_ids, flt)

    def select(self, flt, sort, limit):
        self.asked.append("select")
        return self.inner.select(flt, sort, limit)


def test_hook_open_catalog(field):
    calls = Calls()
    opened = []

    class Plugin:
        @hookimpl
        def open_catalog(self, app, info):
            calls.record("open_catalog", app=app, info=info)
            opened.append(CountingCatalog(info, app.config.search))
            return opened[-1]

    app = App(field.path, plugins=(Plugin(),))
    plain = run_search(App(field.path), dict(CONE, filter="vmag < 14"))
    result = run_search(app, dict(CONE, filter="vmag < 14"))
    [call] = calls.calls["open_catalog"]
    assert call["app"] is app and call["info"].collection_id == "field"
    assert app.catalogs.get("field") is opened[0]
    assert {"skyindex", "passing", "fetch_values"} <= set(opened[0].asked)
    assert result.rows == plain.rows and result.nmatched == plain.nmatched


# --- life cycle ---------------------------------------------------------------------------------


class LifeCycle:
    def __init__(self):
        self.calls = Calls()

    @hookimpl
    def startup(self, app):
        self.calls.record("startup", app=app)

    @hookimpl
    def shutdown(self, app):
        self.calls.record("shutdown", app=app)


def test_hook_startup():
    plugin = LifeCycle()
    app = App(plugins=(plugin,))
    assert "startup" not in plugin.calls.calls
    app.start()
    app.start()
    assert plugin.calls.calls["startup"] == [{"app": app}]


def test_hook_shutdown():
    plugin = LifeCycle()
    app = App(plugins=(plugin,))
    app.close()
    assert "shutdown" not in plugin.calls.calls  # never started
    with app:
        pass
    assert plugin.calls.calls["shutdown"] == [{"app": app}]


# --- events -------------------------------------------------------------------------------------


class Listener:
    def __init__(self):
        self.calls = Calls()

    @hookimpl
    def collection_added(self, app, collection):
        self.calls.record("collection_added", app=app, collection=collection)

    @hookimpl
    def dataset_created(self, app, dataset):
        self.calls.record("dataset_created", app=app, dataset=dataset)

    @hookimpl
    def dataset_updated(self, app, dataset, changes):
        self.calls.record("dataset_updated", app=app, dataset=dataset, changes=changes)

    @hookimpl
    def dataset_frozen(self, app, dataset):
        self.calls.record("dataset_frozen", app=app, dataset=dataset)

    @hookimpl
    def dataset_deleted(self, app, dataset_id):
        self.calls.record("dataset_deleted", app=app, dataset_id=dataset_id)

    @hookimpl
    def product_built(self, app, dataset, product):
        self.calls.record("product_built", app=app, dataset=dataset, product=product)


def test_hook_collection_added(tmp_path):
    listener = Listener()
    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path, plugins=(listener,))
    cols = random_catalog(20, seed=4, allsky=True)
    info = add_catalog_collection(app, base, write_table(cols, tmp_path / "sky.parquet"), show_progress=False)
    [call] = listener.calls.calls["collection_added"]
    assert call["app"] is app and call["collection"] == info and call["collection"].collection_id == "sky"


@pytest.fixture
def listening(field):
    """An app with a :class:`Listener`, the calls it heard, and a dataset it just created."""
    listener = Listener()
    app = App(field.path, plugins=(listener,))
    return app, listener.calls.calls, app.datasets.create(run_search(app, CONE), OPERATOR.identity)


def test_hook_dataset_created(listening):
    app, calls, ds = listening
    [call] = calls["dataset_created"]
    assert call["app"] is app and call["dataset"].dataset_id == ds.dataset_id
    assert app.datasets.get(ds.dataset_id, OPERATOR).nobjects == call["dataset"].nobjects  # written before


def test_hook_dataset_updated(listening):
    app, calls, ds = listening
    drop = ds.keys()[:2]
    app.datasets.edit(ds.dataset_id, OPERATOR, {"name": "renamed", "remove_objects": drop})
    [call] = calls["dataset_updated"]
    assert call["app"] is app and call["changes"] == {"name", "objects"}
    assert call["dataset"].name == "renamed" and call["dataset"].nobjects == ds.nobjects - 2


def test_hook_dataset_frozen(listening):
    app, calls, ds = listening
    frozen = app.datasets.freeze(ds.dataset_id, OPERATOR)
    [call] = calls["dataset_frozen"]
    assert call["app"] is app and call["dataset"].dataset_id == frozen.dataset_id
    assert call["dataset"].frozen and call["dataset"].parent == ds.dataset_id
    app.datasets.freeze(frozen.dataset_id, OPERATOR)  # already frozen: nothing new
    assert len(calls["dataset_frozen"]) == 1


def test_hook_dataset_deleted(listening):
    app, calls, ds = listening
    app.datasets.delete(ds.dataset_id, OPERATOR)
    assert calls["dataset_deleted"] == [{"app": app, "dataset_id": ds.dataset_id}]


def test_hook_product_built(field):
    listener = Listener()

    class Plugin:
        @hookimpl
        def register_product_builders(self, app):
            return [ObjectIds]

    app = App(field.path, plugins=(listener, Plugin()))
    try:
        ds = app.datasets.create(run_search(app, CONE), OPERATOR.identity)
        # newline-separated: not the zip test_hook_register_product_builders made (a reused zip is not "built")
        status = app.products.request(app, ds, "objectid_list", {"sep": "newline"}, wait=True)
        assert listener.calls.events["product_built"].wait(60)  # sent from a worker thread after the build
        [call] = listener.calls.calls["product_built"]
        path = app.products.file_path(status["key"], "objectid_list")
        assert call["app"] is app and call["dataset"].dataset_id == ds.dataset_id
        assert call["product"]["key"] == status["key"]
        assert call["product"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    finally:
        app.products.shutdown()
