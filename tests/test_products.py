"""Products built in worker processes: contents, manifests, reuse, selections, rebuilds
after edits, killed builds, and downloads over HTTP with Range and access control."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from support.clients import send
from support.data import random_catalog, write_table

from lcpanel.core import products as products_mod
from lcpanel.core.datasets import Principal
from lcpanel.core.search import run_search
from lcpanel.errors import UserError

pytestmark = pytest.mark.slow
ALICE = Principal("anon:alice")


@pytest.fixture(scope="module")
def app(demo_app):
    return demo_app


@pytest.fixture
def dataset(app):
    res = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 1000})
    return app.datasets.create(res, ALICE.identity)


def read_zip(app, status) -> zipfile.ZipFile:
    path = app.products.file_path(status["key"], status["builder"])
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == status["sha256"]
    zf = zipfile.ZipFile(io.BytesIO(data))
    sums = dict(line.split("  ")[::-1] for line in zf.read("SHA256SUMS").decode().splitlines())
    for name in zf.namelist():
        if name != "SHA256SUMS":
            assert hashlib.sha256(zf.read(name)).hexdigest() == sums[name]
    assert set(sums) == set(zf.namelist()) - {"SHA256SUMS"}
    return zf



def app_with_builder(demo_app, builder):
    """An App over the demo basedir with ``builder`` registered as a plugin registers it."""
    from lcpanel.app import App
    from lcpanel.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_product_builders(self, app):
            return [builder]

    return App(demo_app.basedir, plugins=(Plugin(),))


def small_dataset(app, n: int):
    return app.datasets.create(run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": n}),
                               ALICE.identity)

@pytest.mark.parametrize("builder,options,folder,suffix", [
    ("lightcurves", {}, "lightcurves", ".csv.gz"),
    ("lightcurves", {"format": "csv"}, "lightcurves", ".csv"),
    ("lightcurves", {"format": "fits"}, "lightcurves", ".fits"),
    ("lightcurves", {"format": "votable"}, "lightcurves", ".vot"),
    ("checkplots", {}, "checkplots", ".pkl"),
    ("periodfinding", {}, "periodfinding", ".pkl"),
])
def test_each_product(app, dataset, builder, options, folder, suffix):
    status = app.products.request(app, dataset, builder, options, wait=True)
    assert status["status"] == "done" and status["progress"] == 1.0, status
    zf = read_zip(app, status)
    members = [n for n in zf.namelist() if n.startswith(folder + "/demo/")]
    assert len(members) == dataset.nobjects
    assert all(n.endswith(suffix) for n in members)
    if options.get("format") == "csv":
        text = zf.read(members[0]).decode()
        assert text.startswith("# objectid:") and "timesys" in text


@pytest.mark.parametrize("options", [{}, {"format": "csv"}, {"format": "csv.gz"}, {"format": "fits"},
                                     {"format": "ecsv"}, {"format": "votable"}, {"format": "parquet"},
                                     {"format": "votable", "times": "BJD_TDB"}])  # a column added
def test_the_size_estimate_bounds_the_zip(app, options):
    """The estimate a product's size cap and disk quota are checked against, before the
    build, is not below the zip the build writes: for every light-curve format (and one with
    a time column added by the request), for the whole demo dataset and for a single object
    (where the fixed parts of a member weigh most)."""
    builder = app.product_builders.get("lightcurves")
    for n in (1000, 1):
        ds = small_dataset(app, n)
        entries = builder().plan(app, ds, list(range(ds.nobjects)), builder.validate_options(options))
        status = app.products.request(app, ds, "lightcurves", options, wait=True)
        app.datasets.delete(ds.dataset_id, ALICE)  # its zips stay no other test's
        assert status["status"] == "done", status
        assert status["size"] <= products_mod.estimate_bytes(entries), (options, n, status["size"])


def test_dataset_zip_and_selection(app, dataset):
    keys = dataset.keys()[:3]
    status = app.products.request(app, dataset, "dataset", objects=keys, wait=True)
    zf = read_zip(app, status)
    names = zf.namelist()
    assert sum(n.startswith("lightcurves/") for n in names) == 3
    assert sum(n.startswith("checkplots/") for n in names) == 3
    assert sum(n.startswith("periodfinding/") for n in names) == 3
    summary = zf.read("objects.csv").decode().splitlines()
    assert len(summary) == 4 and summary[0].startswith("collection,objectid")
    assert json.loads(zf.read("dataset.json"))["dataset_id"] == dataset.dataset_id


def test_identical_inputs_reuse_the_zip(app, dataset):
    first = app.products.request(app, dataset, "checkplots", wait=True)
    path = app.products.file_path(first["key"], "checkplots")
    mtime = path.stat().st_mtime_ns
    other = app.datasets.create(run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 1000}),
                                "anon:someone-else")
    again = app.products.request(app, other, "checkplots")
    assert again["key"] == first["key"] and again["status"] == "done"
    assert path.stat().st_mtime_ns == mtime


def test_edit_rebuilds_and_deletes(app, dataset):
    # ECSV: no other test's dataset refers to this zip, so it becomes garbage
    status = app.products.request(app, dataset, "lightcurves", {"format": "ecsv"}, wait=True)
    old = app.products.file_path(status["key"], "lightcurves")
    ds, changed = app.datasets.edit(dataset.dataset_id, ALICE, {"remove_objects": dataset.keys()[:5]})
    [linked] = app.products.for_dataset(ds.dataset_id)
    assert linked["key"] != status["key"]
    done = app.products.wait(linked["key"])
    assert done["status"] == "done"
    assert len([n for n in read_zip(app, done).namelist() if n.startswith("lightcurves/")]) == ds.nobjects
    assert not old.exists(), "a zip no dataset refers to is deleted"


@pytest.mark.parametrize("builder,options,objects,match", [
    ("nope", {}, None, "unknown product builder"),
    ("lightcurves", {"format": "xls"}, None, "must be one of"),
    ("lightcurves", {"fromat": "csv"}, None, "did you mean"),
    ("checkplots", {}, ["demo/NOPE"], "not in the dataset"),
    ("checkplots", {}, [], "non-empty"),
    ("lightcurves", 1, None, "options must be an object"),            # found by fuzzing: was a 500
    ("lightcurves", [["format", "csv"]], None, "options must be an object"),
])
def test_bad_requests(app, dataset, builder, options, objects, match):
    with pytest.raises(UserError, match=match):
        app.products.request(app, dataset, builder, options, objects)


def test_killed_build_leaves_nothing_and_can_be_retried(app, dataset, monkeypatch):
    from dataclasses import asdict

    entries = [asdict(e) for e in app.product_builders.get("lightcurves")().plan(
        app, dataset, list(range(dataset.nobjects)), {"format": "fits"})] * 40
    key = "f" * 64
    target = app.products.file_path(key, "lightcurves")
    with app.products.connect() as conn:
        conn.execute("INSERT OR REPLACE INTO products (key, builder, options, filename, status, done, total, "
                     "heartbeat, created, updated) VALUES (?, 'lightcurves', '{}', 'x.zip', 'queued', 0, ?, ?, '', '')",
                     (key, len(entries), time.time()))
    code = ("import json, sys; from lcpanel.core.products import build_product; "
            "build_product(sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), sys.argv[4])")
    spec = Path(app.basedir) / "entries.json"
    spec.write_text(json.dumps(entries))
    proc = subprocess.Popen([sys.executable, "-c", code, str(app.products.index_path), key, str(spec), str(target)])
    deadline = time.monotonic() + 60
    while app.products.status(key)["done"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None and app.products.status(key)["done"] >= 5, "the build was running when killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists(), "no partial zip where downloads look"
    monkeypatch.setattr(products_mod, "STALE_AFTER_S", 0.2)
    time.sleep(0.3)
    assert app.products.status(key)["status"] == "failed"
    retried = app.products.request(app, dataset, "lightcurves", {"format": "fits"}, wait=True)
    assert retried["status"] == "done"


def test_a_build_killed_after_its_zip_is_in_place_is_completed_on_recovery(app, dataset, monkeypatch):
    """A worker killed between renaming the zip into place and marking the product done
    (the window the SIGKILL test of test_resilience.py once hit): the zip at the final path
    already has its SHA256, size and manifest recorded, and the next start's recovery
    checks the file against them and marks the product done; a file that does not match is
    removed and the product is rebuilt on request."""
    from dataclasses import asdict

    entries = [asdict(e) for e in app.product_builders.get("lightcurves")().plan(
        app, dataset, list(range(dataset.nobjects)), {"format": "fits"})][:3]
    real_set = products_mod._set

    class Killed(BaseException):
        pass

    def kill_before_done(conn, key, **fields):
        if fields.get("status") == "done":
            raise Killed  # as SIGKILL would: nothing after this runs
        real_set(conn, key, **fields)

    for tamper in (False, True):
        key = ("e" if tamper else "d") * 64
        target = app.products.file_path(key, "lightcurves")
        with app.products.connect() as conn:
            conn.execute("INSERT OR REPLACE INTO products (key, builder, options, filename, status, done, total, "
                         "heartbeat, created, updated) VALUES (?, 'lightcurves', '{}', 'x.zip', 'queued', 0, ?, ?, "
                         "'', '')", (key, len(entries), time.time()))
        monkeypatch.setattr(products_mod, "_set", kill_before_done)
        with pytest.raises(Killed):
            products_mod.build_product(str(app.products.index_path), key, entries, str(target))
        monkeypatch.setattr(products_mod, "_set", real_set)
        with app.products.connect() as conn:
            row = conn.execute("SELECT * FROM products WHERE key = ?", (key,)).fetchone()
        assert target.exists() and row["status"] == "running"
        assert row["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
        assert row["size"] == target.stat().st_size and len(json.loads(row["manifest"])) == len(entries)
        if tamper:
            target.write_bytes(target.read_bytes()[:-1])
        app.products.recover()
        status = app.products.status(key)
        if tamper:
            assert not target.exists() and status["status"] != "done"
        else:
            assert status["status"] == "done" and status["sha256"] == row["sha256"]


# --- over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


class Client:
    """A browser-like client: keeps its session cookie."""

    def __init__(self, url):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def call(self, path, body=None, method=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Origin": self.url, **(headers or {})}
        return send(urllib.request.Request(self.url + path, data=data, method=method, headers=headers), self.opener,
                    timeout=60)


def test_download_with_range_and_privacy(server):
    alice, bob = Client(server), Client(server)
    status, _, body = alice.call("/api/search?visibility=private", {"type": "cone", "params": {"coords": "290 45 30"}})
    assert status == 200
    ds_id = json.loads(body)["dataset_id"]
    status, _, body = alice.call(f"/api/datasets/{ds_id}/products", {"builder": "lightcurves",
                                                                     "options": {"format": "csv"}})
    assert status in (200, 202)
    product = json.loads(body)
    deadline = time.monotonic() + 120
    while product["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        product = json.loads(alice.call(product["url"])[2])
    assert product["status"] == "done", product
    status, headers, whole = alice.call(product["download"])
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert hashlib.sha256(whole).hexdigest() == headers["X-Content-SHA256"] == product["sha256"]
    status, headers, part = alice.call(product["download"], headers={"Range": "bytes=100-"})
    assert status == 206 and part == whole[100:]
    # someone else sees nothing of a private dataset: not the dataset, not its products
    for path in (f"/api/datasets/{ds_id}", f"/api/datasets/{ds_id}/products", product["url"], product["download"]):
        status, _, body = bob.call(path)
        assert status == 404, path
        assert ds_id not in body.decode()
    urls = alice.call(f"/api/datasets/{ds_id}/urls")[2].decode().split()
    assert urls and all(u.startswith(server + "/api/collections/demo/objects/") for u in urls)
    status, headers, lc = alice.call(urls[0].replace(server, "") + "?format=csv")
    assert status == 200 and lc.startswith(b"# objectid:")
    assert hashlib.sha256(lc).hexdigest() == headers["X-Content-SHA256"]


def test_finder_charts_over_http(server):
    client = Client(server)
    status, _, body = client.call("/api/search", {"type": "cone", "params": {"coords": "290 45 20"}})
    ds_id = json.loads(body)["dataset_id"]
    status, headers, png = client.call(f"/api/datasets/{ds_id}/finder.png?size=400")
    assert status == 200 and headers["Content-Type"] == "image/png" and png.startswith(b"\x89PNG")
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (400, 400)
    status, _, png = client.call("/api/collections/demo/objects/LCP-000003/finder.png")
    assert status == 200 and png.startswith(b"\x89PNG")
    assert client.call("/api/collections/demo/objects/NOPE/finder.png")[0] == 404
    assert client.call(f"/api/datasets/{ds_id}/finder.png?size=99999")[0] == 400


def test_dataset_and_product_cli(app, tmp_path):
    def lcpanel(*args, check=True):
        out = subprocess.run([sys.executable, "-m", "lcpanel", *map(str, args)], capture_output=True, text=True)
        if check:
            assert out.returncode == 0, out.stderr
        return out

    out = lcpanel("search", app.basedir, "cone", "--coords", "290 45 20", "--save", "--visibility", "private")
    ds_id = out.stderr.split("dataset ")[1].split()[0]
    assert ds_id in lcpanel("dataset", "list", app.basedir).stdout
    shown = json.loads(lcpanel("dataset", "show", app.basedir, ds_id, "--format", "json").stdout)
    first = f"{shown['rows'][0]['collection']}/{shown['rows'][0]['objectid']}"
    lcpanel("dataset", "edit", app.basedir, ds_id, "--name", "CLI set", "--remove", first)
    assert json.loads(lcpanel("dataset", "show", app.basedir, ds_id, "--format", "json").stdout)["name"] == "CLI set"
    built = lcpanel("product", "build", app.basedir, ds_id, "lightcurves", "--format", "csv", "-q").stdout.split()
    key, sha = built[0], built[-1]
    lcpanel("product", "get", app.basedir, ds_id, key, "--output", tmp_path / "lc.zip")
    assert hashlib.sha256((tmp_path / "lc.zip").read_bytes()).hexdigest() == sha
    bad = lcpanel("dataset", "show", app.basedir, "0" * 64, check=False)
    assert bad.returncode == 2 and "no such dataset" in bad.stderr
    bad = lcpanel("product", "build", app.basedir, ds_id, "nope", check=False)
    assert bad.returncode == 2 and "unknown product builder" in bad.stderr
    lcpanel("dataset", "delete", app.basedir, ds_id)
    assert ds_id not in lcpanel("dataset", "list", app.basedir).stdout


def test_checkplot_tiles_over_http(server):
    client = Client(server)
    status, _, body = client.call("/api/collections/demo/objects/LCP-000003/tiles")
    assert status == 200
    tiles = json.loads(body)
    assert tiles["unphased"] and tiles["phased"]
    for url in [tiles["finder"], tiles["unphased"]] + [p["url"] for p in tiles["phased"]]:
        if url:
            status, headers, png = client.call(url)
            assert status == 200 and png.startswith(b"\x89PNG"), url
    assert client.call("/api/collections/demo/objects/LCP-000003/tiles/phased-99.png")[0] == 404
    assert client.call("/api/collections/demo/objects/NOPE/tiles")[0] == 404


def test_search_over_several_collections_keeps_file_columns(csv_collection, tmp_path):
    """A catalog-only collection beside an astrobase one: a search over both keeps the
    light-curve/checkplot/period-finding columns (empty for the catalog's objects), so the
    products hold every file there is."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection

    base = Basedir.init(tmp_path / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    cols = random_catalog(300, seed=9, center=(290.0, 45.0), radius_deg=0.6)
    add_catalog_collection(App(base.path), base, write_table(cols, tmp_path / "plain.parquet"),
                           collection_id="plain", show_progress=False)
    app = App(base.path)
    try:
        res = run_search(app, {"type": "cone", "params": {"coords": "290.0 45.0 60"}, "limit": 5000})
        by_collection = {c: sum(1 for r in res.rows if r["collection"] == c) for c in ("demo", "plain")}
        assert by_collection["demo"] > 0 and by_collection["plain"] > 0
        names = [c.name for c in res.columns]
        assert {"lcfname", "cpfname", "pffname"} <= set(names)
        assert all(r["lcfname"] is None for r in res.rows if r["collection"] == "plain")
        assert all(r["lcfname"] for r in res.rows if r["collection"] == "demo")
        ds = app.datasets.create(res, ALICE.identity)
        status = app.products.request(app, ds, "lightcurves", {}, wait=True)
        zf = read_zip(app, status)
        members = [n for n in zf.namelist() if n.startswith("lightcurves/")]
        assert len(members) == by_collection["demo"]
        # filters and sorts still take only the columns every collection has
        with pytest.raises(UserError, match="lcfname"):
            run_search(app, {"type": "cone", "params": {"coords": "290.0 45.0 60"}, "filter": "lcfname is not null"})
    finally:
        app.products.shutdown()


def test_product_built_hook_is_called_once_per_build(demo_app):
    """Plugins hear of each finished build (``product_built``), not of reuses."""
    from lcpanel.app import App
    from lcpanel.hookspecs import hookimpl

    heard = []

    class Listener:
        @hookimpl
        def product_built(self, app, dataset, product):
            heard.append((dataset.dataset_id, product["key"], product["status"], product["sha256"]))

    app = App(demo_app.basedir, plugins=(Listener(),))
    try:
        res = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "sort": "objectid", "limit": 3})
        ds = app.datasets.create(res, ALICE.identity)
        status = app.products.request(app, ds, "lightcurves", {"format": "votable"}, wait=True)
        deadline = time.monotonic() + 30
        while not heard and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heard == [(ds.dataset_id, status["key"], "done", status["sha256"])]
        app.products.request(app, ds, "lightcurves", {"format": "votable"}, wait=True)  # reused
        time.sleep(0.5)
        assert len(heard) == 1
    finally:
        app.products.shutdown()


def test_call_entries_run_in_the_worker(demo_app, tmp_path):
    """A builder's ``call`` entry runs its function in the worker process; its inputs'
    size and time join the content key; a function that returns no bytes fails the build
    with a message."""
    from lcpanel.core.products import Entry, ProductBuilder

    note = tmp_path / "input.txt"
    note.write_text("v1")

    class Notes(ProductBuilder):
        name, title = "notes", "Notes"
        options = {"good": ("yes", "no")}

        def plan(self, app, dataset, rows, options):
            func = "codecs:encode" if options["good"] == "yes" else "textwrap:dedent"
            args = {"obj": f"{len(rows)} objects"} if options["good"] == "yes" else {"text": "not bytes"}
            return [Entry(arcname="notes.txt", kind="call", func=func, args=args, inputs=(str(note),))]

    with pytest.raises(ValueError, match="package.module:function"):
        Entry(arcname="x", kind="call", func="os.system")
    app = app_with_builder(demo_app, Notes)
    try:
        ds = small_dataset(app, 5)
        status = app.products.request(app, ds, "notes", {}, wait=True)
        assert status["status"] == "done", status
        assert read_zip(app, status).read("notes.txt") == b"5 objects"
        assert app.products.request(app, ds, "notes", {})["key"] == status["key"]  # same inputs: reused
        os.utime(note, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert app.products.request(app, ds, "notes", {}, wait=True)["key"] != status["key"]
        failed = app.products.request(app, ds, "notes", {"good": "no"}, wait=True)
        assert failed["status"] == "failed" and "returned str, not bytes" in failed["error"]
    finally:
        app.products.shutdown()


def test_members_made_ahead_are_written_in_entry_order_around_a_stream(demo_app):
    """The builder makes a few members before it writes them; a ``stream`` member between
    them is written in its place, each member once, with its SHA-256, and progress counts
    every member; a member that cannot be made fails the build with its name, whatever was
    made before it."""
    from lcpanel.core.products import Entry, ProductBuilder

    class Mixed(ProductBuilder):
        name, title = "mixed", "Mixed"
        options = {"fail": ("no", "yes")}

        def plan(self, app, dataset, rows, options):
            out = [Entry(arcname=f"a/{i:02d}.txt", kind="call", func="codecs:encode", args={"obj": f"a{i} " * i})
                   for i in range(products_mod.MADE_AHEAD + 3)]
            out.append(Entry(arcname="stream.txt", kind="stream", func="support.streams:repeat",
                             args={"text": "abc", "times": 1000}))
            out += [Entry(arcname=f"b/{i:02d}.gz", kind="bytes", data=f"b{i}".encode()) for i in range(5)]
            if options["fail"] == "yes":
                out.insert(4, Entry(arcname="a/bad.txt", kind="call", func="codecs:encode", args={"obj": 12}))
            return out

    app = app_with_builder(demo_app, Mixed)
    try:
        ds = small_dataset(app, 3)
        status = app.products.request(app, ds, "mixed", {}, wait=True)
        assert status["status"] == "done", status
        names = [f"a/{i:02d}.txt" for i in range(products_mod.MADE_AHEAD + 3)] + ["stream.txt"]
        names += [f"b/{i:02d}.gz" for i in range(5)]
        zf = read_zip(app, status)
        assert zf.namelist() == names + ["SHA256SUMS"]
        assert zf.read("a/03.txt") == b"a3 a3 a3 " and zf.read("stream.txt") == b"abc" * 1000
        assert zf.read("b/04.gz") == b"b4"
        assert status["done"] == status["total"] == len(names)
        failed = app.products.request(app, ds, "mixed", {"fail": "yes"}, wait=True)
        assert failed["status"] == "failed" and failed["error"].startswith("a/bad.txt could not be made")
    finally:
        app.products.shutdown()
