"""Ids as people type them (issue 14, finding 3): object-id search trims and ignores case
for ids and every alias column; full text finds id prefixes and survey designations; a
search that matches nothing says what was searched and suggests the nearest ids; catalogs
made before the id index get it when opened.

The catalog holds the real HATNet object of ../shared/realdata (its objectinfo read with
astrobase's own hat-csv reader) and synthetic neighbours, one with the 2MASS alias as a
survey's objectinfo had it (a trailing space)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from lcpanel.core.search import run_search

REALDATA = Path(__file__).resolve().parent / "realdata"
HAT_LC = REALDATA / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"


def _hat_objectinfo() -> dict:
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    return hatlc.read_csvlc(str(HAT_LC))["objectinfo"]


@pytest.fixture(scope="module")
def catalog_rows():
    info = _hat_objectinfo()
    rng = np.random.default_rng(3)
    rows = [dict(objectid=info["hatid"], ra=info["ra"], decl=info["decl"], twomassid=info["twomassid"],
                 ticid=-1, hatid=info["hatid"])]
    rows.append(dict(objectid="HAT-772-0554686", ra=219.45, decl=-56.98, twomassid="14374811-5648595 ",
                     ticid=25155310, hatid="HAT-772-0554686"))
    for i in range(300):
        rows.append(dict(objectid=f"LCP-{i:06d}", ra=float(rng.uniform(0, 360)), decl=float(rng.uniform(-60, 60)),
                         twomassid=f"{rng.integers(10**7, 10**8)}+{rng.integers(10**6, 10**7)}",
                         ticid=int(rng.integers(10**8, 10**9)), hatid=""))
    return rows


@pytest.fixture(scope="module")
def app(catalog_rows, tmp_path_factory):
    import pandas as pd

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    d = tmp_path_factory.mktemp("ids")
    path = d / "ids.parquet"  # keeps the trailing space, as an lclist pickle would
    pd.DataFrame(catalog_rows).to_parquet(path)
    base = Basedir.init(d / "basedir")
    add_catalog_collection(App(base.path), base, path, collection_id="ids", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


def ids_of(result) -> list[str]:
    return [r["objectid"] for r in result.rows]


def test_catalog_keeps_the_alias_as_the_survey_wrote_it(app):
    rows = app.catalogs.get("ids").query("SELECT twomassid FROM object_catalog WHERE objectid = 'HAT-772-0554686'")
    assert rows == [("14374811-5648595 ",)]


@pytest.mark.parametrize("typed,expected,column", [
    ("14374811-5648595", "HAT-772-0554686", "twomassid"),   # the alias has a trailing space
    ("  hat-772-0554686 ", "HAT-772-0554686", "objectid"),
    ("hat-579-0051858", "HAT-579-0051858", "objectid"),     # the real HATNet object
    ("19394601-2544539", "HAT-579-0051858", "twomassid"),   # its real 2MASS id
    ("2MASS J19394601-2544539", "HAT-579-0051858", "twomassid"),
    ("TIC 25155310", "HAT-772-0554686", "ticid"),
    ("lcp-000007", "LCP-000007", "objectid"),
])
def test_objectid_search_trims_and_ignores_case(app, typed, expected, column):
    res = run_search(app, {"type": "objectid", "params": {"ids": [typed]}})
    assert ids_of(res) == [expected]
    assert res.rows[0]["matched_column"] == column and res.rows[0]["matched_id"] == typed.strip()


def _brute_prefix(rows, text: str) -> set[str]:
    """Objects any of whose ids starts with ``text``, compared trimmed and lowercased."""
    import re

    t = re.sub(r"\s+", " ", text.strip().lower())
    stripped = re.sub(r"^(?:2mass(?:\s*j(?=\d))?|tic|gaia(?:\s*dr\d)?|kic|epic|ucac4)[\s_:-]*", "", t)
    out = set()
    for r in rows:
        if str(r["objectid"]).strip().lower().startswith(t):
            out.add(r["objectid"])
        for col in ("twomassid", "ticid", "hatid"):
            v = str(r[col]).strip().lower()
            if v and (v.startswith(t) or v.startswith(stripped)):
                out.add(r["objectid"])
    return out


@pytest.mark.parametrize("query", ["HAT-772", "hat-579", "HAT", "LCP-0001", "TIC 25155310", "2MASS J1437",
                                   "14374811"])
def test_fulltext_finds_id_prefixes_and_designations(app, catalog_rows, query):
    res = run_search(app, {"type": "fulltext", "params": {"query": query}, "limit": 1000})
    expected = _brute_prefix(catalog_rows, query)
    assert expected, query
    assert expected <= set(ids_of(res))
    # id matches come first, before any text match
    n = len(expected)
    assert set(ids_of(res)[:n]) == expected


def test_fulltext_prefix_examples_from_the_issue(app):
    for query, oid in (("HAT-772", "HAT-772-0554686"), ("TIC 25155310", "HAT-772-0554686"),
                       ("2MASS J1437", "HAT-772-0554686")):
        res = run_search(app, {"type": "fulltext", "params": {"query": query}})
        assert ids_of(res)[0] == oid, (query, ids_of(res)[:3])


def test_no_match_says_what_was_searched_and_suggests_nearest_ids(app):
    res = run_search(app, {"type": "fulltext", "params": {"query": "HAT-773-055"}})
    assert res.rows == []
    msg = " ".join(res.messages)
    assert "nothing matched 'HAT-773-055'" in msg and "object ids and aliases starting with it" in msg
    assert "nearest ids: HAT-772-0554686" in msg

    res = run_search(app, {"type": "objectid", "params": {"ids": ["HAT-579-0051859", "LCP-000003"]}})
    assert ids_of(res) == ["LCP-000003"]
    msg = " ".join(res.messages)
    assert "1 of 2 ids found in no collection" in msg and "HAT-579-0051859" in msg
    assert "nearest ids to 'HAT-579-0051859': HAT-579-0051858" in msg


def test_old_catalog_gets_the_id_index_when_opened(app, tmp_path):
    import shutil

    from lcpanel.app import App

    base = tmp_path / "basedir"
    shutil.copytree(app.basedir, base)
    info = App(base).catalogs.get("ids").info
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn, conn:
        conn.execute("DROP TABLE object_ids")
    fresh = App(base)
    res = run_search(fresh, {"type": "objectid", "params": {"ids": ["14374811-5648595"]}})
    assert ids_of(res) == ["HAT-772-0554686"]
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn:
        n = conn.execute("SELECT count(*) FROM object_ids").fetchone()[0]
    assert n > 302  # objectid + aliases of every object
    fresh.products.shutdown()


def test_old_catalog_gets_the_id_index_at_startup(app, tmp_path):
    import shutil

    from lcpanel.app import App
    from lcpanel.core.catalogs.idindex import has_id_index

    base = tmp_path / "basedir"
    shutil.copytree(app.basedir, base)
    info = App(base).catalogs.get("ids").info
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn, conn:
        conn.execute("DROP TABLE object_ids")
    assert not has_id_index(info.catalog_sqlite)
    started = App(base).start()
    assert has_id_index(info.catalog_sqlite)
    started.close()


def test_catalog_with_the_first_id_index_layout_is_rebuilt_and_still_finds_ids(app, tmp_path):
    """The first id index kept each id's column name and stored value in every entry
    (208 B/object at 1e6 with four id columns); the index now keeps a column number and
    reads the value from the catalog row. A catalog with the first layout is rebuilt once
    at startup, and exact, prefix and nearest lookups answer as before."""
    import shutil

    from lcpanel.app import App
    from lcpanel.core.catalogs import idindex

    base = tmp_path / "basedir"
    shutil.copytree(app.basedir, base)
    info = App(base).catalogs.get("ids").info
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn:
        want = {
            "exact": sorted(idindex.exact(conn, "2MASS J14374811-5648595")),
            "many": sorted(idindex.exact_many(conn, ["hat-772-0554686", "TIC 12345", "nothing"])),
            "prefix": idindex.prefix(conn, "HAT-772", 5),
            "nearest": idindex.nearest(conn, "HAT-772-055468", 3),
        }
        names = [r[1] for r in conn.execute("PRAGMA table_info(object_catalog)")]
    assert want["exact"] and want["prefix"][0] and want["nearest"]
    # the first layout, as catalogs made before this change have it
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn, conn:
        conn.execute("DROP TABLE IF EXISTS object_ids")
        conn.execute("DROP TABLE IF EXISTS object_id_columns")
        conn.execute("CREATE TABLE object_ids (norm TEXT NOT NULL, col TEXT NOT NULL, row_id INTEGER NOT NULL, "
                     "value TEXT NOT NULL, PRIMARY KEY (norm, col, row_id)) WITHOUT ROWID")
        for i, c in enumerate(idindex.id_columns(names)):
            conn.execute(f"INSERT OR IGNORE INTO object_ids SELECT lower(\"{c}\"), '{c}', row_id, \"{c}\" "
                         f"FROM object_catalog WHERE \"{c}\" IS NOT NULL")
    assert not idindex.has_id_index(info.catalog_sqlite)
    started = App(base).start()
    assert idindex.has_id_index(info.catalog_sqlite)
    with closing(sqlite3.connect(info.catalog_sqlite)) as conn:
        assert "value" not in [r[1] for r in conn.execute("PRAGMA table_info(object_ids)")]
        got = {
            "exact": sorted(idindex.exact(conn, "2MASS J14374811-5648595")),
            "many": sorted(idindex.exact_many(conn, ["hat-772-0554686", "TIC 12345", "nothing"])),
            "prefix": idindex.prefix(conn, "HAT-772", 5),
            "nearest": idindex.nearest(conn, "HAT-772-055468", 3),
        }
    assert got == want
    started.close()


ODD_IDS = ["HAT-123-0000001", "  Lead and trail  ", "ÅBC-1", "ＦＵＬＬ　ＷＩＤＴＨ", "", "   ", "A\tB", "x\x1fy",
           "ab\x00c", "MiXeD-Case_+9", "straße", "İstanbul", "\u00a0nbsp\u00a0", "tab\t", "J123 +45",
           "NULL-ish", "0042"]
ODD_VALUES = ODD_IDS + [12345, -7, 0, 2**62, 3.0, 2.5, -1e20, b"bytes-id", None]


def test_id_index_entries_equal_python_normalisation_of_every_stored_value(tmp_path):
    """What SQLite computes for the index (plain text and integers without a Python call)
    equals normalize_id on every value, brute force, for text, integers, reals, blobs and
    NULLs in id columns of every declared type."""
    from lcpanel.core.catalogs.idindex import TABLE, build_id_index, normalize_id

    path = tmp_path / "c.sqlite"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, ticid INTEGER, "
                     "gaia_id, twomassid TEXT)")
        n = len(ODD_VALUES)
        rows = [(i, f"OBJ-{i}" if i % 3 else ODD_IDS[i % len(ODD_IDS)] or "E", ODD_VALUES[i],
                 ODD_VALUES[(i + 5) % n], ODD_VALUES[(i + 11) % n]) for i in range(n)]
        conn.executemany("INSERT INTO object_catalog VALUES (?,?,?,?,?)", rows)
        columns = ["objectid", "ticid", "gaia_id", "twomassid"]
        built = build_id_index(conn, columns)
        conn.commit()
        stored = conn.execute(f"SELECT row_id, {', '.join(columns)} FROM object_catalog").fetchall()
        got = sorted(conn.execute(f"SELECT norm, col, row_id FROM {TABLE}").fetchall())
    expected = sorted({(normalize_id(v), k, r[0]) for r in stored for k, v in enumerate(r[1:])
                       if v is not None and normalize_id(v) != ""})
    assert got == expected
    assert built == len(expected)
    assert {c for _, c, _ in got} == {0, 1, 2, 3}


def _brute_index(conn, columns) -> list[tuple[str, int, int]]:
    """Every (norm, col, row_id) entry, worked out in Python from the stored values, in
    the index's order."""
    from lcpanel.core.catalogs.idindex import normalize_id

    rows = conn.execute(f"SELECT row_id, {', '.join(columns)} FROM object_catalog").fetchall()
    return sorted({(normalize_id(v), k, r[0]) for r in rows for k, v in enumerate(r[1:])
                   if v is not None and normalize_id(v) != ""})


def _reference_prefix(entries, names, values, text, limit):
    from lcpanel.core.catalogs.idindex import MAX_CHAR, query_keys

    own, aliases = query_keys(text)
    if not own:  # nothing typed: no prefix search
        return [], False
    rows, more = [], False
    for key, alias in [(own, False)] + [(a, True) for a in aliases]:
        got = [e for e in entries if (e[1] != 0) == alias and key <= e[0] < key + MAX_CHAR][:limit + 1]
        more |= len(got) > limit
        rows += [(norm != key, norm, row, names[col], values[row][col]) for norm, col, row in got[:limit]]
    found = {}
    for _inexact, _norm, row, col, value in sorted(rows):
        found.setdefault(row, (row, col, value))
    return list(found.values())[:limit], more or len(found) > limit


def _reference_nearest(entries, values, text, n):
    import difflib

    from lcpanel.core.catalogs.idindex import normalize_id, query_keys

    own, aliases = query_keys(text)
    candidates = {}
    for key in dict.fromkeys([own, *aliases]):
        if not key:
            continue
        below = [e for e in entries if e[0] < key][::-1][:2 * n]
        above = [e for e in entries if e[0] >= key][:2 * n]
        for _norm, col, row in below + above:
            value = values[row][col]
            score = difflib.SequenceMatcher(None, key, normalize_id(value)).ratio()
            candidates[value] = max(candidates.get(value, 0.0), score)
    return [v for v, _s in sorted(candidates.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_id_lookups_equal_a_brute_force_over_every_id(tmp_path):
    """exact, exact_many, prefix (with its 'more') and nearest against a Python reference
    over every id entry, on TEXT and INTEGER id columns with and without an index of their
    own, with ids shared between columns, many ties, case variants and designations."""
    from lcpanel.core.catalogs import idindex

    rng = np.random.default_rng(5)
    n = 900
    objectid = [f"{rng.choice(['HAT', 'hat', 'Hat', 'LCP', 'A_B'])}-{rng.integers(0, 40):03d}-{i:05d}" for i in range(n)]
    ticid = [None if i % 9 == 0 else str(rng.integers(0, 400)) for i in range(n)]  # many ties
    twomass = [None if i % 4 == 0 else f"J{rng.integers(0, 10**4):04d}{rng.choice(['+', '-'])}{rng.integers(0, 99)}"
               for i in range(n)]
    gaia = [None if i % 5 == 0 else int(rng.integers(0, 10**5)) for i in range(n)]
    path = tmp_path / "c.sqlite"
    columns = ["objectid", "ticid", "twomassid", "gaia_id"]
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, ticid TEXT, "
                     "twomassid TEXT, gaia_id INTEGER)")
        conn.executemany("INSERT INTO object_catalog VALUES (?,?,?,?,?)",
                         [(i, objectid[i], ticid[i], twomass[i], gaia[i]) for i in range(n)])
        conn.execute("CREATE UNIQUE INDEX object_catalog_objectid ON object_catalog(objectid)")
        conn.execute("CREATE INDEX object_catalog_ticid ON object_catalog(ticid)")
        conn.execute("CREATE INDEX object_catalog_gaia_id ON object_catalog(gaia_id)")
        built = idindex.build_id_index(conn, columns)
        conn.commit()
        entries = _brute_index(conn, columns)
        assert built == len(entries)
        assert sorted(conn.execute("SELECT norm, col, row_id FROM object_ids")) == entries
        names = dict(enumerate(columns))
        values = {r[0]: [idindex._stored(v) if v is not None else None for v in r[1:]]
                  for r in conn.execute(f"SELECT row_id, {', '.join(columns)} FROM object_catalog")}
        texts = ["hat-001", "HAT-0", "h", "2", "12", "TIC 12", "j00", "2MASS J01", "Gaia DR3 4", "a_b-0",
                 "zzz", "", "  lcp-039-00017 ", objectid[17], ticid[18], twomass[22] or "J1", str(gaia[23])]
        for text in texts:
            for limit in (1, 3, 25):
                assert idindex.prefix(conn, text, limit) == _reference_prefix(entries, names, values, text, limit), text
            assert idindex.nearest(conn, text, 4) == _reference_nearest(entries, values, text, 4), text
            own, aliases = idindex.query_keys(text)
            want = sorted((row, names[col], values[row][col]) for norm, col, row in entries
                          if (col == 0 and norm == own) or (col != 0 and norm in aliases))
            assert sorted(idindex.exact(conn, text)) == want, text
        many = idindex.exact_many(conn, texts)
        want = set()
        for text in texts:
            own, aliases = idindex.query_keys(text)
            want |= {(row, names[col]) for norm, col, row in entries
                     if (col == 0 and norm == own) or (col != 0 and norm in aliases)}
        assert {(row, col) for row, col, _given in many} == want


def test_the_id_index_of_an_analysed_catalog_is_built_reading_the_table_once(tmp_path):
    """ensure_id_index rebuilds the index of catalogs that have statistics. With those of a
    real 1e6-object catalog, SQLite read each alias column through the ``ndet`` index and
    fetched every row by its id, in random order (7.4 s against 2.9 s at 1e6). The plan must
    read the table (or the objectid index) in one pass; the entries are the same either way."""
    from lcpanel.core.catalogs.build import build_catalog
    from lcpanel.core.catalogs.idindex import TABLE, build_id_index, entries_sql, normalize_id

    rng = np.random.default_rng(5)
    n = 3000
    build_catalog(tmp_path, {"objectid": np.array([f"OBJ-{i}" for i in range(n)]), "ra": rng.uniform(0, 360, n),
                             "decl": rng.uniform(-80, 80, n), "ndet": rng.integers(100, 1100, n),
                             "vmag": rng.uniform(8, 16, n), "twomassid": np.array([f"J{i:08d}" for i in range(n)]),
                             "ticid": np.array([str(7 * i) for i in range(n)])}, show_progress=False, kdtree=False)
    path = tmp_path / "catalog-objectinfo.sqlite"
    # sqlite_stat1 of benchmarks/out/search-1e+06 (ANALYZE with analysis_limit 2000)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'object_catalog'")
        conn.executemany("INSERT INTO sqlite_stat1 VALUES ('object_catalog', ?, ?)",
                         [("object_catalog_ndet", "817908 1001"), ("object_catalog_vmag", "939900 4"),
                          ("object_catalog_objectid", "920616 1")])
    columns = ["objectid", "twomassid", "ticid"]
    with closing(sqlite3.connect(path)) as conn:
        conn.create_function("lcp_norm_id", 1, normalize_id, deterministic=True)
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {entries_sql(columns)}")]
        reads = [step for step in plan if "object_catalog" in step]
        assert len(reads) == 3, plan
        assert all(step == "SCAN object_catalog" or "COVERING INDEX" in step for step in reads), plan
        build_id_index(conn, columns)
        got = conn.execute(f"SELECT norm, col, row_id FROM {TABLE}").fetchall()
        stored = conn.execute("SELECT row_id, objectid, twomassid, ticid FROM object_catalog").fetchall()
    assert got == sorted((normalize_id(v), k, r[0]) for r in stored for k, v in enumerate(r[1:]))
