"""The search contract: search specs, backends, and results.

A search is a value. :class:`SearchSpec` is its JSON form::

    {"type": "cone", "params": {"coords": "290.0 45.0 5"},
     "collections": ["demo"], "filter": "sdssr < 12", "sort": "sdssr", "limit": 100}

``type`` names a :class:`SearchBackend` registered through the
``register_search_backends`` hook. A backend's ``param`` parameters are its typed,
validated parameters: the same declarations generate the web form, the CLI options and
the JSON schema. Every search type combines with a column filter, a sort and a limit
and runs over one, several or all collections; results say how many objects matched
and how many are returned, and which collection each row came from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import param

from ..errors import NotFound, UserError
from .catalogs.columns import PATH_COLUMNS, ColumnInfo, is_path_column
from .suggest import did_you_mean

SPEC_KEYS = ("type", "params", "collections", "filter", "sort", "limit")
HIDDEN_COLUMNS = ("hpx29", "cx", "cy", "cz")


@dataclass(frozen=True)
class SearchSpec:
    """A search request, independent of any interface."""

    type: str
    params: dict = field(default_factory=dict)
    collections: tuple[str, ...] | None = None
    filter: str | None = None
    sort: tuple | str | None = None
    limit: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "SearchSpec":
        if not isinstance(data, dict):
            raise UserError("a search spec must be a JSON object like {\"type\": \"cone\", \"params\": {...}}")
        unknown = [k for k in data if k not in SPEC_KEYS]
        if unknown:
            raise UserError(f"unknown search spec key {unknown[0]!r}: {did_you_mean(unknown[0], SPEC_KEYS)}")
        if not isinstance(data.get("type"), str) or not data["type"]:
            raise UserError("a search spec needs a 'type' (e.g. \"cone\")", field="type")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise UserError("'params' must be a JSON object", field="params")
        collections = data.get("collections")
        if isinstance(collections, str):
            collections = [c for c in collections.replace(",", " ").split() if c]
        if collections is not None:
            if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
                raise UserError("'collections' must be a list of collection ids", field="collections")
            collections = tuple(dict.fromkeys(collections)) or None
        flt = data.get("filter")
        if flt is not None and not isinstance(flt, str):
            raise UserError("'filter' must be a string like \"sdssr < 12 and ndet > 1000\"", field="filter")
        sort = data.get("sort")
        if isinstance(sort, list):
            sort = tuple(sort)
        limit = data.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise UserError(f"'limit' must be a positive integer, not {limit!r}", field="limit")
        return cls(type=data["type"], params=params, collections=collections,
                   filter=flt.strip() or None if flt else None, sort=sort or None, limit=limit)

    def to_dict(self) -> dict:
        return {"type": self.type, "params": self.params,
                "collections": list(self.collections) if self.collections else None,
                "filter": self.filter, "sort": list(self.sort) if isinstance(self.sort, tuple) else self.sort,
                "limit": self.limit}


@dataclass
class Hits:
    """What a backend found in one collection: row ids in the backend's natural order,
    extra per-row values (distance, input id...), and the number matched there."""

    row_ids: list[int]
    extra: dict[str, list] = field(default_factory=dict)
    nmatched: int | None = None
    #: True when nmatched is a lower bound (e.g. a capped full-text count)
    nmatched_is_lower_bound: bool = False
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SearchContext:
    """What a search runs in: the app (its registries and plugin state, ``app.stash``), its
    collections (``catalogs``, :class:`lcpanel.core.catalogs.catalog.Catalogs`) and the basedir's
    search limits (``settings``, :class:`lcpanel.config.SearchSettings`)."""

    app: object
    catalogs: object
    settings: object

    @classmethod
    def of(cls, app) -> "SearchContext":
        return cls(app=app, catalogs=app.catalogs, settings=app.config.search)


class SearchBackend(param.Parameterized):
    """Base class of search types. Subclasses declare ``param`` parameters and implement
    :meth:`search_collection`. Instances are validated values: build them with
    :meth:`from_params` so errors come back as :class:`UserError` naming the field; an
    instance's ``context`` is the :class:`SearchContext` it was built in."""

    # subclasses set their registry name as ``name = param.String(default="cone", constant=True)``
    # (``name`` is a Parameter on every Parameterized)
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: columns this search adds to every row (distance, matched input...)
    extra_columns: ClassVar[tuple[ColumnInfo, ...]] = ()
    #: the natural order of results across collections: (column, "ASC"|"DESC") pairs
    default_sort: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: parameters holding uploaded or multi-line text (a file in the CLI, a text area in the UI)
    text_params: ClassVar[tuple[str, ...]] = ()
    #: an example spec's params, shown in docs and pre-filled in forms
    example: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs):
        # A search is a validated value made per request and never changes its parameter
        # objects (bounds, docs): it uses its class's. By default param copies each one an
        # instance sets, with its slots and watchers: 0.45 of a cone search's ~1.4 ms.
        super().__init_subclass__(**kwargs)
        for value in vars(cls).values():
            if isinstance(value, param.Parameter):
                value.per_instance = False

    @classmethod
    def param_names(cls) -> list[str]:
        return [p for p in cls.param if p != "name"]

    @classmethod
    def from_params(cls, params: dict, context: SearchContext) -> "SearchBackend":
        """Validate ``params`` (a JSON object) into an instance run in ``context``, using
        ``context.settings`` for defaults and limits."""
        known = cls.param_names()
        for key in params:
            if key not in known:
                raise UserError(f"{cls.name} search has no parameter {key!r}: {did_you_mean(key, known)}", field=key)
        inst = cls()
        inst.context = context
        for key, value in params.items():
            try:
                setattr(inst, key, value)
            except (ValueError, TypeError) as exc:
                raise UserError(f"{cls.name} search: bad value for {key!r}: {_param_message(exc)}", field=key) from None
        inst.prepare(context.settings)
        return inst

    def prepare(self, settings) -> None:
        """Cross-field validation and parsing with the basedir's search limits; raise
        :class:`UserError` naming the field. (``self.context`` has the app and catalogs.)"""

    def to_params(self) -> dict:
        return {k: getattr(self, k) for k in self.param_names()}

    @classmethod
    def schema(cls) -> dict:
        props = cls.param.schema()
        props.pop("name", None)
        for key, prop in props.items():
            prop.pop("title", None)
            prop["description"] = cls.param[key].doc or ""
            default = cls.param[key].default
            if default is not None:
                prop["default"] = default
        return {"type": cls.name, "title": cls.title, "description": cls.description,
                "params": props, "text_params": list(cls.text_params), "example": cls.example,
                "extra_columns": [c.name for c in cls.extra_columns]}

    def search_collection(self, catalog, flt, sort, limit: int) -> Hits:
        """Find the objects of one collection (``catalog``: a :class:`lcpanel.core.catalogs.catalog.CatalogBase`)
        that match and pass ``flt`` (a parsed filter or None), and count them.

        Return the row ids in this search's natural order. A backend whose matches can be
        many (a column filter, full text) applies ``sort`` (a list of (column, direction),
        possibly empty) itself and returns only the first ``limit``; a bounded one (cone,
        cross-match, ids) may return all of them and leave sorting to the caller.
        """
        raise NotImplementedError


    def summarize(self, hits: list[Hits]) -> list[str]:
        """Notes about the search as a whole, given every collection's hits (e.g. ids
        found nowhere)."""
        return []


def _param_message(exc: Exception) -> str:
    msg = str(exc)
    # param names the owning class ("Number parameter 'ConeSearch.radius_arcmin' must be...")
    return msg.split("' ", 1)[-1] if "parameter '" in msg else msg


@dataclass
class SearchResult:
    spec: SearchSpec
    collections: list[str]
    columns: list[ColumnInfo]
    rows: list[dict]
    nmatched: int
    nmatched_is_lower_bound: bool
    per_collection: dict[str, int | None]
    messages: list[str]
    elapsed_ms: float
    #: the columns the search type adds (distance, matched input...)
    search_columns: list[str] = field(default_factory=list)

    @property
    def nreturned(self) -> int:
        return len(self.rows)

    def summary(self) -> str:
        more = "at least " if self.nmatched_is_lower_bound else ""
        return f"{self.nreturned} of {more}{self.nmatched} matching objects"

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "collections": self.collections,
            "nmatched": self.nmatched,
            "nmatched_is_lower_bound": self.nmatched_is_lower_bound,
            "nreturned": self.nreturned,
            "summary": self.summary(),
            "per_collection": self.per_collection,
            "messages": self.messages,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "columns": [c.to_dict() for c in self.columns],
            "rows": self.rows,
        }


COLLECTION_COLUMN = ColumnInfo(name="collection", key="collection", sqltype="TEXT", ucd="meta.dataset",
                               description="collection the object belongs to")


def run_search(app, spec: SearchSpec | dict, viewer=None) -> SearchResult:
    """Run a search over the spec's collections (all when none are named). With a
    ``viewer``, the limit is capped at their role's maximum rows per dataset."""
    from .catalogs.filters import parse_filter, parse_sort

    started = time.perf_counter()
    if isinstance(spec, dict):
        spec = SearchSpec.from_dict(spec)
    settings = app.config.search
    backend_cls = app.search_backends.get(spec.type)
    backend = backend_cls.from_params(spec.params, SearchContext.of(app))
    catalogs = app.catalogs
    ids = list(spec.collections) if spec.collections else catalogs.ids()
    if not ids:
        raise NotFound("there are no collections to search in this basedir")
    infos = [catalogs.get(c) for c in ids]
    shared = _shared_columns(infos)
    role = viewer.role if viewer is not None else None
    max_rows = app.config.limits.max_rows(role) if role else None
    cap = settings.max_limit if max_rows is None else min(settings.max_limit, max_rows)
    limit = spec.limit or min(settings.default_limit, cap)
    if limit > cap:
        who = f" for {role} users" if role and cap < settings.max_limit else ""
        hint = "; log in or use an API key for more" if role == "anonymous" and cap < settings.max_limit else ""
        raise UserError(f"limit {limit} is over the maximum of {cap} rows{who}{hint}", field="limit")
    columns = {c.name: c.sqltype for c in shared}
    flt = parse_filter(spec.filter, columns) if spec.filter else None
    search_names = [c.name for c in backend.extra_columns]
    sort = parse_sort(spec.sort, columns, extra=(*search_names, "collection")) if spec.sort else list(backend.default_sort)

    rows: list[dict] = []
    per_collection: dict[str, int | None] = {}
    messages: list[str] = []
    lower_bound = False
    all_hits: list[Hits] = []
    shown = [c for c in shared if c.name not in HIDDEN_COLUMNS] + _file_columns(infos, shared)
    out_names = [c.name for c in shown]
    for catalog in infos:
        hits = backend.search_collection(catalog, flt, sort if spec.sort else [], limit)
        all_hits.append(hits)
        per_collection[catalog.collection_id] = hits.nmatched
        lower_bound |= hits.nmatched_is_lower_bound
        messages += [m for m in hits.messages if m not in messages]
        # the best ``limit`` rows of each collection are enough for the best ``limit`` overall
        if spec.sort:
            keep = catalog.top(hits.row_ids, hits.extra, sort, limit)
        else:
            keep = list(range(min(limit, len(hits.row_ids))))
        have = [n for n in out_names if n in catalog.columns]
        fetched = catalog.fetch_values([hits.row_ids[i] for i in keep], have)
        extras = [hits.extra.get(name) for name in search_names]
        cid = catalog.collection_id
        for i, values in zip(keep, fetched):
            row = dict.fromkeys(out_names)
            row["collection"] = cid
            row.update(zip(have, values))
            for name, column in zip(search_names, extras):
                row[name] = column[i] if column is not None else None
            rows.append(row)
    if spec.sort or len(infos) > 1:
        rows = _sorted(rows, sort)[:limit]
    messages += backend.summarize(all_hits)
    out_columns = [COLLECTION_COLUMN] + shown + list(backend.extra_columns)
    nmatched = sum(n if n is not None else 0 for n in per_collection.values())
    return SearchResult(
        spec=spec, collections=ids, columns=out_columns,
        rows=rows,
        nmatched=max(nmatched, len(rows)), nmatched_is_lower_bound=lower_bound,
        per_collection=per_collection, messages=messages,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
        search_columns=search_names)


def _file_columns(infos, shared) -> list[ColumnInfo]:
    """The light-curve, checkplot and period-finding file columns some but not all of the
    collections have: a dataset over several collections keeps them (empty for objects
    of the others), so its products hold every file there is."""
    have = {c.name for c in shared}
    out = []
    names = dict.fromkeys([*PATH_COLUMNS, *(c.name for cat in infos for c in cat.info.columns
                                            if is_path_column(c.name))])
    for name in names:
        if name in have:
            continue
        found = next((c for cat in infos for c in cat.info.columns if c.name == name), None)
        if found is not None:
            out.append(found)
    return out


def _shared_columns(infos) -> list[ColumnInfo]:
    first = infos[0].info.columns
    common = set(c.name for c in first)
    for cat in infos[1:]:
        common &= {c.name for c in cat.info.columns}
    return [c for c in first if c.name in common]


def _sorted(rows: list[dict], sort) -> list[dict]:
    """Stable multi-key sort with NULLs last whatever the direction."""
    for column, direction in reversed(list(sort)):
        present = [r for r in rows if r.get(column) is not None]
        missing = [r for r in rows if r.get(column) is None]
        present.sort(key=lambda r: r[column], reverse=(direction == "DESC"))
        rows = present + missing
    return rows
