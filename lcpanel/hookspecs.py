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
    (they generate the web form and the JSON schema) and a ``run`` method that answers
    with matched and returned counts. It must never write to a catalog.
    """


@hookspec
def register_product_builders(app):
    """Return a list of product builder classes.

    Each is a subclass of ``lcpanel.core.products.ProductBuilder`` with a unique
    ``name`` (e.g. ``"lightcurves"``), the options it accepts, and a ``build`` function
    that runs in a worker process, reports progress through the callback it is given,
    writes its output to a temporary path that the caller renames into place, and
    returns a manifest of the files it wrote with their SHA256 digests.
    """


@hookspec
def register_lc_formats(app):
    """Return a list of light-curve format classes.

    Each is a subclass of ``lcpanel.core.lcformats.LCFormat`` with a unique ``name``
    (the ``kind`` stored with a collection, e.g. ``"astrobase"``), a ``from_spec``
    constructor taking the collection's stored format spec, and a ``read`` method that
    turns one light-curve file into a ``LightCurve`` (columns, units, time system) so any
    collection's light curves can be exported as CSV, FITS, ECSV or VOTable.
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

    ``info`` is the collection's ``lcpanel.core.basedir.CollectionInfo``; a plugin that
    registers collections of its own ``kind`` (e.g. ``"hats"``) returns an object with
    the interface of ``lcpanel.core.catalog.Catalog`` for them (``info``, ``columns``,
    ``skyindex.cone``/``crossmatch``, ``passing``, ``select``, ``top``,
    ``fetch_values``...), so the same search types run on it, and None for any other
    collection. Called once per collection per process (``app.catalogs`` caches it);
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
    ``lcpanel.core.collections.CollectionInfo``)."""


@hookspec
def dataset_created(app, dataset):
    """A search completed and its dataset was written."""


@hookspec
def dataset_updated(app, dataset, changes):
    """A dataset was edited; ``changes`` names the fields that changed."""


@hookspec
def dataset_deleted(app, dataset_id):
    """A dataset was deleted."""


@hookspec
def product_built(app, dataset, product):
    """A product finished building and its file is in place with its SHA256 recorded.

    Called in the server process that started the build (from a worker thread), once per
    build; a request that reuses an existing product does not call it again. ``product``
    is the status dict of :meth:`lcpanel.core.products.ProductStore.status`."""
