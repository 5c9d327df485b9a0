"""The public plugin API: every lcpanel name a plugin (and its tests) may import.

Import from here, not from lcpanel's modules: the modules behind these names may move,
these names stay. ``tests/test_plugin_contract.py`` fails if anything under
``plugins_contrib/`` imports another lcpanel name.

- hooks: ``hookimpl`` (the hooks are documented in ``lcpanel/hookspecs.py`` and
  ``docs/writing-plugins.md``); the app, its settings and each plugin's state:
  ``App``, ``Config``, ``SearchSettings``, ``Stash``, ``StashKey``;
- what plugins register: ``SearchBackend`` (with ``SearchContext``, ``Hits``, ``Filter``),
  ``ProductBuilder`` (with ``Entry``), ``LCFormat`` (with ``LightCurve``), ``Page``,
  ``Route``, ``JSONHandler``, ``Command``;
- catalogs: ``CatalogBase`` (the contract of ``open_catalog``), ``Catalog`` (SQLite),
  ``Basedir``, ``CollectionInfo``, ``ColumnInfo``; the sky kernels of ``SkyIndex``;
- ingest helpers for plugins that add collections of their own kind;
- searches and datasets: ``run_search``, ``SearchSpec``, ``SearchResult``, ``Dataset``,
  ``Principal``, ``OPERATOR``;
- errors: ``UserError`` and its kinds, ``PluginError``.

Names are imported on first use (``from lcpanel.plugin_api import X`` costs only X's
module), so a plugin's entry point stays cheap to load.
"""

from __future__ import annotations

import importlib

#: public name -> "module:attribute" it comes from
_EXPORTS = {
    # hooks, the app, settings, per-plugin state
    "hookimpl": "lcpanel.hookspecs:hookimpl",
    "App": "lcpanel.app:App",
    "Config": "lcpanel.config:Config",
    "SearchSettings": "lcpanel.config:SearchSettings",
    "Stash": "lcpanel.stash:Stash",
    "StashKey": "lcpanel.stash:StashKey",
    # what plugins register
    "SearchBackend": "lcpanel.core.search:SearchBackend",
    "SearchContext": "lcpanel.core.search:SearchContext",
    "Hits": "lcpanel.core.search:Hits",
    "Filter": "lcpanel.core.catalogs.filters:Filter",
    "conjunction": "lcpanel.core.catalogs.filters:conjunction",
    "ProductBuilder": "lcpanel.core.products:ProductBuilder",
    "Entry": "lcpanel.core.products:Entry",
    "LCFormat": "lcpanel.core.objects.lcformats:LCFormat",
    "LightCurve": "lcpanel.core.objects.lcformats:LightCurve",
    "Page": "lcpanel.extension:Page",
    "Route": "lcpanel.extension:Route",
    "Command": "lcpanel.extension:Command",
    "JSONHandler": "lcpanel.jsonapi:JSONHandler",
    # catalogs and collections
    "CatalogBase": "lcpanel.core.catalogs.catalog:CatalogBase",
    "Catalog": "lcpanel.core.catalogs.catalog:Catalog",
    "Basedir": "lcpanel.core.catalogs.basedir:Basedir",
    "CollectionInfo": "lcpanel.core.catalogs.basedir:CollectionInfo",
    "validate_collection_id": "lcpanel.core.catalogs.basedir:validate_collection_id",
    "ColumnInfo": "lcpanel.core.catalogs.columns:ColumnInfo",
    "describe_column": "lcpanel.core.catalogs.columns:describe",
    "sql_name": "lcpanel.core.catalogs.columns:sql_name",
    "BuiltCatalog": "lcpanel.core.catalogs.build:BuiltCatalog",
    "FOOTPRINT_MAX_CELLS": "lcpanel.core.catalogs.build:FOOTPRINT_MAX_CELLS",
    # sky kernels (unit vectors; angles in radians)
    "SkyIndex": "lcpanel.core.catalogs.skyindex:SkyIndex",
    "RECORD_DTYPE": "lcpanel.core.catalogs.skyindex:RECORD_DTYPE",
    "radec_to_xyz": "lcpanel.core.catalogs.skyindex:radec_to_xyz",
    "pairs_within": "lcpanel.core.catalogs.skyindex:pairs_within",
    "angle_between_rad": "lcpanel.core.catalogs.skyindex:angle_between_rad",
    # ingest
    "CollectionMeta": "lcpanel.core.catalogs.ingest:CollectionMeta",
    "add_astrobase_collection": "lcpanel.core.catalogs.ingest:add_astrobase_collection",
    "add_catalog_collection": "lcpanel.core.catalogs.ingest:add_catalog_collection",
    "remove_collection": "lcpanel.core.catalogs.ingest:remove_collection",
    "register_collection": "lcpanel.core.catalogs.ingest:register_collection",
    "collection_slug": "lcpanel.core.catalogs.ingest:collection_slug",
    "check_collection_free": "lcpanel.core.catalogs.ingest:check_collection_free",
    "atomic_dir": "lcpanel.core.atomic:atomic_dir",
    "atomic_path": "lcpanel.core.atomic:atomic_path",
    "progress_bar": "lcpanel.core.progress:progress_bar",
    # astrobase checkplots and period-finding results
    "CheckplotError": "lcpanel.core.objects.checkplots:CheckplotError",
    "read_checkplot_bytes": "lcpanel.core.objects.checkplots:read_checkplot_bytes",
    "pf_entries": "lcpanel.core.objects.checkplots:pf_entries",
    "method_code": "lcpanel.core.objects.checkplots:method_code",
    "method_label": "lcpanel.core.objects.checkplots:method_label",
    "adopted_period": "lcpanel.core.objects.checkplots:adopted_period",
    "magseries": "lcpanel.core.objects.checkplots:magseries",
    "phase_fold": "lcpanel.core.objects.checkplots:phase_fold",
    "import_astrobase": "lcpanel.core.objects.astrobase_compat:import_astrobase",
    "astrobase_offline": "lcpanel.core.objects.astrobase_compat:offline",
    # searches and datasets
    "run_search": "lcpanel.core.search:run_search",
    "SearchSpec": "lcpanel.core.search:SearchSpec",
    "SearchResult": "lcpanel.core.search:SearchResult",
    "Dataset": "lcpanel.core.datasets:Dataset",
    "Principal": "lcpanel.core.datasets:Principal",
    "OPERATOR": "lcpanel.core.datasets:OPERATOR",
    "cli_main": "lcpanel.cli:main",
    # errors
    "UserError": "lcpanel.errors:UserError",
    "NotFound": "lcpanel.errors:NotFound",
    "Conflict": "lcpanel.errors:Conflict",
    "Forbidden": "lcpanel.errors:Forbidden",
    "TooLarge": "lcpanel.errors:TooLarge",
    "IngestError": "lcpanel.errors:IngestError",
    "PluginError": "lcpanel.errors:PluginError",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"lcpanel.plugin_api has no {name!r}; the public names are in its __all__")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
