"""The ``adql`` search type: ADQL selects objects (and makes datasets) like every other search."""


from __future__ import annotations

import logging

import numpy as np
import param

from ...core.search import Hits, SearchBackend
from ...core.vo.tap_query import TapEngine
from ...errors import UserError
from .base import service

log = logging.getLogger(__name__)


# --- the adql search type ------------------------------------------------------------------------


class AdqlSearch(SearchBackend):
    """Objects chosen by an ADQL query over one collection table."""

    name = param.String(default="adql", constant=True)
    title = "ADQL"
    description = ("An ADQL query over one collection table, e.g. SELECT TOP 100 * FROM lcpanel.demo WHERE "
                   "1=CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', 290, 45, 0.1)) AND vmag < 12 ORDER BY "
                   "vmag. Its WHERE, ORDER BY and TOP choose the objects; the result holds the usual columns. "
                   "Use /tap for any other query.")
    query = param.String(default="", doc="an ADQL SELECT over lcpanel.<collection>")
    text_params = ("query",)
    example = {"query": "SELECT TOP 100 * FROM lcpanel.demo WHERE vmag < 12 ORDER BY vmag"}

    def prepare(self, settings):
        if not self.query.strip():
            raise UserError("give an ADQL query, e.g. SELECT * FROM lcpanel.demo WHERE vmag < 12", field="query")
        self._translation = self._engine().translate(self.query, objects_only=True)

    def _engine(self) -> TapEngine:
        return service(self.context.app).engine

    def search_collection(self, catalog, flt, sort, limit):
        translation = self._translation
        if translation.collection_id != catalog.collection_id:
            return Hits(row_ids=[], nmatched=0)
        engine = self._engine()
        out = engine.execute(translation, maxrec=limit, timeout_s=catalog.settings.query_timeout_s)
        ids = np.array([r[0] for r in out.rows], dtype=np.int64)
        if flt is not None:
            ids = ids[catalog.passing(ids, flt)]
        return Hits(row_ids=ids.tolist(), nmatched=len(ids), nmatched_is_lower_bound=out.overflow)
