"""Stop ``lcpanel serve`` cleanly on SIGTERM or SIGINT, with any number of processes.

With ``--num-procs N`` Tornado forks N serving children and the parent waits for them,
restarting any child that dies of a signal; left alone, a SIGTERM kills the parent and
leaves the children answering on the port. :class:`Terminator`, installed before the
fork, makes a termination signal reach every process:

- in the parent (which only supervises), it forwards SIGTERM to each child, waits up to
  ``grace_s`` for them (then SIGKILLs what is left) and exits;
- in a serving process (a child, or the only process) it stops the IO loop, so the
  caller's ``finally`` closes the app: thread pools, product worker processes;
- a child whose parent has gone (killed with SIGKILL) stops too (:meth:`Terminator.serving`
  watches for it).
"""

from __future__ import annotations

import os
import signal
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc; empty where there is none)."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry))
    return out


class Terminator:
    """Signal handling for one ``serve`` run (see the module docstring)."""

    def __init__(self, grace_s: float = 8.0, watch_every_s: float = 1.0):
        self.grace_s = grace_s
        self.watch_every_s = watch_every_s
        self.parent = os.getpid()
        self.loop = None
        self._previous: dict = {}

    def install(self) -> "Terminator":
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def serving(self, loop) -> None:
        """Called in each serving process once its Tornado IO loop exists."""
        self.loop = loop
        if os.getpid() != self.parent:
            loop.call_later(self.watch_every_s, self._watch_parent)

    def _watch_parent(self) -> None:
        if os.getppid() != self.parent:
            self.loop.stop()
        else:
            self.loop.call_later(self.watch_every_s, self._watch_parent)

    def _handle(self, signum, frame) -> None:
        if self.loop is not None:
            self.loop.add_callback_from_signal(self.loop.stop)
            return
        if os.getpid() == self.parent:
            self.stop_children()
        raise SystemExit(0)

    def stop_children(self) -> None:
        """SIGTERM every child, wait up to ``grace_s``, SIGKILL the rest, reap them all."""
        pids = children(os.getpid())
        for pid in pids:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        waiting = set(pids)
        while waiting and time.monotonic() < deadline:
            for pid in list(waiting):
                if _reaped(pid):
                    waiting.discard(pid)
            time.sleep(0.05)
        for pid in waiting:
            _kill(pid, signal.SIGKILL)
            _reaped(pid, block=True)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reaped(pid: int, block: bool = False) -> bool:
    try:
        done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
