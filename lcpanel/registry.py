"""Name-keyed registries that the app fills from the ``register_*`` hooks.

Every registered item has a ``name``. Two plugins registering the same name is an error
(to replace a built-in, deny its plugin in the config). Looking up an unknown name raises
:class:`lcpanel.errors.NotFound` with a did-you-mean suggestion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from .core.suggest import did_you_mean
from .errors import NotFound, PluginError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of name to item, filled once at app start-up."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def add(self, item: T, owner: str) -> None:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {owner!r} registered a {self.kind} without a name: {item!r}")
        if name in self._items:
            raise PluginError(
                f"{self.kind} {name!r} is registered twice, by {self._owners[name]!r} and {owner!r}; "
                f"deny one of the two plugins in lcpanel.toml ([plugins] deny = [...])"
            )
        self._items[name] = item
        self._owners[name] = owner

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise NotFound(f"unknown {self.kind} {name!r}: {did_you_mean(str(name), self._items)}") from None

    def owner(self, name: str) -> str:
        self.get(name)
        return self._owners[name]

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: Any) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
