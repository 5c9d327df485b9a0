"""Disk quotas and retention (issue 15, finding 6): the anonymous disk quota holds against
repeated cross-matches, the whole-dataset product is refused at planning time, comment
caps, empty searches save nothing, ``lcpanel usage`` and ``lcpanel gc`` (a dry run changes
nothing; a real one removes exactly the expired things, never frozen datasets or their
products)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from support.data import catalog_basedir, set_config, snapshot
from support.clients import call
from support.servers import running_server

ANON = "anon:" + "a" * 24
OLD = "2000-01-01T00:00:00.000+00:00"


def dataset_files(base: Path) -> list[Path]:
    return list((base / "datasets").glob("??/??/*.pkl"))


def index_count(base: Path) -> int:
    with sqlite3.connect(base / "datasets" / "index.sqlite") as conn:
        return conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]


# --- over HTTP: a catalog collection ---------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_server(tmp_path_factory):
    base, cols = catalog_basedir(tmp_path_factory.mktemp("quota"), 3000, seed=21, collection_id="field",
                                  meta={"name": "Field"})
    set_config(base.path, "[limits]\nanonymous_requests_per_minute = 0\n\n[quotas]\nanonymous_disk_mb = 0.5\n")
    with running_server(base.path) as (url, _proc):
        yield url, base.path, cols


def test_anonymous_crossmatches_stay_inside_the_disk_quota(catalog_server):
    url, base, cols = catalog_server
    lines = "\n".join(f"t{i} {cols['ra'][i]:.7f} {cols['decl'][i]:.7f}" for i in range(0, 1200, 3))
    spec = {"type": "xmatch", "params": {"targets": lines, "radius_arcsec": 1.0}, "limit": 1000}
    before = sum(p.stat().st_size for p in dataset_files(base))
    answers = [call(f"{url}/api/search", spec) for _ in range(20)]
    ok = [a for status, a in answers if status == 200]
    refused = [a for status, a in answers if status != 200]
    assert ok and refused, [s for s, _ in answers]
    assert all(a["nreturned"] == 400 for a in ok)
    assert {status for status, _ in answers} == {200, 413}
    assert "disk quota" in refused[0]["error"] and "0.5 MB" in refused[0]["error"]
    grown = sum(p.stat().st_size for p in dataset_files(base)) - before
    assert 0 < grown <= 500_000
    assert len(dataset_files(base)) == len(ok) == index_count(base)


def test_an_empty_search_saves_no_dataset(catalog_server):
    url, base, cols = catalog_server
    files, rows = len(dataset_files(base)), index_count(base)
    status, answer = call(f"{url}/api/search", {"type": "cone", "params": {"coords": "10.0 -60.0 1"}})
    assert status == 200 and answer["nreturned"] == 0
    assert answer["dataset_id"] is None and answer["dataset_url"] is None
    assert any("no dataset was saved" in m for m in answer["messages"])
    assert len(dataset_files(base)) == files and index_count(base) == rows


def test_cli_search_without_matches_saves_nothing(catalog_server, capsys):
    from lcpanel.cli import main

    url, base, cols = catalog_server
    files = len(dataset_files(base))
    assert main(["search", str(base), "cone", "--coords", "10.0 -60.0 1", "--save"]) == 0
    assert "no dataset was saved" in capsys.readouterr().err
    assert len(dataset_files(base)) == files


# --- products: an astrobase collection with light curves and checkplots -------------------------------


@pytest.fixture(scope="module")
def lc_base(csv_collection, tmp_path_factory):
    """A basedir with the demo collection; anonymous products capped at half its files."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.search import run_search

    base = Basedir.init(tmp_path_factory.mktemp("lcq") / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    # what the whole-dataset zip holds: every object's light curve, checkplot and period-finding file
    app = App(base.path)
    info = app.catalogs.get("demo").info
    rows = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}}).rows
    files = sum(info.object_file(r[c]).stat().st_size for r in rows for c in ("lcfname", "cpfname", "pffname")
                if r.get(c))
    cap_mb = files / 2 / 1e6
    set_config(base.path, f"[limits]\nanonymous_requests_per_minute = 0\n\n[quotas]\n"
                          f"anonymous_product_mb = {cap_mb:.6f}\nmax_comments_per_dataset = 5\n"
                          "\n[reviews]\nmax_comment_chars = 100\n")
    return base.path, files, cap_mb


def test_whole_dataset_product_is_refused_at_planning_for_anonymous(lc_base):
    base, files, cap_mb = lc_base
    with running_server(base) as (url, _proc):
        status, found = call(f"{url}/api/search", {"type": "filter", "params": {"where": "ndet > 0"}})
        assert status == 200 and found["nreturned"] == 24
        products = f"{url}/api/datasets/{found['dataset_id']}/products"
        before = snapshot(base / "products")
        status, answer = call(products, {"builder": "dataset"})
        assert status == 413, answer
        # the estimate (at least the files the zip would hold) and the cap, in MB
        assert f"{cap_mb:,.1f} MB" in answer["error"] and "anonymous" in answer["error"]
        estimate = float(answer["error"].split("about ")[1].split(" MB")[0].replace(",", ""))
        assert files <= estimate * 1e6 * 1.001 < files * 1.05
        assert snapshot(base / "products") == before  # nothing planned, queued or written
        # a product under the cap is built
        one = found["rows"][0]
        status, answer = call(products, {"builder": "lightcurves", "objects": [f"demo/{one['objectid']}"]})
        assert status in (200, 202), answer


def test_comment_caps(lc_base):
    from lcpanel.app import App
    from lcpanel.core.datasets import Principal
    from lcpanel.core.search import run_search
    from lcpanel.errors import TooLarge, UserError

    base, files, cap_mb = lc_base
    app = App(base)
    ds = app.datasets.create(run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 3}),
                             ANON)
    visitor = Principal("anon:" + "b" * 24)
    path = app.datasets.path(ds.dataset_id)
    unchanged = path.read_bytes()
    with pytest.raises(UserError, match="at most 100 characters"):
        app.datasets.edit(ds.dataset_id, visitor, {"comment": "x" * 101})
    assert path.read_bytes() == unchanged
    key = ds.keys()[0]
    for i in range(4):
        app.datasets.edit(ds.dataset_id, visitor, {"comment": f"c{i}" + "y" * 90})
    app.datasets.edit(ds.dataset_id, visitor, {"object_comment": {"key": key, "text": "on an object"}})
    full = path.read_bytes()
    for change in ({"comment": "one more"}, {"object_comment": {"key": key, "text": "one more"}}):
        with pytest.raises(TooLarge, match="holds 5 comments, the most one dataset may hold is 5"):
            app.datasets.edit(ds.dataset_id, visitor, change)
    assert path.read_bytes() == full
    got = app.datasets.get(ds.dataset_id, visitor)
    assert len(got.comments) == 4 and sum(map(len, got.object_comments.values())) == 1


# --- usage and gc ---------------------------------------------------------------------------------


def _age_dataset(app, dataset_id: str) -> None:
    with app.datasets._connect() as conn:
        conn.execute("UPDATE datasets SET updated = ? WHERE dataset_id = ?", (OLD, dataset_id))


def _age_product(app, key: str) -> None:
    with app.products.connect() as conn:
        conn.execute("UPDATE products SET updated = ?, created = ? WHERE key = ?", ("2000-01-01T00:00:00+00:00",
                                                                                   "2000-01-01T00:00:00+00:00", key))
    from lcpanel.core.access.quotas import ledger

    ledger(app).connect().execute("UPDATE usage SET last_used = 0 WHERE item = ?", (key,))


def test_usage_and_gc(lc_base, tmp_path, capsys):
    from lcpanel.app import App
    from lcpanel.cli import main
    from lcpanel.core.datasets import Principal
    from lcpanel.core.access.quotas import ledger, product_check, save_search
    from lcpanel.core.retention import collect, collect_if_due
    from lcpanel.core.search import run_search
    from lcpanel.core.vo.uws import JobStore

    base, _files, _cap = lc_base
    app = App(base)
    for p in dataset_files(base):  # start from an empty basedir state
        app.datasets.delete(p.stem, Principal("cli:operator", "admin"))
        app.notify("dataset_deleted", dataset_id=p.stem)

    def search(limit):
        return run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": limit})

    anon, other, alice = Principal(ANON), Principal("anon:" + "c" * 24), Principal("user:alice", "user")
    expired_anon = save_search(app, search(2), anon, "10.0.0.1")
    public_anon = save_search(app, search(2), anon, "10.0.0.1", visibility="public")
    fresh_anon = save_search(app, search(3), other, "10.0.0.2")
    old_user = save_search(app, search(4), alice, None)
    kept_source = save_search(app, search(5), anon, "10.0.0.1")
    frozen = app.datasets.freeze(kept_source.dataset_id, anon)
    for ds in (expired_anon, public_anon, old_user, frozen):  # frozen: old, anonymous, yet kept
        _age_dataset(app, ds.dataset_id)

    def product(ds, viewer, address, objects=None):
        status = app.products.request(app, ds, "lightcurves", {"format": "csv"}, objects, wait=True,
                                      check=product_check(app, viewer, address))
        assert status["status"] == "done"
        return status["key"]

    p_expired_ds = product(expired_anon, anon, "10.0.0.1")
    p_frozen = product(frozen, anon, "10.0.0.1")
    p_unused = product(old_user, alice, None)
    p_used = product(public_anon, anon, "10.0.0.1", [public_anon.keys()[0]])
    for key in (p_expired_ds, p_frozen, p_unused):
        _age_product(app, key)
    jobs = JobStore(base / "vo" / "jobs")
    destroyed = jobs.create("anon:x", {"query": "SELECT 1"}, quota_owner="ip:10.0.0.1")
    jobs.update(destroyed.job_id, destruction=time.time() - 10)
    running = jobs.create("anon:x", {"query": "SELECT 1"}, quota_owner="ip:10.0.0.1")
    jobs.update(running.job_id, destruction=time.time() - 10, phase="EXECUTING", pid=None)
    live = jobs.create("user:alice", {"query": "SELECT 1"}, quota_owner="user:alice")

    # usage per identity, from the command line
    assert main(["usage", str(base), "--format", "json"]) == 0
    rows = {r["owner"]: r for r in json.loads(capsys.readouterr().out)}
    ip1 = rows["ip:10.0.0.1"]
    assert ip1["datasets"] == 3 and ip1["products"] == 3 and ip1["jobs"] == 2
    assert rows["anon:" + "a" * 24]["datasets"] == 1  # the frozen copy: made by freezing, not by a search
    assert rows["ip:10.0.0.2"]["datasets"] == 1 and rows["user:alice"]["datasets"] == 1
    assert rows["user:alice"]["products"] == 1 and rows["user:alice"]["jobs"] == 1
    sizes = {ds.dataset_id: app.datasets.path(ds.dataset_id).stat().st_size
             for ds in (expired_anon, public_anon, kept_source)}
    assert ip1["bytes"] >= sum(sizes.values())

    # a dry run lists exactly the expired things and changes nothing
    ledger(app)  # the ledger exists before the snapshot
    before = snapshot(base)
    assert main(["gc", str(base), "--dry-run", "--format", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True
    assert planned["datasets"] == [expired_anon.dataset_id]
    assert set(planned["products"]) == {p_expired_ds, p_unused}
    assert planned["jobs"] == [destroyed.job_id]
    assert snapshot(base) == before

    # a real pass removes exactly those
    report = collect(app)
    assert report["datasets"] == [expired_anon.dataset_id]
    assert set(report["products"]) == {p_expired_ds, p_unused}
    assert report["jobs"] == [destroyed.job_id]
    remaining = {p.stem for p in dataset_files(base)}
    assert remaining == {public_anon.dataset_id, fresh_anon.dataset_id, old_user.dataset_id,
                         kept_source.dataset_id, frozen.dataset_id}
    for key, builder in ((p_expired_ds, "lightcurves"), (p_unused, "lightcurves")):
        assert not app.products.file_path(key, builder).exists()
    for key in (p_frozen, p_used):
        assert app.products.file_path(key, "lightcurves").exists()
    assert [p["key"] for p in app.products.for_dataset(frozen.dataset_id)] == [p_frozen]
    assert {d.name for d in (base / "vo" / "jobs").iterdir()} == {running.job_id, live.job_id}
    assert {r["item"] for r in ledger(app).rows()} >= {public_anon.dataset_id, p_frozen, p_used}
    assert not {expired_anon.dataset_id, p_expired_ds, p_unused} & {r["item"] for r in ledger(app).rows()}
    # nothing more expired: a second pass removes nothing
    again = collect(app)
    assert not (again["datasets"] or again["products"] or again["jobs"])

    # the periodic pass: once per interval across processes
    (base / "gc.stamp").unlink(missing_ok=True)
    assert collect_if_due(app, 3600) is not None
    assert collect_if_due(app, 3600) is None
