"""The hook implementations: the module the ``lcpanel`` entry point names.

lcpanel calls each ``@hookimpl`` function whose name matches a spec in
``lcpanel/hookspecs.py``; a misspelled name or argument stops start-up with an error
naming it. Registration hooks return lists of classes; event hooks are notifications
(an exception in one is logged, never shown to the user).
"""

from __future__ import annotations

import logging

from lcpanel.plugin_api import hookimpl

from .pfindex import get_index
from .products import PeriodfindingCSV, PhasedPDF
from .search import BoxSearch, PeriodSearch

log = logging.getLogger(__name__)


@hookimpl
def register_search_backends(app):
    return [PeriodSearch, BoxSearch]


@hookimpl
def register_product_builders(app):
    return [PeriodfindingCSV, PhasedPDF]


@hookimpl
def collection_added(app, collection):
    """Index the new collection's period-finding results now, so the first period
    search does not pay for reading every pickle."""
    index = get_index(collection)
    if len(index):
        log.info("periodsearch: indexed %d periods of %d objects in %s", len(index), index.nobjects,
                 collection.collection_id)
