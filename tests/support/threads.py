"""Which thread runs a piece of the server's work (for tests of what runs off the event loop)."""

from __future__ import annotations

import threading

#: the name prefix of lcpanel's worker threads (lcpanel.core.offload)
WORKER_PREFIX = "lcpanel-work"


def record_threads(monkeypatch, owner, name: str) -> list[str]:
    """Wrap ``owner.name`` (a module function or a class's method) so that each call
    appends the name of the thread it runs on to the list returned."""
    threads, original = [], getattr(owner, name)

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return threads


def all_on_workers(threads: list[str]) -> bool:
    """Whether there were calls and every one ran on a worker thread."""
    return bool(threads) and all(t.startswith(WORKER_PREFIX) for t in threads)
