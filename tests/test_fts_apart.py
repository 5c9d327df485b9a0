"""The parts of a catalog built apart: the full-text index (lcpanel.core.catalogs.ftsapart)
equals SQLite's own 'rebuild' then 'optimize' of object_fts from the catalog's rows, byte
for byte; the id index (lcpanel.core.catalogs.idapart) equals the one built in the catalog
itself; a refused ingest leaves neither their threads nor their files behind."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from contextlib import closing

import numpy as np
import pytest

from lcpanel.core.catalogs.build import CATALOG_SQLITE, Batches, build_catalog
from lcpanel.errors import IngestError

SHADOWS = {"object_fts_data": "id", "object_fts_idx": "segid, term", "object_fts_docsize": "id",
           "object_fts_config": "k"}
WORDS = ["RR Lyrae", "eclipsing binary", "δ Scuti", "Cepheid", "blend", "", None, "spotted rotator",
         "Mira long-period", "flare+transit", "ÆØÅ café", "candidate_planet"]


def _arrays(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tags = np.array([WORDS[i] for i in rng.integers(0, len(WORDS), n)], dtype=object)
    return {
        "objectid": np.array([f"HAT-{rng.integers(100, 999)}-{i:07d}" for i in range(n)]),
        "ra": rng.uniform(0, 360, n),  # random sky order: row ids are not input order
        "decl": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "twomassid": np.array([f"J{i:08d}+{(7 * i) % 10_000_000:07d}" if i % 5 else "" for i in range(n)]),
        "ticid": np.array([str(10_000_000 + 37 * i) for i in range(n)]),
        "objecttags": tags,
        "vmag": rng.uniform(8, 16, n),
    }


def _shadows(path) -> dict[str, list]:
    with closing(sqlite3.connect(path)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY {key}").fetchall() for t, key in SHADOWS.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("apart")
    # enough rows for several FTS5 segments and leaf pages
    build_catalog(out, _arrays(40_000, seed=3), show_progress=False, kdtree=False)
    return out


def test_the_index_built_apart_equals_sqlites_rebuild_byte_for_byte(built, tmp_path):
    """One segment, FTS5's default settings: what a 'rebuild' then 'optimize' of the
    catalog's own table makes (a 'rebuild' alone leaves several segments here)."""
    rebuilt = tmp_path / "rebuilt.sqlite"
    shutil.copy(built / CATALOG_SQLITE, rebuilt)
    with closing(sqlite3.connect(rebuilt)) as conn:
        conn.execute("INSERT INTO object_fts(object_fts) VALUES ('rebuild')")
        conn.commit()
        segments_of_a_rebuild = conn.execute("SELECT count(DISTINCT segid) FROM object_fts_idx").fetchone()[0]
        conn.execute("INSERT INTO object_fts(object_fts) VALUES ('optimize')")
        conn.commit()
    apart, again = _shadows(built / CATALOG_SQLITE), _shadows(rebuilt)
    assert segments_of_a_rebuild > 1
    assert len({segid for segid, *_ in apart["object_fts_idx"]}) == 1
    assert [k for k, _ in apart["object_fts_config"]] == ["version"]
    assert len(apart["object_fts_data"]) > 20
    assert {t: len(v) for t, v in apart.items()} == {t: len(v) for t, v in again.items()}
    assert _numbered_apart(apart) == _numbered_apart(again)


#: FTS5's %_data rows of a segment's pages have ids (segid << 37) + (dlidx << 36) + (height << 31) + page
SEGMENT_SHIFT = 37


def _numbered_apart(shadows: dict) -> dict:
    """The shadow tables without the one thing their history sets: the number of the
    segment (the first free one when 'optimize' ran) and the structure record holding it."""
    pages = [(rowid & ((1 << SEGMENT_SHIFT) - 1), block) for rowid, block in shadows["object_fts_data"]
             if rowid >= 1 << SEGMENT_SHIFT]
    special = [(rowid, block) for rowid, block in shadows["object_fts_data"] if rowid < 1 << SEGMENT_SHIFT]
    assert [rowid for rowid, _ in special] == [1, 10]  # the averages, the structure
    return {**shadows, "object_fts_data": special[:1] + pages,
            "object_fts_idx": [(term, pgno) for _segid, term, pgno in shadows["object_fts_idx"]]}


def test_the_index_built_apart_passes_fts5s_integrity_check_and_finds_rows(built):
    with closing(sqlite3.connect(built / CATALOG_SQLITE)) as conn:
        conn.execute("INSERT INTO object_fts(object_fts, rank) VALUES ('integrity-check', 1)")
        for objectid, tags in conn.execute("SELECT objectid, objecttags FROM object_catalog "
                                           "WHERE row_id IN (0, 777, 39999)").fetchall():
            hits = [r[0] for r in conn.execute(
                "SELECT c.objectid FROM object_fts f JOIN object_catalog c ON c.row_id = f.rowid "
                "WHERE object_fts MATCH ?", (f'objectid: "{objectid}"',))]
            assert hits == [objectid]
        expected = conn.execute("SELECT count(*) FROM object_catalog WHERE objecttags LIKE '%scuti%'").fetchone()[0]
        assert expected > 0
        assert conn.execute("SELECT count(*) FROM object_fts WHERE object_fts MATCH 'scuti'").fetchone()[0] == expected


def test_the_id_index_built_apart_equals_the_one_built_in_the_catalog(built, tmp_path):
    from lcpanel.core.catalogs.idindex import COLUMNS_TABLE, TABLE, build_id_index, id_columns

    copy = tmp_path / "rebuilt.sqlite"
    shutil.copy(built / CATALOG_SQLITE, copy)
    with closing(sqlite3.connect(copy)) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(object_catalog)")]
        assert id_columns(names) == ["objectid", "twomassid", "ticid"]
        build_id_index(conn, id_columns(names))
        conn.commit()
    tables = {}
    for path in (built / CATALOG_SQLITE, copy):
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            tables[path] = [conn.execute(f"SELECT * FROM {t}").fetchall() for t in (TABLE, COLUMNS_TABLE)]
    apart, rebuilt = tables.values()
    assert apart == rebuilt and len(apart[0]) == 40_000 + 32_000 + 40_000  # every objectid, 2MASS id, TIC id


def test_a_refused_ingest_stops_the_build_apart_and_leaves_no_files(tmp_path):
    arrays = _arrays(30_000, seed=5)
    arrays["objectid"][-1] = arrays["objectid"][0]  # found at the objectid index, while FTS is being built

    with pytest.raises(IngestError, match="more than once"):
        build_catalog(tmp_path, arrays, show_progress=False, kdtree=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CATALOG_SQLITE]  # no staging, copy, part or sky index file
    assert not [t for t in threading.enumerate() if t.name.startswith(("fts-apart", "ids-apart", "sky-index"))]


def test_a_source_that_fails_midway_starts_no_build_apart(tmp_path):
    def batches():
        yield {k: v[:100] for k, v in _arrays(100, seed=1).items()}
        raise OSError("disk went away")

    source = Batches(sqltypes={"objectid": "TEXT", "ra": "REAL", "decl": "REAL", "twomassid": "TEXT",
                               "ticid": "TEXT", "objecttags": "TEXT", "vmag": "REAL"}, batches=batches())
    with pytest.raises(OSError, match="disk went away"):
        build_catalog(tmp_path, source, show_progress=False, kdtree=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CATALOG_SQLITE]


@pytest.mark.parametrize("failure", ["not a database", "disk full"])
def test_a_failed_build_apart_is_reported_by_copy_into_and_close_hides_nothing(tmp_path, monkeypatch, failure):
    """A build apart that fails (the catalog's copy is not a database; its disk is full)
    raises when its index is wanted; close() afterwards raises nothing over the error the
    caller is already raising."""
    from lcpanel.core.catalogs import ftsapart

    staging = tmp_path / "staging-catalog.sqlite"
    staging.write_bytes(b"not a database" * 100)
    if failure == "disk full":
        staging.unlink()
        with closing(sqlite3.connect(staging)) as conn:
            conn.execute("CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT)")

        def full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(ftsapart, "fts_ddl", full)
    apart = ftsapart.FTSApart(tmp_path / "fts.sqlite", staging, ["objectid"])
    with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as conn:
        with pytest.raises(sqlite3.DatabaseError if failure == "not a database" else OSError):
            apart.copy_into(conn)
    apart.close()
    assert not (tmp_path / "fts.sqlite").exists()


def test_the_build_reports_when_each_step_ran_and_on_which_core(tmp_path):
    """The build's timeline (logged, and printed by bench_ingest.py): every step, in the
    order the build runs them: the full-text and id indexes are built on threads of their
    own once the rows are written, beside the main thread's indexes, and copied in after
    they end."""
    built = build_catalog(tmp_path, _arrays(3_000, seed=5), show_progress=False, kdtree=True)
    steps = {s.name: s for s in built.steps}
    apart = ("full text, built apart", "id index, built apart")
    assert set(steps) == {"stage rows", "sort into sky order", "write rows", "copy for the builds apart",
                          "index objectid", "index vmag", *apart, "copy of the id index",
                          "copy of the full text", "sky index", "statistics", "kd-tree"}
    assert all(0 <= s.start_s <= s.end_s for s in built.steps)
    main = threading.current_thread().name
    assert {s.thread for s in built.steps if s.name not in (*apart, "sky index")} == {main}
    assert len({main, steps["sky index"].thread, *(steps[a].thread for a in apart)}) == 4
    order = ["stage rows", "sort into sky order", "write rows", "copy for the builds apart", "index objectid",
             "index vmag"]
    assert all(steps[a].end_s <= steps[b].start_s for a, b in zip(order, order[1:]))
    for name, copy in zip(apart, ("copy of the full text", "copy of the id index")):
        assert steps["copy for the builds apart"].end_s <= steps[name].start_s
        assert steps[name].end_s <= steps[copy].start_s and steps["index vmag"].end_s <= steps[copy].start_s
    assert steps["full text, built apart"].end_s <= steps["sky index"].start_s
