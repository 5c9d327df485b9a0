"""One wall-clock deadline per request, shared by every step that runs user input.

A search parses its filter, translates its ADQL and runs SQL in several places; the
time limit must cover all of them, not restart at each. :func:`deadline` sets the
current thread's deadline for a block (nested blocks keep the earlier one);
:func:`remaining` is the time left (``inf`` outside any block) and :func:`check` raises
:class:`~lcpanel.core.catalogs.sqlsafe.QueryTimeout` once it has passed.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time

_local = threading.local()


def current() -> float:
    """The current thread's deadline (``time.monotonic()`` seconds), ``inf`` if none."""
    return getattr(_local, "deadline", math.inf)


def remaining() -> float:
    return current() - time.monotonic()


@contextlib.contextmanager
def deadline(timeout_s: float):
    """Within the block, :func:`current` is at most ``timeout_s`` seconds from now."""
    previous = current()
    _local.deadline = min(previous, time.monotonic() + float(timeout_s))
    try:
        yield _local.deadline
    finally:
        _local.deadline = previous


def check(what: str = "running the query") -> None:
    """Raise QueryTimeout if the current deadline has passed (``what``: the step it
    passed in, for the message)."""
    if time.monotonic() > current():
        from .catalogs.sqlsafe import QueryTimeout

        raise QueryTimeout(f"the time limit ran out while {what}; simplify the query or narrow it with a "
                           "column filter or a smaller region")
