"""Request budgets per client, shared by every server process of a basedir.

A generic cell rate algorithm (GCRA, the token bucket in one number per client): a
client with ``rpm`` requests per minute may make ``burst`` requests at once and then one
every ``60/rpm`` seconds.

The state is a table of fixed-size slots (a 64-bit hash of the client, its bucket's
"theoretical arrival time") in a small file in the host's runtime directory
(``$XDG_RUNTIME_DIR`` or ``/dev/shm``), one per basedir, which every process maps into
memory: ``--num-procs`` workers share one budget instead of each granting the full rate,
and the basedir itself holds only data (counters are not worth keeping across reboots).
An ``flock`` serialises the read-modify-write of a bucket across processes and threads.
A request costs two system calls, a 128-byte read and a 16-byte write, against a SQLite
transaction before (0.2 ms of a served request here).

A client's slot is found by open addressing in :data:`PROBE` slots from its hash (salted
per table, so clients cannot pick their neighbours). A bucket whose time has passed is
the same as no bucket (the client has its full burst again), so its slot is free for any
client: the table never needs sweeping. Only when all :data:`PROBE` slots hold buckets
still counting down (over :data:`SLOTS` clients active at once) does a new client take
the slot of the one closest to a full budget, which gets its burst back early.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import mmap
import os
import secrets
import struct
import tempfile
import threading
import time
from pathlib import Path

from .private import private_file
from ...errors import TooManyRequests

log = logging.getLogger(__name__)

TABLE_NAME = "ratelimit.table"
MAGIC = b"lcpanel-gcra-v1\0"
SALT_BYTES = 16
HEADER = 64
SLOTS = 1 << 16
PROBE = 8
_SLOT = struct.Struct("<Qd")
_WINDOW = struct.Struct("<" + "Qd" * PROBE)
TABLE_BYTES = HEADER + (SLOTS + PROBE) * _SLOT.size  # the last probe window runs past SLOTS, never wraps


@contextlib.contextmanager
def _flocked(fd: int):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def runtime_dir(basedir: str | Path) -> Path:
    """Where a basedir's server processes keep shared, disposable state on this host."""
    root = os.environ.get("XDG_RUNTIME_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    key = hashlib.sha256(str(Path(basedir).resolve()).encode()).hexdigest()[:16]
    return Path(root) / f"lcpanel-{key}"


class RateLimiter:
    def __init__(self, basedir: str | Path, limits):
        self.path = runtime_dir(basedir) / TABLE_NAME
        self.limits = limits
        self._local = threading.local()
        self._table: tuple[int, mmap.mmap, bytes] | None = None  # (pid, mapping, salt)
        self._table_lock = threading.Lock()

    def _lock_fd(self) -> int:
        """This thread's descriptor of the table file: an flock belongs to an open file
        description, so each thread (and each process after a fork) needs its own. (A file
        object, closed with the thread's other locals when the thread ends.)"""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            local.fh, local.pid = open(private_file(self.path), "r+b", buffering=0), os.getpid()
        return local.fh.fileno()

    def _mapping(self, fd: int) -> tuple[mmap.mmap, bytes]:
        """The table mapped into this process (made or repaired by whoever maps it first,
        under the flock): its memory and salt."""
        table = self._table
        if table is None or table[0] != os.getpid():
            with self._table_lock, _flocked(fd):
                size = os.fstat(fd).st_size
                if size < TABLE_BYTES:
                    os.ftruncate(fd, TABLE_BYTES)  # only ever grown: shrinking would fault other mappings
                mem = mmap.mmap(fd, TABLE_BYTES)
                if mem[:len(MAGIC)] != MAGIC:
                    if size:  # a damaged table; a new file is all zeros already (and unallocated, kept so)
                        mem[HEADER:] = bytes(TABLE_BYTES - HEADER)
                    mem[:len(MAGIC) + SALT_BYTES] = MAGIC + secrets.token_bytes(SALT_BYTES)
                table = self._table = (os.getpid(), mem, bytes(mem[len(MAGIC):len(MAGIC) + SALT_BYTES]))
        return table[1], table[2]

    def check(self, client: str, role: str) -> float:
        """Take one request from ``client``'s budget for ``role``: 0 if allowed, else the
        seconds to wait before the next request is allowed."""
        return self.take(client, self.limits.requests_per_minute(role), self.limits.burst)

    def spend(self, viewer, remote_ip: str | None) -> None:
        """Take one request from the budget of whoever asks, for an HTTP request and a
        page's websocket action (save, search, build) alike: anonymous visitors per client
        address, everyone else per identity. :class:`TooManyRequests` when it is spent."""
        client = f"ip:{remote_ip}" if viewer.role == "anonymous" else viewer.identity
        wait = self.check(client, viewer.role)
        if wait > 0:
            rpm = self.limits.requests_per_minute(viewer.role)
            raise TooManyRequests(f"too many requests: {viewer.role} clients may make {rpm} per minute; "
                                  f"retry in {math.ceil(wait)} s" + ("" if viewer.role != "anonymous" else
                                                                      " (log in or use an API key for more)"),
                                  retry_after=wait)

    def take(self, client: str, rpm: float, burst: int) -> float:
        """Like :meth:`check` with an explicit budget (e.g. for login attempts)."""
        if rpm <= 0:
            return 0.0
        interval = 60.0 / rpm
        tolerance = max(0, burst - 1) * interval
        try:
            fd = self._lock_fd()
            mem, salt = self._mapping(fd)
            key = int.from_bytes(hashlib.blake2b(client.encode("utf-8", "surrogatepass"), digest_size=8,
                                                 key=salt).digest(), "little") or 1
            fcntl.flock(fd, fcntl.LOCK_EX)  # (not a context manager: that costs more than the flock)
            try:
                # the clock is read holding the flock: a request that waited for it must not
                # be compared with a time from before another process's update
                return _take(mem, key, time.time(), interval, tolerance)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except (OSError, ValueError) as exc:
            # counters must never take the service down: a jammed counter file lets requests through
            log.warning("rate limiter unavailable (%s); request allowed", exc)
            return 0.0


def _take(mem: mmap.mmap, key: int, now: float, interval: float, tolerance: float) -> float:
    """The GCRA step for the client hashed to ``key``: its bucket moves on by ``interval``
    when the request is allowed (0 returned); a refused request writes nothing and gets
    the seconds to wait."""
    start = HEADER + (key % SLOTS) * _SLOT.size
    window = _WINDOW.unpack_from(mem, start)
    found = free = None
    oldest = 0
    for i in range(PROBE):
        slot_key, tat = window[2 * i], window[2 * i + 1]
        if slot_key == key:
            found = i
            break
        if free is None and (slot_key == 0 or tat <= now):
            free = i
        if tat < window[2 * oldest + 1]:
            oldest = i
    if found is None:
        found, tat = (free if free is not None else oldest), now
    tat = max(tat, now)
    if tat - tolerance > now:
        return tat - tolerance - now
    _SLOT.pack_into(mem, start + found * _SLOT.size, key, tat + interval)
    return 0.0
