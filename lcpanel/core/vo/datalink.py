"""IVOA DataLink 1.1: from an object id to its light curve and everything made from it.

An object is named by a DataLink ID: ``ivo://lcpanel/<collection>?<objectid>``, or the
shorter ``<collection>/<objectid>``. At a per-collection endpoint (``/datalink/<collection>``,
what the service descriptors in TAP and cone-search results point at) a bare
``<objectid>`` works too. One photometric series of its light curve (a magcol,
:mod:`lcpanel.core.objects.lcseries`; one ObsCore row each) is named by appending
``/<magcol>``: ``ivo://lcpanel/<collection>?<objectid>/<magcol>`` is the ObsCore
``obs_publisher_did``. An object id that itself ends in ``/<something>`` is found as the
object (an exact id wins); a series must be one the collection's ObsCore rows list.

:func:`links_for` turns a batch of IDs into link rows (one query per collection for the
whole batch, one sky-index cone per object and other collection for counterparts); every
ID that cannot be answered gets one row carrying a DataLink fault instead:

- ``#this``: the light curve as a VOTable (time system, units), and as alternatives FITS
  and CSV (``content_qualifier`` ``#timeseries``): the whole file's columns for an object,
  the series' own columns (``magcol=``) for a series;
- ``#preview``: a PNG of the light curve (of the series);
- ``#progenitor``: the light-curve file as the survey stored it;
- ``#auxiliary``: the checkplot pickle, the period-finding pickle and the checkplot's
  images (unphased and phased light curves, finder): every magcol's for an object, the
  series' own for a series;
- ``#counterpart``: the same position (within :data:`COUNTERPART_ARCSEC`) in every other
  collection, as a link to that object's own DataLink document.

:func:`links_votable` writes the ``{links}`` response; :func:`service_descriptor` the
``adhoc:service`` resource that makes TAP/SCS rows clickable in TOPCAT and pyvo.
"""

from __future__ import annotations

from dataclasses import dataclass, fields as dc_fields
from urllib.parse import quote

import numpy as np

from ..urls import object_path, segment
from .votable import VOField, text

STANDARD_ID = "ivo://ivoa.net/std/DataLink#links-1.1"
LINKS_MIME = "application/x-votable+xml;content=datalink"
ID_PREFIX = "ivo://lcpanel/"
COUNTERPART_ARCSEC = 2.0
#: IDs one request may name (DataLink has no limit of its own; Gaia stops at 5,000)
MAX_IDS = 5000

_FIELDS = (
    VOField("ID", "char", "*", ucd="meta.id;meta.main", description="the identifier this link belongs to"),
    VOField("access_url", "char", "*", ucd="meta.ref.url", description="where to get the linked resource"),
    VOField("service_def", "char", "*", ucd="meta.ref", description="a service descriptor to call (none here)"),
    VOField("error_message", "char", "*", ucd="meta.code.error", description="why this ID has no links"),
    VOField("semantics", "char", "*", ucd="meta.code", description="what the link is, from the DataLink vocabulary"),
    VOField("description", "unicodeChar", "*", ucd="meta.note", description="the link in words"),
    VOField("content_type", "char", "*", ucd="meta.code.mime", description="MIME type of the resource"),
    VOField("content_length", "long", unit="byte", ucd="phys.size;meta.file",
            description="size of the resource where known"),
    VOField("content_qualifier", "char", "*", ucd="meta.code.class",
            description="what kind of product the resource is (product-type vocabulary)"),
    VOField("local_semantics", "char", "*", ucd="meta.code", description="which of several similar links this is"),
)


@dataclass(frozen=True)
class Link:
    """One row of a ``{links}`` table."""

    ID: str
    access_url: str | None = None
    service_def: str | None = None
    error_message: str | None = None
    semantics: str | None = None
    description: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    content_qualifier: str | None = None
    local_semantics: str | None = None

    def row(self) -> tuple:
        return tuple(getattr(self, f.name) for f in dc_fields(self))


def publisher_did(collection_id: str, objectid: str, magcol: str | None = None) -> str:
    """The DataLink ID of an object, or (with ``magcol``) of one of its series: the ObsCore
    ``obs_publisher_did``."""
    return f"{ID_PREFIX}{collection_id}?{objectid}" + (f"/{magcol}" if magcol else "")


def parse_id(raw: str, default_collection: str | None = None) -> tuple[str, str]:
    """``(collection, local part)`` of a DataLink ID (the local part: ``<objectid>`` or
    ``<objectid>/<magcol>``); ``ValueError`` with the reason when it names neither form."""
    value = raw.strip()
    if value.startswith(ID_PREFIX):
        collection, sep, objectid = value[len(ID_PREFIX):].partition("?")
        if not sep or not collection or not objectid:
            raise ValueError(f"{raw!r} is not of the form {ID_PREFIX}<collection>?<objectid>")
        return collection, objectid
    if default_collection is not None:
        return default_collection, value
    collection, sep, objectid = value.partition("/")
    if not sep or not collection or not objectid:
        raise ValueError(f"{raw!r} is neither {ID_PREFIX}<collection>?<objectid> nor <collection>/<objectid>")
    return collection, objectid


def _object_rows(catalog, objectids: list[str]) -> dict[str, dict]:
    """The catalog rows (objectid, ra, decl and file columns) of these objects."""
    import json

    from ..objects.magcols import checkplot_column, collection_magcols

    per_magcol = [checkplot_column(m) for m in collection_magcols(catalog.info.columns)]
    wanted = [c for c in ("objectid", "ra", "decl", "lcfname", "cpfname", "pffname", *per_magcol)
              if c in catalog.columns]
    found: dict[str, dict] = {}
    for start in range(0, len(objectids), 900):
        chunk = json.dumps(objectids[start:start + 900])
        sql = (f"SELECT {', '.join(chr(34) + c + chr(34) for c in wanted)} FROM object_catalog "
               "WHERE objectid IN (SELECT value FROM json_each(?))")
        for values in catalog.query(sql, (chunk,)):
            row = dict(zip(wanted, values))
            found[row["objectid"]] = row
    return found


def links_for(catalogs, ids: list[str], base_url: str, *, default_collection: str | None = None) -> list[Link]:
    """Link rows for every ID, in the order given (faults included)."""
    parsed: list[tuple[str, tuple[str, str] | str]] = []
    by_collection: dict[str, list[str]] = {}
    known = set(catalogs.ids())
    for raw in ids:
        try:
            cid, local = parse_id(raw, default_collection)
        except ValueError as exc:
            parsed.append((raw, f"UsageFault: {exc}"))
            continue
        if cid not in known:
            parsed.append((raw, f"NotFoundFault: there is no collection {cid!r} in this service"))
            continue
        parsed.append((raw, (cid, local)))
        wanted = by_collection.setdefault(cid, [])
        wanted.append(local)
        if "/" in local:
            wanted.append(local.rpartition("/")[0])
    rows = {cid: _object_rows(catalogs.get(cid), oids) for cid, oids in by_collection.items()}
    series = _series_asked(catalogs, parsed, rows)
    twins = _counterparts_of(catalogs, rows, known)
    out: list[Link] = []
    for raw, what in parsed:
        if isinstance(what, str):
            out.append(Link(ID=raw, error_message=what))
            continue
        cid, local = what
        oid, magcol = _resolve(local, rows[cid])
        if oid is None:
            out.append(Link(ID=raw, error_message=f"NotFoundFault: there is no object {local!r} in collection {cid!r}"))
            continue
        known_series = series[cid]
        if magcol is not None and known_series is not None and magcol not in known_series.get(oid, ()):
            choices = ", ".join(known_series.get(oid, ())) or "none"
            out.append(Link(ID=raw, error_message=f"NotFoundFault: object {oid!r} in collection {cid!r} has no "
                                                  f"series {magcol!r}; its series: {choices}"))
            continue
        out += object_links(raw, cid, rows[cid][oid], base_url, catalogs.get(cid).info, twins.get((cid, oid), ()),
                            magcol=magcol)
    return out


def _resolve(local: str, found: dict) -> tuple[str | None, str | None]:
    """``(objectid, magcol)`` of a local part: the object itself when its id is the whole
    part, else ``<objectid>/<magcol>``; ``(None, None)`` when neither is found."""
    if local in found:
        return local, None
    oid, sep, magcol = local.rpartition("/")
    if sep and magcol and oid in found:
        return oid, magcol
    return None, None


def _series_asked(catalogs, parsed, rows) -> dict:
    """``collection -> {objectid: [magcol]}`` (None when its ObsCore rows are not computed)
    for the collections where some ID names a series."""
    from .obscore import series_of

    asked: dict[str, set] = {}
    for _raw, what in parsed:
        if not isinstance(what, str):
            oid, magcol = _resolve(what[1], rows[what[0]])
            if magcol is not None:
                asked.setdefault(what[0], set()).add(oid)
    out = dict.fromkeys(rows)
    for cid, oids in asked.items():
        out[cid] = series_of(catalogs.basedir.path, catalogs.get(cid).info, sorted(oids))
    return out


def _counterparts_of(catalogs, rows: dict[str, dict[str, dict]], known) -> dict:
    """``(collection, objectid) -> [(other collection, other objectid, arcsec)]``: one
    sky-index cross-match per pair of collections for the whole batch."""
    import json

    out: dict = {}
    radius = COUNTERPART_ARCSEC
    for cid, found in rows.items():
        objs = [r for r in found.values() if r.get("ra") is not None and r.get("decl") is not None]
        if not objs:
            continue
        ra = np.array([float(r["ra"]) for r in objs])
        dec = np.array([float(r["decl"]) for r in objs])
        for other_id in sorted(known):
            if other_id == cid:
                continue
            other = catalogs.get(other_id)
            inputs, row_ids, dist = other.skyindex.crossmatch(ra, dec, radius, nearest=False)
            if not len(inputs):
                continue
            names = dict(other.query("SELECT row_id, objectid FROM object_catalog WHERE row_id IN "
                                     "(SELECT value FROM json_each(?))",
                                     (json.dumps(sorted(set(int(r) for r in row_ids))),)))
            for i, r, d in zip(inputs.tolist(), row_ids.tolist(), dist.tolist()):
                if int(r) in names:
                    out.setdefault((cid, objs[i]["objectid"]), []).append((other_id, names[int(r)], d))
    for matches in out.values():
        matches.sort(key=lambda m: (m[2], m[0], m[1]))
    return out


def object_links(ident: str, cid: str, row: dict, base_url: str, info, twins=(), *,
                 magcol: str | None = None) -> list[Link]:
    """The links of one found object (``row`` from its catalog), or of its series ``magcol``."""
    oid = row["objectid"]
    obj = base_url + object_path(cid, oid)
    links: list[Link] = []
    label = f"{oid} in {info.name or cid}"
    series = f"&magcol={segment(magcol)}" if magcol else ""
    if row.get("lcfname"):
        what = f"series {magcol} (times, {magcol} and its errors and flags) of the light curve" if magcol \
            else "light curve"
        for fmt, mime, words in (("votable", "application/x-votable+xml", "VOTable with its time system and units"),
                                 ("fits", "application/fits", "FITS binary table"),
                                 ("csv", "text/csv", "CSV with a header stating units and time system")):
            links.append(Link(ID=ident, access_url=f"{obj}/lightcurve?format={fmt}{series}", semantics="#this",
                              description=f"{what} of {label}, {words}", content_type=mime,
                              content_qualifier="#timeseries", local_semantics=f"lightcurve-{fmt}"))
        links.append(Link(ID=ident, access_url=f"{obj}/preview.png" + (f"?{series[1:]}" if series else ""),
                          semantics="#preview", description=f"plot of the {what} of {label}",
                          content_type="image/png", local_semantics="lightcurve-plot"))
        links.append(Link(ID=ident, access_url=f"{obj}/lightcurve", semantics="#progenitor",
                          description=f"light-curve file of {label} as the survey stored it",
                          content_type="application/octet-stream", content_length=_size(info, row["lcfname"]),
                          local_semantics="lightcurve-original"))
    from ..objects.magcols import checkplot_column, collection_magcols

    magcols = [m for m in collection_magcols(info.columns) if row.get(checkplot_column(m))]
    if magcol:  # the series' own checkplot (astrobase's dotted magcols name underscored columns)
        magcols = [m for m in magcols if magcol in (m, m.replace(".", "_"))]
    checkplots = [(m, row[checkplot_column(m)]) for m in magcols] or (
        [(None, row["cpfname"])] if row.get("cpfname") and not magcol else [])
    for magcol, cpfname in checkplots:
        query = f"?magcol={segment(magcol)}" if magcol else ""
        which = f" for magnitude column {magcol}" if magcol else ""
        suffix = f"-{magcol}" if magcol else ""
        links.append(Link(ID=ident, access_url=f"{obj}/checkplot{query}", semantics="#auxiliary",
                          description=f"astrobase checkplot pickle of {label}{which} (periodograms, phased "
                                      "light curves, variability features)",
                          content_type="application/octet-stream", content_length=_size(info, cpfname),
                          local_semantics=f"checkplot{suffix}"))
        for name, words in (("unphased", "light curve plotted by the checkplot"),
                            ("phased-0", "light curve phased at the best period"),
                            ("finder", "finder chart")):
            links.append(Link(ID=ident, access_url=f"{obj}/tiles/{name}.png{query}", semantics="#auxiliary",
                              description=f"{words} of {label}{which}", content_type="image/png",
                              local_semantics=f"checkplot-{name}{suffix}"))
    if row.get("pffname"):
        links.append(Link(ID=ident, access_url=f"{obj}/periodfinding", semantics="#auxiliary",
                          description=f"astrobase period-finding results of {label}",
                          content_type="application/octet-stream", content_length=_size(info, row["pffname"]),
                          local_semantics="periodfinding"))
    for other_id, other, arcsec in twins:
        links.append(Link(ID=ident, access_url=f"{base_url}/datalink?ID={quote(publisher_did(other_id, other))}",
                          semantics="#counterpart", content_type=LINKS_MIME,
                          description=f"{other} in collection {other_id}, {arcsec:.2f} arcsec away",
                          local_semantics="same-position"))
    if not links:
        links.append(Link(ID=ident, error_message=f"NotFoundFault: {oid!r} in {cid!r} has no files to link to"))
    return links


def _size(info, relpath) -> int | None:
    path = info.object_file(relpath)
    try:
        return path.stat().st_size if path is not None else None
    except OSError:
        return None


def links_document(links: list[Link], fmt=None) -> bytes:
    """The ``{links}`` response: by default a VOTable (TABLEDATA, as DataLink requires
    unless asked otherwise) whose one table holds the link rows; ``fmt`` another
    :class:`lcpanel.core.vo.voformats.OutputFormat`."""
    from .voformats import find_format, render

    return render(fmt or find_format("votable/td"), list(_FIELDS), [link.row() for link in links])


@dataclass(frozen=True)
class ServiceDescriptor:
    """Says: the values of result column ``id_column`` are IDs for the DataLink service at
    ``access_url`` (TOPCAT's *Activation -> Invoke Service*, pyvo's ``iter_datalinks``)."""

    access_url: str
    id_column: str
    resource_id: str = "datalink"
    description: str = "links to each object's light curve, plots and files (DataLink)"

    def xml(self, field_ids: dict[str, str]) -> str:
        from xml.sax.saxutils import escape, quoteattr

        ref = field_ids.get(self.id_column)
        if ref is None:
            return ""
        return (f'<RESOURCE type="meta" utype="adhoc:service" ID={quoteattr(self.resource_id)} name="links">\n'
                f"<DESCRIPTION>{escape(text(self.description))}</DESCRIPTION>\n"
                f'<PARAM name="standardID" datatype="char" arraysize="*" value="{STANDARD_ID}"/>\n'
                f'<PARAM name="accessURL" datatype="char" arraysize="*" value={quoteattr(text(self.access_url))}/>\n'
                '<GROUP name="inputParams">\n'
                f'<PARAM name="ID" datatype="char" arraysize="*" value="" ref={quoteattr(ref)} '
                'ucd="meta.id;meta.main"/>\n'
                "</GROUP>\n</RESOURCE>\n")



def result_services(base_url: str, field_names, collection_ids) -> list[ServiceDescriptor]:
    """The DataLink descriptor a TAP or cone-search result gets: its ``objectid`` column
    when all rows come from one collection, else a column of full IDs (``obs_publisher_did``
    of ObsCore, or the cone search's ``id`` of ``collection/objectid``)."""
    names = set(field_names)
    collections = {c for c in collection_ids if c}
    if len(collections) == 1 and "objectid" in names:
        return [ServiceDescriptor(f"{base_url}/datalink/{segment(next(iter(collections)))}", "objectid")]
    for column in ("obs_publisher_did", "id"):
        if column in names:
            return [ServiceDescriptor(f"{base_url}/datalink", column)]
    return []
