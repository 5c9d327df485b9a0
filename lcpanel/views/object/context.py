"""What every part of one object page shares: the app, the visitor, the object's record
(:func:`lcpanel.core.objects.record.find_object`), the checkplot's light curve and the
variability info as searches see it. The page makes one; each part reads it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...core.objects import reviews
from ...core.objects.checkplots import magseries, object_summary
from ...core.objects.record import ObjectRecord
from ...core.urls import object_page_path, object_path, segment


@dataclass
class ObjectContext:
    app: object
    viewer: object
    collection: str
    objectid: str
    rec: ObjectRecord
    summary: dict = field(default_factory=dict)
    times: np.ndarray = None
    mags: np.ndarray = None
    errs: np.ndarray = None
    magcol: str = "mag"  # the magnitude column shown (named on axes)
    values: dict = field(default_factory=dict)
    may_edit_varinfo: bool = False

    @classmethod
    def of(cls, app, viewer, collection: str, objectid: str, rec: ObjectRecord) -> "ObjectContext":
        """The context of an object with a readable checkplot."""
        cp = rec.checkplot
        ctx = cls(app, viewer, collection, objectid, rec, summary=object_summary(cp))
        ctx.times, ctx.mags, ctx.errs = magseries(cp)
        ctx.magcol = rec.magcol or rec.varcols.get("objectisvar", "")[:-len("_objectisvar")] or "mag"
        ctx.may_edit_varinfo = reviews.can_edit_varinfo(viewer)
        ctx.refresh_values()
        return ctx

    def refresh_values(self) -> dict:
        """Re-read the variability info as searches see it (the catalog: reviews merged
        over the survey's values), the checkplot's varinfo where the catalog has no
        column; and the checkplot's own comment (reviewers' comments are listed apart)."""
        vi = self.summary["varinfo"]
        values = {"objectisvar": vi.get("objectisvar"), "varperiod": vi.get("varperiod"),
                  "varepoch": vi.get("varepoch"), "vartags": vi.get("vartags"),
                  "comments": self.summary.get("comments")}
        cols = {f: c for f, c in self.rec.varcols.items() if f != "comments"}
        row = self.rec.catalog.object_row(self.objectid, list(cols.values())) if cols else None
        if row:
            for f, c in cols.items():
                values[f] = row[c] if row[c] != "" else None
        if values["objectisvar"] is not None:
            try:
                values["objectisvar"] = int(values["objectisvar"])
            except (TypeError, ValueError):
                values["objectisvar"] = None
        for f in ("varperiod", "varepoch"):
            try:
                values[f] = float(values[f]) if values[f] is not None else None
            except (TypeError, ValueError):
                values[f] = None
            if values[f] is not None and not math.isfinite(values[f]):  # a survey's NaN: no value
                values[f] = None
        self.values = values
        return values

    def adopted(self) -> float | None:
        """The reviewed period of a variable, else None."""
        p = self.values.get("varperiod")
        return p if self.values.get("objectisvar") == 1 and p is not None and p > 0 else None

    def api_base(self) -> str:
        return object_path(self.collection, self.objectid)

    def magcol_query(self) -> str:
        """``?magcol=...`` naming the magcol the page shows, for the API's file and image
        URLs ('' for a collection with one)."""
        return f"?magcol={segment(self.rec.magcol)}" if self.rec.magcol else ""

    def here(self) -> str:
        return object_page_path(self.collection, self.objectid)
