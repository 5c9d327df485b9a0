"""The object page's record: objectid, collection, position, magnitudes, cross-ids, the
magnitude-column chooser, the reviewed variability info, the survey's comments, the
finder chart and download links (:class:`RecordView`); and the short message page of an
object that has no checkplot view."""

from __future__ import annotations

import math
from urllib.parse import quote


from ...core.objects.annotations import OBJECTISVAR
from ...core.urls import object_page_path
from ..escaping import HIDE_BROKEN_FIGURE, handler
from ..theme import esc, section
from .context import ObjectContext
from .style import CROSS_IDS, ISVAR_BADGE, MAGNITUDES, fmt_period, num, object_html, sexagesimal


def problem_title(rec) -> str:
    """The heading of an object page that shows no object, by what went wrong."""
    return "No such magnitude column" if rec.bad_magcol else "No such object"


class RecordView:
    """The header of the object page; :meth:`render` again after a review changes it."""

    def __init__(self, ctx: ObjectContext):
        self.ctx = ctx
        self.pane = object_html("", css_classes=["lcp-object-header"], margin=(0, 10))

    def _info(self, key):
        v = self.ctx.rec.row.get(key) if self.ctx.rec.row else None
        if v is None and self.ctx.rec.checkplot is not None:
            v = self.ctx.summary["objectinfo"].get(key)
        return v

    def _facts(self, with_var: bool = True) -> str:
        rows = []
        ra, dec = self._info("ra"), self._info("decl")
        if ra is not None and dec is not None:
            rows.append(("position", (f'<span class="lcp-position lcp-mono">{ra:.6f}, {dec:+.6f}</span> '
                                      f'<span class="lcp-muted">deg (ICRS)</span><br>'
                                      f'<span class="lcp-mono">{sexagesimal(ra, dec)}</span>')))
        gl, gb = self._info("gl"), self._info("gb")
        if gl is not None and gb is not None:
            rows.append(("galactic", f'<span class="lcp-mono">l {gl:.4f}, b {gb:+.4f}</span>'))
        mags = [f'{esc(label)} <b>{self._info(key):.3f}</b>' for label, key in MAGNITUDES
                if isinstance(self._info(key), (int, float)) and not isinstance(self._info(key), bool)
                and math.isfinite(self._info(key))]
        if mags:
            rows.append(("magnitudes", " · ".join(mags)))
        ids = []
        for label, keys in CROSS_IDS:
            value = next((self._info(k) for k in keys if self._info(k) not in (None, "")), None)
            if value is not None:
                ids.append(f'{esc(label)} <span class="lcp-mono">{esc(value)}</span>')
        if ids:
            rows.append(("identifiers", " · ".join(ids)))
        pmra, pmdec = self._info("pmra"), self._info("pmdecl")
        if pmra is not None and pmdec is not None:
            rows.append(("proper motion", f"{num(pmra, 2)}, {num(pmdec, 2)} mas/yr"))
        if self.ctx.rec.magcols:
            rows.append(("magnitude column", self._magcol_chooser()))
        if with_var and len(self.ctx.times):
            span = float(self.ctx.times.max() - self.ctx.times.min())
            rows.append(("light curve", f"{len(self.ctx.times):,} points over {span:.1f} d ({esc(self.ctx.magcol)})"))
        if with_var:
            v = self.ctx.values
            isvar = v.get("objectisvar")
            words = OBJECTISVAR.get(isvar, "unreviewed") if isvar is not None else "unreviewed"
            badge = f'<span class="lcp-badge {ISVAR_BADGE.get(isvar, "off")} lcp-isvar">{esc(words)}</span>'
            period = (f' · period <b class="lcp-mono lcp-varperiod">{fmt_period(v["varperiod"])}</b> d'
                      if v.get("varperiod") is not None else "")
            epoch = (f' · epoch <span class="lcp-mono">{v["varepoch"]:.6f}</span>'
                     if v.get("varepoch") is not None else "")
            rows.append(("variability", badge + period + epoch))
            tags = [t.strip() for t in (v.get("vartags") or "").split(",") if t.strip()]
            rows.append(("tags", '<span class="lcp-badges lcp-vartags" style="display:inline-flex">'
                         + "".join(f'<span class="lcp-badge">{esc(t)}</span>' for t in tags) + "</span>"
                         if tags else '<span class="lcp-muted">none</span>'))
            comments = v.get("comments")
            rows.append(("comments", f'<p class="lcp-comments-text lcp-comments">{esc(comments)}</p>' if comments
                         else '<span class="lcp-muted lcp-comments">none from the survey</span>'))
        return '<dl class="lcp-facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"

    def _magcol_chooser(self) -> str:
        """Links to this page for each of the collection's magcols (the URL names it)."""
        here = self.ctx.here()
        items = []
        for m in self.ctx.rec.magcols:
            if m == self.ctx.rec.magcol:
                items.append(f'<b class="lcp-mono lcp-magcol-current" aria-current="page">{esc(m)}</b>')
            else:
                items.append(f'<a class="lcp-mono lcp-magcol-choice" href="{esc(here)}?magcol={quote(m, safe="")}">'
                             f'{esc(m)}</a>')
        default = ' <span class="lcp-muted">(default)</span>' if self.ctx.rec.magcol == self.ctx.rec.magcols[0] else ""
        return '<span class="lcp-magcols">' + " · ".join(items) + "</span>" + default

    def _downloads(self) -> str:
        base = self.ctx.api_base()
        row = self.ctx.rec.row or {}
        links = []
        if row.get("lcfname"):
            links += [(f"{base}/lightcurve", "light curve (as stored)"), (f"{base}/lightcurve?format=csv", "CSV"),
                      (f"{base}/lightcurve?format=fits", "FITS"), (f"{base}/lightcurve?format=votable", "VOTable")]
        if row.get("cpfname"):
            links.append((f"{base}/checkplot{self.ctx.magcol_query()}",
                          f"checkplot ({self.ctx.rec.magcol})" if self.ctx.rec.magcol else "checkplot"))
        if row.get("pffname"):
            links.append((f"{base}/periodfinding", "period finding"))
        if not links:
            return ""
        return ('<div class="lcp-downloads"><span class="lcp-muted">Download</span>'
                + "".join(f'<a href="{esc(href)}" download>{esc(label)}</a>' for href, label in links) + "</div>")

    def _back(self) -> str:
        info = self.ctx.rec.catalog.info if self.ctx.rec.catalog is not None else None
        name = esc(info.name) if info is not None else "the collections"
        api = (f' · <a href="/api/collections/{quote(self.ctx.collection, safe="")}">collection (JSON)</a>'
               if info is not None else "")
        return f'in <a class="lcp-back" href="/">{name}</a>{api}'

    def render(self) -> None:
        finder = ""
        if self.ctx.rec.checkplot is not None and self.ctx.rec.checkplot.get("finderchart") is not None:
            finder = (f'<figure><img class="lcp-finder" alt="finder chart of {esc(self.ctx.objectid)}" '
                      f'src="{self.ctx.api_base()}/tiles/finder.png{self.ctx.magcol_query()}" onerror="{handler(HIDE_BROKEN_FIGURE)}">'
                      '<figcaption>finder chart (from the checkplot)</figcaption></figure>')
        self.pane.object = (
            f'<div class="lcp-object-head"><div><h1 class="lcp-objectid">{esc(self.ctx.objectid)}</h1>'
            f'<p class="lcp-sub">{self._back()}</p>{self._facts()}{self._downloads()}</div>{finder}</div>')

    def message_page(self):
        rec = self.ctx.rec
        if rec.canonical:
            href = object_page_path(self.ctx.collection, rec.canonical)
            body = (f'<p class="lcp-empty lcp-object-moved">{esc(self.ctx.objectid)} is '
                    f'<a href="{esc(href)}">{esc(rec.canonical)}</a>.</p>')
            return section("Object", object_html(body, margin=(0, 10)))
        if rec.error:
            near = ""
            if rec.suggestions:
                links = ", ".join(f'<a class="lcp-nowrap" href="{esc(object_page_path(self.ctx.collection, oid))}">'
                                  f'{esc(oid)}</a>' for oid in rec.suggestions)
                near = f" Nearest ids: {links}."
            body = (f'<p class="lcp-empty lcp-object-missing">{esc(rec.error)}. The link may be mistyped.{near} '
                    '<a href="/">Back to the collections</a>.</p>')
            return section(problem_title(rec), object_html(body, margin=(0, 10)))
        facts = self._facts(with_var=False) if self.ctx.rec.row else ""
        body = (f'<div class="lcp-object-head" style="display:block"><h1 class="lcp-objectid">'
                f'{esc(self.ctx.objectid)}</h1><p class="lcp-sub">{self._back()}</p>{facts}{self._downloads()}</div>'
                f'<p class="lcp-empty lcp-no-checkplot" style="margin-top:10px">No checkplot for this object. '
                f'{esc(self.ctx.rec.no_checkplot)} <a href="/">Back to the collections</a>.</p>')
        return section("Object", object_html(body, margin=(0, 10)))


    def panel(self):
        self.render()
        return section("Object", self.pane, css_classes=["lcp-object"])
