"""A large catalog's rows written by two processes (lcpanel.core.catalogs.rowsapart): the
catalog equals the one a single process writes, table for table and value for value;
a second writer that fails or dies refuses the catalog and leaves no file behind."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import sqlite3
from contextlib import closing

import numpy as np
import pyarrow as pa
import pytest

from lcpanel.core.catalogs import rowsapart, skyorder
from lcpanel.core.catalogs.build import CATALOG_SQLITE, ROWS_APART_FILE, build_catalog
from lcpanel.core.catalogs.rowsapart import RowsApart
from lcpanel.core.catalogs.timeline import Timeline
from lcpanel.errors import IngestError

N = 6_000
TAGS = ["RR Lyrae", "eclipsing binary", "δ Scuti", "", None, "ÆØÅ café", "flare+transit"]


def _arrays(n: int) -> dict:
    rng = np.random.default_rng(11)
    ndet = pa.array([None if i % 13 == 0 else int(v) for i, v in enumerate(rng.integers(-2**62, 2**62, n))],
                    type=pa.int64())
    vmag = rng.uniform(8, 16, n)
    vmag[::17] = np.nan  # NULL
    vmag[5::97] = np.inf
    vmag[7::89] = rng.standard_normal(len(vmag[7::89])) * 10.0 ** rng.integers(-300, 300, len(vmag[7::89]))
    return {
        "objectid": np.array([f"HAT-{rng.integers(100, 999)}-{i:07d}" for i in range(n)]),
        "ra": rng.uniform(0, 360, n),  # random sky order: row ids are not input order
        "decl": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "twomassid": np.array([f"J{i:08d}+{(7 * i) % 10_000_000:07d}" if i % 5 else "" for i in range(n)]),
        "objecttags": np.array([TAGS[i] for i in rng.integers(0, len(TAGS), n)], dtype=object),
        "ndet": ndet,
        "vmag": vmag,
    }


def _tables(path) -> dict[str, list]:
    """Every table's rows, with each value's SQL type, in row-id (or key) order."""
    with closing(sqlite3.connect(path)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name")]
        out = {}
        for name in names:
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            typed = ", ".join(f'"{c}", typeof("{c}")' for c in cols)
            out[name] = conn.execute(f'SELECT {typed} FROM "{name}" ORDER BY {", ".join(f"{i}" for i in range(1, 2 * len(cols), 2))}').fetchall()
        return out


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same catalog written by one process and by two."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(skyorder, "BUCKET_ROWS", 700)  # 9 buckets: 5 here, 4 in the second process
        one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
        mp.setattr(rowsapart, "SPLIT_MIN_ROWS", 10 * N)
        alone = build_catalog(one, _arrays(N), show_progress=False, kdtree=False)
        mp.setattr(rowsapart, "SPLIT_MIN_ROWS", N)
        split = build_catalog(two, _arrays(N), show_progress=False, kdtree=False)
    finally:
        mp.undo()
    return one, two, alone, split


def test_two_processes_wrote_the_rows(both):
    _, two, alone, split = both
    assert "write rows apart" not in {s.name for s in alone.steps}
    apart = [s for s in split.steps if s.name == "write rows apart"]
    assert len(apart) == 1 and apart[0].thread == "rows-apart (process)"
    assert "append the rows written apart" in {s.name for s in split.steps}
    assert not (two / ROWS_APART_FILE).exists()
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in both[0].iterdir())


def test_the_catalog_equals_the_one_a_single_process_writes(both):
    one, two, _, _ = both
    a, b = _tables(one / CATALOG_SQLITE), _tables(two / CATALOG_SQLITE)
    assert a.keys() == b.keys() and "object_catalog" in a and "object_fts_data" in a and "object_ids" in a
    for name in a:
        assert a[name] == b[name], name
    rows = a["object_catalog"]
    assert [r[0] for r in rows] == list(range(N))  # row ids 0 to N - 1, none missing
    with closing(sqlite3.connect(two / CATALOG_SQLITE)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        hpx = [r[0] for r in conn.execute("SELECT hpx29 FROM object_catalog ORDER BY row_id")]
    assert hpx == sorted(hpx)


#: the database header's file change counter and "version-valid-for" number: how many
#: transactions wrote the file (the second process's rows are one more)
COMMIT_COUNTERS = (slice(24, 28), slice(92, 96))


def test_the_catalog_file_is_the_same_page_for_page(both):
    one, two, _, _ = both
    a, b = bytearray((one / CATALOG_SQLITE).read_bytes()), bytearray((two / CATALOG_SQLITE).read_bytes())
    assert len(a) == len(b) > 100 * 8192
    for counter in COMMIT_COUNTERS:
        a[counter] = b[counter] = b"\0" * 4
    assert a == b


def test_every_value_crossed_the_second_process_as_it_was(both):
    """Against the input itself, row by row, in both halves: NULLs, 63-bit integers, floats
    from 1e-300 to 1e300 (NaN and infinities are NULL, as the ingest stores them), non-ASCII
    text."""
    _, two, _, _ = both
    arrays = _arrays(N)
    by_id = {oid: i for i, oid in enumerate(arrays["objectid"])}
    ndet = arrays["ndet"].to_pylist()
    with closing(sqlite3.connect(two / CATALOG_SQLITE)) as conn:
        rows = conn.execute("SELECT row_id, objectid, ndet, vmag, objecttags FROM object_catalog").fetchall()
    assert len(rows) == N
    for row_id, oid, got_ndet, got_vmag, got_tags in rows:
        i = by_id[oid]
        assert got_ndet == ndet[i]
        want = arrays["vmag"][i]
        assert got_vmag == want if math.isfinite(want) else got_vmag is None, (row_id, want, got_vmag)
        assert (got_tags or None) == (arrays["objecttags"][i] or None)


def _staged(tmp_path, rows: int = 2_000) -> tuple[list, str, str]:
    schema = pa.schema([pa.field("c0", pa.string()), pa.field("c1", pa.float64())])
    staging = skyorder.SkyOrderStaging(tmp_path, "staging", schema)
    staging.add(pa.RecordBatch.from_arrays([pa.array([f"o{i}" for i in range(rows)]), pa.array(np.arange(rows) * 0.5)],
                                           schema=schema))
    staging.sort(np.arange(rows))
    create = "CREATE TABLE object_catalog (row_id INTEGER PRIMARY KEY, objectid TEXT, x REAL)"
    insert = "INSERT INTO object_catalog (objectid, x) VALUES (?, ?)"
    return staging, create, insert


def test_a_second_writer_that_fails_refuses_the_catalog_and_leaves_no_file(tmp_path):
    staging, create, insert = _staged(tmp_path)
    buckets = [(k, tmp_path / f"gone-{k}.arrows") for k, _ in staging.buckets()]  # nothing to read
    apart = RowsApart(tmp_path / "rows.sqlite", buckets, staging.bucket_rows, 100, create, insert, 0)
    try:
        with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as conn:
            conn.execute(create)
            with pytest.raises(IngestError, match="second half of the rows failed: FileNotFoundError"):
                apart.append_to(conn, Timeline(), lambda: None)
            assert conn.execute("SELECT count(*) FROM object_catalog").fetchone() == (0,)
    finally:
        apart.close()
        staging.close()
    assert not (tmp_path / "rows.sqlite").exists()


def test_a_second_writer_that_dies_refuses_the_catalog_and_leaves_no_file(tmp_path):
    staging, create, insert = _staged(tmp_path)
    apart = RowsApart(tmp_path / "rows.sqlite", staging.buckets(), staging.bucket_rows, 100, create, insert, 0)
    try:
        os.kill(apart._process.pid, signal.SIGKILL)
        with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as conn:
            conn.execute(create)
            with pytest.raises(IngestError, match=r"ended \(exit code -9\) before it was done"):
                apart.append_to(conn, Timeline(), lambda: None)
    finally:
        apart.close()
        staging.close()
    assert sorted(os.listdir(tmp_path)) == ["catalog.sqlite"]


def test_rows_written_apart_are_appended_with_their_row_ids(tmp_path):
    staging, create, insert = _staged(tmp_path)
    apart = RowsApart(tmp_path / "rows.sqlite", staging.buckets(), staging.bucket_rows, 300, create, insert, 5_000)
    seen = []
    try:
        with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as conn:
            conn.execute(create)
            conn.execute("INSERT INTO object_catalog VALUES (4999, 'before', 0.0)")
            apart.append_to(conn, timeline := Timeline(), lambda: seen.append(apart.rows_written))
            rows = conn.execute("SELECT * FROM object_catalog ORDER BY row_id").fetchall()
    finally:
        apart.close()
        staging.close()
    assert rows == [(4999, "before", 0.0)] + [(5_000 + i, f"o{i}", i * 0.5) for i in range(2_000)]
    assert seen[-1] == 2_000 and apart.peak_rss_mb > 0
    assert [s.name for s in timeline.steps] == ["write rows apart", "append the rows written apart"]
    assert not (tmp_path / "rows.sqlite").exists()


def _ingest_script(tmp_path):
    """A script that ingests a catalog split between two processes at its top level, with
    no ``if __name__ == "__main__"``; it counts its runs in ``runs.txt``."""
    out, runs = tmp_path / "catalog", tmp_path / "runs.txt"
    out.mkdir()
    script = tmp_path / "ingest_script.py"
    script.write_text(textwrap.dedent(f"""\
        from pathlib import Path
        import numpy as np
        from lcpanel.core.catalogs import rowsapart, skyorder
        from lcpanel.core.catalogs.build import build_catalog

        with open({str(runs)!r}, "a") as fh:
            fh.write("ran\\n")
        skyorder.BUCKET_ROWS, rowsapart.SPLIT_MIN_ROWS = 100, 1
        rng = np.random.default_rng(1)
        arrays = {{"objectid": np.array([f"o{{i}}" for i in range(1000)]), "ra": rng.uniform(0, 360, 1000),
                   "decl": rng.uniform(-90, 90, 1000)}}
        built = build_catalog(Path({str(out)!r}), arrays, show_progress=False, kdtree=False)
        print([s.name for s in built.steps if s.thread == "rows-apart (process)"], built.nobjects)
    """))
    return script, runs


def test_a_script_that_ingests_at_its_top_level_runs_once(tmp_path):
    """The second process does not run the caller's main script again (as a process of
    :mod:`multiprocessing` would: a script with no ``if __name__ == "__main__"`` then failed)."""
    script, runs = _ingest_script(tmp_path)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['write rows apart'] 1000"
    assert runs.read_text() == "ran\n"


def test_the_working_directory_does_not_change_what_the_second_process_imports(tmp_path):
    """Run from a directory holding a package of the same name (a checkout of another
    version, say), the second process imports what the ingest imported."""
    script, _ = _ingest_script(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "lcpanel").mkdir(parents=True)
    (elsewhere / "lcpanel" / "__init__.py").write_text('raise SystemExit("the working directory\'s lcpanel")\n')
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "['write rows apart'] 1000"


def _ignores_sigint(pid: int) -> bool:
    """Whether process ``pid`` ignores SIGINT (the SigIgn mask of its /proc status)."""
    with open(f"/proc/{pid}/status") as fh:
        mask = next(line.split()[1] for line in fh if line.startswith("SigIgn:"))
    return bool(int(mask, 16) >> (signal.SIGINT - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the signal mask in /proc")
def test_ctrl_c_in_the_terminal_is_left_to_the_ingest(tmp_path):
    """SIGINT reaches the whole process group: the second process ignores it (no traceback
    of its own) and writes on; the ingest, if it stops, kills it (:meth:`RowsApart.close`).
    The signal is sent once the process's signal mask says it ignores SIGINT, not after a
    wait: without that, it never says so and the test fails."""
    staging, create, insert = _staged(tmp_path, rows=20_000)
    apart = RowsApart(tmp_path / "rows.sqlite", staging.buckets(), staging.bucket_rows, 50, create, insert, 0)
    try:
        pid = apart._process.pid
        while apart._process.poll() is None and not _ignores_sigint(pid):
            os.sched_yield()
        assert apart._process.returncode is None, "the second process ended before ignoring SIGINT"
        os.kill(pid, signal.SIGINT)
        with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as conn:
            conn.execute(create)
            apart.append_to(conn, Timeline(), lambda: None)
            assert conn.execute("SELECT count(*), max(row_id) FROM object_catalog").fetchone() == (20_000, 19_999)
    finally:
        apart.close()
        staging.close()
