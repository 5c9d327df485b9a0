"""The lcpanel plugin (entry point ``hats`` in the ``lcpanel`` group).

- ``open_catalog``: collections of kind ``hats`` open as :class:`.catalog.HatsCatalog`,
  so the built-in ``cone``, ``xmatch`` and ``filter`` searches, the JSON API, the web
  forms and datasets work on them through LSDB;
- ``register_commands``: ``lcpanel hats-export`` and ``lcpanel hats-add``;
- ``shutdown``: closes the Dask clients and LocalClusters this process started.
"""

from __future__ import annotations

from lcpanel.plugin_api import hookimpl

from . import KIND


@hookimpl
def open_catalog(app, info):
    if info.kind != KIND:
        return None
    from .catalog import HatsCatalog
    from .runtime import HatsSettings

    return HatsCatalog(info, app.config.search, HatsSettings.from_config(app.config))


@hookimpl
def register_commands(app):
    from .commands import commands

    return commands()


@hookimpl
def shutdown(app):
    from .runtime import close_all

    close_all()
