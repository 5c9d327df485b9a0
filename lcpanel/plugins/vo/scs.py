"""Simple Cone Search 1.03 (``/scs`` and ``/scs/<collection>``)."""


from __future__ import annotations

import logging

from ...core.offload import offloader
from ...core.vo.datalink import result_services
from ...core.vo.scs import cone_search, parse_request
from ...core.vo.voformats import render as render_format
from ...errors import NotFound
from .base import VOHandler, annotations_for, response_format, wants_mivot

log = logging.getLogger(__name__)


class SCSHandler(VOHandler):
    scs = True

    async def get(self, collection_id=None):
        vo = self.vo
        s = vo.settings
        request = parse_request(self.params(), max_sr_deg=s.scs_max_sr_deg, default_maxrec=s.default_maxrec,
                                max_maxrec=self.row_cap())
        fmt = response_format(self.params())
        mivot = wants_mivot(self.params())
        catalogs = self.app.catalogs
        ids = [collection_id] if collection_id else catalogs.ids()
        if collection_id:
            catalogs.get(collection_id)  # NotFound with a suggestion
        if not ids:
            raise NotFound("there are no collections in this service")
        base = self.base_url()

        def run():
            fields, rows, overflow = cone_search(catalogs, ids, request)
            title = f"collection {collection_id}" if collection_id else "all collections"
            services = result_services(base, [f.name for f in fields], ids)
            return render_format(fmt, fields, rows, overflow=overflow, services=services,
                                 annotations=annotations_for(fields, mivot),
                                 description=f"Simple Cone Search over {title}")

        body = await offloader(self.app).run(run)
        self.send_body(body, fmt.mime)

    post = get
