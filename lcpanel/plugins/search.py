"""Built-in search types: object id, cone, cross-match, full text and column filter.

Each is a :class:`lcpanel.core.search.SearchBackend` registered through
``register_search_backends``, the hook third-party search types use too.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import param

from ..core.catalogs import idindex
from ..core.catalogs.columns import ALIAS_COLUMNS, ColumnInfo
from ..core.catalogs.coords import parse_coordinate_string, parse_crossmatch_list
from ..core.catalogs.filters import FilterError, conjunction, parse_filter
from ..core.catalogs.fts import fts_query, fts_search
from ..core.search import Hits, SearchBackend
from ..errors import TooLarge, UserError
from ..hookspecs import hookimpl


def _extra(name: str, sqltype: str, unit: str = "", ucd: str = "", description: str = "") -> ColumnInfo:
    return ColumnInfo(name=name, key=name, sqltype=sqltype, unit=unit, ucd=ucd, description=description)


def _positive(value, message: str, field: str) -> float:
    """A finite positive float, or a UserError naming the field (huge integers included)."""
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{message}, not {str(value)[:40]}", field=field)
    return number


def _radius(value, maximum: float, what: str, unit: str, symbol: str, field: str) -> float:
    """A finite positive radius at most ``maximum``, or a UserError naming the field."""
    radius = _positive(value, f"the {what} must be a positive number of {unit}", field)
    if radius > maximum:
        raise UserError(f"{what} {radius:g}{symbol} is over the maximum of {maximum:g}{symbol}", field=field)
    return radius


def _split_list(value) -> list[str]:
    if isinstance(value, str):
        value = re.split(r"[\n,;]+", value)
    return value


#: above this many full-text matches, results come in catalog order, unranked
FTS_RANK_CAP = 10_000
#: full-text queries up to this long are also looked up as id prefixes
MAX_ID_PREFIX = 100
#: the fts_rank of full-text results that are an object's id or alias, or start one
#: (bm25 ranks of text matches are far above these)
ID_EXACT_RANK = -1e6
ID_PREFIX_RANK = -1e5


# --- object id ----------------------------------------------------------------------------

# Catalog prefixes people type in front of an alias ("TIC 12345", "2MASS J1920...", "Gaia DR3 ...").
ALIAS_PREFIXES = re.compile(r"^(?:TIC|2MASS|GAIA(?:\s*DR\d)?|KIC|EPIC|HAT)[\s_-]*", re.IGNORECASE)


class ObjectIdSearch(SearchBackend):
    name = param.String(default="objectid", constant=True)
    title = "Object ids"
    description = ("Exact object ids, several at once, in any case and with stray spaces. Also finds objects by "
                   "their aliases in the catalog (2MASS, TIC, KIC, GAIA ids, with or without a designation such "
                   "as 'TIC ' or '2MASS J') and says which one matched.")
    ids = param.List(default=[], item_type=str, doc="object ids or aliases, one per line (or a JSON list)")
    text_params = ("ids",)
    extra_columns = (
        _extra("matched_id", "TEXT", ucd="meta.id", description="the id you asked for"),
        _extra("matched_column", "TEXT", ucd="meta.code", description="catalog column it matched"),
        _extra("input_order", "INTEGER", ucd="meta.number", description="position of the id in your list"),
    )
    default_sort = (("input_order", "ASC"), ("collection", "ASC"))
    example = {"ids": ["LCP-000001", "LCP-000002"]}

    @classmethod
    def from_params(cls, params, context):
        if "ids" in params:
            params = {**params, "ids": _split_list(params["ids"])}
        return super().from_params(params, context)

    def prepare(self, settings):
        ids = [i.strip() for i in self.ids if isinstance(i, str) and i.strip()]
        if not ids:
            raise UserError("give at least one object id", field="ids")
        if len(ids) > settings.xmatch_max_lines:
            raise TooLarge(f"{len(ids)} ids given; the maximum is {settings.xmatch_max_lines}", field="ids")
        if any(len(i) > 200 for i in ids):
            raise UserError("object ids are at most 200 characters long", field="ids")
        self.ids = list(dict.fromkeys(ids))
        self._nearest: dict[str, list[str]] = {}

    def search_collection(self, catalog, flt, sort, limit):
        if getattr(catalog, "id_index", False):
            return self._indexed(catalog, flt)
        order = {v: i for i, v in enumerate(self.ids)}
        columns = ["objectid"] + [c for c in ALIAS_COLUMNS if c in catalog.columns]
        found: dict[int, tuple[str, str]] = {}
        for col in columns:
            wanted = self._candidates(col, catalog.columns[col])
            if not wanted:
                continue
            sql = (f'SELECT row_id, "{col}" FROM object_catalog WHERE "{col}" IN (SELECT value FROM json_each(?))')
            for row_id, value in catalog.query(sql, (json.dumps(list(wanted)),)):
                if row_id not in found:
                    found[row_id] = (wanted[value if not isinstance(value, float) else int(value)], col)
        row_ids = np.array(sorted(found, key=lambda r: (order[found[r][0]], r)), dtype=np.int64)
        row_ids = row_ids[catalog.passing(row_ids, flt)]
        ids = row_ids.tolist()
        return Hits(row_ids=ids, nmatched=len(ids), extra={
            "matched_id": [found[r][0] for r in ids],
            "matched_column": [found[r][1] for r in ids],
            "input_order": [order[found[r][0]] for r in ids],
        })

    def _indexed(self, catalog, flt):
        """Through the catalog's id index: trimmed, any case, designations dropped."""
        order = {v: i for i, v in enumerate(self.ids)}
        conn = catalog.conn()
        found: dict[int, tuple[str, str]] = {}
        rank = {c: i for i, c in enumerate(("objectid",) + ALIAS_COLUMNS)}
        for row_id, col, given in sorted(idindex.exact_many(conn, self.ids),
                                         key=lambda r: (order[r[2]], rank.get(r[1], len(rank)), r[0])):
            found.setdefault(row_id, (given, col))
        row_ids = np.array(sorted(found, key=lambda r: (order[found[r][0]], r)), dtype=np.int64)
        row_ids = row_ids[catalog.passing(row_ids, flt)]
        ids = row_ids.tolist()
        matched = {found[r][0] for r in ids}
        for given in [i for i in self.ids if i not in matched][:NEAREST_FOR]:
            self._nearest.setdefault(given, []).extend(idindex.nearest(conn, given, NEAREST_IDS))
        return Hits(row_ids=ids, nmatched=len(ids), extra={
            "matched_id": [found[r][0] for r in ids],
            "matched_column": [found[r][1] for r in ids],
            "input_order": [order[found[r][0]] for r in ids],
        })

    def summarize(self, hits):
        found = {i for h in hits for i in h.extra.get("matched_id", [])}
        missing = [i for i in self.ids if i not in found]
        if not missing:
            return []
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        notes = [f"{len(missing)} of {len(self.ids)} ids found in no collection (searched trimmed, in any case, "
                 f"in object ids and the alias columns {', '.join(ALIAS_COLUMNS[:6])}...): {shown}"]
        for given in missing[:NEAREST_FOR]:
            near = _best(given, self._nearest.get(given, []))
            if near:
                notes.append(f"nearest ids to {given!r}: {', '.join(near)}")
        return notes

    def _candidates(self, column: str, sqltype: str) -> dict:
        """value to look up -> the id the user typed."""
        out = {}
        for given in self.ids:
            for value in (given, ALIAS_PREFIXES.sub("", given)) if column != "objectid" else (given,):
                if sqltype == "INTEGER":
                    if re.fullmatch(r"[+-]?\d{1,18}", value):
                        out.setdefault(int(value), given)
                elif value:
                    out.setdefault(value, given)
        return out


#: how many unmatched inputs get suggestions, and how many each
NEAREST_FOR = 5
NEAREST_IDS = 5


def _best(text: str, candidates: list[str]) -> list[str]:
    """The NEAREST_IDS candidates most like ``text`` (normalised), best first."""
    import difflib

    key = idindex.normalize_id(text)
    ranked = sorted(set(candidates), key=lambda c: (-difflib.SequenceMatcher(None, key, idindex.normalize_id(c))
                                                    .ratio(), c))
    return ranked[:NEAREST_IDS]


# --- cone ---------------------------------------------------------------------------------


class ConeSearch(SearchBackend):
    name = param.String(default="cone", constant=True)
    title = "Cone search"
    description = ("Objects within a radius of a position. Coordinates in decimal degrees or sexagesimal "
                   "(RA in hours), optionally followed by a radius in arcminutes: '290.0 45.0', "
                   "'19:20:00 +45:00:00 3', '19 20 00 +45 00 00 30'.")
    coords = param.String(default="", doc="position and optional radius in arcmin, e.g. '290.0 45.0 5' or "
                                          "'19:20:00 +45:00:00 5'")
    ra = param.Number(default=None, allow_None=True, bounds=(0.0, 360.0), doc="right ascension in degrees "
                                                                              "(instead of coords)")
    dec = param.Number(default=None, allow_None=True, bounds=(-90.0, 90.0), doc="declination in degrees "
                                                                                "(instead of coords)")
    radius_arcmin = param.Number(default=None, allow_None=True, doc="search radius in arcmin "
                                                                    "(default and maximum in the basedir settings)")
    extra_columns = (_extra("dist_arcsec", "REAL", "arcsec", "pos.angDistance",
                            "distance from the cone centre"),)
    default_sort = (("dist_arcsec", "ASC"),)
    example = {"coords": "290.0 45.0 5"}

    def prepare(self, settings):
        radius = self.radius_arcmin
        if self.coords and self.coords.strip():
            if self.ra is not None or self.dec is not None:
                raise UserError("give either coords or ra and dec, not both", field="coords")
            try:
                ra, dec, r = parse_coordinate_string(self.coords, max_radius_arcmin=settings.cone_max_radius_arcmin)
            except ValueError as exc:
                raise UserError(str(exc), field="coords") from None
            self.ra, self.dec = ra, dec
            if r is not None:
                if radius is not None and abs(radius - r) > 1e-9:
                    raise UserError("the radius is given twice (in coords and radius_arcmin)", field="radius_arcmin")
                radius = r
        elif self.ra is None or self.dec is None:
            raise UserError("give a position: coords like '290.0 45.0' or both ra and dec", field="coords")
        if radius is None:
            radius = settings.cone_default_radius_arcmin
        self.radius_arcmin = _radius(radius, settings.cone_max_radius_arcmin, "radius", "arcmin", "'",
                                     "radius_arcmin")

    def search_collection(self, catalog, flt, sort, limit):
        rows, dist_deg = catalog.skyindex.cone(self.ra, self.dec, self.radius_arcmin / 60.0)
        keep = catalog.passing(rows, flt)
        rows, dist_deg = rows[keep], dist_deg[keep]
        return Hits(row_ids=rows.tolist(), nmatched=len(rows), extra={"dist_arcsec": (dist_deg * 3600.0).tolist()})


# --- cross-match --------------------------------------------------------------------------


class CrossmatchSearch(SearchBackend):
    name = param.String(default="xmatch", constant=True)
    title = "Cross-match"
    description = ("Match your list of objects, one per line as 'id ra dec' (decimal degrees or sexagesimal "
                   "with RA in hours; '#' starts a comment), to the catalog within a radius in arcsec: "
                   "the nearest match per object per collection, or all matches.")
    targets = param.String(default="", doc="one object per line: 'id ra dec'")
    radius_arcsec = param.Number(default=None, allow_None=True, doc="match radius in arcsec "
                                                                    "(default and maximum in the basedir settings)")
    mode = param.Selector(default="nearest", objects=["nearest", "all"], doc="the nearest match, or all within "
                                                                             "the radius")
    text_params = ("targets",)
    extra_columns = (
        _extra("input_id", "TEXT", ucd="meta.id", description="id of the object in your list"),
        _extra("input_ra", "REAL", "deg", "pos.eq.ra", "RA of the object in your list"),
        _extra("input_decl", "REAL", "deg", "pos.eq.dec", "Dec of the object in your list"),
        _extra("dist_arcsec", "REAL", "arcsec", "pos.angDistance", "distance to the object in your list"),
        _extra("input_line", "INTEGER", ucd="meta.number", description="line of your list"),
    )
    default_sort = (("input_line", "ASC"), ("dist_arcsec", "ASC"))
    example = {"targets": "star1 290.0 45.0\nstar2 19:20:30 +45:10:00", "radius_arcsec": 5.0}

    def prepare(self, settings):
        size = len(self.targets.encode("utf-8"))
        if size > settings.max_upload_bytes:
            raise TooLarge(f"the list is {size} bytes; the maximum is {settings.max_upload_bytes}", field="targets")
        try:
            entries, errors = parse_crossmatch_list(self.targets, max_lines=settings.xmatch_max_lines)
        except ValueError as exc:
            raise UserError(str(exc), field="targets") from None
        self.errors = [f"line {n}: {msg} ({text!r})" for n, text, msg in errors]
        if not entries:
            detail = "; ".join(self.errors[:5]) if self.errors else "the list is empty"
            raise UserError(f"no object could be read from the list: {detail}", field="targets")
        self.entries = entries
        radius = settings.xmatch_default_radius_arcsec if self.radius_arcsec is None else self.radius_arcsec
        self.radius_arcsec = _radius(radius, settings.xmatch_max_radius_arcsec, "match radius", "arcsec", '"',
                                     "radius_arcsec")

    def search_collection(self, catalog, flt, sort, limit):
        lines = np.array([e[0] for e in self.entries], dtype=np.int64)
        ra = np.array([e[2] for e in self.entries], dtype=np.float64)
        dec = np.array([e[3] for e in self.entries], dtype=np.float64)
        nearest = self.mode == "nearest"
        inputs, rows, dist = catalog.skyindex.crossmatch(ra, dec, self.radius_arcsec,
                                                         nearest=nearest and flt is None)
        if flt is not None:
            keep = catalog.passing(rows, flt)
            inputs, rows, dist = inputs[keep], rows[keep], dist[keep]
            if nearest and len(inputs):
                # pairs come sorted by input then distance: keep each input's first
                first = np.concatenate(([True], inputs[1:] != inputs[:-1]))
                inputs, rows, dist = inputs[first], rows[first], dist[first]
        return Hits(row_ids=rows.tolist(), nmatched=len(rows), messages=list(self.errors), extra={
            "input_id": [self.entries[i][1] for i in inputs.tolist()],
            "input_ra": ra[inputs].tolist(),
            "input_decl": dec[inputs].tolist(),
            "dist_arcsec": dist.tolist(),
            "input_line": lines[inputs].tolist(),
        })


# --- full text ----------------------------------------------------------------------------


class FullTextSearch(SearchBackend):
    name = param.String(default="fulltext", constant=True)
    title = "Full text"
    description = ("Words and \"quoted phrases\" in object names and aliases, tags, variability tags and "
                   "comments; and object ids and aliases starting with what you typed, in any case, with or "
                   "without a designation ('HAT-772', 'TIC 25155310', '2MASS J1437'), listed first. Raw mode "
                   "allows AND, OR, NOT, NEAR() and prefix*.")
    query = param.String(default="", doc="words or \"a phrase\"")
    raw = param.Boolean(default=False, doc="use SQLite FTS5 query syntax (AND, OR, NOT, prefix*)")
    extra_columns = (_extra("fts_rank", "REAL", ucd="stat.value",
                            description=f"relevance (bm25; lower is better; {ID_EXACT_RANK:g} an id or alias, "
                                        f"{ID_PREFIX_RANK:g} an id or alias starting with the query)"),)
    default_sort = (("fts_rank", "ASC"),)
    example = {"query": "RR Lyrae"}

    def prepare(self, settings):
        self.match = fts_query(self.query, raw=self.raw)
        self._nearest: list[str] = []

    def search_collection(self, catalog, flt, sort, limit):
        # with a sort of the user's, every (capped) match is a candidate for the first rows
        cap = FTS_RANK_CAP if sort else limit
        found = fts_search(catalog.conn(), self.match, limit=cap, rank_cap=FTS_RANK_CAP, where=flt)
        ranks = found.ranks if found.ranks is not None else [None] * len(found.row_ids)
        nmatched = found.nmatched if found.nmatched is not None else found.nmatched_at_least
        lower = found.nmatched is None
        row_ids = list(found.row_ids)
        if not self.raw and getattr(catalog, "id_index", False) and len(self.query.strip()) <= MAX_ID_PREFIX:
            ids, more = self._id_matches(catalog, flt, cap)
            known = set(row_ids)
            new = [(r, rank) for r, rank in ids if r not in known]
            first = {r: rank for r, rank in ids}
            ranks = [first.get(r, rank) for r, rank in zip(row_ids, ranks)]
            row_ids, ranks = [r for r, _ in new] + row_ids, [rank for _, rank in new] + ranks
            nmatched += len(new)
            lower |= more
            if not row_ids:
                self._nearest += idindex.nearest(catalog.conn(), self.query, NEAREST_IDS)
        return Hits(row_ids=row_ids, extra={"fts_rank": ranks}, nmatched=nmatched, nmatched_is_lower_bound=lower,
                    messages=[found.note] if found.note else [])

    def _id_matches(self, catalog, flt, limit):
        """(row_id, rank) of the objects whose id or an alias starts with the query: exact
        matches rank ID_EXACT_RANK, prefixes ID_PREFIX_RANK (before any bm25 rank)."""
        rows, more = idindex.prefix(catalog.conn(), self.query, limit)
        if not rows:
            return [], False
        keys = {idindex.normalize_id(self.query), *idindex.query_keys(self.query)[1]}
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        keep = catalog.passing(ids, flt)
        return [(r[0], ID_EXACT_RANK if idindex.normalize_id(r[2]) in keys else ID_PREFIX_RANK)
                for r, k in zip(rows, keep) if k], more

    def summarize(self, hits):
        if any(h.row_ids for h in hits):
            return []
        what = (f"nothing matched {self.query.strip()!r}: searched the words in object names, aliases, tags and "
                "comments" + ("" if self.raw else ", and object ids and aliases starting with it (any case)"))
        near = _best(self.query, self._nearest)
        return [what + (f"; nearest ids: {', '.join(near)}" if near else "")]


# --- column filter ------------------------------------------------------------------------


class ColumnFilterSearch(SearchBackend):
    name = param.String(default="filter", constant=True)
    title = "Column filter"
    description = ("Conditions on catalog columns: comparisons (< <= = != >= >), 'between a and b', "
                   "'like', 'in (...)', 'is null', combined with and, or, not and parentheses.")
    where = param.String(default="", doc="e.g. 'sdssr < 12 and ndet > 1000'")
    example = {"where": "vmag < 12 and ndet > 500"}

    def prepare(self, settings):
        if not self.where.strip():
            raise UserError("give at least one condition, e.g. 'vmag < 12'", field="where")

    def search_collection(self, catalog, flt, sort, limit):
        try:
            own = parse_filter(self.where, catalog.columns)
        except FilterError as exc:  # this search's own field, not the filter every search shares
            exc.field = "where"
            raise
        ids, count = catalog.select(conjunction(own, flt), sort, limit)
        return Hits(row_ids=ids, nmatched=count)


@hookimpl(trylast=True)
def startup(app):
    """Give catalogs made before the id index existed their index, once, before serving
    (:mod:`lcpanel.core.catalogs.idindex`); later starts only check that it is there."""
    import logging
    import sqlite3

    from ..core.catalogs.basedir import Basedir

    if app.basedir is None:
        return
    for info in Basedir(app.basedir).collections():
        if not info.catalog_sqlite.is_file():
            continue
        try:
            if idindex.ensure_id_index(info.catalog_sqlite):
                logging.getLogger(__name__).info("collection %s: id index added", info.collection_id)
        except (OSError, sqlite3.Error) as exc:
            logging.getLogger(__name__).warning("collection %s: no id index (%s); id searches scan the catalog",
                                                info.collection_id, exc)


@hookimpl(trylast=True)
def register_search_backends(app):
    return [ObjectIdSearch, ConeSearch, CrossmatchSearch, FullTextSearch, ColumnFilterSearch]
