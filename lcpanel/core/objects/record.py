"""One object as the object page sees it: its catalog row, the magnitude column shown,
the catalog columns its variability info is edited in, and its checkplot (or why there
is none), found with :meth:`CatalogBase.object_row` and :meth:`CollectionInfo.object_file`
(never a path outside the collection's directory). No UI here: the page asks for an
:class:`ObjectRecord` and shows it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import NotFound, UserError
from ..catalogs import idindex
from .annotations import varinfo_columns
from .checkplots import CheckplotError, load_checkplot
from .magcols import checkplot_column, choose_magcol, collection_magcols


@dataclass
class ObjectRecord:
    """What the page knows about one object: its catalog row and, when it has one, its
    checkplot (or why it could not be read)."""

    collection_id: str
    objectid: str
    catalog: object = None
    row: dict | None = None
    checkplot: dict | None = None
    error: str | None = None  # why there is no page ("no such object"...)
    no_checkplot: str | None = None  # why there is no checkplot view
    varcols: dict = field(default_factory=dict)  # editable field -> catalog column
    magcol: str | None = None  # the magcol shown (None: the collection has one checkplot per object)
    magcols: list = field(default_factory=list)  # the collection's magcols, default first
    varprefix: str = ""  # the catalog prefix of the variability columns edited here
    bad_magcol: bool = False  # the error is the page's magcol, not the object
    canonical: str | None = None  # the object's own id when the one asked for is another way of writing it
    suggestions: list = field(default_factory=list)  # the ids nearest one that names no object

    @property
    def info(self):
        return self.catalog.info


def find_object(catalogs, collection_id: str, objectid: str, magcol: str = "") -> ObjectRecord:
    """The object's catalog row and checkplot (of ``magcol``, default the collection's
    first) from ``catalogs`` (an app's :class:`Catalogs`); never raises for a visitor's
    mistake."""
    rec = ObjectRecord(collection_id, objectid)
    try:
        rec.catalog = catalogs.get(collection_id)
    except UserError:
        rec.error = f"There is no collection {collection_id!r}"
        return rec
    rec.magcols = collection_magcols(rec.catalog.info.columns)
    try:
        rec.magcol = choose_magcol(rec.catalog.info.columns, magcol)
    except UserError as exc:
        rec.error, rec.bad_magcol = exc.message, True
        return rec
    rec.row = rec.catalog.object_row(objectid)
    if rec.row is None:
        rec.error = f"There is no object {objectid!r} in {rec.catalog.info.name}"
        rec.canonical, rec.suggestions = written_as(rec.catalog, objectid)
        return rec
    cpfname = rec.row.get(checkplot_column(rec.magcol) if rec.magcol else "cpfname")
    rec.varprefix, rec.varcols = varinfo_columns(list(rec.row), cpfname, objectid)
    path = rec.info.object_file(cpfname)
    if path is None:
        rec.no_checkplot = ("This collection is a plain catalog: its objects have no checkplots."
                            if rec.info.kind != "astrobase" or "cpfname" not in rec.catalog.columns
                            else "There is no checkplot for this object.")
        return rec
    try:
        rec.checkplot = load_checkplot(path)
    except CheckplotError as exc:
        rec.no_checkplot = f"The checkplot of this object cannot be read: {exc.message}"
    except OSError as exc:
        rec.no_checkplot = f"The checkplot of this object cannot be read: {exc.strerror or exc}"
    return rec


#: ids suggested for one that names no object
NEAREST = 5


def written_as(catalog, written: str) -> tuple[str | None, list[str]]:
    """What ``written``, an id that is no object's own, means in ``catalog``: the object
    it names in another case or spacing, or as one of its aliases (its own id, else None);
    else the ids nearest it, each an object's (none without the catalog's id index)."""
    if not getattr(catalog, "id_index", False):
        return None, []
    conn = catalog.conn()
    named = idindex.owners(conn, written)
    if len(named) == 1:
        return named[0], []
    near = dict.fromkeys(oid for value in idindex.nearest(conn, written, NEAREST)
                         for oid in idindex.owners(conn, value))
    return None, (named or list(near))[:NEAREST]


def no_such_object(catalog, objectid: str) -> NotFound:
    """The error for an object id that names no object of ``catalog``, saying what it is
    written as or the nearest ids (an API stays exact: a client learns the right id)."""
    canonical, near = written_as(catalog, objectid)
    hint = f"; its id is {canonical!r}" if canonical else (f"; nearest ids: {', '.join(near)}" if near else "")
    return NotFound(f"no object {objectid!r} in {catalog.info.collection_id!r}{hint}")


def must_exist(catalog, objectid: str) -> None:
    """Raise :func:`no_such_object` unless ``objectid`` is exactly an object id of ``catalog``."""
    if not isinstance(objectid, str) or not objectid.strip():
        raise NotFound(f"there is no object {objectid!r} in {catalog.info.collection_id!r}")
    if catalog.object_row(objectid, ["objectid"]) is None:
        raise no_such_object(catalog, objectid)
