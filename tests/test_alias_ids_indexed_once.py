"""Alias id columns are indexed once (issue 18, bytes per object): the id index
(``object_ids``) holds every alias value, so an ingest builds no B-tree of its own on an
alias column of text (72 of the 680 bytes per object of the 1e6 all-sky catalog), and an
equality or IN on one, in a column filter or in ADQL, is answered through the id index
instead: the same rows as the plain SQL comparison (brute force over the catalog's
values here), found without reading the table.

The aliases are made to trip a normalising index: the same id in other cases, with a
trailing space, empty and whitespace-only values, NULLs, ids shared by two objects and
digits with leading zeros."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pytest

from lcpanel.core.search import run_search

ALIASES = ("twomassid", "ticid", "gaia_id")
N = 2000


def _rows():
    rng = np.random.default_rng(18)
    rows = []
    for i in range(N):
        tm = f"J{rng.integers(10**7, 10**8)}+{rng.integers(10**6, 10**7)}"
        rows.append(dict(objectid=f"LCP-{i:06d}", ra=float(rng.uniform(0, 360)), decl=float(rng.uniform(-80, 80)),
                         vmag=float(rng.uniform(6, 17)), twomassid=tm, ticid=f"{rng.integers(10**5, 10**9):09d}",
                         gaia_id=str(rng.integers(10**15, 10**18))))
    # what a normalising index could get wrong
    rows[1]["twomassid"] = rows[0]["twomassid"].lower()        # same id, other case
    rows[2]["twomassid"] = rows[0]["twomassid"] + " "           # same id, trailing space
    rows[3]["twomassid"] = rows[0]["twomassid"]                 # shared by two objects
    rows[4]["twomassid"] = ""                                   # empty (stored as NULL)
    rows[5]["twomassid"] = "   "                                # whitespace only
    rows[6]["twomassid"] = None
    rows[7]["ticid"] = "0012345"                                # leading zeros
    rows[8]["ticid"] = "12345"
    rows[9]["gaia_id"] = "Gaia DR3 4242"                        # inner space
    rows[10]["gaia_id"] = "gaia  dr3 4242"
    return rows


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import pandas as pd

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    d = tmp_path_factory.mktemp("aliases")
    pd.DataFrame(_rows()).to_parquet(d / "aliases.parquet")
    base = Basedir.init(d / "basedir")
    add_catalog_collection(App(base.path), base, d / "aliases.parquet", collection_id="aliases", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


@pytest.fixture(scope="module")
def stored(app):
    """Every object's alias values as the catalog stores them (objectid -> column -> value)."""
    names = ", ".join(ALIASES)
    rows = app.catalogs.get("aliases").query(f"SELECT objectid, {names} FROM object_catalog")
    return {r[0]: dict(zip(ALIASES, r[1:])) for r in rows}


def test_alias_columns_of_text_get_no_btree_but_stay_indexed_for_searches(app):
    cat = app.catalogs.get("aliases")
    with closing(sqlite3.connect(f"file:{cat.info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        indexed = {r[0] for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                                   "AND tbl_name = 'object_catalog'")
                   for r in conn.execute(f'SELECT name FROM pragma_index_info("{name}")')}
        id_columns = {r[0] for r in conn.execute("SELECT name FROM object_id_columns")}
    assert indexed >= {"objectid", "vmag"}
    assert not indexed & set(ALIASES)
    assert id_columns == {"objectid", *ALIASES}
    described = {c.name: c.indexed for c in cat.info.columns}
    assert all(described[a] for a in ALIASES)  # TAP_SCHEMA and the column lists still say so


def _brute(stored, column, values, negate=False):
    hit = {oid for oid, v in stored.items() if v[column] is not None and v[column] in values}
    if negate:  # SQL: NOT (x = v) is NULL for a NULL x, so those rows do not pass either
        return {oid for oid, v in stored.items() if v[column] is not None} - hit
    return hit


def _filter_ids(app, where):
    res = run_search(app, {"type": "filter", "params": {"where": where}, "collections": ["aliases"],
                           "limit": 100_000})
    assert res.nmatched == res.nreturned
    return {r["objectid"] for r in res.rows}


def _cases(rows):
    tm0 = rows[0]["twomassid"]
    return [
        (f"twomassid = '{tm0}'", lambda s: _brute(s, "twomassid", {tm0})),
        (f"twomassid = '{tm0.lower()}'", lambda s: _brute(s, "twomassid", {tm0.lower()})),
        (f"twomassid = '{tm0} '", lambda s: _brute(s, "twomassid", {tm0 + " "})),
        (f"twomassid in ('{tm0}', '{rows[20]['twomassid']}', 'nothing')",
         lambda s: _brute(s, "twomassid", {tm0, rows[20]["twomassid"]})),
        ("ticid = '0012345'", lambda s: _brute(s, "ticid", {"0012345"})),
        ("ticid = 0012345", lambda s: _brute(s, "ticid", {"0012345"})),  # a bare number is the text typed
        ("ticid = 12345", lambda s: _brute(s, "ticid", {"12345"})),
        ("gaia_id = 'Gaia DR3 4242'", lambda s: _brute(s, "gaia_id", {"Gaia DR3 4242"})),
        ("twomassid = '   '", lambda s: _brute(s, "twomassid", {"   "})),
        (f"twomassid = '{tm0}' and ticid = '{rows[3]['ticid']}'",
         lambda s: _brute(s, "twomassid", {tm0}) & _brute(s, "ticid", {rows[3]["ticid"]})),
        (f"twomassid = '{tm0}' or ticid = '0012345'",
         lambda s: _brute(s, "twomassid", {tm0}) | _brute(s, "ticid", {"0012345"})),
        (f"not twomassid = '{tm0}'", lambda s: _brute(s, "twomassid", {tm0}, negate=True)),
        (f"twomassid != '{tm0}'", lambda s: _brute(s, "twomassid", {tm0}, negate=True)),
        (f"twomassid not in ('{tm0}')", lambda s: _brute(s, "twomassid", {tm0}, negate=True)),
    ]


CASES = _cases(_rows())


@pytest.mark.parametrize("where,truth", CASES, ids=[c[0] for c in CASES])
def test_filters_on_aliases_find_what_sql_equality_finds(app, stored, where, truth):
    expected = truth(stored)
    assert expected  # every case finds something: an index that lost a value would show
    assert _filter_ids(app, where) == expected


@pytest.mark.parametrize("where", [CASES[0][0], CASES[3][0], CASES[9][0]])
def test_a_filter_equality_on_an_alias_reads_the_id_index_not_the_table(app, where):
    from lcpanel.core.catalogs.filters import parse_filter

    cat = app.catalogs.get("aliases")
    sql, params = cat.where_sql(parse_filter(where, cat.columns))
    plan = [str(r[-1]) for r in cat.query(f"EXPLAIN QUERY PLAN SELECT row_id FROM object_catalog WHERE {sql}",
                                          params)]
    assert not any(step.startswith("SCAN object_catalog") for step in plan), plan
    assert any("object_ids" in step for step in plan), plan


@pytest.fixture(scope="module")
def engine(app):
    from lcpanel.core.vo.tap_query import TapEngine
    from lcpanel.core.vo.tap_schema import tap_model

    return TapEngine(app.catalogs, lambda: tap_model(app.catalogs))


#: in ADQL a bare number is a number, not the text typed: those cases are the filter's own
ADQL_CASES = [c for c in CASES if not c[0].startswith(("ticid = 0", "ticid = 1"))]


@pytest.mark.parametrize("where,truth", ADQL_CASES, ids=[c[0] for c in ADQL_CASES])
def test_adql_on_aliases_finds_what_sql_equality_finds(engine, stored, where, truth):
    adql = where.replace("!=", "<>")
    out = engine.run(f"SELECT objectid FROM lcpanel.aliases WHERE {adql}", maxrec=100_000, timeout_s=10.0)
    assert {r[0] for r in out.rows} == truth(stored)


@pytest.mark.parametrize("where", [CASES[0][0], CASES[3][0], "t.ticid = '0012345' AND t.vmag < 20"])
def test_an_adql_equality_on_an_alias_is_looked_up_in_the_id_index(engine, stored, where):
    out = engine.run(f"SELECT t.objectid FROM lcpanel.aliases AS t WHERE {where.replace('twomassid', 't.twomassid')}",
                     maxrec=100_000, timeout_s=10.0)
    assert "index" in out.translation.regions
    assert "row_id\" in (select value from json_each(" in out.translation.sql.lower()
    assert out.rows
