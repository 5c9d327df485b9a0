"""A place on the app for each plugin's own state, typed and private (like pytest's ``Stash``).

A plugin makes a key once at import time and keeps what it shares in one process under
it, instead of a module-level dictionary keyed by app::

    SERVICE = StashKey[VOService]()

    def service(app) -> VOService:
        return app.stash.setdefault_with(SERVICE, lambda: VOService(app))

Two apps in one process have two stashes; two plugins cannot collide, since a key is an
object only its plugin holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class StashKey(Generic[T]):
    """The key of one value in a :class:`Stash`; compared by identity."""

    __slots__ = ()


class Stash:
    """Values by :class:`StashKey`; thread-safe creation through :meth:`setdefault_with`."""

    __slots__ = ("_values", "_lock")

    def __init__(self) -> None:
        self._values: dict[StashKey, object] = {}
        self._lock = threading.Lock()

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._values[key])

    def get(self, key: StashKey[T], default=None):
        return self._values.get(key, default)

    def setdefault_with(self, key: StashKey[T], make: Callable[[], T]) -> T:
        """The value under ``key``, made with ``make()`` (once, even across threads) if absent."""
        try:
            return cast(T, self._values[key])
        except KeyError:
            with self._lock:
                if key not in self._values:
                    self._values[key] = make()
                return cast(T, self._values[key])

    def __delitem__(self, key: StashKey) -> None:
        del self._values[key]

    def __contains__(self, key: StashKey) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
