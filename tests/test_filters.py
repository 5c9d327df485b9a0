"""The column-filter language: results against an independent Python evaluation, error
messages, injection attempts, and a property test over arbitrary text; sort specs."""

from __future__ import annotations

import random
import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lcpanel.core.catalogs.filters import Filter, FilterError, SortError, parse_filter, parse_sort, sort_sql
from lcpanel.errors import UserError

COLUMNS = {"objectid": "TEXT", "tags": "TEXT", "code": "TEXT", "sdssr": "REAL", "ndet": "INTEGER",
           "flag": "INTEGER"}
NUMERIC = ["sdssr", "ndet", "flag"]
TEXT = ["objectid", "tags", "code"]
TAGS = ["RR Lyrae", "rr lyrae", "eclipsing binary", "Ünïcode", "ünïcode", "O'Brien", 'say "hi"', "50%_off", ""]
CODES = ["007", "10", "9", "abc", "", "1e3"]
NROWS = 300
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_rows(seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for i in range(NROWS):
        rows.append({
            "row_id": i,
            "objectid": f"LCP-{i:04d}",
            "tags": None if rnd.random() < 0.15 else rnd.choice(TAGS),
            "code": None if rnd.random() < 0.1 else rnd.choice(CODES),
            "sdssr": None if rnd.random() < 0.1 else round(rnd.uniform(8, 20), 1),
            "ndet": None if rnd.random() < 0.1 else rnd.randint(0, 30),
            "flag": rnd.randint(0, 1),
        })
    return rows


ROWS = make_rows()


def make_db(rows=ROWS) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    decl = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
    conn.execute(f"CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, {decl})")
    names = ["row_id", *COLUMNS]
    conn.executemany(f"INSERT INTO object_catalog VALUES ({','.join('?' * len(names))})",
                     [tuple(r[c] for c in names) for r in rows])
    return conn


@pytest.fixture(scope="module")
def db():
    conn = make_db()
    yield conn
    conn.close()


def select(conn, flt: Filter) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT row_id FROM object_catalog WHERE {flt.sql} ORDER BY row_id",
                                       flt.params)]


# -- an independent model of conditions: generated, rendered to text, evaluated in Python --

def number_literals():
    ints = st.integers(-3, 31).flatmap(lambda v: st.sampled_from([str(v), f"+{v}" if v >= 0 else str(v)]))
    floats = st.floats(-3, 31, allow_nan=False).map(lambda v: round(v, 1)).flatmap(
        lambda v: st.sampled_from([repr(v), f"{v * 10:.0f}e-1", f"{v:.3E}"]))
    pool = st.sampled_from([r["sdssr"] for r in ROWS[:40] if r["sdssr"] is not None]).map(repr)
    return st.one_of(ints, floats, pool)


def text_literals():
    values = st.one_of(st.sampled_from(TAGS + CODES + ["LCP-0007", "LCP-0100", "lcp-0007"]),
                       st.text(alphabet="aAbRr' \"%_Üü0", max_size=5))
    return values.flatmap(lambda v: st.sampled_from([("'" + v.replace("'", "''") + "'", v),
                                                     ('"' + v.replace('"', '""') + '"', v)]))


def like_patterns():
    return st.one_of(
        st.sampled_from(["RR%", "%lyrae", "%LYRAE%", "_r%", "ü%", "Ü%", "%'%", '%"%', "50%", "%", "",
                         "LCP-00_1", "lcp-01%", "%_%_%"]),
        st.text(alphabet="rRa%_ üÜL", max_size=5))


def kw(word: str):
    return st.sampled_from([word.upper(), word.lower(), word.capitalize()])


@st.composite
def predicates(draw):
    kind = draw(st.sampled_from(["cmp", "cmp", "between", "in", "isnull", "like", "textnum", "bool"]))
    neg = draw(st.booleans())
    if kind == "cmp" or kind == "textnum":
        col = draw(st.sampled_from(NUMERIC if kind == "cmp" else TEXT))
        op = draw(st.sampled_from(["=", "==", "!=", "<>", "<", "<=", ">", ">="]))
        if kind == "cmp":
            lit = draw(number_literals())
            value = float(lit) if re.search(r"[.eE]", lit) else int(lit)
        else:
            lit = draw(st.one_of(st.sampled_from(["007", "10", "9", "1e3"]), number_literals()))
            value = lit  # bound as text exactly as typed
        text = f"{draw(st.sampled_from([col, col.upper()]))} {op} {lit}"
        return text, ("cmp", col, op, value)
    if kind == "bool":
        b = draw(st.booleans())
        return f"flag = {draw(kw('true' if b else 'false'))}", ("cmp", "flag", "=", int(b))
    if kind == "between":
        col = draw(st.sampled_from(NUMERIC))
        lo, hi = draw(number_literals()), draw(number_literals())
        text = f"{col} {draw(kw('not')) + ' ' if neg else ''}{draw(kw('between'))} {lo} {draw(kw('and'))} {hi}"
        return text, ("between", col, float(lo), float(hi), neg)
    if kind == "in":
        col = draw(st.sampled_from(NUMERIC + TEXT))
        if col in NUMERIC:
            lits = draw(st.lists(number_literals(), min_size=1, max_size=4))
            values = [float(x) for x in lits]
        else:
            pairs = draw(st.lists(text_literals(), min_size=1, max_size=4))
            lits, values = [p[0] for p in pairs], [p[1] for p in pairs]
        text = f"{col} {draw(kw('not')) + ' ' if neg else ''}{draw(kw('in'))} ({', '.join(lits)})"
        return text, ("in", col, values, neg)
    if kind == "isnull":
        col = draw(st.sampled_from(NUMERIC + TEXT))
        return f"{col} {draw(kw('is'))} {draw(kw('not')) + ' ' if neg else ''}{draw(kw('null'))}", ("isnull", col, neg)
    col = draw(st.sampled_from(TEXT))
    pattern = draw(like_patterns())
    quoted = "'" + pattern.replace("'", "''") + "'"
    return f"{col} {draw(kw('not')) + ' ' if neg else ''}{draw(kw('like'))} {quoted}", ("like", col, pattern, neg)


def conditions():
    """Conditions rendered with only the parentheses precedence requires (NOT > AND > OR),
    plus some redundant ones."""
    def wrap(child, parent: str) -> str:
        text, tree = child
        loose = {"not": ("and", "or"), "and": ("or",), "or": ()}[parent]
        return f"({text})" if tree[0] in loose else text

    def extend(children):
        return st.one_of(
            st.tuples(children, st.sampled_from(["AND", "and", "OR", "or"]), children).map(
                lambda t: (f"{wrap(t[0], t[1].lower())} {t[1]} {wrap(t[2], t[1].lower())}",
                           (t[1].lower(), t[0][1], t[2][1]))),
            children.map(lambda c: (f"NOT {wrap(c, 'not')}", ("not", c[1]))),
            children.map(lambda c: (f"({c[0]})", ("paren", c[1]))),
        )
    return st.recursive(predicates(), extend, max_leaves=6)


def like_regex(pattern: str) -> re.Pattern:
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.ASCII | re.DOTALL)  # SQLite folds ASCII case only


def evaluate(node, row):
    """Three-valued (True/False/None) SQL semantics, written independently of the parser."""
    kind = node[0]
    if kind == "paren":
        return evaluate(node[1], row)
    if kind == "not":
        v = evaluate(node[1], row)
        return None if v is None else not v
    if kind in ("and", "or"):
        a, b = evaluate(node[1], row), evaluate(node[2], row)
        if kind == "and":
            return False if False in (a, b) else None if None in (a, b) else True
        return True if True in (a, b) else None if None in (a, b) else False
    if kind == "isnull":
        return (row[node[1]] is not None) if node[2] else (row[node[1]] is None)
    v = row[node[1]]
    if v is None:
        return None
    if kind == "cmp":
        op, x = node[2], node[3]
        return {"=": v == x, "==": v == x, "!=": v != x, "<>": v != x, "<": v < x, "<=": v <= x,
                ">": v > x, ">=": v >= x}[op]
    if kind == "between":
        result = node[2] <= v <= node[3]
    elif kind == "in":
        result = v in node[2]
    else:
        result = like_regex(node[2]).fullmatch(v) is not None
    return (not result) if node[-1] else result


@SETTINGS
@given(conditions())
def test_filter_selects_the_same_rows_as_python(db, cond):
    text, tree = cond
    flt = parse_filter(text, COLUMNS)
    expected = [r["row_id"] for r in ROWS if evaluate(tree, r) is True]
    assert select(db, flt) == expected, (text, flt.sql, flt.params)
    again = parse_filter(flt.text, COLUMNS, max_length=10_000)
    assert (again.sql, again.params, again.text) == (flt.sql, flt.params, flt.text)


def test_examples_of_the_language(db):
    cases = {
        "sdssr < 12 AND ndet >= 20": lambda r: _lt(r["sdssr"], 12) and _ge(r["ndet"], 20),
        "tags LIKE 'rr%' OR tags IS NULL": lambda r: r["tags"] is None or r["tags"].lower().startswith("rr"),
        "NOT (flag = true) AND code IN ('007', 9)": lambda r: r["flag"] == 0 and r["code"] in ("007", "9"),
        "objectid = 'LCP-0007'": lambda r: r["objectid"] == "LCP-0007",
        "tags = 'O''Brien'": lambda r: r["tags"] == "O'Brien",
        'tags = "say ""hi"""': lambda r: r["tags"] == 'say "hi"',
        "sdssr not between 10 and 1.9e1": lambda r: r["sdssr"] is not None and not 10 <= r["sdssr"] <= 19,
        "code = 007": lambda r: r["code"] == "007",
        "NDET <> -1e9 and SdSsR is not null": lambda r: r["ndet"] is not None and r["sdssr"] is not None,
    }
    for text, pred in cases.items():
        flt = parse_filter(text, COLUMNS)
        assert select(db, flt) == [r["row_id"] for r in ROWS if pred(r)], text


def _lt(v, x):
    return v is not None and v < x


def _ge(v, x):
    return v is not None and v >= x


def test_filter_value_object():
    flt = parse_filter("SDSSR < 12.5 and (ndet == 3 or objectid like 'HAT-%')", COLUMNS)
    assert flt.sql == '("sdssr" < ?) AND (("ndet" = ?) OR ("objectid" LIKE ?))'
    assert flt.params == (12.5, 3, "HAT-%")
    assert flt.columns == frozenset({"sdssr", "ndet", "objectid"})
    assert flt.text == "sdssr < 12.5 AND (ndet = 3 OR objectid LIKE 'HAT-%')"
    assert parse_filter("flag = TRUE", COLUMNS).params == (1,)
    assert parse_filter("code = 0012", COLUMNS).params == ("0012",)
    assert parse_filter("ndet < 99999999999999999999", COLUMNS).params == (1e20,)
    assert type(parse_filter("ndet < 5", COLUMNS).params[0]) is int
    with pytest.raises(AttributeError):
        flt.sql = "1"


ERRORS = [
    ("", ["empty", "sdssr < 12.5"]),
    ("   \n\t", ["empty"]),
    ("sdsr < 12", ["unknown column 'sdsr'", "did you mean 'sdssr'", "character 1"]),
    ("magnitude < 12", ["unknown column 'magnitude'", "known: "]),
    ("sdssr ~ 12", ["'~'", "LIKE", "character 7"]),
    ("sdssr < 12; DROP TABLE object_catalog", ["';' is not allowed", "character 11"]),
    ("sdssr < 12 --", ["'--'", "comments"]),
    ("sdssr /* x */ < 12", ["'/*'", "comments"]),
    ("(sdssr < 12", ["'(' at character 1 is not closed"]),
    ("sdssr < 12)", ["')' has no matching '('"]),
    ("((sdssr < 12) AND ndet > 3", ["not closed"]),
    ("tags = 'RR Lyrae", ["not closed", "character 8"]),
    ('tags = "RR Lyrae', ["not closed"]),
    ("sdssr < 12 ndet > 3", ["unexpected 'ndet'", "AND or OR"]),
    ("sdssr < 12 AND", ["expected a column name but found nothing"]),
    ("sdssr <", ["expected a value for column 'sdssr' but found nothing"]),
    ("sdssr", ["expected an operator after column 'sdssr'"]),
    ("ndet LIKE '1%'", ["LIKE only works on text columns", "'ndet' holds numbers"]),
    ("tags LIKE RR", ["LIKE needs a pattern in quotes"]),
    ("sdssr < '12'", ["'sdssr' holds numbers", "'12' is text"]),
    ("sdssr IN (1, 'a')", ["holds numbers"]),
    ("tags = RR", ["text must be in quotes", "tags = 'RR'"]),
    ("tags = true", ["true/false only go with numeric columns"]),
    ("sdssr = null", ["IS NULL"]),
    ("sdssr > ndet", ["comparing two columns is not supported"]),
    ("sdssr IS 3", ["expected NULL after 'sdssr IS'"]),
    ("sdssr BETWEEN 1 OR 3", ["expected AND between the two values"]),
    ("ndet IN ()", ["IN list after 'ndet' is empty"]),
    ("ndet IN 1, 2", ["IN needs a list in parentheses"]),
    ("ndet IN (1 2)", ["expected ',' or ')'"]),
    ("12abc < 3", ["'12abc' is not a number"]),
    ("sdssr < 1.2.3", ["'1.2.3' is not a number"]),
    ("sdssr < -", ["arithmetic is not supported"]),
    ("sdssr ! 3", ["use != for 'not equal'"]),
    ("sdssr =< 3", ["expected a value for column 'sdssr' but found '<'"]),
    ("AND sdssr < 3", ["keyword AND"]),
    ("lower(tags) = 'x'", ["functions such as lower(...) are not supported"]),
    ("sdssr ＜ 12", ["U+FF1C", "looks like '<'"]),
    ("ѕdssr < 12", ["U+0455 CYRILLIC SMALL LETTER DZE"]),
    ("sdssr < 12\x00", ["NUL"]),
    ("tags = 'a\x00b'", ["NUL"]),
    ("sdssr < 1\ud800", ["surrogate"]),
]


@pytest.mark.parametrize("text,fragments", ERRORS)
def test_error_messages(text, fragments):
    with pytest.raises(FilterError) as info:
        parse_filter(text, COLUMNS)
    err = info.value
    for fragment in fragments:
        assert fragment in err.message, (text, err.message)
    assert isinstance(err, UserError) and err.status == 400 and err.field == "filter"
    assert "e.g." in err.message or "looks like" in err.message  # shows a valid example


def test_limits():
    text = "tags = '" + "x" * 1991 + "'"
    assert parse_filter(text, COLUMNS).params == ("x" * 1991,)
    with pytest.raises(FilterError, match="2001 characters long; the limit is 2000"):
        parse_filter(text + " ", COLUMNS)
    text = " OR ".join(f"ndet = {i}" for i in range(4))
    assert parse_filter(text, COLUMNS, max_terms=4)
    with pytest.raises(FilterError, match="more than 3 conditions"):
        parse_filter(text, COLUMNS, max_terms=3)
    with pytest.raises(FilterError, match="more than 32 levels deep"):
        parse_filter("NOT " * 40 + "ndet = 1", COLUMNS)
    with pytest.raises(FilterError, match="more than 32 levels deep"):
        parse_filter("(" * 40 + "ndet = 1" + ")" * 40, COLUMNS)
    assert parse_filter("(" * 30 + "ndet = 1" + ")" * 30, COLUMNS)


INJECTIONS = [
    "sdssr < 12; DROP TABLE object_catalog",
    "sdssr < 12;DROP TABLE object_catalog;--",
    "1=1 --",
    "1 = 1",
    "sdssr < 12 OR 1=1",
    "sdssr < (SELECT 1)",
    "sdssr < (SELECT max(ndet) FROM object_catalog)",
    "load_extension('x')",
    "sdssr < 12 AND load_extension('/tmp/evil.so')",
    "sdssr IN (SELECT row_id FROM object_catalog)",
    "sdssr < 12 UNION SELECT * FROM sqlite_master",
    '"sdssr" < 12',
    "`sdssr` < 12",
    "[sdssr] < 12",
    "sdssr < 12 /* */",
    "sdssr < 0x10",
    "sdssr < ?",
    "sdssr < :x",
    "sdssr < $x",
    "sdssr ＜ 12",  # fullwidth <
    "sdssr < １２",  # fullwidth digits
    "sdssr < ١٢",  # Arabic-Indic digits
    "ѕdssr < 12",  # Cyrillic s
    "sdssr\u2028< 12; x",
    "sdssr < 12\x00; DROP TABLE object_catalog",
    "tags = 'x'\x00' OR 1=1",
    "tags = 'x' || 'y'",
    "sdssr < 12 AND rowid > 0",
    "row_id > 0",
    "sdssr COLLATE nocase < 1",
    "sdssr < 12 ORDER BY 1",
    "sdssr < 12 LIMIT 1",
    "tags LIKE 'a' ESCAPE 'b'",
    "tags GLOB '*'",
    "tags MATCH 'x'",
    "tags REGEXP 'x'",
    "sdssr < 12 AND CAST(tags AS REAL) > 0",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_are_refused(db, text):
    before = db.execute("SELECT count(*), sum(row_id) FROM object_catalog").fetchone()
    with pytest.raises(FilterError):
        parse_filter(text, COLUMNS)
    assert db.execute("SELECT count(*), sum(row_id) FROM object_catalog").fetchone() == before
    assert db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == [("object_catalog",)]


@pytest.mark.parametrize("value", ["'; DROP TABLE object_catalog; --", "' OR '1'='1", '" OR 1=1 --',
                                   "x') OR ('1'='1", "\\'; DROP TABLE object_catalog"])
def test_sql_inside_a_quoted_value_is_only_a_value(db, value):
    quoted = "'" + value.replace("'", "''") + "'"
    flt = parse_filter(f"tags = {quoted} OR tags LIKE {quoted}", COLUMNS)
    assert flt.params == (value, value)
    assert select(db, flt) == []
    assert db.execute("SELECT count(*) FROM object_catalog").fetchone() == (NROWS,)


TOKENS = list(COLUMNS) + ["SDSSR", "rowid", "nosuch", "=", "==", "!=", "<>", "<", "<=", ">", ">=", "=<", "!",
                          "AND", "or", "Not", "BETWEEN", "like", "IS", "NULL", "in", "true", "FALSE", "(", ")",
                          ",", "1", "-2.5", "+3e2", "1e999", "99999999999999999999999", ".5", "5.", "'a'",
                          "'%'", '"b"', "'O''x'", "'", '"', ";", "--", "/*", "*/", "~", "é", "\x00", "\t",
                          "SELECT", "1=1", "x'00'", "0x1f", "?", "ü", "١", "\u00a0", "[", "]"]


@SETTINGS
@given(st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join),
    st.lists(st.sampled_from(TOKENS), max_size=14).map("".join),
))
def test_any_text_parses_and_runs_or_is_a_filter_error(db, text):
    try:
        flt = parse_filter(text, COLUMNS)
    except FilterError as err:
        assert err.message and err.status == 400
        return
    select(db, flt)  # must run without error
    again = parse_filter(flt.text, COLUMNS, max_length=10_000)
    assert (again.sql, again.params) == (flt.sql, flt.params)


def test_unknown_sqltypes_are_text_and_bad_allow_lists_are_caught():
    assert parse_filter("x = 'a'", {"x": "text"}).params == ("a",)
    with pytest.raises(ValueError):
        parse_filter("x = 1", {'x" OR 1=1 --': "REAL"})


# -- sort --------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    (None, []),
    ("", []),
    ("sdssr", [("sdssr", "ASC")]),
    ("-sdssr", [("sdssr", "DESC")]),
    ("+SDSSR", [("sdssr", "ASC")]),
    ("sdssr desc, ndet asc", [("sdssr", "DESC"), ("ndet", "ASC")]),
    ("sdssr DESC,ndet", [("sdssr", "DESC"), ("ndet", "ASC")]),
    ('["sdssr", "-ndet"]', [("sdssr", "ASC"), ("ndet", "DESC")]),
    (["sdssr", "-ndet"], [("sdssr", "ASC"), ("ndet", "DESC")]),
    (("tags asc",), [("tags", "ASC")]),
    ("-dist_arcsec, sdssr", [("dist_arcsec", "DESC"), ("sdssr", "ASC")]),
])
def test_parse_sort(spec, expected):
    assert parse_sort(spec, COLUMNS, extra=("dist_arcsec",)) == expected


@pytest.mark.parametrize("spec,fragment", [
    ("sdsr", "did you mean 'sdssr'"),
    ("dist_arcsec", "unknown column 'dist_arcsec'"),
    ("sdssr up", "'up' for 'sdssr' is not asc or desc"),
    ("-sdssr desc", "either -sdssr or sdssr desc"),
    ("sdssr, -sdssr", "names 'sdssr' twice"),
    ("sdssr; DROP TABLE x", "cannot read the sort key"),
    ('"sdssr"', "cannot read the sort key"),
    ("sdssr desc nulls first", "cannot read the sort key"),
    ('["sdssr"', "not valid JSON"),
    ("[1, 2]", "list of names"),
    ({"sdssr": 1}, "list of names"),
    (",".join(["sdssr"] * 9), "limit is 8"),
])
def test_parse_sort_errors(spec, fragment):
    with pytest.raises(SortError) as info:
        parse_sort(spec, COLUMNS)
    assert fragment in info.value.message
    assert info.value.field == "sort" and info.value.status == 400


def test_sort_sql_orders_nulls_last(db):
    sort = parse_sort("-sdssr, objectid", COLUMNS)
    assert sort_sql(sort) == '"sdssr" DESC NULLS LAST, "objectid" ASC NULLS LAST'
    assert sort_sql([]) == ""
    got = [r[0] for r in db.execute(f"SELECT row_id FROM object_catalog ORDER BY {sort_sql(sort)}")]
    expected = sorted(ROWS, key=lambda r: (r["sdssr"] is None, -(r["sdssr"] or 0), r["objectid"]))
    assert got == [r["row_id"] for r in expected]
    with pytest.raises(ValueError):
        sort_sql([('x" --', "ASC")])
