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
    with book.reserve("dataset", owner, 5_000, 10**12, "saving") as done:
        done(item, 4_000)


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
    refused = failed = 0
    for step in range(600):
        kind = rng.choice(["dataset", "product"])
        owner = rng.choice(owners)
        op = rng.random()
        if op < 0.35:
            item = f"i{step}"
            quota = rng.choice([0, 50_000, 10**9])
            try:
                with book.reserve(kind, owner, rng.randint(1, 20_000), quota, "this") as done:
                    if rng.random() < 0.15:
                        raise RuntimeError("the write failed")
                    if rng.random() < 0.1:
                        continue  # a block that never records releases its reservation
                    done(item, rng.randint(1, 20_000))
                    items.append((kind, item, owner))
            except QuotaExceeded:
                refused += 1
            except RuntimeError:
                failed += 1
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
        else:
            book.drop_stale_reservations(older_than_s=-1.0)
        truth = brute_totals(book.path)
        for who in owners:
            assert book.used(who) == truth.get(who, 0), (step, who)
    assert refused and failed  # both paths were taken
    book.close()


def test_a_reservation_refused_or_failed_changes_no_total(tmp_path):
    book = Ledger(tmp_path)
    book.record("dataset", "d1", "ip:1", 900)
    with pytest.raises(QuotaExceeded):
        with book.reserve("dataset", "ip:1", 200, 1000, "saving this search as a dataset"):
            pass
    with pytest.raises(ValueError):
        with book.reserve("dataset", "ip:1", 50, 1000, "saving"):
            raise ValueError("write failed")
    assert book.used("ip:1") == 900 == brute_totals(book.path)["ip:1"]
    with book.reserve("dataset", "ip:1", 100, 1000, "saving") as done:
        done("d2", 80)
    assert book.used("ip:1") == 980


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
    with second.reserve("dataset", "user:1", 10, 10**9, "saving") as done:
        done("new", 7)
    assert book.used("user:1") == truth["user:1"] + 7 == brute_totals(tmp_path / "usage.sqlite")["user:1"]
