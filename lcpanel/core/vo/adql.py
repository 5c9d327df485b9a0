"""ADQL 2.1 to SQLite: parse, check, resolve, rewrite sky regions to the sky index, translate.

The pipeline (after GAVO DaCHS: parse, annotate, index rewrite, translate):

0. **Size and shape**, before sqlglot sees the text: at most :data:`MAX_QUERY_CHARS`
   characters, no NUL or other control character, parentheses at most
   :data:`MAX_NESTING` deep, at most :data:`MAX_SELECTS` SELECTs, :data:`MAX_BOOLEAN_TERMS`
   AND/OR terms and :data:`MAX_NOTS` NOTs: sqlglot parses and rewrites recursively, so
   these bound its time and stack (a too-deep query is a clear error, never a crash).
1. **Tokens**: sqlglot's tokenizer with ``TOP`` as a keyword. Tokens ADQL does not have are
   refused with a clear message: ``;`` (one statement only), ``LIMIT`` (use ``TOP``),
   ``%`` (use ``MOD``), ``::`` casts, ``?``/``:name``/``@name`` parameters.
2. **Parse** with sqlglot into a tree whose root must be a SELECT, a set operation
   (UNION, INTERSECT, EXCEPT) or a non-recursive WITH.
3. **Allow-list**: every node must be of a type ADQL 2.1 has (:data:`ALLOWED_NODES`) and
   every function an ADQL function (:data:`ADQL_FUNCTIONS`); anything else -- a SQLite
   function such as ``load_extension``, CASE, window functions -- is refused by name.
4. **Resolve** tables and columns against the TAP model (sqlglot's qualifier with the
   model's schema): unknown tables and columns are errors with a did-you-mean, ``*`` expands
   to the declared columns only, identifiers match case-insensitively.
5. **Sky rewrite**: a WHERE conjunct ``CONTAINS(POINT('ICRS', t.ra, t.decl),
   CIRCLE('ICRS', ra0, dec0, r)) = 1`` (or ``INTERSECTS``), ``DISTANCE(POINT(...t.ra,
   t.decl), POINT(..., ra0, dec0)) < r`` or ``DISTANCE(t.ra, t.decl, ra0, dec0) <= r``,
   with constant centre and radius on a collection table, becomes ``t.row_id IN
   (json_each(:ids))`` with the row ids the sky index finds (HEALPix ranges plus the exact
   angular cut), so an ADQL cone costs what a cone search costs. Other geometry (OR'ed
   cones, column radii, geometry in the select list) runs through exact SQL functions.
6. **Translate** to SQLite: ADQL functions map to SQLite's (``LOG`` is the natural log,
   ``LOG10``, ``TRUNCATE``, ``RAND``, ``COT``, bitwise XOR...), tables to the attached
   database that holds them, and the result columns carry the TAP metadata of the
   columns they come from (:class:`lcpanel.core.vo.votable.VOField`).

Execution (read-only, authorizer, time limit, row cap) is :mod:`lcpanel.core.vo.tap_query`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.qualify import qualify
from sqlglot.tokens import TokenType

from ...errors import UserError
from ..suggest import did_you_mean
from .tap_schema import TapModel, TapTable
from .votable import VOField

MAX_QUERY_CHARS = 100_000
MAX_NESTING = 32
MAX_SELECTS = 32
MAX_BOOLEAN_TERMS = 160  # SQLite refuses expressions deeper than sqlsafe.EXPR_DEPTH_LIMIT (200)
MAX_NOTS = 64
#: row ids of one indexed region are bound in JSON pieces of at most this many
ROWS_PER_PARAM = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: above this many sky-index candidates a region is cut row by row instead
MAX_INDEX_ROWS = 2_000_000
ALLOWED_COORDSYS = ("", "ICRS")


class ADQLError(UserError):
    """A query that is not valid ADQL or cannot run here."""


class ADQLDialect(Dialect):
    """sqlglot's generic SQL with ``TOP`` and case-insensitive identifiers."""

    NORMALIZATION_STRATEGY = NormalizationStrategy.CASE_INSENSITIVE

    class Tokenizer(tokens.Tokenizer):
        KEYWORDS = {**tokens.Tokenizer.KEYWORDS, "TOP": TokenType.TOP}


_REFUSED_TOKENS = {
    TokenType.SEMICOLON: "send one query only: ';' (several statements) is not allowed",
    TokenType.LIMIT: "LIMIT is not ADQL: write SELECT TOP n ...",
    TokenType.MOD: "'%' is not ADQL: use MOD(a, b)",
    TokenType.DCOLON: "'::' casts are not ADQL: use CAST(x AS type)",
    TokenType.PLACEHOLDER: "query parameters ('?') are not allowed; write the values into the query",
    TokenType.PARAMETER: "query parameters ('@name') are not allowed; write the values into the query",
    TokenType.COLON: "':' is not allowed in ADQL outside strings",
}

ALLOWED_NODES = tuple(getattr(exp, n) for n in """
Select Union Intersect Except With CTE Subquery From Join Table TableAlias Identifier Column Star Alias
Where Group Having Order Ordered Limit Offset Distinct Literal Null Paren Neg Add Sub Mul Div Mod DPipe
EQ NEQ GT GTE LT LTE And Or Not Is Like ILike Escape In Between Exists Cast DataType DataTypeParam
BitwiseAnd BitwiseOr BitwiseXor BitwiseNot Count Sum Avg Min Max Abs Acos Asin Atan Atan2 Ceil Cos Cot
Degrees Exp Floor Log Pi Pow Radians Rand Round Sin Sqrt Tan Trunc Lower Upper Coalesce Contains Anonymous
Var
""".split())

#: ADQL functions sqlglot does not know (it parses them as anonymous functions)
GEOMETRY_FUNCTIONS = {"POINT", "CIRCLE", "BOX", "POLYGON", "REGION", "CONTAINS", "INTERSECTS", "DISTANCE",
                      "COORD1", "COORD2", "COORDSYS", "AREA", "CENTROID"}
SUPPORTED_GEOMETRY = {"POINT", "CIRCLE", "CONTAINS", "INTERSECTS", "DISTANCE", "COORD1", "COORD2", "COORDSYS"}
ADQL_FUNCTIONS = GEOMETRY_FUNCTIONS | {"IN_UNIT"}

# sqlglot class -> SQLite function (same arguments)
_SQLITE_FUNCTIONS = {
    exp.Abs: "abs", exp.Acos: "acos", exp.Asin: "asin", exp.Atan: "atan", exp.Atan2: "atan2",
    exp.Ceil: "ceiling", exp.Cos: "cos", exp.Degrees: "degrees", exp.Exp: "exp", exp.Floor: "floor",
    exp.Pi: "pi", exp.Pow: "power", exp.Radians: "radians", exp.Sin: "sin", exp.Sqrt: "sqrt",
    exp.Tan: "tan", exp.Lower: "lower", exp.Upper: "upper", exp.Coalesce: "coalesce", exp.Round: "round",
    exp.Mod: "mod",
}
# UDFs registered on every ADQL connection (lcpanel.core.vo.tap_query)
UDF_NAMES = frozenset({"lcp_distance", "lcp_contains_circle", "lcp_intersects_circles", "lcp_truncate",
                       "lcp_rand"})
_CAST_TYPES = {"INT": "INTEGER", "SMALLINT": "INTEGER", "BIGINT": "INTEGER", "INTEGER": "INTEGER",
               "FLOAT": "REAL", "DOUBLE": "REAL", "REAL": "REAL", "CHAR": "TEXT", "VARCHAR": "TEXT",
               "NCHAR": "TEXT", "NVARCHAR": "TEXT", "TEXT": "TEXT"}


@dataclass
class Translation:
    """A query ready for SQLite: the SQL, its named parameters, the tables it reads and
    the VOTable fields of its result columns."""

    adql: str
    sql: str
    params: dict
    tables: list[TapTable]
    fields: list[VOField]
    #: with ``objects_only``: the collection whose row ids the query returns
    collection_id: str | None = None
    #: how each sky region was answered ("index" or "scan"), for notes and tests
    regions: list[str] = field(default_factory=list)


# --- 1-3: tokens, parse, allow-list ------------------------------------------------------


def parse(query: str) -> exp.Expression:
    """The checked syntax tree of one ADQL query; :class:`ADQLError` if it is not ADQL."""
    return _parse_checked(query, _checked_tokens(query))


def _checked_tokens(query: str) -> list:
    """The tokens of a query that passes the checks made before parsing (length, control
    characters, nesting, refused words); :class:`ADQLError` otherwise."""
    if not isinstance(query, str) or not query.strip():
        raise ADQLError("the query is empty; send QUERY=SELECT ...")
    if len(query) > MAX_QUERY_CHARS:
        raise ADQLError(f"the query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
    bad = _CONTROL.search(query)
    if bad:
        raise ADQLError(f"the query holds a control character (U+{ord(bad.group()):04X}) at character "
                        f"{bad.start() + 1}; only tabs and line breaks are allowed")
    try:
        toks = ADQLDialect().tokenize(query)
    except TokenError as exc:
        raise ADQLError(f"the query cannot be read: {_short(exc)}") from None
    except RecursionError:
        raise ADQLError("the query cannot be read: it is nested too deeply") from None
    _check_shape(toks)
    for i, tok in enumerate(toks):
        if tok.token_type is TokenType.SEMICOLON and all(t.token_type is TokenType.SEMICOLON for t in toks[i:]):
            break  # a trailing ';' is harmless
        message = _REFUSED_TOKENS.get(tok.token_type)
        if message:
            raise ADQLError(f"{message} (line {tok.line}, column {tok.col})")
    return toks


def _parse_checked(query: str, toks: list) -> exp.Expression:
    """The checked syntax tree of a query from its tokens, which passed :func:`_checked_tokens`
    (what ``sqlglot.parse`` does after tokenizing the text again)."""
    try:
        trees = ADQLDialect().parser().parse(toks, query)
    except ParseError as exc:
        raise ADQLError(f"ADQL syntax error: {_parse_message(exc)}") from None
    except RecursionError:
        raise ADQLError("the query is nested too deeply to read; simplify it") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise ADQLError("send exactly one SELECT query")
    tree = trees[0]
    if not isinstance(tree, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
        raise ADQLError(f"only SELECT queries are allowed, not {tree.key.upper()}")
    _check_nodes(tree)
    return tree


def _check_shape(toks) -> None:
    """Refuse queries whose nesting or size would make parsing and rewriting slow or deep."""
    depth = deepest = selects = terms = nots = 0
    for tok in toks:
        kind = tok.token_type
        if kind is TokenType.L_PAREN:
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                raise ADQLError(f"the query nests parentheses more than {MAX_NESTING} deep (line {tok.line}, "
                                f"column {tok.col}); simplify it")
        elif kind is TokenType.R_PAREN:
            depth -= 1
        elif kind is TokenType.SELECT:
            selects += 1
        elif kind in (TokenType.AND, TokenType.OR):
            terms += 1
        elif kind is TokenType.NOT:
            nots += 1
    if selects > MAX_SELECTS:
        raise ADQLError(f"the query has {selects} SELECTs; the limit is {MAX_SELECTS}")
    if terms > MAX_BOOLEAN_TERMS:
        raise ADQLError(f"the query has {terms} AND/OR operators; the limit is {MAX_BOOLEAN_TERMS} (for many "
                        "values of one column use IN (...), for many positions an upload or several queries)")
    if nots > MAX_NOTS:
        raise ADQLError(f"the query has {nots} NOTs; the limit is {MAX_NOTS}")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:300]


def _parse_message(exc: ParseError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors:
        e = errors[0]
        where = f" at line {e.get('line')}, column {e.get('col')}" if e.get("line") else ""
        near = f" near {e.get('highlight')!r}" if e.get("highlight") else ""
        return f"{e.get('description', 'invalid query')}{where}{near}"
    return _short(exc)


def _check_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name not in ADQL_FUNCTIONS:
                raise ADQLError(f"{name}() is not an ADQL function")
            if name not in SUPPORTED_GEOMETRY:
                raise ADQLError(f"{name}() is not supported by this service; the geometry functions here are "
                                + ", ".join(sorted(SUPPORTED_GEOMETRY)))
            continue
        if not isinstance(node, ALLOWED_NODES):
            raise ADQLError(f"{_node_name(node)} is not allowed in ADQL queries here")
        if isinstance(node, exp.With) and node.args.get("recursive"):
            raise ADQLError("WITH RECURSIVE is not allowed")
        if isinstance(node, exp.Var):
            raise ADQLError(f"{node.name!r} is not valid here")
        if isinstance(node, exp.Log) and node.args.get("expression") is not None:
            base = node.this
            if not (isinstance(base, exp.Literal) and base.this == "10"):
                raise ADQLError("LOG takes one argument (natural logarithm); use LOG10 for base 10")
        if isinstance(node, exp.DataType):
            name = node.this.name if hasattr(node.this, "name") else str(node.this)
            if name.upper() not in _CAST_TYPES:
                raise ADQLError(f"CAST to {node.sql()} is not supported; use INTEGER, SMALLINT, BIGINT, REAL, "
                                "DOUBLE PRECISION, CHAR(n) or VARCHAR(n)")
        if isinstance(node, exp.Join) and node.args.get("kind", "").upper() in ("SEMI", "ANTI", "ASOF"):
            raise ADQLError(f"{node.args['kind']} JOIN is not ADQL")


def _node_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Func):
        return f"the function {node.sql_name()}()"
    return {"case": "CASE", "window": "a window function (OVER)", "boolean": "TRUE/FALSE",
            "placeholder": "a query parameter", "command": "a command", "pragma": "PRAGMA",
            "insert": "INSERT", "update": "UPDATE", "delete": "DELETE"}.get(node.key, node.key.upper())


# --- 4: resolve ---------------------------------------------------------------------------


def _resolve(tree: exp.Expression, model: TapModel) -> exp.Expression:
    schema = model.qualifier_schema
    known = [t.full_name for t in model.tables]
    for table in tree.find_all(exp.Table):
        name, db = table.name, table.text("db")
        if table.text("catalog"):
            raise ADQLError(f"unknown table {table.sql()!r}: names have at most two parts (schema.table)")
        if not db:
            if name.lower() in _ctes_in_scope(table):
                continue
            matches = [t for t in model.tables if t.name.lower() == name.lower()]
            if len(matches) != 1:
                hint = did_you_mean(name, known) if not matches else "name its schema"
                raise ADQLError(f"unknown table {name!r}: {hint}")
            table.set("db", exp.to_identifier(matches[0].schema))
        elif model.table(db, name) is None:
            raise ADQLError(f"unknown table {db}.{name}: {did_you_mean(f'{db}.{name}', known)}")
    try:
        return qualify(tree, schema=schema, dialect=ADQLDialect, validate_qualify_columns=True,
                       quote_identifiers=True, expand_stars=True, identify=True)
    except OptimizeError as exc:
        raise ADQLError(_column_message(str(exc), tree, model)) from None


#: (model id, query shape) -> (model, the resolved tree of a query of that shape); see :func:`_resolved`
_SHAPES: OrderedDict = OrderedDict()
_SHAPES_LOCK = threading.Lock()
SHAPES_KEPT = 256
_VALUE_PLACE = "lcpanel_value_place"
#: the tokens left out of a query's shape: a number's or a text's value
_VALUE_TOKENS = frozenset({TokenType.NUMBER, TokenType.STRING})


def _resolved(query: str, model: TapModel) -> exp.Expression:
    """The parsed, checked and resolved tree of ``query`` (:func:`parse`, :func:`_resolve`).

    TAP clients send one query with new values in it: a cone at each of their targets, an
    object looked up by its id. Parsing and resolving (sqlglot's ``qualify``) take over half
    of a translation and do not depend on the values, so the resolved tree of a query
    *shape* (its tokens, number and text values left out) is kept per model, each value's
    literal in it marked with the value's place in the query; a query of a known shape
    gets a copy with its own values put in, and the node checks run again (LOG's base is a
    number). What else values decide (the cone's rows, TOP, an id's rows) is done after,
    per query. A shape is not kept when one of its values is no literal of the resolved
    tree (resolving used it: ``GROUP BY 2``)."""
    from ..deadline import check

    toks = _checked_tokens(query)
    values = [t.text for t in toks if t.token_type in _VALUE_TOKENS]
    key = (id(model), tuple(t.token_type if t.token_type in _VALUE_TOKENS else (t.token_type, t.text) for t in toks))
    with _SHAPES_LOCK:
        kept = _SHAPES.get(key)
        if kept is not None:
            _SHAPES.move_to_end(key)
    if kept is not None and kept[0] is model:
        tree = kept[1].copy()
        for node in tree.find_all(exp.Literal):
            place = node.meta.get(_VALUE_PLACE)
            if place is not None:
                node.set("this", values[place])
        _check_nodes(tree)
        return tree
    tree = _parse_checked(query, toks)
    check("parsing the query")
    places = {(t.start, t.token_type is TokenType.STRING): i
              for i, t in enumerate(t for t in toks if t.token_type in _VALUE_TOKENS)}
    for node in tree.find_all(exp.Literal):
        place = places.get((node.meta.get("start"), node.is_string))
        if place is not None:
            node.meta[_VALUE_PLACE] = place
    tree = _resolve(tree, model)
    # a value resolving used up (GROUP BY 2 became the second column) leaves no literal
    if {n.meta.get(_VALUE_PLACE) for n in tree.find_all(exp.Literal)} >= set(range(len(values))):
        with _SHAPES_LOCK:
            _SHAPES[key] = (model, tree.copy())
            while len(_SHAPES) > SHAPES_KEPT:
                _SHAPES.popitem(last=False)
    return tree


def _ctes_in_scope(node: exp.Expression) -> set[str]:
    """The WITH names visible where ``node`` stands: those of the WITH clauses of the
    queries that enclose it (a WITH inside a subquery names nothing outside it)."""
    names: set[str] = set()
    while node is not None:
        with_ = node.args.get("with_", node.args.get("with")) if isinstance(node, exp.Query) else None
        if with_ is not None:
            names.update(c.alias_or_name.lower() for c in with_.expressions)
        node = node.parent
    return names


def _column_message(message: str, tree, model: TapModel) -> str:
    m = re.search(r"Column '([^']+)' could not be resolved", message)
    if not m:
        return f"the query cannot be resolved: {message.splitlines()[0][:300]}"
    name = m.group(1)
    columns = {c.name for t in tree.find_all(exp.Table)
               for tab in [model.table(t.text("db"), t.name)] if tab for c in tab.columns}
    hint = did_you_mean(name, columns) if columns else ""
    return (f"column {name!r} is unknown in the tables of this query, or ambiguous (qualify it with its table)"
            + (f": {hint}" if hint else ""))


# --- 5: sky rewrite -----------------------------------------------------------------------


def _fname(node) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).upper()
    if isinstance(node, exp.Contains):
        return "CONTAINS"
    return ""


def _geometry_args(node) -> list:
    if isinstance(node, exp.Contains):
        return [node.this, node.expression]
    return list(node.expressions)


def _coordsys(node) -> None:
    if isinstance(node, exp.Literal) and node.is_string:
        system = node.this.strip().upper()
        if system and not system.startswith("ICRS"):
            raise ADQLError(f"coordinate system {node.this!r} is not supported: positions here are ICRS")
        return
    raise ADQLError("the coordinate system of POINT and CIRCLE must be a string such as 'ICRS'")


def _point(node) -> tuple | None:
    """(ra, dec) expressions of POINT([cs,] ra, dec), else None."""
    if _fname(node) != "POINT":
        return None
    args = list(node.expressions)
    if len(args) == 3:
        _coordsys(args[0])
        args = args[1:]
    if len(args) != 2:
        raise ADQLError("POINT takes a coordinate system, RA and Dec: POINT('ICRS', ra, dec)")
    return args[0], args[1]


def _circle(node) -> tuple | None:
    """(ra, dec, radius) expressions of CIRCLE([cs,] ra, dec, r) or CIRCLE([cs,] POINT, r)."""
    if _fname(node) != "CIRCLE":
        return None
    args = list(node.expressions)
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        _coordsys(args[0])
        args = args[1:]
    if len(args) == 2 and _point(args[0]):
        return (*_point(args[0]), args[1])
    if len(args) != 3:
        raise ADQLError("CIRCLE takes a coordinate system, RA, Dec and radius: CIRCLE('ICRS', ra, dec, r)")
    return args[0], args[1], args[2]


def _const(node) -> float | None:
    """The value of a constant numeric expression, else None."""
    if isinstance(node, exp.Paren):
        return _const(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(node.this)
        except ValueError:
            return None
    if isinstance(node, exp.Neg):
        v = _const(node.this)
        return -v if v is not None else None
    if isinstance(node, exp.Pi):
        return math.pi
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        a, b = _const(node.this), _const(node.expression)
        if a is None or b is None:
            return None
        if isinstance(node, exp.Add):
            return a + b
        if isinstance(node, exp.Sub):
            return a - b
        if isinstance(node, exp.Mul):
            return a * b
        return a / b if b else None
    return None


def _distance_args(node) -> tuple | None:
    """(p1_ra, p1_dec, p2_ra, p2_dec) of DISTANCE(POINT, POINT) or DISTANCE(a, b, c, d)."""
    if _fname(node) != "DISTANCE":
        return None
    args = list(node.expressions)
    if len(args) == 2:
        p, q = _point(args[0]), _point(args[1])
        if p is None or q is None:
            raise ADQLError("DISTANCE takes two POINTs, or RA and Dec of two positions")
        return (*p, *q)
    if len(args) == 4:
        return tuple(args)
    raise ADQLError("DISTANCE takes two POINTs, or RA and Dec of two positions")


def _conjuncts(node) -> list:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return _conjuncts(node.this)
    return [node]


@dataclass
class _Cone:
    alias: str
    table: TapTable
    ra: float
    dec: float
    radius: float
    strict: bool = False


def _position_alias(ra_node, dec_node, sources: dict) -> tuple[str, TapTable] | None:
    if not (isinstance(ra_node, exp.Column) and isinstance(dec_node, exp.Column)):
        return None
    alias = ra_node.table
    if alias != dec_node.table or alias not in sources:
        return None
    table = sources[alias]
    if table.collection_id is None or ra_node.name != "ra" or dec_node.name != "decl":
        return None
    return alias, table


def _point_in_circle(cond: exp.EQ) -> tuple | None:
    """(point, circle) argument nodes of ``1 = CONTAINS(POINT, CIRCLE)`` (or INTERSECTS,
    either way round), else None."""
    one, call = (cond.this, cond.expression) if _const(cond.this) == 1 else (cond.expression, cond.this)
    if _const(one) != 1 or _fname(call) not in ("CONTAINS", "INTERSECTS"):
        return None
    a, b = _geometry_args(call)
    if _fname(call) == "INTERSECTS" and _point(b) is not None:
        a, b = b, a
    point, circle = _point(a), _circle(b)
    if point is None or circle is None:
        return None
    return point, circle


def _cone_of(cond, sources: dict) -> _Cone | None:
    """A cone on a collection table's position with a constant centre and radius."""
    if isinstance(cond, exp.EQ):
        found = _point_in_circle(cond)
        if found is None:
            return None
        point, circle = found
        centre = [_const(v) for v in circle]
        found = _position_alias(*point, sources)
        if found is None or None in centre:
            return None
        return _Cone(found[0], found[1], *centre)
    if isinstance(cond, (exp.LT, exp.LTE, exp.GT, exp.GTE)):
        left, right = cond.this, cond.expression
        if isinstance(cond, (exp.GT, exp.GTE)):
            left, right = right, left  # r > DISTANCE(...)
        args = _distance_args(left)
        radius = _const(right)
        if args is None or radius is None:
            return None
        for (pr, pd), (cr, cd) in (((args[0], args[1]), (args[2], args[3])),
                                   ((args[2], args[3]), (args[0], args[1]))):
            found = _position_alias(pr, pd, sources)
            centre = (_const(cr), _const(cd))
            if found and None not in centre:
                return _Cone(found[0], found[1], centre[0], centre[1], radius,
                             strict=isinstance(cond, (exp.LT, exp.GT)))
    return None


def _sources(select: exp.Select, model: TapModel) -> dict:
    """alias -> TapTable for the base tables in this SELECT's FROM and JOINs."""
    out = {}
    nodes = []
    if select.args.get("from_") is not None:
        nodes.append(select.args["from_"].this)
    nodes += [j.this for j in select.args.get("joins") or []]
    for node in nodes:
        if isinstance(node, exp.Table) and node.text("db"):
            table = model.table(node.text("db"), node.name)
            if table is not None:
                out[node.alias_or_name] = table
    return out


def _rewrite_regions(tree: exp.Expression, model: TapModel, cone_rows, params: dict, notes: list,
                     match_rows=None, id_rows=None) -> None:
    for select in list(tree.find_all(exp.Select)):
        sources = _sources(select, model)
        if not sources:
            continue
        where = select.args.get("where")
        if where is not None:
            new = _rewrite_conditions(where.this, sources, cone_rows, params, notes, match_rows, id_rows)
            if new is not None:
                where.set("this", new)
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None and match_rows is not None:
                new = _rewrite_conditions(on, sources, None, params, notes, match_rows)
                if new is not None:
                    join.set("on", new)


def _rewrite_conditions(node, sources, cone_rows, params: dict, notes: list, match_rows, id_rows=None):
    """The conjunction with index-backed cones, alias id equalities and upload joins, or
    None when nothing changed."""
    parts = _conjuncts(node)
    changed = False
    for i, cond in enumerate(parts):
        cone = _cone_of(cond, sources) if cone_rows is not None else None
        if cone is not None:
            _check_cone(cone)
            rows = cone_rows(cone.table, cone.ra, cone.dec, cone.radius, cone.strict)
            if rows is None or len(rows) > MAX_INDEX_ROWS:
                notes.append("scan")
                continue
            parts[i] = _row_ids_in(cone.alias, rows, params)
            notes.append("index")
            changed = True
            continue
        equality = _id_equality_of(cond, sources) if id_rows is not None else None
        if equality is not None:
            alias, table, column, values = equality
            rows = id_rows(table, column, values)
            if rows is not None and len(rows) <= MAX_INDEX_ROWS:
                # the comparison stays: the id index finds a superset (ids as people type them)
                parts[i] = exp.and_(_row_ids_in(alias, rows, params), cond, copy=False)
                notes.append("index")
                changed = True
            continue
        join = _upload_join_of(cond, sources) if match_rows is not None else None
        if join is not None:
            coll_alias, coll_table, up_alias, up_table, ra_col, dec_col, radius = join
            if not (0 <= radius <= 10):
                raise ADQLError("a positional join's radius must be between 0 and 10 degrees")
            name = f"lcp_pairs_{len(params)}"
            params[name] = json.dumps(match_rows(coll_table, up_table, ra_col, dec_col, radius))
            lookup = sqlglot.parse_one(f"SELECT value FROM json_each(:{name}, '$[' || (x.rowid - 1) || ']')",
                                       read="sqlite")
            for col in lookup.find_all(exp.Column):
                if col.table == "x":
                    col.set("table", exp.to_identifier(up_alias, quoted=True))
            parts[i] = exp.and_(exp.In(this=exp.column("row_id", table=coll_alias, quoted=True),
                                       query=exp.Subquery(this=lookup)), cond)
            notes.append("index")
            changed = True
    if not changed:
        return None
    return exp.and_(*parts, copy=False) if len(parts) > 1 else parts[0]


def _row_ids_in(alias: str, rows, params: dict) -> exp.Expression:
    """``alias.row_id IN (<rows>)``, the rows passed as JSON parameters added to ``params``."""
    names = []
    for start in range(0, max(len(rows), 1), ROWS_PER_PARAM):
        name = f"lcp_rows_{len(params)}"
        params[name] = json.dumps([int(r) for r in rows[start:start + ROWS_PER_PARAM]], separators=(",", ":"))
        names.append(name)
    return exp.In(this=exp.column("row_id", table=alias, quoted=True), query=exp.Subquery(this=_json_each_union(names)))


def _id_equality_of(cond, sources: dict):
    """(alias, table, column, text values) of ``column = 'text'`` (either way round) or
    ``column IN ('text', ...)`` on a collection table's column, else None."""
    if isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.EQ):
        column, value = cond.this, cond.expression
        if not isinstance(column, exp.Column):
            column, value = value, column
        values = [value]
    elif isinstance(cond, exp.In) and not cond.args.get("query") and not cond.args.get("field"):
        column, values = cond.this, list(cond.expressions)
    else:
        return None
    if not (isinstance(column, exp.Column) and column.table in sources and values
            and all(isinstance(v, exp.Literal) and v.is_string for v in values)):
        return None
    table = sources[column.table]
    if table.collection_id is None:
        return None
    return column.table, table, column.name, [v.this for v in values]


def _json_each_union(names: list[str]) -> exp.Expression:
    """``SELECT value FROM json_each(:name) UNION ALL ...`` over ``names``, as the tree
    sqlglot parses it into (built here: parsing the text took 0.5 ms per cone)."""
    def select(name: str) -> exp.Select:
        call = exp.Anonymous(this="json_each", expressions=[exp.Placeholder(this=name)])
        return exp.Select(expressions=[exp.column("value")], from_=exp.From(this=exp.Table(this=call)))

    tree: exp.Expression = select(names[0])
    for name in names[1:]:
        tree = exp.Union(this=tree, expression=select(name), distinct=False)
    return tree


def _upload_join_of(cond, sources: dict):
    """(collection alias, its table, upload alias, upload table, upload ra column, upload dec
    column, radius) of ``1 = CONTAINS(POINT(<collection ra, decl>), CIRCLE(<upload columns>, r))``
    (either way round, or as DISTANCE(...) < r): a join the sky index can answer."""
    pairs = []
    if isinstance(cond, exp.EQ):
        found = _point_in_circle(cond)
        if found is None:
            return None
        point, circle = found
        radius = _const(circle[2])
        pairs = [(point, circle[:2])]
    elif isinstance(cond, (exp.LT, exp.LTE, exp.GT, exp.GTE)):
        left, right = cond.this, cond.expression
        if isinstance(cond, (exp.GT, exp.GTE)):
            left, right = right, left
        args = _distance_args(left)
        radius = _const(right)
        if args is None:
            return None
        pairs = [((args[0], args[1]), (args[2], args[3]))]
    else:
        return None
    if radius is None:
        return None
    for p, q in pairs:
        for coll_pos, other_pos in ((p, q), (q, p)):
            found = _position_alias(*coll_pos, sources)
            ra_node, dec_node = other_pos
            if found is None or not (isinstance(ra_node, exp.Column) and isinstance(dec_node, exp.Column)):
                continue
            alias = ra_node.table
            table = sources.get(alias)
            if alias != dec_node.table or table is None or table.schema.upper() != "TAP_UPLOAD" or not table.path:
                continue
            return found[0], found[1], alias, table, ra_node.name, dec_node.name, radius
    return None


def _check_cone(cone: _Cone) -> None:
    if not (-90.0 <= cone.dec <= 90.0):
        raise ADQLError(f"the Dec of a region centre must be between -90 and 90 degrees, not {cone.dec:g}")
    if not math.isfinite(cone.ra):
        raise ADQLError("the RA of a region centre must be a finite number")
    if not math.isfinite(cone.radius):
        raise ADQLError("a radius must be a finite number of degrees")


# --- 6: translate -------------------------------------------------------------------------


def _anon(name: str, *args) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _geometry_sql(node) -> exp.Expression:
    """The SQLite expression of one ADQL geometry call that is not a sky-index cone."""
    name = _fname(node)
    if name in ("CONTAINS", "INTERSECTS"):
        a, b = _geometry_args(node)
        if name == "INTERSECTS" and _point(b) is not None:
            a, b = b, a
        if _circle(a) and _circle(b):
            return _anon("lcp_intersects_circles", *_circle(a), *_circle(b))
        point, circle = _point(a), _circle(b)
        if point is None or circle is None:
            raise ADQLError(f"{name} supports a POINT and a CIRCLE (or two CIRCLEs for INTERSECTS)")
        return _anon("lcp_contains_circle", *point, *circle)
    if name == "DISTANCE":
        return _anon("lcp_distance", *_distance_args(node))
    if name in ("COORD1", "COORD2", "COORDSYS"):
        if len(node.expressions) != 1 or _point(node.expressions[0]) is None:
            raise ADQLError(f"{name} takes one POINT")
        point = node.expressions[0]
        if name == "COORDSYS":
            system = point.expressions[0] if len(point.expressions) == 3 else exp.Literal.string("")
            return system.copy()
        return _point(point)[0 if name == "COORD1" else 1]
    raise ADQLError(f"{name} values cannot be returned or compared: use them inside CONTAINS, INTERSECTS, "
                    "DISTANCE, COORD1, COORD2 or COORDSYS")


def _translate_node(node: exp.Expression) -> exp.Expression:
    if isinstance(node, (exp.Anonymous, exp.Contains)) and _fname(node) in GEOMETRY_FUNCTIONS:
        return _geometry_sql(node)
    for cls, sqlname in _SQLITE_FUNCTIONS.items():
        if type(node) is cls:
            return _anon(sqlname, *node.iter_expressions())
    if isinstance(node, exp.Log):
        if node.args.get("expression") is not None:
            return _anon("log10", node.expression)
        return _anon("ln", node.this)
    if isinstance(node, exp.Cot):
        return exp.Div(this=exp.Literal.number("1.0"), expression=_anon("tan", node.this))
    if isinstance(node, exp.Trunc):
        return _anon("lcp_truncate", node.this, node.args.get("decimals") or exp.Literal.number(0))
    if isinstance(node, exp.Rand):
        return _anon("lcp_rand", *([node.this] if node.this is not None else []))
    if isinstance(node, exp.BitwiseXor):
        a, b = node.this, node.expression
        return exp.Paren(this=exp.Sub(this=exp.Paren(this=exp.BitwiseOr(this=a.copy(), expression=b.copy())),
                                      expression=exp.Paren(this=exp.BitwiseAnd(this=a, expression=b))))
    if isinstance(node, exp.DataType):
        return exp.DataType.build(_CAST_TYPES[node.this.name.upper()], dialect="sqlite")
    return node


def _translate_tables(tree: exp.Expression, model: TapModel) -> list[TapTable]:
    used: dict = {}
    for node in list(tree.find_all(exp.Table)):
        db = node.text("db")
        if not db:
            continue  # a WITH table
        table = model.table(db, node.name)
        used[table.key] = table
        alias = node.alias_or_name
        node.set("this", exp.to_identifier(table.sql_table, quoted=True))
        node.set("db", exp.to_identifier(table.db, quoted=True))
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return list(used.values())


# --- result metadata ----------------------------------------------------------------------


def _leftmost_select(node):
    while isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
        node = node.this
    if isinstance(node, exp.Subquery):
        return _leftmost_select(node.this)
    return node


def _output_fields(tree: exp.Expression, model: TapModel) -> list[VOField]:
    """One VOField per result column: a column's TAP metadata, or a type for expressions
    (completed from the values by :func:`lcpanel.core.vo.tap_query.infer_fields`)."""
    ctes = {c.alias_or_name: c.this for c in tree.find_all(exp.CTE)}
    select = _leftmost_select(tree)
    fields, seen = [], {}
    for proj in select.expressions:
        name = proj.alias_or_name or "col"
        f = _field_of(proj.unalias() if isinstance(proj, exp.Alias) else proj, select, model, ctes, 0)
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        out_name = name if count == 1 else f"{name}_{count}"
        fields.append((f or VOField(name=out_name, datatype="")).renamed(out_name))
    return fields


def _field_of(node, select, model: TapModel, ctes: dict, depth: int) -> VOField | None:
    if depth > 20:
        return None
    if isinstance(node, exp.Column):
        for source in [select.args.get("from_")] + list(select.args.get("joins") or []):
            if source is None:
                continue
            src = source.this
            if src.alias_or_name != node.table:
                continue
            if isinstance(src, exp.Table) and src.text("db"):
                table = model.table(src.text("db"), src.name)
                column = table.column(node.name) if table else None
                return column.vofield() if column else None
            inner = src.this if isinstance(src, exp.Subquery) else ctes.get(src.name)
            if inner is None:
                return None
            inner = _leftmost_select(inner)
            for proj in inner.expressions:
                if proj.alias_or_name == node.name:
                    return _field_of(proj.unalias() if isinstance(proj, exp.Alias) else proj, inner, model, ctes,
                                     depth + 1)
        return None
    if isinstance(node, exp.Count):
        return VOField(name="", datatype="long", ucd="meta.number")
    if _fname(node) == "DISTANCE":
        return VOField(name="", datatype="double", unit="deg", ucd="pos.angDistance")
    if _fname(node) in ("COORD1", "COORD2"):
        return VOField(name="", datatype="double", unit="deg")
    return None


# --- the whole pipeline ---------------------------------------------------------------------


def _objects_only(tree: exp.Expression, model: TapModel) -> tuple[str, list[VOField]]:
    """Make a query over one collection table return that table's row ids (the ``adql``
    search type selects objects); its WHERE, ORDER BY, TOP and OFFSET stay."""
    if not isinstance(tree, exp.Select):
        raise ADQLError("an adql search selects objects: send one SELECT (no UNION, INTERSECT or EXCEPT)")
    if tree.args.get("group") or tree.args.get("having") or tree.args.get("distinct") \
            or any(p.find(exp.AggFunc) for p in tree.expressions):
        raise ADQLError("an adql search selects objects: no GROUP BY, HAVING, DISTINCT or aggregates "
                        "(use /tap for those)")
    source = tree.args["from_"].this if tree.args.get("from_") else None
    table = model.table(source.text("db"), source.name) if isinstance(source, exp.Table) and source.text("db") \
        else None
    if table is None or table.collection_id is None:
        raise ADQLError("an adql search selects objects: the first table in FROM must be a collection, "
                        "e.g. FROM lcpanel.<collection>")
    for order in tree.find_all(exp.Ordered):
        for col in order.find_all(exp.Column):
            if not col.table:  # an output alias: sort by what it names
                for proj in tree.expressions:
                    if isinstance(proj, exp.Alias) and proj.alias == col.name:
                        col.replace(proj.this.copy())
    tree.set("expressions", [exp.column("row_id", table=source.alias_or_name, quoted=True)])
    return table.collection_id, [VOField(name="row_id", datatype="long")]


def translate(query: str, model: TapModel, cone_rows, *, objects_only: bool = False, match_rows=None,
              id_rows=None) -> Translation:
    """ADQL text to a :class:`Translation` for SQLite.

    ``cone_rows(table, ra, dec, radius_deg, strict)`` returns the row ids of a collection
    table within the cone (or None to cut row by row instead). With ``objects_only`` the
    query must read one collection table and returns its row ids.
    ``match_rows(collection table, upload table, ra column, dec column, radius_deg)`` gives,
    per upload row in rowid order, the collection row ids within the radius (positional
    joins with ``TAP_UPLOAD`` tables then use the sky index, not a row-by-row scan).
    ``id_rows(table, column, values)`` gives the row ids (a superset) of a collection
    table whose ``column`` may equal one of the text ``values``, or None when it cannot
    tell (``column = 'x'`` and ``column IN ('x', 'y')`` then use the id index: alias id
    columns have no index of their own).
    """
    try:
        return _translate(query, model, cone_rows, objects_only, match_rows, id_rows)
    except RecursionError:
        raise ADQLError("the query is nested too deeply to translate; simplify it") from None


def _translate(query: str, model: TapModel, cone_rows, objects_only: bool, match_rows=None,
               id_rows=None) -> Translation:
    from ..deadline import check

    tree = _resolved(query, model)
    check("resolving the query's tables and columns")
    collection_id = None
    if objects_only:
        collection_id, fields = _objects_only(tree, model)
    else:
        fields = _output_fields(tree, model)
    params: dict = {}
    notes: list[str] = []
    _rewrite_regions(tree, model, cone_rows, params, notes, match_rows, id_rows)
    check("looking up the query's sky regions")
    tree = tree.transform(_translate_node, copy=False)
    tables = _translate_tables(tree, model)
    sql = tree.sql(dialect="sqlite", copy=False)  # the tree is this translation's own, used no more
    return Translation(adql=query, sql=sql, params=params, tables=tables, fields=fields, regions=notes,
                       collection_id=collection_id)
