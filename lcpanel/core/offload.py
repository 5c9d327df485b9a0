"""Slow request work off the server's event loop, a bounded amount at a time.

Searches (parse, translate, execute), TAP and cone-search queries, product planning,
password checks and dataset writes would freeze every other request of the process if
they ran on Tornado's event loop. :class:`Offloader` runs them on a thread pool of
``workers`` threads per process (made lazily, so never shared across a fork; SQLite,
numpy and ``hashlib.scrypt`` release the GIL while they work) and admits at most
``max_heavy`` of them at once, running or waiting: one more is refused at once with
:class:`ServerBusy` (HTTP 503 with ``Retry-After``) instead of queueing without bound.

``offloader(app)`` is the app's offloader; handlers call ``await offloader(app).run(fn,
*args)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from ..errors import TooManyRequests


class ServerBusy(TooManyRequests):
    """The process already holds as many heavy requests as it may."""

    status = 503


class Offloader:
    """A per-process thread pool with an admission cap."""

    def __init__(self, workers: int = 4, max_heavy: int = 16, retry_after_s: float = 5.0):
        if workers < 1 or max_heavy < 1:
            raise ValueError("workers and max_heavy must be at least 1")
        self.workers = workers
        self.max_heavy = max_heavy
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid: int | None = None
        self._active = 0

    @property
    def active(self) -> int:
        """Heavy requests admitted and not finished in this process."""
        self._own()
        return self._active

    def _own(self) -> None:
        """A fresh pool and count after a fork (the parent's threads do not exist here)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._pool, self._active, self._pid = None, 0, os.getpid()

    def executor(self) -> ThreadPoolExecutor:
        self._own()
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="lcpanel-work")
            return self._pool

    def admit(self) -> None:
        """Count one more heavy request, or raise :class:`ServerBusy`."""
        self._own()
        with self._lock:
            if self._active >= self.max_heavy:
                raise ServerBusy(f"the server is busy with {self._active} searches and downloads; "
                                 f"retry in {self.retry_after_s:g} s", retry_after=self.retry_after_s)
            self._active += 1

    def release(self) -> None:
        with self._lock:
            self._active = max(self._active - 1, 0)

    async def run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the pool (with the caller's context variables) as
        one heavy request; the caller's coroutine waits without blocking the loop."""
        self.admit()
        try:
            return await self.call(fn, *args, **kwargs)
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def slot(self):
        """Hold one heavy-request place for a block of several :meth:`call` (a query and
        then the pieces of its streamed answer)."""
        self.admit()
        try:
            yield self
        finally:
            self.release()

    async def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the pool (with the caller's context variables), inside
        a :meth:`slot` held by the caller.

        The worker hands its outcome back with one ``call_soon_threadsafe``.
        (``loop.run_in_executor`` chains a concurrent future to an asyncio one through
        callbacks on both sides: 0.1 ms more per request on a 2-core machine.) Work the
        pool drops unstarted (:meth:`shutdown`) cancels the caller's wait, and a cancelled
        wait drops its work if it has not started."""
        loop = asyncio.get_running_loop()
        outcome = loop.create_future()
        run = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)

        def work():
            try:
                result = run()
            except BaseException as exc:  # noqa: BLE001 -- the caller's to handle, as an awaited call's
                _to_loop(loop, _settle, outcome, None, exc)
            else:
                _to_loop(loop, _settle, outcome, result, None)

        submitted = self.executor().submit(work)
        submitted.add_done_callback(lambda done: done.cancelled() and _to_loop(loop, outcome.cancel))
        outcome.add_done_callback(lambda done: done.cancelled() and submitted.cancel())
        return await outcome

    def shutdown(self) -> None:
        """Stop taking work; running calls finish in their threads, queued ones are dropped."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.shutdown(wait=False, cancel_futures=True)


def _settle(outcome: asyncio.Future, result, exc: BaseException | None) -> None:
    if outcome.cancelled():  # the caller stopped waiting
        return
    if exc is not None:
        outcome.set_exception(exc)
    else:
        outcome.set_result(result)


def _to_loop(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    """``callback(*args)`` on ``loop``'s thread; nothing when the loop has closed (no one waits)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass


_offloaders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_offloaders_lock = threading.Lock()


def offloader(app) -> Offloader:
    """The app's offloader, configured from ``[requests]`` in ``lcpanel.toml``."""
    with _offloaders_lock:
        found = _offloaders.get(app)
        if found is None:
            settings = getattr(app.config, "requests", None)
            found = Offloader(workers=getattr(settings, "workers", 4), max_heavy=getattr(settings, "max_heavy", 16),
                              retry_after_s=getattr(settings, "retry_after_s", 5))
            _offloaders[app] = found
        return found


def shutdown(app) -> None:
    with _offloaders_lock:
        found = _offloaders.pop(app, None)
    if found is not None:
        found.shutdown()
