"""Full-text search over a catalog's FTS5 table (``object_fts``), safe and with bounded cost.

:func:`fts_query` turns what a user typed into an FTS5 query:

- plain mode (the default) needs no FTS5 knowledge: every whitespace-separated word and
  every "quoted phrase" becomes one FTS5 string (datasette's ``escape_fts`` idea), and all
  of them must match (implicit AND). FTS5 syntax characters (``* ^ : ( ) + -`` and the
  words AND/OR/NOT/NEAR) are searched for literally, so plain mode never gives a syntax
  error. Identifiers such as ``LCP-000123`` or ``J19200000+4500000`` are single tokens
  because the catalog's tokenizer keeps ``- + _`` inside tokens. Prefix search needs raw
  mode.
- raw mode passes FTS5 syntax through (AND, OR, NOT, NEAR(...), parentheses, ``word*``,
  "phrases", ``^``), after checking it against an empty in-memory FTS5 table so that a
  syntax error becomes a :class:`FTSQueryError` naming the problem. Column filters
  (``tags: lyrae``, ``{objectid tags}: x``) are allowed only for the column names the
  caller passes in ``columns``; with no ``columns`` any column filter is refused.

:func:`fts_search` runs a query with bounded cost. It first counts matches up to
``rank_cap + 1`` (a LIMIT inside the count, so a very common word costs at most that many
rows). At most ``rank_cap`` matches are ranked by bm25 (``ORDER BY rank``) and the count is
exact. Beyond it the first ``limit`` matches are returned in catalog (row id) order, not
ranked; the result then has ``nmatched=None``, ``nmatched_at_least=rank_cap + 1`` and a
``note`` saying so.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from contextlib import closing
from dataclasses import dataclass

from ...errors import UserError
from ..suggest import did_you_mean
from .filters import IDENTIFIER, Filter

#: the tokenizer of object_fts (its DDL, ftsapart.fts_ddl, imports it from here)
FTS_TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '-+_'"
TOKEN_CHARS = "-+_"
MAX_LENGTH = 500
RANK_CAP = 10_000
RAW_EXAMPLE = '"RR Lyrae" OR eclipsing NOT "LCP-0001"*'
PLAIN_EXAMPLE = 'RR Lyrae "eclipsing binary" LCP-000123'

_WORD_OR_PHRASE = re.compile(r'"([^"]*)"?|([^\s"]+)')
_FTS_ERRORS = ("fts5:", "no such column", "unknown special query", "unterminated string")


class FTSQueryError(UserError):
    """A full-text query that is empty, too long or not valid FTS5 syntax."""

    def __init__(self, message: str):
        super().__init__(message, field="fts")


@dataclass(frozen=True)
class FTSResult:
    """Matching row ids, best first when ``ranked``, else in row id order.

    ``ranks`` are the bm25 values (more negative is a better match) or None when not
    ranked. ``nmatched`` is the exact number of matches, or None when there are more than
    the cap; ``nmatched_at_least`` is then cap + 1 (and equals ``nmatched`` otherwise).
    """

    row_ids: list[int]
    ranks: list[float] | None
    nmatched: int | None
    nmatched_at_least: int
    ranked: bool
    note: str | None = None


def fts_query(text: str, raw: bool = False, max_length: int = MAX_LENGTH, *,
              columns: tuple[str, ...] | list[str] = ()) -> str:
    """The FTS5 query for what the user typed (see the module docstring for the modes).

    ``columns`` are the FTS column names raw mode may filter on. Raises
    :class:`FTSQueryError`.
    """
    text = _clean(text, max_length)
    return _raw_query(text, columns) if raw else _plain_query(text)


def _clean(text: str, max_length: int) -> str:
    if not isinstance(text, str):
        raise FTSQueryError(f"the full-text query must be text, e.g. {PLAIN_EXAMPLE}")
    if len(text) > max_length:
        raise FTSQueryError(f"the full-text query is {len(text)} characters long; the limit is {max_length}")
    if re.search("[\ud800-\udfff]", text):
        raise FTSQueryError("the full-text query is not valid text (it holds a lone surrogate character)")
    # control characters (NUL included) act as spaces
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


def _plain_query(text: str) -> str:
    terms = []
    for m in _WORD_OR_PHRASE.finditer(text):
        term = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if _has_token(term):
            terms.append('"' + term.replace('"', '""') + '"')
    if not terms:
        what = "is empty" if not text else "has no words to search for (only punctuation)"
        raise FTSQueryError(f"the full-text query {what}; type words or \"quoted phrases\", "
                            f"e.g. {PLAIN_EXAMPLE}")
    return " ".join(terms)


def _has_token(term: str) -> bool:
    """Whether the unicode61 tokenizer finds a token in ``term`` (letters, digits,
    private-use characters and the extra token characters)."""
    return any(ch in TOKEN_CHARS or unicodedata.category(ch) == "Co" or unicodedata.category(ch)[0] in "LN"
               for ch in term)


def _raw_query(text: str, columns) -> str:
    if not text:
        raise FTSQueryError(f"the full-text query is empty; e.g. {RAW_EXAMPLE}")
    columns = [c.lower() for c in columns]
    bad = [c for c in columns if not IDENTIFIER.match(c)]
    if bad:
        raise ValueError(f"FTS column names must be lowercase identifiers: {bad}")
    if not columns and ":" in _outside_strings(text):
        raise FTSQueryError("column filters such as 'tags:' are not available in this full-text search; "
                            f"put text containing ':' in double quotes, e.g. {RAW_EXAMPLE}")
    _validate(text, columns)
    return text


def _outside_strings(text: str) -> str:
    """``text`` without its double-quoted FTS5 strings."""
    return re.sub(r'"(?:[^"]|"")*"?', " ", text)


def _validate(query: str, columns: list[str]) -> None:
    """Run ``query`` against an empty FTS5 table with the same tokenizer and columns."""
    names = ", ".join(f'"{c}"' for c in columns) or "lcpanel_text"
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(f"CREATE VIRTUAL TABLE v USING fts5({names}, tokenize=\"{FTS_TOKENIZER}\")")
        try:
            conn.execute("SELECT rowid FROM v WHERE v MATCH ?", (query,)).fetchall()
        except sqlite3.OperationalError as exc:
            raise _syntax_error(str(exc), columns) from None


def _syntax_error(message: str, columns: list[str]) -> FTSQueryError:
    quote_hint = ("put words containing '-', '+', ':' or '.' in double quotes, "
                  f"e.g. {RAW_EXAMPLE}")
    if message.startswith("no such column:"):
        name = message.split(":", 1)[1].strip()
        known = f"; columns you can filter on: {did_you_mean(name.lower(), columns)}" if columns else ""
        return FTSQueryError(f"in the full-text query, {name!r} is read as a column name{known}; "
                             f"to search for it as text, {quote_hint}")
    if message.startswith("unterminated string"):
        return FTSQueryError('the full-text query has a " that is not closed; '
                             f'end the phrase with another ", e.g. {RAW_EXAMPLE}')
    if message.startswith("unknown special query"):
        return FTSQueryError(f"the full-text query cannot start with '*'; e.g. {RAW_EXAMPLE}")
    detail = message.removeprefix("fts5:").strip()
    return FTSQueryError(f"the full-text query is not valid FTS5 syntax ({detail}): check AND/OR/NOT "
                         f"have words on both sides and parentheses are balanced, and {quote_hint}")


def fts_search(conn, query: str, *, limit: int, rank_cap: int = RANK_CAP, table: str = "object_fts",
               where: Filter | None = None, content_table: str = "object_catalog",
               content_rowid: str = "row_id") -> FTSResult:
    """Rows of ``table`` matching the FTS5 ``query`` (from :func:`fts_query`), bounded.

    ``conn`` is a :class:`sqlite3.Connection` or a
    :class:`lcpanel.core.catalogs.sqlsafe.SafeConnection`. ``where`` restricts matches to rows of
    ``content_table`` (joined on ``content_rowid``) passing a column filter; counting and
    ranking apply to the combined condition.
    """
    if limit < 0 or rank_cap < 0:
        raise ValueError("limit and rank_cap must not be negative")
    for name in (table, content_table, content_rowid):
        if not IDENTIFIER.match(name):
            raise ValueError(f"not an identifier: {name!r}")
    match = f'FROM "{table}" WHERE "{table}" MATCH ?'
    params: tuple = (query,)
    if where is not None:
        match += (f' AND EXISTS (SELECT 1 FROM "{content_table}" WHERE "{content_table}"."{content_rowid}" '
                  f'= "{table}".rowid AND ({where.sql}))')
        params += where.params
    count = _rows(conn, f"SELECT count(*) FROM (SELECT rowid {match} LIMIT ?)", params + (rank_cap + 1,))[0][0]
    if count > rank_cap:
        rows = _rows(conn, f"SELECT rowid {match} ORDER BY rowid LIMIT ?", params + (limit,))
        note = (f"more than {rank_cap:,} objects match, so results are not ranked by relevance: these are "
                f"the first {len(rows):,} in catalog order; add words or a column filter to narrow the search")
        return FTSResult([r[0] for r in rows], None, None, rank_cap + 1, False, note)
    rows = _rows(conn, f"SELECT rowid, rank {match} ORDER BY rank, rowid LIMIT ?", params + (limit,))
    return FTSResult([r[0] for r in rows], [r[1] for r in rows], count, count, True)


def _rows(conn, sql: str, params: tuple) -> list[tuple]:
    if not isinstance(conn, sqlite3.Connection):
        return conn.execute(sql, params).rows
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if str(exc).startswith(_FTS_ERRORS):
            raise _syntax_error(str(exc), []) from None
        raise
