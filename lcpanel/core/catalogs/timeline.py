"""When each step of a catalog build ran, and on which thread.

An ingest runs its steps on two cores (the table and its B-tree indexes on one, the
full-text and sky indexes on the other: :mod:`lcpanel.core.catalogs.build`), so its time
is not the sum of its steps. :class:`Timeline` records every step's start and end, in
seconds from the build's start, with the thread that ran it; the build logs them and
``benchmarks/bench_ingest.py`` prints them, so a slow ingest shows where it waits.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    thread: str
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s


class Timeline:
    """Steps recorded from any thread (``list.append`` is atomic)."""

    def __init__(self):
        self.origin = time.perf_counter()
        self.steps: list[Step] = []

    @contextmanager
    def step(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.steps.append(Step(name, threading.current_thread().name, start - self.origin,
                                   time.perf_counter() - self.origin))

    def summary(self) -> str:
        """One line: each step's seconds, in the order they began."""
        return ", ".join(f"{s.name} {s.seconds:.1f} s" for s in sorted(self.steps, key=lambda s: s.start_s))
