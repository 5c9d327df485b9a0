"""Slow request work off the server's event loop, a bounded amount at a time.

Searches (parse, translate, execute), TAP and cone-search queries, product planning,
password checks and dataset writes would freeze every other request of the process if
they ran on Tornado's event loop. :class:`Offloader` runs them on ``workers`` threads per
process (started at first use, so never shared across a fork; SQLite, numpy and
``hashlib.scrypt`` release the GIL while they work) and admits at most ``max_heavy`` of
them at once, running or waiting: one more is refused at once with :class:`ServerBusy`
(HTTP 503 with ``Retry-After``) instead of queueing without bound.

The threads are lcpanel's own rather than a ``ThreadPoolExecutor``'s: a worker's last
step before it waits for the next call is to wake the caller's loop, so nothing it does
afterwards competes with the loop for the GIL while the answer is sent. With the
executor's bookkeeping (its future, callbacks and idle semaphore) after the wake-up, a
served search took 0.4-0.8 ms longer here (sequential API searches, measured in turn).

``offloader(app)`` is the app's offloader; handlers call ``await offloader(app).run(fn,
*args)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import queue
import threading
import weakref

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
        self._jobs: queue.SimpleQueue | None = None
        self._threads: list[threading.Thread] = []
        self._pid: int | None = None
        self._active = 0

    @property
    def active(self) -> int:
        """Heavy requests admitted and not finished in this process."""
        self._own()
        return self._active

    def _own(self) -> None:
        """Fresh workers and count after a fork (the parent's threads do not exist here)."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._jobs, self._threads, self._active, self._pid = None, [], 0, os.getpid()

    def _submit(self, job: tuple) -> None:
        """Queue ``job`` for this process's workers (starting them if need be). Under the
        lock :meth:`shutdown` takes, so a job is either in the queue it drains or in a new
        one, never left behind the workers' stop signals."""
        self._own()
        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                self._threads = [threading.Thread(target=_work, args=(self._jobs,), name=f"lcpanel-work_{i}",
                                                  daemon=True) for i in range(self.workers)]
                for thread in self._threads:
                    thread.start()
            self._jobs.put(job)

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
        """``fn(*args, **kwargs)`` on a worker (with the caller's context variables), inside
        a :meth:`slot` held by the caller.

        The worker hands its outcome back with one ``call_soon_threadsafe``. Work dropped
        unstarted (:meth:`shutdown`) cancels the caller's wait, and a cancelled wait drops
        its work if it has not started."""
        loop = asyncio.get_running_loop()
        outcome = loop.create_future()
        self._submit((loop, outcome, functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)))
        return await outcome

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking work: queued calls are dropped (their callers' waits cancelled),
        running ones finish in their threads; ``wait``: until they have."""
        with self._lock:
            jobs, threads, self._jobs, self._threads = self._jobs, self._threads, None, []
        if jobs is None or self._pid != os.getpid():
            return
        while True:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                break
            _to_loop(job[0], job[1].cancel)
        for _ in threads:
            jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()


def _work(jobs: queue.SimpleQueue) -> None:
    """One worker thread: each call's outcome goes back to its loop as the last thing done
    before the next wait (see the module docstring); ``None`` stops the thread."""
    while (job := jobs.get()) is not None:
        loop, outcome, run = job
        job = None
        if not outcome.cancelled():  # else the caller stopped waiting before the work started
            try:
                handover = [outcome, run(), None]
            except BaseException as exc:  # noqa: BLE001 -- the caller's to handle, as an awaited call's
                handover = [outcome, None, exc]
            outcome = run = None
            _to_loop(loop, _settle, handover)
        loop = outcome = run = handover = None  # an idle worker holds nothing of the last call


def _settle(handover: list) -> None:
    """Settle the caller's wait with the worker's outcome, emptying ``handover``: the worker
    may not have dropped its own reference to it yet when the caller resumes (the wake-up
    can hand the GIL to the loop at once), and must not keep the answer alive by it."""
    outcome, result, exc = handover
    handover.clear()
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


def shutdown(app, wait: bool = False) -> None:
    """Stop the app's offloader (:meth:`Offloader.shutdown`)."""
    with _offloaders_lock:
        found = _offloaders.pop(app, None)
    if found is not None:
        found.shutdown(wait)
