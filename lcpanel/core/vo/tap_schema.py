"""The TAP view of a basedir: tables, columns and their metadata, and TAP_SCHEMA.

Every collection is one TAP table, ``lcpanel.<collection id>``, whose columns are the
collection's catalog columns (units, UCDs and descriptions from the registry) except
the sky-index helpers (``hpx29``, ``cx``, ``cy``, ``cz``). TAP_SCHEMA (TAP 1.1: ``schemas``,
``tables``, ``columns``, ``keys``, ``key_columns``) describes those tables and itself.

:func:`tap_model` builds a :class:`TapModel` from the open catalogs. Its TAP_SCHEMA is a
small SQLite file derived from it under ``BASEDIR/vo/``, named by a digest of the model
(``tap_schema-<digest>.sqlite``) and written atomically, so every server process uses
the same file and a changed registry yields a new one; ADQL queries read it like any
catalog. :func:`tableset_xml` answers VOSI ``/tables``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import unicodedata
from contextlib import closing
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from xml.sax.saxutils import escape

from ..atomic import atomic_path
from .votable import VOField, text

SCHEMA_NAME = "lcpanel"
TAP_SCHEMA = "TAP_SCHEMA"
TAP_SCHEMA_DB = "tap_schema"
HIDDEN_COLUMNS = frozenset({"hpx29", "cx", "cy", "cz"})
PRINCIPAL_COLUMNS = frozenset({"objectid", "ra", "decl", "ndet", "vmag", "sdssr", "tessmag", "gaiamag",
                               "varperiod", "objecttags"})
VO_DIR = "vo"

# ADQL 2.1 reserved words (SQL-92 and ADQL's own): such names must be quoted.
ADQL_RESERVED = frozenset("""
ABS ACOS AREA ASIN ATAN ATAN2 BIT_AND BIT_NOT BIT_OR BIT_XOR BOX CEILING CENTROID CIRCLE CONTAINS COORD1
COORD2 COORDSYS COS COT DEGREES DISTANCE EXP FLOOR ILIKE INTERSECTS IN_UNIT LOG LOG10 MOD PI POINT POLYGON
POWER RADIANS REGION RAND ROUND SIN SQRT TOP TAN TRUNCATE OFFSET LOWER UPPER GREATEST LEAST
ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG BEGIN BETWEEN BIT
BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH CHARACTER_LENGTH CHECK CLOSE
COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT
CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE
DAY DEALLOCATE DEC DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS
DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL
EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR
IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL INTO
IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL MATCH MAX MIN MINUTE MODULE MONTH NAMES
NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER
OUTPUT OVERLAPS PAD PARTIAL POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC
READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION
SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE
TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION
TRIM TRUE UNION UNIQUE UNKNOWN UPDATE USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE
WITH WORK WRITE YEAR ZONE
""".split())
_REGULAR = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def adql_name(name: str) -> str:
    """``name`` as written in ADQL: quoted when it is reserved or not a regular identifier."""
    if _REGULAR.match(name) and name.upper() not in ADQL_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def ascii_text(value: str) -> str:
    """TAP_SCHEMA text is VOTable ``char`` (7-bit): accents folded, other characters dropped."""
    folded = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    return text(folded)


@dataclass(frozen=True)
class TapColumn(VOField):
    """One column as TAP_SCHEMA.columns and /tables describe it: its VOTable field
    (name, datatype, arraysize, unit, ucd, utype, xtype, description) and TAP_SCHEMA's flags."""

    indexed: bool = False
    principal: bool = False
    std: bool = False
    primary: bool = False

    @property
    def adql_name(self) -> str:
        return adql_name(self.name)

    @property
    def sqlglot_type(self) -> str:
        return {"char": "TEXT", "unicodeChar": "TEXT", "double": "DOUBLE", "float": "FLOAT",
                "long": "BIGINT", "int": "INT", "short": "SMALLINT", "boolean": "BOOLEAN"}.get(self.datatype, "TEXT")

    def vofield(self, name: str | None = None) -> VOField:
        """The plain VOTable field (without the TAP_SCHEMA flags), optionally renamed."""
        values = {f.name: getattr(self, f.name) for f in fields(VOField)}
        return VOField(**{**values, "name": name or self.name})


@dataclass(frozen=True)
class ForeignKey:
    key_id: str
    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str = ""


@dataclass(frozen=True)
class TapTable:
    """A table queryable in ADQL, and where its rows live."""

    schema: str
    name: str
    description: str
    columns: tuple[TapColumn, ...]
    #: the SQLite schema it is attached as, and its table there
    db: str
    sql_table: str
    path: str | None = None
    collection_id: str | None = None
    table_type: str = "table"
    utype: str = ""
    nrows: int | None = None
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{adql_name(self.name)}"

    @property
    def key(self) -> tuple[str, str]:
        return self.schema.lower(), self.name.lower()

    def column(self, name: str) -> TapColumn | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None


def _tc(name, datatype, description, *, arraysize=None, principal=True, indexed=False, primary=False, unit="",
        ucd="") -> TapColumn:
    if datatype == "char" and arraysize is None:
        arraysize = "*"
    return TapColumn(name=name, datatype=datatype, arraysize=arraysize, description=description, std=True,
                     principal=principal, indexed=indexed, primary=primary, unit=unit, ucd=ucd)


TAP_SCHEMA_TABLES = {
    "schemas": ("description of the schemas in this service", (
        _tc("schema_name", "char", "schema name, possibly qualified", indexed=True, primary=True),
        _tc("utype", "char", "lists the utypes of schemas in the service", principal=False),
        _tc("description", "char", "brief description of the schema"),
        _tc("schema_index", "int", "recommended sort order when listing schemas", principal=False),
    )),
    "tables": ("description of the tables in this service", (
        _tc("schema_name", "char", "the schema name from TAP_SCHEMA.schemas", indexed=True),
        _tc("table_name", "char", "the fully qualified table name", indexed=True, primary=True),
        _tc("table_type", "char", "one of: table, view"),
        _tc("utype", "char", "lists the utype of tables in the service", principal=False),
        _tc("description", "char", "brief description of the table"),
        _tc("table_index", "int", "recommended sort order when listing tables", principal=False),
    )),
    "columns": ("description of the columns of the tables in this service", (
        _tc("table_name", "char", "the table this column belongs to", indexed=True, primary=True),
        _tc("column_name", "char", "the column name", indexed=True, primary=True),
        _tc("datatype", "char", "an XType or a TAP type"),
        _tc("arraysize", "char", "length of variable length datatypes", principal=False),
        _tc("xtype", "char", "a DALI or custom extended type annotation", principal=False),
        _tc("size", "int", "length of variable length datatypes (deprecated, use arraysize)", principal=False),
        _tc("description", "char", "brief description of the column"),
        _tc("utype", "char", "utype of the column if any", principal=False),
        _tc("unit", "char", "unit in VO standard format"),
        _tc("ucd", "char", "UCD of the column if any"),
        _tc("indexed", "int", "an indexed column; 1 means true, 0 false", principal=False),
        _tc("principal", "int", "a principal column; 1 means true, 0 false", principal=False),
        _tc("std", "int", "a standard column; 1 means true, 0 false", principal=False),
        _tc("column_index", "int", "recommended sort order when listing columns", principal=False),
    )),
    "keys": ("description of the foreign keys between tables in this service", (
        _tc("key_id", "char", "unique key identifier", indexed=True, primary=True),
        _tc("from_table", "char", "fully qualified table name"),
        _tc("target_table", "char", "fully qualified table name"),
        _tc("utype", "char", "lists the utype of keys in the service", principal=False),
        _tc("description", "char", "description of this key"),
    )),
    "key_columns": ("the columns of the foreign keys in TAP_SCHEMA.keys", (
        _tc("key_id", "char", "key identifier from TAP_SCHEMA.keys", indexed=True),
        _tc("from_column", "char", "key column name in the from_table"),
        _tc("target_column", "char", "key column name in the target_table"),
    )),
}
TAP_SCHEMA_KEYS = (
    ForeignKey("tables_schema", "TAP_SCHEMA.tables", "TAP_SCHEMA.schemas", (("schema_name", "schema_name"),),
               "the schema a table is in"),
    ForeignKey("columns_table", "TAP_SCHEMA.columns", "TAP_SCHEMA.tables", (("table_name", "table_name"),),
               "the table a column is in"),
    ForeignKey("keys_from", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", (("from_table", "table_name"),),
               "the table a key starts from"),
    ForeignKey("keys_target", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", (("target_table", "table_name"),),
               "the table a key points to"),
    ForeignKey("key_columns_key", "TAP_SCHEMA.key_columns", "TAP_SCHEMA.keys", (("key_id", "key_id"),),
               "the key a column pair belongs to"),
)
SCHEMA_DESCRIPTIONS = {
    TAP_SCHEMA: "the tables, columns and keys of this TAP service (TAP 1.1)",
    "ivoa": "IVOA data models: ivoa.obscore lists every light curve of every collection (ObsCore 1.1)",
    SCHEMA_NAME: "the light-curve collections served here: one table per collection, one row per object",
}


def collection_table(info) -> TapTable:
    """The TAP table of one collection (``info``: :class:`lcpanel.core.catalogs.basedir.CollectionInfo`)."""
    columns = []
    for c in info.columns:
        if c.name in HIDDEN_COLUMNS:
            continue
        datatype, arraysize = {"INTEGER": ("long", None), "REAL": ("double", None)}.get(c.sqltype, ("unicodeChar", "*"))
        description = c.description or f"catalog key {c.key}"
        columns.append(TapColumn(
            name=c.name, datatype=datatype, arraysize=arraysize, description=ascii_text(description),
            unit=c.unit, ucd=c.ucd, indexed=bool(c.indexed) or c.name in ("objectid", "ra", "decl"),
            principal=c.name in PRINCIPAL_COLUMNS, primary=c.name == "objectid"))
    parts = [info.name, info.description]
    if info.citation:
        parts.append(f"Cite: {info.citation}")
    description = ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip()) + "."
    return TapTable(schema=SCHEMA_NAME, name=info.collection_id, description=ascii_text(description),
                    columns=tuple(columns), db=f"c_{info.collection_id}", sql_table="object_catalog",
                    path=str(info.catalog_sqlite), collection_id=info.collection_id, nrows=info.nobjects)


def tap_schema_tables() -> list[TapTable]:
    keys = {}
    for fk in TAP_SCHEMA_KEYS:
        keys.setdefault(fk.from_table, []).append(fk)
    return [TapTable(schema=TAP_SCHEMA, name=name, description=desc, columns=cols, db=TAP_SCHEMA_DB,
                     sql_table=name, foreign_keys=tuple(keys.get(f"{TAP_SCHEMA}.{name}", ())))
            for name, (desc, cols) in TAP_SCHEMA_TABLES.items()]


@dataclass
class TapModel:
    """Every ADQL-visible table, and the TAP_SCHEMA file describing them."""

    tables: list[TapTable]
    tap_schema_path: Path
    by_key: dict = field(default_factory=dict)

    def __post_init__(self):
        self.by_key = {t.key: t for t in self.tables}

    def schemas(self) -> list[str]:
        return list(dict.fromkeys(t.schema for t in self.tables))

    def table(self, schema: str, name: str) -> TapTable | None:
        return self.by_key.get((schema.lower(), name.lower()))

    def find(self, full_name: str) -> TapTable | None:
        """A table by its ADQL name (``lcpanel.demo``, ``TAP_SCHEMA.tables``), quotes allowed."""
        schema, _, name = full_name.partition(".")
        return self.table(schema.strip('"'), name.strip('"')) if name else None

    def sqlglot_schema(self) -> dict:
        """``{schema: {table: {column: type}}}`` (lowercase) for ``sqlglot``'s qualifier."""
        out: dict = {}
        for t in self.tables:
            out.setdefault(t.schema.lower(), {})[t.name.lower()] = {c.name.lower(): c.sqlglot_type for c in t.columns}
        return out

    @cached_property
    def qualifier_schema(self):
        """:meth:`sqlglot_schema` as the ADQL qualifier's ``MappingSchema``, made once per
        model (normalising it took 0.35 ms, on every query); the qualifier only reads it."""
        from sqlglot.schema import MappingSchema

        from .adql import ADQLDialect

        return MappingSchema(self.sqlglot_schema(), dialect=ADQLDialect)


def obscore_table(path: Path) -> TapTable:
    """``ivoa.obscore`` read from ``path`` (:mod:`lcpanel.core.vo.obscore`)."""
    from .obscore import COLUMNS, SCHEMA, TABLE

    columns = tuple(TapColumn(name=name, datatype=datatype, arraysize="*" if datatype == "char" else None,
                              unit=unit, ucd=ucd, utype=utype or "", description=description, std=bool(utype),
                              principal=True,
                              indexed=name in ("obs_collection", "obs_id", "obs_publisher_did", "t_min"))
                    for name, datatype, unit, ucd, utype, description in COLUMNS)
    return TapTable(schema=SCHEMA, name=TABLE, description="every light-curve series served here (one per magnitude or flux column of each file), one row each (ObsCore 1.1)",
                    columns=columns, db="ivoa_obscore", sql_table=TABLE, path=str(path),
                    utype="ivo://ivoa.net/std/ObsCore#table-1.1")


def build_model(infos, basedir: Path, extra_tables=()) -> TapModel:
    """The model of the given collections (and ``extra_tables``, e.g. ``ivoa.obscore``);
    writes its TAP_SCHEMA file if missing."""
    tables = (tap_schema_tables() + list(extra_tables)
              + [collection_table(i) for i in sorted(infos, key=lambda i: i.collection_id)])
    rows = _tap_schema_rows(tables)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(basedir) / VO_DIR / f"tap_schema-{digest}.sqlite"
    if not path.is_file():
        _write_tap_schema(path, rows)
    return TapModel(tables=tables, tap_schema_path=path)


_cache_lock = threading.Lock()
_cache: dict = {}


def tap_model(catalogs, extra_tables=None) -> TapModel:
    """The model of the collections currently in ``catalogs`` (:class:`lcpanel.core.catalogs.catalog.Catalogs`),
    rebuilt only when the registry changed; ``extra_tables()`` gives more tables then."""
    infos = [catalogs.get(cid).info for cid in catalogs.ids()]
    key = (str(catalogs.basedir.path), tuple((i.collection_id, i.added_at, i.catalog_dir) for i in infos))
    with _cache_lock:
        model = _cache.get(key)
        if model is None or not model.tap_schema_path.is_file():
            model = build_model(infos, catalogs.basedir.path, extra_tables() if extra_tables else ())
            if len(_cache) > 8:
                _cache.clear()
            _cache[key] = model
        return model


def _tap_schema_rows(tables: list[TapTable]) -> dict:
    schemas = list(dict.fromkeys(t.schema for t in tables))
    out = {
        "schemas": [(s, None, SCHEMA_DESCRIPTIONS.get(s, ""), i) for i, s in enumerate(schemas)],
        "tables": [], "columns": [], "keys": [], "key_columns": [],
    }
    for ti, t in enumerate(tables):
        out["tables"].append((t.schema, t.full_name, t.table_type, t.utype or None, t.description, ti))
        for ci, c in enumerate(t.columns):
            size = int(c.arraysize) if c.arraysize and c.arraysize.isdigit() else None
            out["columns"].append((t.full_name, c.adql_name, c.datatype, c.arraysize, c.xtype or None, size,
                                   c.description, c.utype or None, c.unit or None, c.ucd or None, int(c.indexed),
                                   int(c.principal), int(c.std), ci))
        for fk in t.foreign_keys:
            out["keys"].append((fk.key_id, fk.from_table, fk.target_table, None, fk.description))
            out["key_columns"] += [(fk.key_id, a, b) for a, b in fk.columns]
    return out


def _write_tap_schema(path: Path, rows: dict) -> None:
    with atomic_path(path, durable=False) as tmp:
        tmp.unlink()
        with closing(sqlite3.connect(tmp)) as conn, conn:
            for name, (_, cols) in TAP_SCHEMA_TABLES.items():
                decl = ", ".join(f'"{c.name}" {"INTEGER" if c.datatype == "int" else "TEXT"}' for c in cols)
                conn.execute(f'CREATE TABLE "{name}" ({decl})')
                marks = ", ".join("?" * len(cols))
                conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows[name])
            conn.execute('CREATE INDEX columns_table ON "columns"(table_name)')


# --- VOSI tables ----------------------------------------------------------------------------

VOSI_TABLES_NS = "http://www.ivoa.net/xml/VOSITables/v1.0"
VS_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _e(value) -> str:
    return escape(text(value))


def _column_xml(c: TapColumn) -> str:
    out = [f"<column><name>{_e(c.adql_name)}</name>"]
    if c.description:
        out.append(f"<description>{_e(c.description)}</description>")
    if c.unit:
        out.append(f"<unit>{_e(c.unit)}</unit>")
    if c.ucd:
        out.append(f"<ucd>{_e(c.ucd)}</ucd>")
    if c.utype:
        out.append(f"<utype>{_e(c.utype)}</utype>")
    size = f' arraysize="{_e(c.arraysize)}"' if c.arraysize else ""
    out.append(f'<dataType xsi:type="vs:VOTableType"{size}>{_e(c.datatype)}</dataType>')
    if c.indexed:
        out.append("<flag>indexed</flag>")
    if c.primary:
        out.append("<flag>primary</flag>")
    if c.std:
        out.append("<flag>std</flag>")
    out.append("</column>\n")
    return "".join(out)


def _table_xml(t: TapTable, *, detail: bool = True, element: str = "table", ns: str = "") -> str:
    out = [f'<{element} type="{_e(t.table_type)}"{ns}>\n<name>{_e(t.full_name)}</name>\n']
    if t.description:
        out.append(f"<description>{_e(t.description)}</description>\n")
    if detail:
        out += [_column_xml(c) for c in t.columns]
        for fk in t.foreign_keys:
            out.append(f"<foreignKey><targetTable>{_e(fk.target_table)}</targetTable>")
            out += [f"<fkColumn><fromColumn>{_e(a)}</fromColumn><targetColumn>{_e(b)}</targetColumn></fkColumn>"
                    for a, b in fk.columns]
            if fk.description:
                out.append(f"<description>{_e(fk.description)}</description>")
            out.append("</foreignKey>\n")
    out.append(f"</{element}>\n")
    return "".join(out)


def tableset_xml(model: TapModel, *, detail: bool = True) -> bytes:
    """VOSI 1.1 ``/tables``: every schema and table (columns unless ``detail`` is off)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           f'<vosi:tableset xmlns:vosi="{VOSI_TABLES_NS}" xmlns:vs="{VS_NS}" xmlns:xsi="{XSI_NS}">\n']
    for schema in model.schemas():
        out.append(f"<schema>\n<name>{_e(schema)}</name>\n")
        if SCHEMA_DESCRIPTIONS.get(schema):
            out.append(f"<description>{_e(SCHEMA_DESCRIPTIONS[schema])}</description>\n")
        out += [_table_xml(t, detail=detail) for t in model.tables if t.schema == schema]
        out.append("</schema>\n")
    out.append("</vosi:tableset>\n")
    return "".join(out).encode("utf-8")


def table_xml(table: TapTable) -> bytes:
    """VOSI 1.1 ``/tables/<name>``: one table with its columns."""
    ns = f' xmlns:vosi="{VOSI_TABLES_NS}" xmlns:vs="{VS_NS}" xmlns:xsi="{XSI_NS}"'
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + _table_xml(table, element="vosi:table", ns=ns)).encode("utf-8")
