"""The rate limiter's shared table (:mod:`lcpanel.core.access.ratelimit`): clients whose
hashes start at the same slot, buckets that have run out, a damaged or foreign file, a
forked process, and a counter file that cannot be used."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from lcpanel.core.access import ratelimit
from lcpanel.core.access.ratelimit import HEADER, PROBE, SLOTS, TABLE_BYTES, RateLimiter, _take


class _Limits:
    burst = 3

    def requests_per_minute(self, role):
        return {"anonymous": 60, "user": 6}[role]


def _table():
    return bytearray(TABLE_BYTES)


def _keys(n: int, start: int = 5) -> list[int]:
    """``n`` distinct client hashes whose probe windows all begin at slot ``start``."""
    return [start + i * SLOTS for i in range(1, n + 1)]


def test_clients_sharing_a_window_keep_separate_budgets():
    mem, now = _table(), 1000.0
    keys = _keys(PROBE)
    for key in keys:  # a burst of 2 (tolerance of one interval) for each
        assert _take(mem, key, now, 1.0, 1.0) == 0
        assert _take(mem, key, now, 1.0, 1.0) == 0
    for key in keys:
        assert _take(mem, key, now, 1.0, 1.0) == pytest.approx(1.0)


def test_a_bucket_that_ran_out_frees_its_slot_and_the_client_starts_afresh():
    mem, now = _table(), 1000.0
    a, *others = _keys(PROBE)
    assert _take(mem, a, now, 10.0, 0.0) == 0  # a's bucket counts down until now + 10
    assert _take(mem, a, now, 10.0, 0.0) == pytest.approx(10.0)
    later = now + 10.0
    for key in others:  # the first of PROBE - 1 newcomers takes a's slot, which is free again
        assert _take(mem, key, later, 100.0, 0.0) == 0
    assert mem[HEADER + 5 * 16:HEADER + 5 * 16 + 8] == others[0].to_bytes(8, "little")
    assert _take(mem, a, later, 10.0, 0.0) == 0  # as the GCRA says for a bucket that has run out
    assert all(_take(mem, key, later, 100.0, 0.0) > 0 for key in others)  # nobody was pushed out


def test_a_full_window_gives_the_slot_nearest_a_full_budget():
    mem, now = _table(), 1000.0
    keys = _keys(PROBE + 1)
    for i, key in enumerate(keys[:PROBE]):  # every slot busy; keys[3] is the first to refill
        assert _take(mem, key, now, 50.0 if i == 3 else 100.0, 0.0) == 0
    assert _take(mem, keys[PROBE], now, 100.0, 0.0) == 0  # the newcomer is let in, in keys[3]'s slot
    slot3 = HEADER + (5 + 3) * 16
    assert mem[slot3:slot3 + 8] == keys[PROBE].to_bytes(8, "little")
    assert all(_take(mem, key, now, 100.0, 0.0) > 0 for i, key in enumerate(keys) if i != 3)  # the rest kept theirs


def test_windows_at_the_end_of_the_table_do_not_wrap():
    mem = _table()
    key = SLOTS - 1  # its window is the last PROBE slots and the PROBE spare ones after them
    for i in range(PROBE):
        assert _take(mem, key + i * SLOTS, 1.0, 1.0, 0.0) == 0
    assert mem[:HEADER] == bytes(HEADER)  # nothing written over the header


def test_the_table_file_is_private_made_once_and_repaired_when_damaged(tmp_path):
    limiter = RateLimiter(tmp_path, _Limits())
    assert [limiter.check("ip:1", "anonymous") for _ in range(4)][-1] > 0
    path = limiter.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_size == TABLE_BYTES
    assert path.stat().st_blocks * 512 <= 64 * 1024  # a new table takes memory only for the slots in use
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # another limiter (another process's) shares the budget through the same file
    assert RateLimiter(tmp_path, _Limits()).check("ip:1", "anonymous") > 0
    # a damaged header: the next limiter to map it starts a fresh table
    with open(path, "r+b") as fh:
        fh.write(b"garbage!")
    assert RateLimiter(tmp_path, _Limits()).check("ip:1", "anonymous") == 0
    # a file cut short (or of an older layout) is grown, not refused
    path.unlink()
    path.write_bytes(b"x" * 100)
    os.chmod(path, 0o600)
    assert RateLimiter(tmp_path, _Limits()).check("ip:1", "anonymous") == 0
    assert path.stat().st_size == TABLE_BYTES


def test_a_forked_process_locks_with_its_own_descriptor_and_shares_the_budget(tmp_path):
    limiter = RateLimiter(tmp_path, _Limits())
    assert limiter.check("user:x", "user") == 0
    parent_fd = limiter._lock_fd()
    pid = os.fork()
    if pid == 0:  # the child spends the rest of the burst of 3; exit code 0 when all went right
        ok = limiter._lock_fd() != parent_fd and [limiter.check("user:x", "user") for _ in range(2)] == [0, 0]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert limiter.check("user:x", "user") > 0  # the parent sees what the child spent


def test_a_counter_file_that_cannot_be_used_lets_requests_through(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setattr(ratelimit, "runtime_dir", lambda basedir: blocker)
    limiter = RateLimiter(tmp_path, _Limits())
    with caplog.at_level(logging.WARNING, logger="lcpanel.core.access.ratelimit"):
        assert all(limiter.check("ip:1", "anonymous") == 0 for _ in range(10))
    assert "rate limiter unavailable" in caplog.text


def test_a_thread_that_ends_leaves_no_descriptor_open(tmp_path):
    import threading

    limiter = RateLimiter(tmp_path, _Limits())
    limiter.check("ip:0", "anonymous")
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        thread = threading.Thread(target=limiter.check, args=(f"ip:{i}", "anonymous"))
        thread.start()
        thread.join()
    assert len(os.listdir("/proc/self/fd")) <= fds
