"""lcpanel-hats as an installed plugin: commands, registration, settings, errors, and
searches through the app on a small exported catalog (the 1e6 equivalence test is in
test_hats_equivalence_1e6.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from lcpanel.plugin_api import (
    add_catalog_collection, App, Basedir, Conflict, IngestError, NotFound, remove_collection, run_search,
    UserError)

ROOT = Path(__file__).resolve().parents[3]
N = 20_000


def _generator():
    import make_collection  # examples/, installed (pip install -e examples)

    return make_collection


def _set_scheduler(basedir: Path, text: str) -> None:
    toml = basedir / "lcpanel.toml"
    body = toml.read_text().split("\n[plugin.hats]")[0]
    toml.write_text(body + "\n[plugin.hats]\n" + text + "\n")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A basedir with a 2e4-object all-sky catalog ``sq`` and its HATS export ``hx``."""
    from lcpanel_hats.export import export_collection
    from lcpanel_hats.register import add_hats_collection

    tmp = tmp_path_factory.mktemp("hats-small")
    _generator().make_plain_catalog(tmp / "cat.parquet", N, seed=11, allsky=True)
    base = Basedir.init(tmp / "base")
    _set_scheduler(base.path, 'scheduler = "synchronous"')
    app = App(base.path)
    add_catalog_collection(app, base, tmp / "cat.parquet", collection_id="sq", show_progress=False)
    export_collection(base.path, "sq", tmp / "sq.hats", workers=1, show_progress=False)
    add_hats_collection(app, base, tmp / "sq.hats", collection_id="hx")
    return tmp, base.path


def _rows(result):
    return [{k: v for k, v in row.items() if k != "collection"} for row in result.rows]


def test_plugin_is_found_through_the_entry_point():
    app = App()
    assert "hats" in app.plugin_names()
    assert app.commands.owner("hats-export") == "hats"
    assert app.commands.owner("hats-add") == "hats"


def test_hats_collection_is_listed_and_searchable_with_the_builtin_types(small):
    tmp, basedir = small
    infos = {i.collection_id: i for i in Basedir(basedir).collections()}
    assert infos["hx"].kind == "hats" and infos["hx"].nobjects == N
    assert [c.name for c in infos["hx"].columns] == [c.name for c in infos["sq"].columns if c.name not in
                                                    ("hpx29", "cx", "cy", "cz")]
    assert sum(infos["hx"].footprint["counts"]) == N
    app = App(basedir)
    from lcpanel_hats.catalog import HatsCatalog

    assert isinstance(app.catalogs.get("hx"), HatsCatalog)
    assert not isinstance(app.catalogs.get("sq"), HatsCatalog)
    for spec in ({"type": "cone", "params": {"coords": "10 20 60"}},
                 {"type": "filter", "params": {"where": "vmag < 11"}, "sort": "vmag"}):
        a = run_search(app, {**spec, "collections": ["sq"]})
        b = run_search(app, {**spec, "collections": ["hx"]})
        assert a.nmatched == b.nmatched > 0
        assert _rows(a) == _rows(b)
    both = run_search(app, {"type": "cone", "params": {"coords": "10 20 60"}})
    assert {r["collection"] for r in both.rows} == {"sq", "hx"}


def test_catalogs_are_opened_once_per_process(small):
    from lcpanel_hats.catalog import open_lsdb

    tmp, _ = small
    assert open_lsdb(tmp / "sq.hats") is open_lsdb(tmp / "sq.hats")


def test_objectid_and_fulltext_say_what_a_hats_collection_answers(small):
    _, basedir = small
    app = App(basedir)
    for spec in ({"type": "objectid", "params": {"ids": ["X"]}}, {"type": "fulltext", "params": {"query": "x"}}):
        with pytest.raises(UserError, match="HATS catalog: it answers cone, cross-match"):
            run_search(app, {**spec, "collections": ["hx"]})


def test_local_cluster_gives_the_same_answer(small):
    tmp, basedir = small
    spec = {"type": "cone", "params": {"coords": "200 -30 60"}, "collections": ["hx"]}
    expected = _rows(run_search(App(basedir), spec))
    _set_scheduler(basedir, 'scheduler = "local"\nworkers = 1')
    app = App(basedir)
    try:
        assert _rows(run_search(app, spec)) == expected
    finally:
        app.start()
        app.close()  # the shutdown hook closes the LocalCluster
        _set_scheduler(basedir, 'scheduler = "synchronous"')


def test_bad_scheduler_settings_are_clear_errors(small):
    _, basedir = small
    spec = {"type": "cone", "params": {"coords": "10 20 5"}, "collections": ["hx"]}
    try:
        _set_scheduler(basedir, 'scheduler = "dask-cluster-please"')
        with pytest.raises(UserError, match="neither one of local, synchronous, threads nor a Dask scheduler"):
            run_search(App(basedir), spec)
        _set_scheduler(basedir, 'schedular = "local"')
        with pytest.raises(UserError, match="unknown setting plugin.hats.schedular"):
            run_search(App(basedir), spec)
        _set_scheduler(basedir, 'workers = "two"')
        with pytest.raises(UserError, match="plugin.hats.workers must be int"):
            run_search(App(basedir), spec)
        # nothing listens on port 9 of this machine: a refused connection, not a hang
        _set_scheduler(basedir, 'scheduler = "tcp://127.0.0.1:9"\nconnect_timeout_s = 2.0')
        with pytest.raises(UserError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
            run_search(App(basedir), spec)
    finally:
        _set_scheduler(basedir, 'scheduler = "synchronous"')


def test_export_and_add_refuse_bad_input(small, tmp_path):
    from lcpanel_hats.export import export_collection
    from lcpanel_hats.register import add_hats_collection

    tmp, basedir = small
    base = Basedir(basedir)
    with pytest.raises(NotFound, match="unknown collection 'sqq'"):
        export_collection(basedir, "sqq", tmp_path / "x", show_progress=False)
    with pytest.raises(UserError, match="already a HATS catalog"):
        export_collection(basedir, "hx", tmp_path / "x", show_progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        export_collection(basedir, "sq", tmp_path / "full", show_progress=False)
    with pytest.raises(IngestError, match="is not a directory"):
        add_hats_collection(App(basedir), base, tmp_path / "nowhere", collection_id="nope")
    with pytest.raises(UserError, match="cannot open"):
        add_hats_collection(App(basedir), base, tmp_path / "full", collection_id="nope")
    with pytest.raises(Conflict, match="already in"):
        add_hats_collection(App(basedir), base, tmp / "sq.hats", collection_id="hx")
    assert "nope" not in base.collection_ids()


def test_cli_add_and_remove_keep_the_hats_files(small, capsys):
    from lcpanel.plugin_api import cli_main as main

    tmp, basedir = small
    assert main(["hats-add", str(basedir), str(tmp / "sq.hats"), "--id", "hx2", "--name", "Copy"]) == 0
    assert "added HATS collection 'hx2' (Copy): 20000 objects" in capsys.readouterr().out
    assert main(["collections", str(basedir), "--format", "json"]) == 0
    listed = {c["collection_id"]: c for c in json.loads(capsys.readouterr().out)}
    assert listed["hx2"]["kind"] == "hats"
    remove_collection(App(basedir), Basedir(basedir), "hx2")
    assert (tmp / "sq.hats" / "collection.properties").is_file()
    assert main(["hats-export", str(basedir), "nosuch", str(tmp / "other")]) == 2
    assert "unknown collection 'nosuch'" in capsys.readouterr().err


def test_exported_healpix_ids_are_lcpanels(small):
    import pyarrow.parquet as pq

    tmp, basedir = small
    files = sorted((tmp / "sq.hats").glob("sq/dataset/**/*.parquet"))
    table = pq.read_table(files[0], columns=["_healpix_29", "objectid"]).to_pydict()
    with sqlite3.connect(Basedir(basedir).catalog_dir("sq") / "catalog-objectinfo.sqlite") as conn:
        hpx = dict(conn.execute("SELECT objectid, hpx29 FROM object_catalog"))
    assert table["_healpix_29"] == [hpx[o] for o in table["objectid"]]
    assert table["_healpix_29"] == sorted(table["_healpix_29"])


def test_crossmatch_of_targets_outside_the_catalog_finds_nothing_as_sqlite_does(small):
    """Targets where the catalog has no object (outside its coverage: LSDB finds no
    partition to align them with) match nothing, as in the SQLite collection; they used
    to fail the search (LSDB's RuntimeError "Catalogs do not overlap")."""
    _, basedir = small
    app = App(basedir)
    empty = "a 10.0 20.0\nb 11.0 21.0"
    with sqlite3.connect(Path(basedir) / "collections" / "sq" / "catalog-objectinfo.sqlite") as conn:
        ra, dec = conn.execute("SELECT ra, decl FROM object_catalog ORDER BY row_id LIMIT 1").fetchone()
    for targets, found in ((empty, 0), (empty + f"\nc {ra:.8f} {dec:.8f}", 1)):
        spec = {"type": "xmatch", "params": {"targets": targets, "radius_arcsec": 2.0}}
        a = run_search(app, {**spec, "collections": ["sq"]})
        b = run_search(app, {**spec, "collections": ["hx"]})
        assert a.nmatched == b.nmatched == found
        assert _rows(a) == _rows(b)


def test_local_clusters_take_no_fixed_port():
    """Dask's scheduler serves HTTP (/health, /info pages of the workers) even with its
    dashboard off, on port 8787 when it is free: an lcpanel process took the port a user's
    own Dask dashboard expects, and a second process (``--num-procs 2``) warned it was in
    use. lcpanel's LocalClusters (searches and exports) listen on a free loopback port."""
    import socket
    import warnings

    from lcpanel_hats.runtime import local_cluster

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))  # as a user's Dask dashboard would
        holder.listen()
        warnings.simplefilter("always")
    except OSError:
        pass  # taken already: the same situation
    try:
        with warnings.catch_warnings(record=True) as seen, local_cluster(workers=1) as cluster:
            ports = [s.getsockname() for s in cluster.scheduler.http_server._sockets.values()]
            comm = cluster.scheduler_address
    finally:
        holder.close()
    assert ports and all(host == "127.0.0.1" and port != 8787 for host, port in ports), ports
    assert comm.startswith("tcp://127.0.0.1:")
    assert not [w for w in seen if "8787" in str(w.message)]
