"""The contract between lcpanel and its plugins: every hook, with what it must do.

A plugin is a module or object with functions marked ``@hookimpl`` whose names and
arguments match the specs below (a misspelled name or argument fails at start-up, in
``check_pending``). Plugins are found through the ``lcpanel`` entry-point group; the
built-in ones in :mod:`lcpanel.plugins` are registered the same way and mark their
implementations ``trylast``.

``register_*`` hooks are called once per app, at start-up. Each returns a list of items
that have a unique ``name``; the app merges them into name-keyed registries, and a name
registered by two plugins is an error. Event hooks (``*_created``, ``*_built``...) are
notifications: their return values are ignored and an exception in one is logged, not
raised to the user whose request triggered it.
"""

from __future__ import annotations

import pluggy

PROJECT = "lcpanel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -----------------------------------------------------------------------


@hookspec
def register_search_backends(app):
    """Return a list of search backend classes.

    Each is a subclass of ``lcpanel.core.search.SearchBackend`` with a unique ``name``
    (used in ``{"type": name}`` search specs, CLI ``lcpanel search BASEDIR name`` and the
    web form), a ``title``, typed ``param`` parameters with documented defaults and bounds
    (they generate the web form and the JSON schema), an optional ``prepare(settings)``
    for cross-field checks (``self.context`` is the :class:`~lcpanel.core.search.SearchContext`:
    app, catalogs, settings) and a ``search_collection(catalog, flt, sort, limit)`` method
    returning ``lcpanel.core.search.Hits`` (row ids and the number matched) for one
    collection. It must never write to a catalog.
    """


@hookspec
def register_product_builders(app):
    """Return a list of product builder classes.

    Each is a subclass of ``lcpanel.core.products.ProductBuilder`` with a unique
    ``name`` (e.g. ``"lightcurves"``), a ``title``, the ``options`` it accepts (name ->
    allowed values, the first the default) and a ``plan(app, dataset, rows, options)``
    method returning the zip's members as ``lcpanel.core.products.Entry`` items
    (``"file"``, ``"bytes"`` or ``"call"``). ``plan`` runs in the request; lcpanel builds
    the zip in a worker process (a ``call`` entry's function runs there), with progress,
    an ``SHA256SUMS`` manifest and an atomic rename into place.
    """


@hookspec
def register_lc_formats(app):
    """Return a list of light-curve format classes.

    Each is a subclass of ``lcpanel.core.objects.lcformats.LCFormat`` with a unique ``name``
    (the ``kind`` stored with a collection, e.g. ``"astrobase"``), a ``from_spec``
    constructor taking the collection's stored format spec, and a ``read`` method that
    turns one light-curve file into a ``LightCurve`` (columns, units, time system) so any
    collection's light curves can be exported as CSV, FITS, ECSV or VOTable. The class is
    re-imported by name (``module:Class``) in product worker processes, so define it at
    module level. ``source_files()`` names other files ``read`` depends on (the
    light-curve cache treats its copies as stale when one changes).
    """


@hookspec
def register_views(app):
    """Return a list of ``lcpanel.extension.Page`` items for the web app.

    A page has a unique ``name``, a URL ``route`` (``"/"``, ``"/datasets"``), a
    ``title`` and a ``factory(app)`` returning a fresh Panel viewable per browser
    session. Pages must reach backends and builders only through the app's registries.
    """


@hookspec
def register_routes(app):
    """Return a list of ``lcpanel.extension.Route`` items: extra Tornado handlers.

    Each has a unique ``name``, a URL ``pattern`` and a handler class with its keyword
    arguments. They are mounted on the same server as the web app (the JSON API and the
    VO endpoints are routes). Handlers must answer errors as 4xx JSON (or the protocol's
    own error format), never with a stack trace.
    """


@hookspec
def register_commands(app):
    """Return a list of ``lcpanel.extension.Command`` items for the ``lcpanel`` CLI.

    A command has a unique ``name`` (the sub-command), a one-line ``help``, an
    ``add_arguments(parser)`` function and a ``run(args)`` function returning an exit
    status. Commands must be non-interactive and report long work with a progress bar
    on stderr.
    """


@hookspec(firstresult=True)
def open_catalog(app, info):
    """Open the catalog of a collection that is not an lcpanel SQLite catalog, or return None.

    ``info`` is the collection's ``lcpanel.core.catalogs.basedir.CollectionInfo``; a plugin that
    registers collections of its own ``kind`` (e.g. ``"hats"``) returns an instance of a
    subclass of ``lcpanel.core.catalogs.catalog.CatalogBase`` for them (``skyindex`` with
    ``cone``/``crossmatch``, ``fetch_values(row_ids, names)``, ``passing(row_ids, flt)``,
    ``select(flt, sort, limit)``; ``top`` and ``fetch_rows`` are inherited), so the same
    search types run on it, and None for any other collection. Called once per collection per process (``app.catalogs`` caches it);
    the first non-None answer wins, and lcpanel opens the collection itself when every
    plugin answers None.
    """


# --- life cycle -------------------------------------------------------------------------


@hookspec
def startup(app):
    """Called once when a process starts serving or running a command, after all
    registries are filled. Open shared resources here (read-only catalogs, sky
    indexes, worker pools); keep it fast, a server process starts per CPU."""


@hookspec
def shutdown(app):
    """Called once when the process stops cleanly. Release what ``startup`` opened."""


# --- events -----------------------------------------------------------------------------


@hookspec
def collection_added(app, collection):
    """A collection was ingested and registered in the basedir (``collection`` is its
    ``lcpanel.core.catalogs.basedir.CollectionInfo``)."""


# The dataset events are sent by ``lcpanel.core.datasets.DatasetStore`` itself (through the
# app's ``notify``), whichever interface (API, CLI, web page) made the change.


@hookspec
def dataset_created(app, dataset):
    """A search completed and its dataset (``lcpanel.core.datasets.Dataset``) was written."""


@hookspec
def dataset_updated(app, dataset, changes):
    """A dataset was edited; ``changes`` is the set of names of what changed (``"name"``,
    ``"objects"``...). Editing a frozen dataset makes a new version: ``dataset`` is it."""


@hookspec
def dataset_frozen(app, dataset):
    """A dataset was frozen: ``dataset`` is the new permanent copy (``dataset.parent`` is the
    id of the dataset it was copied from, which stays editable)."""


@hookspec
def dataset_deleted(app, dataset_id):
    """A dataset was deleted."""


@hookspec
def product_built(app, dataset, product):
    """A product finished building and its file is in place with its SHA256 recorded.

    Called in the server process that started the build (from a worker thread), once per
    build; a request that reuses an existing product does not call it again. ``product``
    is the status dict of :meth:`lcpanel.core.products.ProductStore.status`."""
