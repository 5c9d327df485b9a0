"""A small fair thread pool: ``workers`` threads run tasks oldest first, except that an
owner already running ``per_owner`` tasks waits while other owners' tasks go ahead. So one
user's long jobs never make another user's job wait behind them (as long as there are
fewer busy owners than workers).

Threads start on the first task (so never before a server forks) and are daemons.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

log = logging.getLogger(__name__)


class FairQueue:
    def __init__(self, workers: int = 2, per_owner: int = 1, name: str = "lcpanel-fair"):
        if workers < 1 or per_owner < 1:
            raise ValueError("workers and per_owner must be at least 1")
        self.workers, self.per_owner, self.name = workers, per_owner, name
        self._cond = threading.Condition()
        self._pending: list[tuple[str, object, tuple]] = []
        self._running: Counter = Counter()
        self._threads: list[threading.Thread] = []
        self._pid = None
        self._closed = False

    def submit(self, owner: str, fn, *args) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the queue is shut down")
            if self._pid != os.getpid():  # threads do not survive a fork
                self._threads, self._running, self._pid = [], Counter(), os.getpid()
            self._pending.append((owner, fn, args))
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify_all()

    def pending(self, owner: str | None = None) -> int:
        with self._cond:
            return sum(1 for o, _, _ in self._pending if owner is None or o == owner)

    def running(self, owner: str) -> int:
        with self._cond:
            return self._running[owner]

    def _next(self):
        for i, (owner, fn, args) in enumerate(self._pending):
            if self._running[owner] < self.per_owner:
                del self._pending[i]
                self._running[owner] += 1
                return owner, fn, args
        return None

    def _work(self) -> None:
        while True:
            with self._cond:
                task = self._next()
                while task is None:
                    if self._closed:
                        return
                    self._cond.wait()
                    task = self._next()
            owner, fn, args = task
            try:
                fn(*args)
            except Exception:
                log.exception("task of %s failed", owner)
            finally:
                with self._cond:
                    self._running[owner] -= 1
                    self._cond.notify_all()

    def shutdown(self) -> None:
        """Drop tasks not started; running ones finish (their threads are daemons)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
