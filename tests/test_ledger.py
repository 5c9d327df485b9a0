"""The usage ledger (``lcpanel.core.access.quotas.Ledger``): the quota check costs the same
however much its owner already holds, and the per-owner totals it reads always equal the
sum of the owner's rows, whatever sequence of reservations, records, refusals, failures,
updates and removals made them; a ledger written before the totals existed gets them."""

from __future__ import annotations

import random
import sqlite3

import pytest

from lcpanel.core.access.quotas import Ledger, QuotaExceeded


def brute_totals(path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT owner, SUM(bytes) FROM usage GROUP BY owner"))


def vm_steps(book: Ledger, fn) -> int:
    """SQLite virtual-machine instructions (in tens) that ``fn`` runs on the ledger's connection."""
    count = [0]

    def tick():
        count[0] += 1
        return 0

    conn = book.connect()
    conn.set_progress_handler(tick, 10)
    try:
        fn()
    finally:
        conn.set_progress_handler(None, 0)
    return count[0]


def save_one(book: Ledger, owner: str, item: str) -> None:
    book.charge("dataset", item, owner, 4_000, 10**12, "saving")


def test_the_quota_check_costs_the_same_however_many_items_the_owner_holds(tmp_path):
    book = Ledger(tmp_path)
    for i in range(10):
        book.record("dataset", f"few-{i}", "user:few", 1000)
    for i in range(20_000):
        book.record("dataset", f"many-{i}", "user:many", 1000)
    few = vm_steps(book, lambda: save_one(book, "user:few", "new-few"))
    many = vm_steps(book, lambda: save_one(book, "user:many", "new-many"))
    assert few > 0
    # summing 20,000 rows takes ~10^5 instructions; a stored total takes none of them
    assert many <= few + 10, (few, many)
    assert book.used("user:many") == 20_000 * 1000 + 4_000
    book.close()


def test_totals_equal_the_sum_of_the_rows_after_any_sequence_of_operations(tmp_path):
    book = Ledger(tmp_path)
    rng = random.Random(7)
    owners = ["user:a", "user:b", "ip:10.0.0.1", "anon:" + "x" * 24]
    items: list[tuple[str, str, str]] = []
    refused = 0
    for step in range(600):
        kind = rng.choice(["dataset", "product"])
        owner = rng.choice(owners)
        op = rng.random()
        if op < 0.35:
            item = f"i{step}"
            quota = rng.choice([0, 50_000, 10**9])
            try:
                book.charge(kind, item, owner, rng.randint(1, 20_000), quota, "this")
                items.append((kind, item, owner))
            except QuotaExceeded:
                refused += 1
        elif op < 0.5:
            item = rng.choice([f"r{rng.randint(0, 40)}"] + [i for _, i, _ in items[-3:]])
            book.record(kind, item, owner, rng.randint(0, 30_000))  # new, or replacing the same key
            items.append((kind, item, owner))
        elif op < 0.65 and items:
            k, item, _ = rng.choice(items)
            book.set_bytes(k, item, rng.randint(0, 30_000))
        elif op < 0.8 and items:
            k, item, _ = items.pop(rng.randrange(len(items)))
            book.forget(k, item)
        elif op < 0.9 and items:
            k, item, _ = rng.choice(items)
            book.touch(k, item)
        elif op < 0.95:
            book.drop_stale_reservations(older_than_s=-1.0)
        else:  # a reservation left by an earlier version
            book.record(kind, f"reserved:{step:016x}", owner, rng.randint(1, 9_000))
        truth = brute_totals(book.path)
        for who in owners:
            assert book.used(who) == truth.get(who, 0), (step, who)
    assert refused and len(items) > 100  # both paths were taken
    book.close()


def test_a_charge_refused_changes_nothing(tmp_path):
    book = Ledger(tmp_path)
    book.record("dataset", "d1", "ip:1", 900)
    with pytest.raises(QuotaExceeded, match="only 0.0 MB of your 0.0 MB disk quota is left"):
        book.charge("dataset", "d2", "ip:1", 200, 1000, "saving this search as a dataset")
    assert book.used("ip:1") == 900 == brute_totals(book.path)["ip:1"]
    assert [r["item"] for r in book.rows()] == ["d1"]
    book.charge("dataset", "d2", "ip:1", 100, 1000, "saving")  # exactly the quota
    assert book.used("ip:1") == 1000


def test_totals_are_worked_out_afresh_when_a_process_opens_the_ledger(tmp_path):
    book = Ledger(tmp_path)
    for i in range(12):
        book.record("dataset", f"d{i}", f"user:{i % 2}", 1000 + i)
    truth = brute_totals(book.path)
    with sqlite3.connect(book.path) as conn:  # a program that bypassed the triggers
        conn.execute("UPDATE usage_totals SET bytes = 5")
        conn.execute("INSERT INTO usage_totals VALUES ('user:ghost', 99)")
    assert book.used("user:0") == 5
    reopened = Ledger(tmp_path)
    assert {o: reopened.used(o) for o in truth} == truth and reopened.used("user:ghost") == 0


def test_a_ledger_from_before_the_totals_gets_them_when_opened(tmp_path):
    old_schema = """
    CREATE TABLE usage (kind TEXT NOT NULL, item TEXT NOT NULL, owner TEXT NOT NULL, bytes INTEGER NOT NULL,
                        created REAL NOT NULL, last_used REAL NOT NULL, PRIMARY KEY (kind, item, owner));
    CREATE INDEX usage_owner ON usage(owner);
    CREATE INDEX usage_item ON usage(item);
    """
    with sqlite3.connect(tmp_path / "usage.sqlite") as conn:
        conn.executescript(old_schema)
        conn.executemany("INSERT INTO usage VALUES (?,?,?,?,0,0)",
                         [("dataset", f"d{i}", f"user:{i % 3}", 100 + i) for i in range(30)])
    truth = brute_totals(tmp_path / "usage.sqlite")
    book = Ledger(tmp_path)
    assert {o: book.used(o) for o in truth} == truth
    second = Ledger(tmp_path)  # a second process opening it adds nothing twice
    assert {o: second.used(o) for o in truth} == truth
    second.charge("dataset", "new", "user:1", 7, 10**9, "saving")
    assert book.used("user:1") == truth["user:1"] + 7 == brute_totals(tmp_path / "usage.sqlite")["user:1"]


# --- saving a search: the charge is the file's exact size, and a refusal or failure leaves nothing ----


@pytest.fixture(scope="module")
def field_app(tmp_path_factory):
    from support.data import catalog_basedir, set_config

    from lcpanel.app import App

    base, _cols = catalog_basedir(tmp_path_factory.mktemp("ledger"), 400, seed=4)
    set_config(base.path, "[quotas]\nanonymous_disk_mb = 0.02\n")
    return App(base.path)


def _search(app, limit):
    from lcpanel.core.search import run_search

    return run_search(app, {"type": "filter", "params": {"where": "ra > 0"}, "limit": limit})


def _state(app):
    import os

    files = sorted(p.name for p in (app.basedir / "datasets").rglob("*.pkl")) if (app.basedir / "datasets").exists() else []
    with sqlite3.connect(app.basedir / "usage.sqlite") as conn:
        rows = sorted(conn.execute("SELECT kind, item, owner, bytes FROM usage"))
    with sqlite3.connect(app.basedir / "datasets" / "index.sqlite") as conn:
        index = sorted(r[0] for r in conn.execute("SELECT dataset_id FROM datasets"))
    return files, rows, index, os.listdir(app.basedir / "datasets")


def test_a_saved_search_is_charged_its_file_s_exact_size(field_app):
    from lcpanel.core.access.quotas import ledger, save_search
    from lcpanel.core.datasets import Principal

    viewer = Principal("user:exact", "user")
    sizes = {}
    for limit in (1, 7, 60):
        ds = save_search(field_app, _search(field_app, limit), viewer, None)
        sizes[ds.dataset_id] = field_app.datasets.path(ds.dataset_id).stat().st_size
    rows = {r["item"]: r["bytes"] for r in ledger(field_app).rows("dataset") if r["owner"] == "user:exact"}
    assert rows == sizes
    assert ledger(field_app).used("user:exact") == sum(sizes.values())


def test_a_save_over_the_quota_or_a_failed_write_leaves_nothing(field_app, monkeypatch):
    from lcpanel.core.access.quotas import QuotaExceeded, ledger, save_search
    from lcpanel.core.datasets import Principal

    anon = Principal("anon:" + "q" * 24)
    save_search(field_app, _search(field_app, 2), anon, "10.9.9.9")  # the directories and files exist
    before = _state(field_app)
    used = ledger(field_app).used("ip:10.9.9.9")
    with pytest.raises(QuotaExceeded, match="disk quota"):
        save_search(field_app, _search(field_app, 400), anon, "10.9.9.9")  # ~40 kB > 20 kB
    assert _state(field_app) == before

    import lcpanel.core.atomic as atomic

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_search(field_app, _search(field_app, 2), anon, "10.9.9.9")
    monkeypatch.undo()
    assert _state(field_app)[:3] == before[:3]  # (a shard directory made for the file may stay)
    assert ledger(field_app).used("ip:10.9.9.9") == used


def _charge_many(path, who: str, n: int) -> int:
    book = Ledger(path)
    passed = 0
    for i in range(n):
        try:
            book.charge("dataset", f"{who}-{i}", "user:shared", 1_500, 100_000, "saving")
            passed += 1
        except QuotaExceeded:
            pass
    return passed


def test_a_charge_is_one_statement_and_racing_processes_never_pass_the_quota(tmp_path):
    """The check and the row are one statement, so its own transaction: an allowed charge
    costs one SQL statement, and two processes charging the last bytes of one quota at
    once pass exactly as many as fit."""
    import multiprocessing

    book = Ledger(tmp_path)
    book.connect()
    seen: list[str] = []
    book.connect().set_trace_callback(seen.append)
    book.charge("dataset", "first", "user:one", 10, 1_000, "saving")
    book.charge("dataset", "second", "user:one", 10, 0, "saving")  # no quota
    book.connect().set_trace_callback(None)
    # (a trigger run shows its statement again)
    assert [s.split()[0] for s in dict.fromkeys(seen)] == ["INSERT", "INSERT"], seen
    with pytest.raises(QuotaExceeded, match="only 0.0 MB of your 0.0 MB disk quota is left"):
        book.charge("dataset", "third", "user:one", 981, 1_000, "saving")
    book.charge("dataset", "third", "user:one", 980, 1_000, "saving")  # exactly the quota
    assert book.used("user:one") == 1_000 == brute_totals(book.path)["user:one"]

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        passed = pool.starmap(_charge_many, [(tmp_path, "p1", 50), (tmp_path, "p2", 50)])
    assert sum(passed) == 100_000 // 1_500, passed
    assert book.used("user:shared") == sum(passed) * 1_500 == brute_totals(book.path)["user:shared"]
    book.close()
