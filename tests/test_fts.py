"""Full-text queries: plain and raw modes against an independent Python token search,
escaping of FTS5 syntax in plain mode, raw-mode errors, and the common-word cap."""

from __future__ import annotations

import random
import re
import sqlite3
import unicodedata
from contextlib import closing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lcpanel.core.catalogs import fts
from lcpanel.core.catalogs.filters import parse_filter
from lcpanel.core.catalogs.fts import FTSQueryError, fts_query, fts_search
from lcpanel.core.catalogs.sqlsafe import connect_readonly
from lcpanel.errors import UserError

FTS_COLUMNS = ("objectid", "designation", "tags", "comment")
TAGS = ["RR Lyrae", "eclipsing binary", "delta Scuti", "RR Lyrae; Blazhko", "", None]
COMMENTS = ["period=0.5d; check!", "O'Brien's star", "Café naïve", "candidate (needs follow-up)",
            "see LCP-000123", "NEAR the edge", "this OR that", "a:b c^d *star*", None]
WORDS = ["red", "blue", "giant", "dwarf", "flare", "transit", "spot", "binary"]
NROWS = 3000
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_rows(seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(NROWS):
        comment = rnd.choice(COMMENTS)
        if comment is None and rnd.random() < 0.7:
            comment = " ".join(rnd.sample(WORDS, rnd.randint(1, 3))) + rnd.choice(["", ".", "!", ", ok"])
        rows.append({
            "row_id": i,
            "objectid": f"LCP-{i:06d}",
            "designation": f"J{19200000 + i:08d}{'+' if i % 2 else '-'}{4500000 + i:07d}",
            "tags": rnd.choice(TAGS),
            "comment": comment,
            "sdssr": round(rnd.uniform(8, 20), 2),
        })
    return rows


ROWS = make_rows()


def build_catalog(path) -> None:
    """The shape catalog_build writes: external-content FTS5 over the text columns."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, designation TEXT, "
                 "tags TEXT, comment TEXT, sdssr REAL)")
    conn.executemany("INSERT INTO object_catalog VALUES (?,?,?,?,?,?)",
                     [(r["row_id"], r["objectid"], r["designation"], r["tags"], r["comment"], r["sdssr"])
                      for r in ROWS])
    conn.execute(f"CREATE VIRTUAL TABLE object_fts USING fts5({', '.join(FTS_COLUMNS)}, content='object_catalog', "
                 f"content_rowid='row_id', tokenize=\"{fts.FTS_TOKENIZER}\", prefix='3')")
    conn.execute("INSERT INTO object_fts(object_fts) VALUES ('rebuild')")
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("fts") / "catalog.sqlite"
    build_catalog(path)
    return path


@pytest.fixture(scope="module")
def conn(catalog):
    c = sqlite3.connect(catalog)
    yield c
    c.close()


# -- an independent model of the tokenizer and of plain-mode matching ------------------------

def tokens(text: str | None) -> list[str]:
    if not text:
        return []
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return re.findall(r"[0-9a-z_+\-]+", plain.lower())


def has_phrase(row: dict, phrase: list[str], columns=FTS_COLUMNS) -> bool:
    n = len(phrase)
    for col in columns:
        toks = tokens(row[col])
        if any(toks[i:i + n] == phrase for i in range(len(toks) - n + 1)):
            return True
    return False


def plain_phrases(text: str) -> list[list[str]]:
    """The token lists of the words and "quoted phrases" of ``text`` that have tokens."""
    phrases = [tokens(a or b) for a, b in re.findall(r'"([^"]*)"?|([^\s"]+)', text.replace("\x00", " "))]
    return [p for p in phrases if p]


def expected_plain(text: str, columns=FTS_COLUMNS) -> list[int]:
    """Rows matching every word and "quoted phrase" of ``text``."""
    phrases = plain_phrases(text)
    return [r["row_id"] for r in ROWS if all(has_phrase(r, p, columns) for p in phrases)]


def ids(rows_pred) -> list[int]:
    return [r["row_id"] for r in ROWS if rows_pred(r)]


def search_all(conn, query, **kw) -> list[int]:
    result = fts_search(conn, query, limit=NROWS, rank_cap=NROWS, **kw)
    assert result.ranked and result.nmatched == len(result.row_ids)
    return sorted(result.row_ids)


def test_a_built_catalog_uses_the_tokenizer_queries_assume(tmp_path):
    from lcpanel.core.catalogs.build import CATALOG_SQLITE, build_catalog

    build_catalog(tmp_path, {"objectid": np.array(["HAT-1", "HAT-2"]), "ra": np.array([1.0, 2.0]),
                             "decl": np.array([0.0, 1.0]), "objecttags": np.array(["RR Lyrae", "blend"])},
                  show_progress=False, kdtree=False)
    with closing(sqlite3.connect(tmp_path / CATALOG_SQLITE)) as conn:
        ddl, = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'object_fts'").fetchone()
    assert f'tokenize="{fts.FTS_TOKENIZER}"' in ddl


@pytest.mark.parametrize("text", [
    "lyrae", "RR Lyrae", '"RR Lyrae"', "lyrae rr", '"lyrae rr"', '"eclipsing binary"', "binary",
    "eclipsing binary red", "LCP-000123", "lcp-000123", "J19200005+4500005", "J19200006-4500006",
    "LYRAE", "LyRaE bLaZhKo", "cafe", "CAFÉ", "naive", "O'Brien", "brien", "period=0.5d", "0 5d",
    "follow-up", "candidate (needs", '"red giant"', 'red "blue giant" spot', "nothing-like-this",
])
def test_plain_mode_matches_python(conn, text):
    query = fts_query(text)
    assert search_all(conn, query) == expected_plain(text), query


def test_plain_mode_examples(conn):
    assert search_all(conn, fts_query("LCP-000123")) == sorted(
        {123} | {r["row_id"] for r in ROWS if r["comment"] == "see LCP-000123"})
    assert search_all(conn, fts_query("J19200005+4500005")) == [5]
    assert search_all(conn, fts_query("j19200005+4500005")) == [5]
    assert search_all(conn, fts_query('"eclipsing binary"')) == ids(lambda r: r["tags"] == "eclipsing binary")
    assert search_all(conn, fts_query("cafe")) == ids(lambda r: r["comment"] == "Café naïve")
    assert fts_query('RR  "eclipsing binary"  x"y') == '"RR" "eclipsing binary" "x" "y"'
    assert fts_query('say "a ""b"" c') == '"say" "a" "b" "c"'


PLAIN_SYNTAX = ['"', "*", "NEAR(", "NEAR(red giant, 2)", "OR", "AND", "NOT", ")", "(", "^", ":", "lyrae OR",
                "AND lyrae", "OR OR", "tags:lyrae", "tags : lyrae", "{tags}: lyrae", "lyr*", "lyrae*", "^lyrae",
                '"unterminated phrase', 'a"b', "-lyrae", "+", "+lyrae", "red + giant", "- tags:x", "\x00",
                "lyr\x00ae", '"" ""', "'", "a:b", "c^d", "*star*", "rank:", "object_fts", "row_id",
                "objectid:LCP-000001", "\\", "'; DROP TABLE object_catalog; --", "\u200b", "\ufeff"]


@pytest.mark.parametrize("text", PLAIN_SYNTAX)
def test_plain_mode_escapes_fts_syntax(conn, text):
    try:
        query = fts_query(text)
    except FTSQueryError as err:
        assert not plain_phrases(text) and "e.g." in err.message
        return
    assert search_all(conn, query) == expected_plain(text), query
    assert conn.execute("SELECT count(*) FROM object_catalog").fetchone() == (NROWS,)


@pytest.mark.parametrize("text,fragment", [
    ("", "is empty"),
    ("   ", "is empty"),
    ("!!! ... ?", "only punctuation"),
    ('"" ()', "only punctuation"),
    ("x" * 501, "501 characters long; the limit is 500"),
    ("ab\ud800", "surrogate"),
])
def test_plain_mode_errors(text, fragment):
    with pytest.raises(FTSQueryError) as info:
        fts_query(text)
    assert fragment in info.value.message
    assert info.value.status == 400 and info.value.field == "fts"


def test_raw_mode_prefix(conn):
    assert search_all(conn, fts_query('"LCP-00012"*', raw=True)) == sorted(
        set(range(120, 130)) | {r["row_id"] for r in ROWS if r["comment"] == "see LCP-000123"})
    assert search_all(conn, fts_query("lyr*", raw=True)) == ids(lambda r: "Lyrae" in (r["tags"] or ""))
    assert search_all(conn, fts_query("tr*", raw=True)) == ids(
        lambda r: any(t.startswith("tr") for c in FTS_COLUMNS for t in tokens(r[c])))


def test_raw_mode_boolean_operators(conn):
    lyrae = set(expected_plain("lyrae"))
    scuti = set(expected_plain("scuti"))
    blazhko = set(expected_plain("blazhko"))
    red, giant, dwarf = (set(expected_plain(w)) for w in ("red", "giant", "dwarf"))
    assert search_all(conn, fts_query("lyrae OR scuti", raw=True)) == sorted(lyrae | scuti)
    assert search_all(conn, fts_query("lyrae AND blazhko", raw=True)) == sorted(lyrae & blazhko)
    assert search_all(conn, fts_query("lyrae NOT blazhko", raw=True)) == sorted(lyrae - blazhko)
    assert search_all(conn, fts_query("(red AND giant) OR dwarf", raw=True)) == sorted((red & giant) | dwarf)
    assert search_all(conn, fts_query('"RR Lyrae" NOT "LCP-000001"', raw=True)) == sorted(lyrae - {1})
    near = set(search_all(conn, fts_query("NEAR(red giant, 0)", raw=True)))
    assert near and near <= red & giant


def test_raw_mode_column_filters(conn):
    query = fts_query("tags: binary", raw=True, columns=FTS_COLUMNS)
    assert search_all(conn, query) == expected_plain("binary", columns=("tags",))
    query = fts_query("{comment objectid}: binary", raw=True, columns=FTS_COLUMNS)
    assert search_all(conn, query) == expected_plain("binary", columns=("comment",))
    with pytest.raises(FTSQueryError, match="did you mean 'tags'"):
        fts_query("tag: binary", raw=True, columns=FTS_COLUMNS)
    with pytest.raises(FTSQueryError, match="column filters such as 'tags:' are not available"):
        fts_query("tags: binary", raw=True)
    # a ':' inside a phrase is text, not a column filter
    assert search_all(conn, fts_query('"a:b"', raw=True)) == expected_plain("a:b")


@pytest.mark.parametrize("text,fragment", [
    ("lyrae AND", "not valid FTS5 syntax"),
    ("AND lyrae", "not valid FTS5 syntax"),
    ("(lyrae", "parentheses are balanced"),
    ("lyrae)", "not valid FTS5 syntax"),
    ('"unterminated', "not closed"),
    ("*", "cannot start with '*'"),
    ("NEAR(red giant", "not valid FTS5 syntax"),
    ("LCP-000123", "'000123' is read as a column name"),
    ("a:b", "column filters"),
    ("", "is empty"),
    ("(" * 300 + "x" + ")" * 300, "limit is 500"),
    ("(" * 200 + "x" + ")" * 200, "not valid FTS5 syntax"),
])
def test_raw_mode_errors(text, fragment):
    with pytest.raises(FTSQueryError) as info:
        fts_query(text, raw=True)
    assert fragment in info.value.message
    assert "e.g." in info.value.message or "limit is" in info.value.message


def test_common_word_cap_returns_unranked_rows_with_a_note(conn):
    everything = expected_plain("lyrae")
    assert len(everything) > 500
    result = fts_search(conn, fts_query("lyrae"), limit=25, rank_cap=500)
    assert result.row_ids == everything[:25]
    assert not result.ranked and result.ranks is None
    assert result.nmatched is None and result.nmatched_at_least == 501
    assert "more than 500" in result.note and "not ranked" in result.note


def test_rare_words_are_ranked_with_an_exact_count(conn):
    expected = expected_plain("scuti")
    result = fts_search(conn, fts_query("scuti"), limit=10, rank_cap=10_000)
    assert result.ranked and result.note is None
    assert result.nmatched == result.nmatched_at_least == len(expected)
    assert len(result.row_ids) == 10 and set(result.row_ids) <= set(expected)
    assert result.ranks == sorted(result.ranks)
    exact = fts_search(conn, fts_query("scuti"), limit=10, rank_cap=len(expected))
    assert exact.ranked and exact.nmatched == len(expected)
    over = fts_search(conn, fts_query("scuti"), limit=10, rank_cap=len(expected) - 1)
    assert not over.ranked and over.nmatched_at_least == len(expected)


def test_bm25_puts_better_matches_first(conn):
    # "binary" in tags ("eclipsing binary", 2 tokens) and in free comments; all are matches
    result = fts_search(conn, fts_query("binary eclipsing"), limit=5)
    assert all(ROWS[i]["tags"] == "eclipsing binary" for i in result.row_ids)
    assert fts_search(conn, fts_query("nosuchword"), limit=5) == fts.FTSResult([], [], 0, 0, True)
    assert fts_search(conn, fts_query("lyrae"), limit=0, rank_cap=10).row_ids == []


def test_search_combined_with_a_column_filter(conn):
    flt = parse_filter("sdssr < 12 AND tags LIKE '%blazhko%'", {"sdssr": "REAL", "tags": "TEXT"})
    got = search_all(conn, fts_query("lyrae"), where=flt)
    assert got == ids(lambda r: r["sdssr"] < 12 and "Blazhko" in (r["tags"] or ""))
    capped = fts_search(conn, fts_query("lyrae"), limit=5, rank_cap=10, where=flt)
    assert not capped.ranked and capped.row_ids == got[:5]


def test_search_on_a_safe_connection(catalog):
    with connect_readonly(catalog, allowed_tables={"object_catalog", "object_fts"}, timeout_s=5,
                          max_rows=1000) as safe:
        result = fts_search(safe, fts_query("J19200005+4500005"), limit=10)
        assert result.row_ids == [5] and result.ranked
        with pytest.raises(UserError):
            fts_search(safe, "lyrae AND", limit=10)


def test_unvalidated_syntax_errors_become_user_errors(conn):
    with pytest.raises(FTSQueryError, match="not valid FTS5 syntax"):
        fts_search(conn, "lyrae AND", limit=10)
    with pytest.raises(ValueError):
        fts_search(conn, "lyrae", limit=10, table='object_fts" --')


@SETTINGS
@given(st.one_of(st.text(max_size=60),
                 st.text(alphabet='"*():^+-{}, ANDORTNEalyrJ0\x00\t', max_size=30)))
def test_any_plain_text_is_a_query_or_a_user_error(conn, text):
    try:
        query = fts_query(text)
    except FTSQueryError:
        return
    fts_search(conn, query, limit=5, rank_cap=100)


RAW_TOKENS = ["lyrae", "rr", "red", "giant", "AND", "OR", "NOT", "NEAR(", ",", "2", ")", "(", "*", '"', "^",
              "+", "-", ":", "tags", "tags:", "{tags comment}:", "-tags:", "lcp-000123", '"lcp-000123"', "\x00",
              "é", "x" * 10, "{", "}", "'", ".", "\\"]


@SETTINGS
@given(st.lists(st.sampled_from(RAW_TOKENS), max_size=10).flatmap(
    lambda toks: st.sampled_from([" ".join(toks), "".join(toks)])), st.booleans())
def test_any_raw_text_is_a_valid_query_or_a_user_error(conn, text, with_columns):
    try:
        query = fts_query(text, raw=True, columns=FTS_COLUMNS if with_columns else ())
    except FTSQueryError:
        return
    fts_search(conn, query, limit=5, rank_cap=100)
