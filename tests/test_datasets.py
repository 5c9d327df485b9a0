"""Datasets: creation from searches, access by visibility and owner, edits, freezing,
deletion, and concurrent writers in several processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle

import pytest
from support.data import random_catalog, snapshot, write_table

from lcpanel.app import App
from lcpanel.core.datasets import OPERATOR, DatasetStore, Principal
from lcpanel.core.catalogs.ingest import add_catalog_collection
from lcpanel.core.search import run_search
from lcpanel.errors import Forbidden, NotFound, UserError

ALICE = Principal("anon:alice")
BOB = Principal("anon:bob")


@pytest.fixture
def app(tmp_path):
    from lcpanel.core.catalogs.basedir import Basedir

    base = Basedir.init(tmp_path / "basedir")
    cols = random_catalog(500, seed=4, center=(10.0, 20.0), radius_deg=0.5)
    add_catalog_collection(App(base.path), base, write_table(cols, tmp_path / "field.parquet"), show_progress=False)
    return App(base.path)


def make(app, owner=ALICE, visibility="unlisted", **params):
    spec = {"type": "cone", "params": params or {"coords": "10 20 20"}, "limit": 1000}
    return app.datasets.create(run_search(app, spec), owner.identity, visibility=visibility)


def test_create_stores_rows_and_files(app):
    ds = make(app)
    path = app.datasets.path(ds.dataset_id)
    assert path.parent.name == ds.dataset_id[2:4] and path.parent.parent.name == ds.dataset_id[:2]
    assert len(ds.dataset_id) == 64 and ds.nobjects > 10
    again = app.datasets.get(ds.dataset_id, ALICE)
    assert again.data == ds.data and again.spec["type"] == "cone"
    assert again.rows(0, 2)[0]["collection"] == "field"
    assert make(app).dataset_id != ds.dataset_id, "the same search twice gets two unguessable ids"


def test_a_dataset_is_one_file(app):
    """Creating a file is the dearest step of saving a small dataset, which every search
    does: edits lock the dataset's own file, so there is no lock file to make."""
    ds = make(app)
    path = app.datasets.path(ds.dataset_id)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    app.datasets.edit(ds.dataset_id, ALICE, {"name": "renamed"})
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert app.datasets.get(ds.dataset_id, BOB).name == "renamed"
    app.datasets.delete(ds.dataset_id, ALICE)
    assert list(path.parent.iterdir()) == []


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("visibility,bob_sees,listed", [("public", True, True), ("unlisted", True, False),
                                                         ("private", False, False)])
def test_visibility(app, visibility, bob_sees, listed):
    ds = make(app, visibility=visibility)
    assert app.datasets.get(ds.dataset_id, ALICE).dataset_id == ds.dataset_id
    if bob_sees:
        assert app.datasets.get(ds.dataset_id, BOB)
    else:
        with pytest.raises(NotFound):
            app.datasets.get(ds.dataset_id, BOB)
        with pytest.raises(NotFound):
            app.datasets.edit(ds.dataset_id, BOB, {"comment": "hi"})
        with pytest.raises(NotFound):
            app.datasets.delete(ds.dataset_id, BOB)
    assert (ds.dataset_id in {d["dataset_id"] for d in app.datasets.list(BOB)}) == listed
    assert ds.dataset_id in {d["dataset_id"] for d in app.datasets.list(ALICE, mine=True)}
    assert app.datasets.get(ds.dataset_id, OPERATOR)


def test_edits(app):
    ds = make(app)
    keys = ds.keys()
    ds2, changed = app.datasets.edit(ds.dataset_id, ALICE, {"name": "my stars", "visibility": "public",
                                                            "remove_objects": keys[:3]})
    assert changed == {"name", "visibility", "objects"}
    assert ds2.nobjects == ds.nobjects - 3 and ds2.keys() == keys[3:]
    _, changed = app.datasets.edit(ds.dataset_id, BOB, {"comment": "nice field",
                                                         "object_comment": {"key": keys[5], "text": "blend?"}})
    stored = app.datasets.get(ds.dataset_id, BOB)
    assert stored.comments[-1]["author"] == BOB.identity and stored.object_comments[keys[5]][0]["text"] == "blend?"
    with pytest.raises(Forbidden):
        app.datasets.edit(ds.dataset_id, BOB, {"name": "mine now"})
    ds3, _ = app.datasets.edit(ds.dataset_id, ALICE, {"keep_objects": keys[3:6]})
    assert ds3.keys() == keys[3:6]
    assert set(ds3.object_comments) == {keys[5]}


@pytest.mark.parametrize("changes", [
    {"name": "x" * 500}, {"visibility": "secret"}, {"remove_objects": ["nope/nope"]}, {"remove_objects": "all"},
    {"owner": "anon:bob"}, {"comment": ""}, {"comment": "a\x00b"}, {"object_comment": {"key": "x/y", "text": "t"}},
    {}, {"name": "ok", "visibility": "bad"},
])
def test_bad_edits_change_nothing(app, changes):
    ds = make(app)
    before = snapshot(app.basedir)
    with pytest.raises(UserError):
        app.datasets.edit(ds.dataset_id, ALICE, changes)
    assert snapshot(app.basedir) == before


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "a" * 63, "A" * 64, "", "0" * 64, "../" + "a" * 61])
def test_unknown_or_malicious_ids(app, bad_id):
    with pytest.raises(NotFound):
        app.datasets.get(bad_id, OPERATOR)


def test_freeze_is_immutable(app):
    ds = make(app, visibility="public")
    frozen = app.datasets.freeze(ds.dataset_id, ALICE)
    assert frozen.frozen and frozen.parent == ds.dataset_id and frozen.dataset_id != ds.dataset_id
    newer, _ = app.datasets.edit(frozen.dataset_id, ALICE, {"name": "renamed"})
    assert newer.dataset_id not in (ds.dataset_id, frozen.dataset_id)
    assert newer.parent == frozen.dataset_id and newer.version == 2
    assert app.datasets.get(frozen.dataset_id, BOB).name == frozen.name
    with pytest.raises(Forbidden):
        app.datasets.delete(frozen.dataset_id, ALICE)
    with pytest.raises(Forbidden):
        app.datasets.freeze(ds.dataset_id, BOB)


def test_delete(app):
    ds = make(app, visibility="public")
    with pytest.raises(Forbidden):
        app.datasets.delete(ds.dataset_id, BOB)
    app.datasets.delete(ds.dataset_id, ALICE)
    with pytest.raises(NotFound):
        app.datasets.get(ds.dataset_id, ALICE)
    assert app.datasets.list(ALICE) == []


def _create_many(basedir, n, who):
    app = App(basedir)
    ids = []
    for i in range(n):
        res = run_search(app, {"type": "cone", "params": {"coords": f"10 20 {5 + i % 10}"}})
        ids.append(app.datasets.create(res, who).dataset_id)
    return ids


def _comment_many(basedir, dataset_id, n, who):
    store = DatasetStore(basedir)
    for i in range(n):
        store.edit(dataset_id, Principal(who), {"comment": f"{who} {i}"})


def test_concurrent_processes_lose_nothing(app):
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_create_many, [(app.basedir, 15, "anon:p1"), (app.basedir, 15, "anon:p2")])
    created = {i for ids in results for i in ids}
    assert len(created) == 30
    assert created == {d["dataset_id"] for d in app.datasets.list(OPERATOR, limit=1000)}
    for dataset_id in created:
        with open(app.datasets.path(dataset_id), "rb") as fh:
            assert pickle.load(fh)["dataset_id"] == dataset_id
    target = next(iter(created))
    with ctx.Pool(2) as pool:
        pool.starmap(_comment_many, [(app.basedir, target, 20, "anon:p1"), (app.basedir, target, 20, "anon:p2")])
    texts = {c["text"] for c in app.datasets.get(target, OPERATOR).comments}
    assert texts == {f"anon:p{p} {i}" for p in (1, 2) for i in range(20)}


def test_recover_indexes_a_dataset_written_but_not_indexed(app):
    ds = make(app)
    with app.datasets._connect() as conn:  # as if the process died between the two writes
        conn.execute("DELETE FROM datasets WHERE dataset_id = ?", (ds.dataset_id,))
    assert ds.dataset_id not in {d["dataset_id"] for d in app.datasets.list(OPERATOR)}
    stale = app.datasets.path(ds.dataset_id).parent / ".tmp-left-by-a-killed-writer"
    stale.write_bytes(b"half")
    import os

    os.utime(stale, (0, 0))
    assert app.datasets.recover() == {"indexed": 1, "temp_files_removed": 1}
    assert ds.dataset_id in {d["dataset_id"] for d in app.datasets.list(OPERATOR)}
    assert not stale.exists()
    assert app.datasets.recover() == {"indexed": 0, "temp_files_removed": 0}


def test_one_comment_length_for_dataset_and_object_comments(app):
    """``[reviews] max_comment_chars`` caps dataset, dataset-object and object comments
    alike; the old ``[quotas]`` key is refused with where it went."""
    from lcpanel.config import Config
    from lcpanel.core.datasets import DatasetStore

    ds = make(app)
    key = ds.keys()[0]
    (app.basedir / "lcpanel.toml").write_text("[reviews]\nmax_comment_chars = 30\n")
    store = DatasetStore(app.basedir)
    assert store.max_comment_chars == Config.load(app.basedir).reviews.max_comment_chars == 30
    store.edit(ds.dataset_id, BOB, {"comment": "c" * 30})
    with pytest.raises(UserError, match="at most 30 characters"):
        store.edit(ds.dataset_id, BOB, {"comment": "c" * 31})
    with pytest.raises(UserError, match="at most 30 characters"):
        store.edit(ds.dataset_id, BOB, {"object_comment": {"key": key, "text": "o" * 31}})
    assert [c["text"] for c in store.get(ds.dataset_id, OPERATOR).comments] == ["c" * 30]
    with pytest.raises(UserError, match=r"quotas.max_comment_chars has moved to \[reviews\] max_comment_chars"):
        Config.from_dict({"quotas": {"max_comment_chars": 100}})
