"""Small value types that plugins return from the registration hooks that are not about
data (pages, HTTP routes, CLI commands)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Page:
    """A web page: ``factory(app)`` returns a fresh Panel viewable per session."""

    name: str
    route: str
    title: str
    factory: Callable[[Any], Any]


@dataclass(frozen=True)
class Route:
    """An extra Tornado handler mounted on the web app's server."""

    name: str
    pattern: str
    handler: type
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """A sub-command of the ``lcpanel`` CLI."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
