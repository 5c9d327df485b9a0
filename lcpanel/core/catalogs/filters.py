"""The column-filter language and sort specifications of searches.

A filter is a condition on catalog columns that a user types, as in lcc-server's column
search::

    sdssr < 12.5 AND (ndet >= 1000 OR objectid LIKE 'HAT-%') AND varperiod IS NOT NULL

:func:`parse_filter` turns it into a :class:`Filter`: an SQL boolean expression in which
every value is a ``?`` placeholder bound to ``Filter.params`` and every column name comes
from the caller's allow-list, double-quoted. User text is never pasted into SQL, and the
parser is a small tokenizer plus recursive descent (no ``eval``, no SQL parsing)::

    expr      := or
    or        := and (OR and)*
    and       := not (AND not)*
    not       := NOT not | '(' expr ')' | predicate
    predicate := col OP value                       OP: = == != <> < <= > >=
               | col [NOT] BETWEEN value AND value
               | col [NOT] LIKE 'pattern'           (text columns; % and _ wildcards,
                                                     case-insensitive for ASCII letters)
               | col IS [NOT] NULL
               | col [NOT] IN (value, value, ...)
    value     := number | 'text' | "text" | true | false

Keywords and column names are case-insensitive. Numbers are integers or decimals with an
optional sign and exponent; quotes inside text are doubled (``'O''Brien'``); ``true`` and
``false`` are 1 and 0.

Types: a numeric (REAL or INTEGER) column only takes numbers and true/false; text in
quotes there is an error. A TEXT column takes text, and also a bare number, which is
bound as the text exactly as typed (``ticid = 0012345`` compares with ``'0012345'``), so
identifiers made of digits need no quotes; comparisons on TEXT columns are by character
code (``'10' < '9'``). ``true``/``false`` are not allowed with TEXT columns.

:func:`parse_sort` reads a sort specification (``"-sdssr, ndet"`` or a JSON list) and
:func:`sort_sql` renders it; NULLs sort last in both directions.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from ...errors import UserError
from ..suggest import did_you_mean

MAX_LENGTH = 2000
MAX_TERMS = 50
MAX_DEPTH = 32
MAX_SORT_KEYS = 8

NUMERIC_TYPES = ("REAL", "INTEGER")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]")
_OPERATORS = ("<=", ">=", "==", "!=", "<>", "=", "<", ">")
_SQL_OPERATOR = {"==": "=", "<>": "!="}
_KEYWORDS = {"and", "or", "not", "between", "like", "is", "null", "in", "true", "false"}
_INT64 = 2**63
_FORBIDDEN = {
    ";": "';' is not allowed: a filter is a single condition",
    "--": "'--' is not allowed: a filter cannot contain comments",
    "/*": "'/*' is not allowed: a filter cannot contain comments",
}


class FilterError(UserError):
    """A column filter that cannot be parsed or does not fit the collection's columns."""

    def __init__(self, message: str, *, position: int | None = None, field: str = "filter"):
        super().__init__(message, field=field)
        self.position = position


class SortError(UserError):
    """A sort specification naming unknown columns or directions."""

    def __init__(self, message: str):
        super().__init__(message, field="sort")


@dataclass(frozen=True)
class Filter:
    """A parsed filter: ``sql`` with ``?`` placeholders for ``params``.

    ``equalities``: (column, values) of each ``text column = value`` or ``IN (values)``
    that every passing row must meet (a top-level AND term, not under NOT or OR), for a
    catalog that can find such rows through an index the SQL does not name (the id index
    of :meth:`lcpanel.core.catalogs.catalog.Catalog.where_sql`)."""

    sql: str
    params: tuple
    columns: frozenset
    text: str
    equalities: tuple = ()


def conjunction(*filters: Filter | None) -> Filter | None:
    """The filters joined with AND (None ones skipped; None when all are)."""
    given = [f for f in filters if f is not None]
    if len(given) <= 1:
        return given[0] if given else None
    return Filter(sql=" AND ".join(f"({f.sql})" for f in given), params=tuple(p for f in given for p in f.params),
                  columns=frozenset().union(*(f.columns for f in given)),
                  text=" and ".join(f"({f.text})" for f in given),
                  equalities=tuple(e for f in given for e in f.equalities))


@dataclass(frozen=True)
class _Token:
    kind: str  # name, number, string, op, (, ), ",", end
    text: str
    pos: int

    def describe(self) -> str:
        return "the end of the filter" if self.kind == "end" else repr(self.text)


@dataclass(frozen=True)
class _Expr:
    sql: str
    text: str
    params: tuple
    #: (column, values) of the text equalities every passing row meets (Filter.equalities)
    equalities: tuple = ()


def parse_filter(text: str, columns: dict[str, str], *, max_length: int = MAX_LENGTH,
                 max_terms: int = MAX_TERMS) -> Filter:
    """Parse a user's column filter against ``columns`` (name -> REAL/INTEGER/TEXT).

    Raises :class:`FilterError` for anything that is not a valid filter.
    """
    columns = _check_columns(columns)
    if not isinstance(text, str):
        raise FilterError(f"the filter must be text, e.g. {_example(columns)}")
    if len(text) > max_length:
        raise FilterError(f"the filter is {len(text)} characters long; the limit is {max_length}")
    if not text.strip():
        raise FilterError(f"the filter is empty; write a condition, e.g. {_example(columns)}")
    bad = re.search(r"[\x00\ud800-\udfff]", text)
    if bad:
        raise _error(_unexpected(bad.group()), bad.start(), columns)
    tokens = _tokenize(text, columns)
    parser = _Parser(tokens, columns, max_terms)
    expr = parser.parse()
    return Filter(sql=expr.sql, params=expr.params, columns=frozenset(parser.used), text=expr.text,
                  equalities=expr.equalities)


def _check_columns(columns: dict[str, str]) -> dict[str, str]:
    bad = [name for name in columns if not IDENTIFIER.match(name)]
    if bad:
        raise ValueError(f"column names must be lowercase identifiers: {bad}")
    return {name: str(sqltype).upper() for name, sqltype in columns.items()}


def _example(columns: dict[str, str]) -> str:
    numeric = next((c for c, t in columns.items() if t in NUMERIC_TYPES and c not in ("ra", "decl")), None)
    textual = next((c for c, t in columns.items() if t not in NUMERIC_TYPES), None)
    parts = []
    if numeric:
        parts.append(f"{numeric} < 12.5")
    if textual:
        parts.append(f"{textual} LIKE 'HAT-%'")
    return " AND ".join(parts) or "sdssr < 12.5 AND objectid LIKE 'HAT-%'"


# -- tokenizer ------------------------------------------------------------------------


def _tokenize(text: str, columns: dict[str, str]) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        for bad, why in _FORBIDDEN.items():
            if text.startswith(bad, i):
                raise _error(why, i, columns)
        if ch in "'\"":
            token, i = _string(text, i, columns)
        elif (m := _NUMBER.match(text, i)) is not None:
            end = m.end()
            if end < n and _NUMBER_TAIL.match(text, end):
                word = re.match(r"[+-]?[A-Za-z0-9_.]+", text[i:]).group()
                raise _error(f"{word!r} is not a number", i, columns)
            token, i = _Token("number", m.group(), i), end
        elif (m := _NAME.match(text, i)) is not None:
            token, i = _Token("name", m.group(), i), m.end()
        elif ch in "(),":
            token, i = _Token(ch, ch, i), i + 1
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                raise _error(_unexpected(ch), i, columns)
            token, i = _Token("op", op, i), i + len(op)
        tokens.append(token)
    tokens.append(_Token("end", "", n))
    return tokens


def _string(text: str, start: int, columns: dict[str, str]) -> tuple[_Token, int]:
    """A quoted string starting at ``start``; the quote is escaped by doubling it."""
    quote = text[start]
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            raise _error(f"the text starting with {quote} is not closed; end it with another {quote}",
                         start, columns)
        if text.startswith(quote * 2, j):
            i = j + 2
            continue
        raw = text[start + 1:j].replace(quote * 2, quote)
        return _Token("string", raw, start), j + 1


def _unexpected(ch: str) -> str:
    if ch == "\x00":
        return "a NUL character is not allowed"
    if "\ud800" <= ch <= "\udfff":
        return "the filter is not valid text (it holds a lone surrogate character)"
    if ch.isascii():
        hint = {"!": "use != for 'not equal'", "~": "regular expressions are not supported; use LIKE",
                "*": "arithmetic is not supported", "/": "arithmetic is not supported",
                "|": "use OR", "&": "use AND", "-": "arithmetic is not supported",
                "+": "arithmetic is not supported", ".": "numbers start with a digit, e.g. 0.5",
                "[": "use IN (...) for lists", "`": "quote text with ' or \""}.get(ch)
        return f"{ch!r} is not an operator the filter language knows" + (f": {hint}" if hint else "")
    name = unicodedata.name(ch, "unnamed character")
    out = f"{ch!r} (U+{ord(ch):04X} {name}) is not allowed outside quotes"
    ascii_like = unicodedata.normalize("NFKC", ch)
    if ascii_like != ch and ascii_like.isascii():
        out += f"; it looks like {ascii_like!r}, type that instead"
    return out


def _error(message: str, position: int, columns: dict[str, str]) -> FilterError:
    return FilterError(f"{message} (at character {position + 1} of the filter); "
                       f"a valid filter looks like: {_example(columns)}", position=position)


# -- parser ---------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token], columns: dict[str, str], max_terms: int):
        self.tokens = tokens
        self.i = 0
        self.columns = columns
        self.max_terms = max_terms
        self.nterms = 0
        self.used: set[str] = set()

    def parse(self) -> _Expr:
        expr = self.or_(0)
        tok = self.peek()
        if tok.kind != "end":
            hint = ("a ')' has no matching '('" if tok.kind == ")"
                    else "join conditions with AND or OR")
            raise self.error(f"unexpected {tok.describe()} after a complete condition: {hint}", tok)
        return expr

    # token helpers

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok.kind == "name" and tok.text.lower() in words:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str, context: str) -> None:
        if not self.keyword(word):
            raise self.error(f"expected {word.upper()} {context} but found {self.peek().describe()}", self.peek())

    def error(self, message: str, tok: _Token) -> FilterError:
        return _error(message, tok.pos, self.columns)

    # grammar

    def or_(self, depth: int) -> _Expr:
        return self.joined("OR", self.and_, depth)

    def and_(self, depth: int) -> _Expr:
        return self.joined("AND", self.not_, depth)

    def joined(self, word: str, operand, depth: int) -> _Expr:
        items = [operand(depth)]
        while self.keyword(word.lower()):
            items.append(operand(depth))
        if len(items) == 1:
            return items[0]
        # a row passing an AND meets every term's equalities; one passing an OR, none for sure
        equalities = tuple(q for e in items for q in e.equalities) if word == "AND" else ()
        return _Expr(f" {word} ".join(e.sql for e in items), f" {word} ".join(e.text for e in items),
                     tuple(p for e in items for p in e.params), equalities)

    def not_(self, depth: int) -> _Expr:
        if depth > MAX_DEPTH:
            raise self.error(f"the filter nests parentheses or NOT more than {MAX_DEPTH} levels deep",
                             self.peek())
        tok = self.peek()
        if self.keyword("not"):
            inner = self.not_(depth + 1)
            return _Expr(f"NOT {inner.sql}", f"NOT {inner.text}", inner.params)
        if tok.kind == "(":
            self.take()
            inner = self.or_(depth + 1)
            if self.peek().kind != ")":
                raise self.error(f"the '(' at character {tok.pos + 1} is not closed; "
                                 f"expected ')' but found {self.peek().describe()}", self.peek())
            self.take()
            return _Expr(f"({inner.sql})", f"({inner.text})", inner.params, inner.equalities)
        return self.predicate()

    def predicate(self) -> _Expr:
        col = self.column()
        self.nterms += 1
        if self.nterms > self.max_terms:
            raise self.error(f"the filter has more than {self.max_terms} conditions", self.peek())
        sqltype = self.columns[col]
        q = qcol(col)
        tok = self.peek()
        if tok.kind == "op":
            self.take()
            op = _SQL_OPERATOR.get(tok.text, tok.text)
            value, vtext = self.value(col, sqltype)
            equal = ((col, (value,)),) if op == "=" and sqltype == "TEXT" else ()
            return _Expr(f"({q} {op} ?)", f"{col} {op} {vtext}", (value,), equal)
        if self.keyword("is"):
            negate = self.keyword("not")
            self.expect_keyword("null", f"after '{col} IS{' NOT' if negate else ''}'")
            word = "IS NOT NULL" if negate else "IS NULL"
            return _Expr(f"({q} {word})", f"{col} {word}", ())
        negate = "NOT " if self.keyword("not") else ""
        if self.keyword("between"):
            low, ltext = self.value(col, sqltype)
            self.expect_keyword("and", f"between the two values of '{col} {negate}BETWEEN'")
            high, htext = self.value(col, sqltype)
            return _Expr(f"({q} {negate}BETWEEN ? AND ?)", f"{col} {negate}BETWEEN {ltext} AND {htext}",
                         (low, high))
        if self.keyword("like"):
            return self.like(col, sqltype, negate)
        if self.keyword("in"):
            return self.in_list(col, sqltype, negate)
        after = f"'{col} NOT'" if negate else f"column '{col}'"
        raise self.error(
            f"expected an operator after {after} (one of = != < <= > >= BETWEEN LIKE IN IS NULL) "
            f"but found {self.peek().describe()}", self.peek())

    def column(self) -> str:
        tok = self.take()
        if tok.kind != "name":
            what = "nothing" if tok.kind == "end" else tok.describe()
            raise self.error(f"expected a column name but found {what}", tok)
        name = tok.text.lower()
        if self.peek().kind == "(":
            raise self.error(f"functions such as {tok.text}(...) are not supported; "
                             "compare a column with a value", tok)
        if name in _KEYWORDS and name not in self.columns:
            raise self.error(f"expected a column name but found the keyword {tok.text.upper()}", tok)
        if name not in self.columns:
            raise self.error(f"unknown column {tok.text!r}: {did_you_mean(name, self.columns)}", tok)
        self.used.add(name)
        return name

    def like(self, col: str, sqltype: str, negate: str) -> _Expr:
        if sqltype in NUMERIC_TYPES:
            raise self.error(f"LIKE only works on text columns and {col!r} holds numbers; "
                             f"compare it with < > BETWEEN instead, e.g. {col} BETWEEN 10 AND 12", self.peek())
        tok = self.take()
        if tok.kind != "string":
            raise self.error(f"LIKE needs a pattern in quotes, e.g. {col} LIKE 'HAT-%', "
                             f"but found {tok.describe()}", tok)
        return _Expr(f"({qcol(col)} {negate}LIKE ?)", f"{col} {negate}LIKE {_quote(tok.text)}", (tok.text,))

    def in_list(self, col: str, sqltype: str, negate: str) -> _Expr:
        tok = self.take()
        if tok.kind != "(":
            raise self.error(f"IN needs a list in parentheses, e.g. {col} IN (1, 2, 3), "
                             f"but found {tok.describe()}", tok)
        if self.peek().kind == ")":
            raise self.error(f"the IN list after {col!r} is empty; give at least one value", self.peek())
        values, texts = [], []
        while True:
            value, vtext = self.value(col, sqltype)
            values.append(value)
            texts.append(vtext)
            tok = self.take()
            if tok.kind == ")":
                break
            if tok.kind != ",":
                raise self.error(f"expected ',' or ')' in the IN list but found {tok.describe()}", tok)
        marks = ", ".join("?" * len(values))
        equal = ((col, tuple(values)),) if not negate and sqltype == "TEXT" else ()
        return _Expr(f"({qcol(col)} {negate}IN ({marks}))", f"{col} {negate}IN ({', '.join(texts)})",
                     tuple(values), equal)

    def value(self, col: str, sqltype: str) -> tuple[object, str]:
        """The next value, checked against and converted for the column's type."""
        tok = self.take()
        numeric = sqltype in NUMERIC_TYPES
        if tok.kind == "number":
            if numeric:
                return _number(tok.text), tok.text
            return tok.text, tok.text
        if tok.kind == "string":
            if numeric:
                raise self.error(f"column {col!r} holds numbers but {_quote(tok.text)} is text; "
                                 f"write the number without quotes, e.g. {col} > 12.5", tok)
            return tok.text, _quote(tok.text)
        word = tok.text.lower() if tok.kind == "name" else ""
        if word in ("true", "false"):
            if not numeric:
                raise self.error(f"true/false only go with numeric columns and {col!r} holds text; "
                                 f"to compare with the word, quote it: {col} = '{word}'", tok)
            return int(word == "true"), word
        if word == "null":
            raise self.error(f"compare with NULL using IS NULL or IS NOT NULL, e.g. {col} IS NULL", tok)
        if tok.kind == "name" and word not in _KEYWORDS:
            if word in self.columns:
                why = "comparing two columns is not supported"
            elif numeric:
                why = "numbers are written with digits"
            else:
                why = "text must be in quotes"
            example = f"{col} > 12.5" if numeric else f"{col} = {_quote(tok.text)}"
            raise self.error(f"expected a value for {col!r} but found {tok.text!r}: {why}, e.g. {example}", tok)
        what = "nothing" if tok.kind == "end" else tok.describe()
        raise self.error(f"expected a value for column {col!r} but found {what}", tok)


def qcol(name: str) -> str:
    """A double-quoted column name (names are checked identifiers)."""
    return f'"{name}"'


def _number(text: str) -> int | float:
    if re.fullmatch(r"[+-]?[0-9]+", text):
        value = int(text)
        if -_INT64 <= value < _INT64:
            return value
    return float(text)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- sorting --------------------------------------------------------------------------


def parse_sort(spec: str | list | tuple | None, columns, *, extra: tuple[str, ...] = (),
               max_keys: int = MAX_SORT_KEYS) -> list[tuple[str, str]]:
    """Read a sort specification into ``[(column, "ASC" | "DESC"), ...]``.

    Accepts ``"sdssr"``, ``"-sdssr"`` (descending), ``"sdssr desc, ndet asc"``, a JSON
    list text ``'["sdssr", "-ndet"]'`` or a Python list of such items. Names must be in
    ``columns`` (any collection of names) or ``extra`` (computed names such as
    ``dist_arcsec``). None or an empty value means no sort.
    """
    allowed = {str(c) for c in columns} | set(extra)
    items = _sort_items(spec)
    if len(items) > max_keys:
        raise SortError(f"the sort has {len(items)} keys; the limit is {max_keys}")
    out: list[tuple[str, str]] = []
    for item in items:
        name, direction = _sort_item(item, allowed)
        if any(name == seen for seen, _ in out):
            raise SortError(f"the sort names {name!r} twice; name each column once, e.g. -sdssr, ndet")
        out.append((name, direction))
    return out


def _sort_items(spec) -> list:
    if spec is None:
        return []
    if isinstance(spec, str):
        if len(spec) > MAX_LENGTH:
            raise SortError(f"the sort is {len(spec)} characters long; the limit is {MAX_LENGTH}")
        text = spec.strip()
        if text.startswith("["):
            try:
                spec = json.loads(text)
            except ValueError:
                raise SortError('the sort looks like a JSON list but is not valid JSON; '
                                'write e.g. ["sdssr", "-ndet"]') from None
        else:
            return [part for part in text.split(",") if part.strip()] if text else []
    if not isinstance(spec, (list, tuple)) or not all(isinstance(x, str) for x in spec):
        raise SortError('the sort must be text like "-sdssr, ndet" or a list of names like ["sdssr", "-ndet"]')
    return [x for x in spec if x.strip()]


def _sort_item(item: str, allowed: set[str]) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([+-]?)\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+([A-Za-z]+))?\s*", item)
    if not m:
        raise SortError(f"cannot read the sort key {item.strip()!r}; write a column name, "
                        f"optionally with a leading '-' or a trailing asc/desc, e.g. -sdssr or sdssr desc")
    sign, name, word = m.groups()
    name = name.lower()
    if name not in allowed:
        raise SortError(f"cannot sort by unknown column {name!r}: {did_you_mean(name, allowed)}")
    word = (word or "").upper()
    if word not in ("", "ASC", "DESC"):
        raise SortError(f"the sort direction {m.group(3)!r} for {name!r} is not asc or desc")
    if sign and word:
        raise SortError(f"give the direction of {name!r} once: either -{name} or {name} desc")
    if not IDENTIFIER.match(name):
        raise SortError(f"cannot sort by {name!r}")
    return name, "DESC" if sign == "-" or word == "DESC" else "ASC"


def sort_sql(sort: list[tuple[str, str]], *, by_index: bool = True) -> str:
    """The ORDER BY terms of a parsed sort (without the words ORDER BY), NULLs last.

    Returns "" for no sort. Callers append a tiebreaker such as ``row_id`` when they need
    a stable order. ``by_index=False`` writes each column as ``+column`` (the same value
    and collation), which SQLite does not read from an index: for a few rows already
    chosen, sorted after they are read instead of walking a column's whole index in order.
    """
    terms = []
    for name, direction in sort:
        if not IDENTIFIER.match(name) or direction not in ("ASC", "DESC"):
            raise ValueError(f"not a parsed sort key: {(name, direction)!r}")
        terms.append(f"{'' if by_index else '+'}{qcol(name)} {direction} NULLS LAST")
    return ", ".join(terms)
