"""TAP's ``/examples`` (DALI 1.1 examples document): working ADQL queries written for the
collections actually served (a cone, an ObsCore time-series search, a join between two
collections, a light-curve count by tag), as XHTML with the RDFa properties that TOPCAT's
and taplint's readers look for (``typeof="example"``, ``property="name"``/``"query"``)."""

from __future__ import annotations

from html import escape


def examples(model, catalogs) -> list[tuple[str, str, str, str]]:
    """(id, name, description, query) for the served tables."""
    tables = [t for t in model.tables if t.collection_id]
    out = []
    if tables:
        t = tables[0]
        info = catalogs.get(t.collection_id).info
        ra, dec = (info.center_ra or 0.0), (info.center_decl or 0.0)
        out.append(("cone", f"Cone search in {t.full_name}",
                    f"Objects of collection {t.collection_id} within 0.1 degree of its centre, nearest first.",
                    f"SELECT TOP 100 objectid, ra, decl,\n"
                    f"  DISTANCE(POINT('ICRS', ra, decl), POINT('ICRS', {ra:.5f}, {dec:.5f})) AS dist\n"
                    f"FROM {t.full_name}\n"
                    f"WHERE 1 = CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', {ra:.5f}, {dec:.5f}, 0.1))\n"
                    "ORDER BY dist"))
    if model.table("ivoa", "obscore"):
        out.append(("obscore-timeseries", "Time series by position and time (ObsCore)",
                    "Light curves of any collection around a position that start after MJD 50000, one row "
                    "per series (magnitude or flux column, e.g. an aperture), with the link to each one's "
                    "DataLink document.",
                    "SELECT TOP 100 obs_collection, obs_id, magcol, t_min, t_max, t_xel, access_url\n"
                    "FROM ivoa.obscore\n"
                    "WHERE dataproduct_type = 'timeseries' AND t_min > 50000\n"
                    f"  AND 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', "
                    f"{(catalogs.get(tables[0].collection_id).info.center_ra or 0.0):.5f}, "
                    f"{(catalogs.get(tables[0].collection_id).info.center_decl or 0.0):.5f}, 1))"
                    if tables else
                    "SELECT TOP 100 obs_collection, obs_id, t_min, t_max FROM ivoa.obscore"))
    if len(tables) >= 2:
        a, b = tables[0], tables[1]
        out.append(("join-collections", f"Objects of {a.full_name} also in {b.full_name}",
                    "A positional join between two collections at 2 arcsec.",
                    f"SELECT TOP 100 a.objectid, b.objectid AS other_id,\n"
                    f"  DISTANCE(POINT('ICRS', a.ra, a.decl), POINT('ICRS', b.ra, b.decl)) * 3600 AS sep_arcsec\n"
                    f"FROM {a.full_name} AS a JOIN {b.full_name} AS b\n"
                    f"  ON 1 = CONTAINS(POINT('ICRS', a.ra, a.decl), CIRCLE('ICRS', b.ra, b.decl, 2.0 / 3600))"))
    if tables and any(c.name == "ndet" for c in tables[0].columns):
        t = tables[0]
        out.append(("well-observed", f"The best-observed objects of {t.full_name}",
                    "Objects with the most light-curve points.",
                    f"SELECT TOP 20 objectid, ndet FROM {t.full_name} ORDER BY ndet DESC"))
    return out


def examples_xhtml(model, catalogs) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
             '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>TAP examples</title></head>'
             '<body vocab="http://www.ivoa.net/rdf/examples#"><h1>Example queries</h1>\n']
    for ident, name, description, query in examples(model, catalogs):
        parts.append(f'<div typeof="example" id="{escape(ident)}" resource="#{escape(ident)}">'
                     f'<h2 property="name">{escape(name)}</h2><p>{escape(description)}</p>'
                     f'<pre class="dachs-ex-tapquery" property="query">{escape(query)}</pre></div>\n')
    parts.append("</body></html>\n")
    return "".join(parts).encode("utf-8")
