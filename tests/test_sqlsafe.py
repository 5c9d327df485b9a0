"""Read-only execution of user-derived SQL: what runs, what is refused (leaving the file
untouched), the time limit and the row cap."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading

import pytest

from lcpanel.core.catalogs.filters import parse_filter
from lcpanel.core.catalogs.fts import fts_query
from lcpanel.core.catalogs.sqlsafe import ALLOWED_FUNCTIONS, QueryTimeout, SQLError, connect_readonly
from lcpanel.errors import UserError

NROWS = 2000
ALLOWED = {"object_catalog", "object_fts"}
TOKENIZER = "unicode61 remove_diacritics 2 tokenchars '-+_'"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlsafe") / "catalog-objectinfo.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, tags TEXT, "
                 "sdssr REAL, ndet INTEGER)")
    conn.executemany("INSERT INTO object_catalog VALUES (?,?,?,?,?)",
                     [(i, f"LCP-{i:06d}", "RR Lyrae" if i % 3 else "eclipsing binary", 8 + (i % 120) / 10, i % 50)
                      for i in range(NROWS)])
    conn.execute("CREATE UNIQUE INDEX object_catalog_objectid ON object_catalog(objectid)")
    conn.execute(f"CREATE VIRTUAL TABLE object_fts USING fts5(objectid, tags, content='object_catalog', "
                 f"content_rowid='row_id', tokenize=\"{TOKENIZER}\", prefix='3')")
    conn.execute("INSERT INTO object_fts(object_fts) VALUES ('rebuild')")
    conn.execute("CREATE TABLE catalog_info (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO catalog_info VALUES ('secret', '\"operator only\"')")
    conn.execute("CREATE VIEW bright AS SELECT * FROM object_catalog WHERE sdssr < 10")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def safe(catalog):
    with connect_readonly(catalog, allowed_tables=ALLOWED, timeout_s=2.0, max_rows=100) as conn:
        yield conn


def fingerprint(path) -> tuple:
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns, os.stat(path).st_size


def test_selects_work(safe):
    result = safe.execute("SELECT row_id, objectid FROM object_catalog WHERE sdssr < ? ORDER BY row_id", (8.2,))
    assert result.columns == ["row_id", "objectid"]
    assert result.rows[:2] == [(0, "LCP-000000"), (1, "LCP-000001")] and not result.more
    assert safe.execute("SELECT count(*), min(sdssr), max(ndet), avg(ndet), total(ndet) FROM object_catalog"
                        ).rows[0][0] == NROWS
    assert safe.execute("SELECT abs(-1), round(1.25, 1), lower('A'), upper('a'), length('abc'), "
                        "coalesce(NULL, 1), ifnull(NULL, 2), CAST('3' AS INTEGER), sqrt(4.0), "
                        "degrees(acos(0.0)), iif(1, 'y', 'n')").rows == [(1, 1.3, "a", "A", 3, 1, 2, 3, 2.0,
                                                                         90.0, "y")]
    assert safe.execute("WITH b AS MATERIALIZED (SELECT row_id FROM object_catalog WHERE ndet = 1) "
                        "SELECT count(*) FROM b").rows == [(NROWS // 50,)]
    assert safe.execute("SELECT count(*) FROM (SELECT DISTINCT ndet FROM object_catalog)").rows == [(50,)]
    assert safe.execute("SELECT 1 FROM object_catalog LIMIT 1").rows == [(1,)]
    assert safe.execute("SELECT count(*) FROM OBJECT_CATALOG").rows == [(NROWS,)]
    assert safe.execute("SELECT ObjectID FROM Object_Catalog WHERE ROW_ID = 2").rows == [("LCP-000002",)]
    assert safe.execute("SELECT count(*) FROM Object_FTS WHERE OBJECT_FTS MATCH 'lyrae'").rows == [(1333,)]


def test_full_text_and_json_each(safe):
    rows = safe.execute(
        "SELECT rowid, bm25(object_fts), highlight(object_fts, 1, '[', ']'), snippet(object_fts, 1, '[', ']', '', 3) "
        "FROM object_fts WHERE object_fts MATCH ? ORDER BY rank, rowid LIMIT 3", (fts_query("binary"),)).rows
    assert [r[0] for r in rows] == [0, 3, 6] and rows[0][2] == "eclipsing [binary]"
    assert safe.execute("SELECT count(*) FROM object_fts WHERE object_fts MATCH ?",
                        (fts_query('"LCP-00001"*', raw=True),)).rows == [(10,)]
    rows = safe.execute("SELECT o.row_id FROM object_catalog o JOIN json_each(?) j ON o.objectid = j.value "
                        "ORDER BY o.row_id", ('["LCP-000007", "LCP-000003", "nope"]',)).rows
    assert rows == [(3,), (7,)]
    rows = safe.execute("SELECT c.objectid FROM object_catalog c JOIN object_fts f ON f.rowid = c.row_id "
                        "WHERE object_fts MATCH ? AND c.row_id < 4", ('"lyrae"',)).rows
    assert sorted(rows) == [("LCP-000001",), ("LCP-000002",)]


def test_column_filter_sql_runs_under_the_authorizer(safe):
    flt = parse_filter("sdssr < 8.5 AND (tags LIKE 'rr%' OR ndet IN (0, 3)) AND objectid IS NOT NULL",
                       {"sdssr": "REAL", "tags": "TEXT", "ndet": "INTEGER", "objectid": "TEXT"})
    got = safe.execute(f"SELECT row_id FROM object_catalog WHERE {flt.sql}", flt.params, max_rows=NROWS).rows
    expected = [i for i in range(NROWS) if 8 + (i % 120) / 10 < 8.5 and (i % 3 or i % 50 in (0, 3))]
    assert [r[0] for r in got] == expected


REFUSED = [
    ("INSERT INTO object_catalog (objectid) VALUES ('x')", "change table object_catalog"),
    ("UPDATE object_catalog SET sdssr = 0", "change table object_catalog"),
    ("DELETE FROM object_catalog", "change table object_catalog"),
    ("REPLACE INTO object_catalog (row_id, objectid) VALUES (1, 'x')", "change table"),
    ("DROP TABLE object_catalog", "schema"),
    ("DROP VIEW bright", "schema"),
    ("CREATE TABLE t (a)", "schema"),
    ("CREATE TEMP TABLE t (a)", "schema"),
    ("CREATE VIEW v AS SELECT 1", "schema"),
    ("CREATE VIRTUAL TABLE v USING fts5(a)", "only SELECT"),
    ("ALTER TABLE object_catalog ADD COLUMN x", "schema"),
    ("CREATE INDEX i ON object_catalog(sdssr)", "schema"),
    ("INSERT INTO object_fts(object_fts) VALUES ('rebuild')", "change table object_fts"),
    ("ATTACH DATABASE ':memory:' AS other", "attach"),
    ("ATTACH DATABASE '/tmp/lcpanel-sqlsafe-test.sqlite' AS other", "attach"),
    ("DETACH DATABASE main", "detach"),
    ("VACUUM", "attach"),
    ("VACUUM INTO '/tmp/lcpanel-sqlsafe-copy.sqlite'", "attach"),
    ("PRAGMA writable_schema = ON", "PRAGMA writable_schema"),
    ("PRAGMA query_only = OFF", "PRAGMA query_only"),
    ("PRAGMA journal_mode = WAL", "PRAGMA journal_mode"),
    ("PRAGMA table_info(object_catalog)", "PRAGMA table_info"),
    ("PRAGMA data_version = 3", "PRAGMA data_version"),
    ("SELECT * FROM pragma_table_list", "not allowed"),
    ("SELECT load_extension('/tmp/evil.so')", "load_extension() is not allowed"),
    ("SELECT randomblob(1000000000)", "randomblob() is not allowed"),
    ("SELECT zeroblob(1000000000)", "zeroblob() is not allowed"),
    ("SELECT printf('%.*c', 1000000000, 'x')", "printf() is not allowed"),
    ("SELECT sqlite_version()", "sqlite_version() is not allowed"),
    ("SELECT writefile('/tmp/x', 'y')", "no such function"),
    ("SELECT fts5(0)", "fts5() is not allowed"),
    ("SELECT 1; DROP TABLE object_catalog", "more than one SQL statement"),
    ("SELECT 1; SELECT 2", "more than one SQL statement"),
    ("BEGIN", "transaction"),
    ("BEGIN IMMEDIATE", "transaction"),
    ("SAVEPOINT s", "transaction"),
    ("ANALYZE", "schema"),
    ("REINDEX", "statistics or indexes"),
    ("SELECT * FROM catalog_info", "reading table 'catalog_info' is not allowed"),
    ("SELECT count(*) FROM catalog_info", "reading table 'catalog_info' is not allowed"),
    ("SELECT * FROM bright", "not allowed"),
    ("UPDATE sqlite_master SET sql = 'x'", "sqlite_master"),
    ("WITH t AS (SELECT * FROM catalog_info) SELECT count(*) FROM t", "'catalog_info' is not allowed"),
    ("WITH t AS MATERIALIZED (SELECT 1 FROM catalog_info) SELECT count(*) FROM t", "'catalog_info' is not allowed"),
    ("SELECT count(*) FROM (SELECT 1 FROM CATALOG_INFO)", "'CATALOG_INFO' is not allowed"),
    ("SELECT KEY FROM Catalog_Info", "is not allowed"),
    ("SELECT * FROM sqlite_master", "reading table 'sqlite_master' is not allowed"),
    ("SELECT rowid FROM sqlite_master", "sqlite_master"),
    ("SELECT sql FROM sqlite_schema", "sqlite_master"),
    ("SELECT * FROM sqlite_temp_master", "not allowed"),
    ("SELECT count(*) FROM sqlite_stmt", "not allowed"),
    ("SELECT * FROM dbstat", "reading table 'dbstat' is not allowed"),
    ("SELECT * FROM json_tree('[1]')", "json_tree"),
    ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "recursive"),
    ("SELECT nosuchcolumn FROM object_catalog", "no such column"),
    ("SELEKT 1", "syntax error"),
    ("SELECT ?", "placeholders"),
]


@pytest.mark.parametrize("sql,fragment", REFUSED)
def test_refused_statements_leave_the_file_untouched(catalog, sql, fragment):
    before = fingerprint(catalog)
    with connect_readonly(catalog, allowed_tables=ALLOWED, timeout_s=2.0, max_rows=10) as conn:
        with pytest.raises(UserError) as info:
            conn.execute(sql)
        assert fragment in info.value.message, info.value.message
        assert info.value.status == 400
        assert conn.execute("SELECT count(*) FROM object_catalog").rows == [(NROWS,)]  # still usable
    assert fingerprint(catalog) == before
    assert not os.path.exists("/tmp/lcpanel-sqlsafe-copy.sqlite")
    assert not os.path.exists(str(catalog) + "-journal") and not os.path.exists(str(catalog) + "-wal")


def test_views_need_their_tables_allowed(catalog):
    with connect_readonly(catalog, allowed_tables=ALLOWED | {"bright"}, timeout_s=2.0, max_rows=10) as conn:
        expected = sum(8 + (i % 120) / 10 < 10 for i in range(NROWS))
        assert conn.execute("SELECT count(*) FROM bright").rows == [(expected,)]
    with connect_readonly(catalog, allowed_tables={"bright"}, timeout_s=2.0, max_rows=10) as conn:
        with pytest.raises(SQLError, match="reading table 'object_catalog' is not allowed"):
            conn.execute("SELECT * FROM bright")


def test_fts_needs_its_content_table(catalog):
    with connect_readonly(catalog, allowed_tables={"object_fts"}, timeout_s=2.0, max_rows=10) as conn:
        assert conn.execute("SELECT rowid FROM object_fts WHERE object_fts MATCH 'lyrae' LIMIT 1").rows == [(1,)]
        with pytest.raises(SQLError, match="object_catalog"):
            conn.execute("SELECT objectid FROM object_fts WHERE object_fts MATCH 'lyrae' LIMIT 1")
        with pytest.raises(SQLError, match="object_catalog"):
            conn.execute("SELECT objectid FROM object_catalog")


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM object_catalog a, object_catalog b, object_catalog c",
    "SELECT max(a.sdssr + b.sdssr) FROM object_catalog a, object_catalog b, object_catalog c "
    "ORDER BY 1",
    "SELECT count(*) FROM object_fts a, object_fts b, object_fts c WHERE a.object_fts MATCH 'lyrae' "
    "AND b.object_fts MATCH 'lyrae' AND c.object_fts MATCH 'lyrae'",
])
def test_slow_queries_are_stopped_by_the_time_limit(catalog, sql):
    with connect_readonly(catalog, allowed_tables=ALLOWED, timeout_s=0.3, max_rows=10) as conn:
        # without the limit these run for hours; with it they raise
        with pytest.raises(QueryTimeout) as info:
            conn.execute(sql)
        assert info.value.status == 408 and "time limit of 0.3 s" in info.value.message
        assert conn.execute("SELECT count(*) FROM object_catalog").rows == [(NROWS,)]  # the limit is per query


def test_the_time_limit_covers_fetching(catalog):
    with connect_readonly(catalog, allowed_tables=ALLOWED, timeout_s=0.3, max_rows=10) as conn:
        # the first row comes at once (cursor.execute returns), the next ones need long scans
        sql = ("SELECT a.row_id FROM object_catalog a WHERE a.row_id = 0 OR "
               "(SELECT count(*) FROM object_catalog b, object_catalog c WHERE b.ndet = a.ndet) < 0 "
               "ORDER BY a.row_id")
        with pytest.raises(QueryTimeout):
            conn.execute(sql)


def test_row_cap(safe):
    result = safe.execute("SELECT row_id FROM object_catalog ORDER BY row_id")
    assert len(result.rows) == 100 and result.more
    assert result.rows[-1] == (99,)
    exact = safe.execute("SELECT row_id FROM object_catalog WHERE row_id < 100")
    assert len(exact.rows) == 100 and not exact.more
    smaller = safe.execute("SELECT row_id FROM object_catalog", max_rows=5)
    assert len(smaller.rows) == 5 and smaller.more
    assert len(safe.execute("SELECT row_id FROM object_catalog", max_rows=10_000).rows) == 100
    none = safe.execute("SELECT row_id FROM object_catalog", max_rows=0)
    assert none.rows == [] and none.more
    empty = safe.execute("SELECT row_id FROM object_catalog WHERE row_id < 0", max_rows=0)
    assert empty.rows == [] and not empty.more


def test_one_connection_per_thread(safe):
    errors = []

    def use():
        try:
            safe.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], sqlite3.ProgrammingError)


def test_opening(tmp_path, catalog):
    with pytest.raises(FileNotFoundError):
        connect_readonly(tmp_path / "missing.sqlite", allowed_tables=ALLOWED, timeout_s=1, max_rows=1)
    odd = tmp_path / "a dir?#%" / "cat alog.sqlite"
    odd.parent.mkdir()
    odd.write_bytes(catalog.read_bytes())
    with connect_readonly(odd, allowed_tables=ALLOWED, timeout_s=1, max_rows=1) as conn:
        assert conn.execute("SELECT count(*) FROM object_catalog").rows == [(NROWS,)]
    with pytest.raises(ValueError):
        connect_readonly(catalog, allowed_tables=ALLOWED, timeout_s=0, max_rows=1)


def test_function_allow_list_is_documented():
    assert {"count", "like", "match", "bm25", "highlight", "snippet"} <= ALLOWED_FUNCTIONS
    assert not {"load_extension", "randomblob", "zeroblob", "printf", "readfile", "writefile"} & ALLOWED_FUNCTIONS


def test_text_that_is_not_utf8_is_read_with_replacement_characters(tmp_path):
    """A catalog written by another tool may hold text that is not UTF-8: it is read with
    U+FFFD for the bad bytes, with a byte cap or without one (which SQLite decodes itself),
    and the rows around it are unchanged."""
    path = tmp_path / "catalog-objectinfo.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, tags TEXT)")
        conn.executemany("INSERT INTO object_catalog VALUES (?, ?, ?)", [(i, f"LCP-{i}", "ok") for i in range(300)])
        conn.execute("UPDATE object_catalog SET tags = CAST(x'52522083ff4c7972' AS TEXT) WHERE row_id = 250")
    conn.close()
    expected = [(i, f"LCP-{i}", "RR \ufffd\ufffdLyr" if i == 250 else "ok") for i in range(300)]
    with connect_readonly(path, allowed_tables={"object_catalog"}, timeout_s=2.0, max_rows=1000) as safe:
        sql = "SELECT row_id, objectid, tags FROM object_catalog ORDER BY row_id"
        assert safe.execute(sql).rows == expected
        assert safe.execute(sql, max_bytes=10**6).rows == expected
        # the next query on the connection decodes as usual
        assert safe.execute("SELECT objectid FROM object_catalog WHERE row_id = 3").rows == [("LCP-3",)]
