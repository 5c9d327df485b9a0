"""The ingest's id index without a check of each id: the columns found plain (printable
ASCII without spaces) while the rows are staged are normalised by SQLite's ``lower``
alone; a column with one other id anywhere, in any batch, keeps the check. Either way
the index equals :func:`normalize_id` of every stored value, worked out in Python."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import numpy as np
import pyarrow as pa
import pytest

from lcpanel.core.catalogs.build import BATCH_ROWS, CATALOG_SQLITE, _all_plain, _PlainIds, build_catalog
from lcpanel.core.catalogs.columns import ColumnInfo
from lcpanel.core.catalogs.idindex import TABLE, is_plain, normalize_id

#: every ASCII character, in the middle of an id, and some that are not ASCII
ODD = [f"ab{chr(c)}CD" for c in range(128)] + ["abé", "ABΣ", "x\u00a0y", "Ｔｉｃ１", "ǅx", "ﬁ"]


def test_plain_is_what_normalize_id_only_lower_cases():
    for text in ODD + ["LCP-000123", "J19200000+4500000", "~!_-+", "tic:25155310", ""]:
        if is_plain(text):
            assert normalize_id(text) == text.lower(), text
    assert [chr(c) for c in range(128) if is_plain(f"ab{chr(c)}CD")] == [chr(c) for c in range(33, 127)]


@pytest.mark.parametrize("text", ODD)
def test_the_arrow_check_of_a_batch_agrees_with_is_plain(text):
    values = pa.array(["LCP-1", None, text, "J123+45"], pa.string())
    assert _all_plain(values) == is_plain(text)
    assert _all_plain(values.slice(3)) and _all_plain(values.slice(0, 2))  # slices: their own strings only


def test_a_column_once_mixed_stays_mixed():
    columns = [ColumnInfo(name="objectid", key="objectid", sqltype="TEXT"),
               ColumnInfo(name="twomassid", key="twomassid", sqltype="TEXT")]
    plain = _PlainIds(["objectid", "twomassid"])

    def batch(ids, twomass):
        return pa.RecordBatch.from_arrays([pa.array(ids), pa.array(twomass)], names=["c0", "c1"])

    plain.check(columns, batch(["A-1", "A-2"], ["J1", "J2"]))
    assert plain.columns == {"objectid", "twomassid"}
    plain.check(columns, batch(["A-3", "A-4"], ["J 3", "J4"]))
    plain.check(columns, batch(["A-5", "A-6"], ["J5", "J6"]))
    assert plain.columns == {"objectid"}


def _arrays(n: int, odd: dict[str, tuple[int, str]]) -> dict:
    """A catalog of ``n`` rows, every id plain but for ``odd``: column -> (row, value)."""
    rng = np.random.default_rng(11)
    arrays = {
        "objectid": np.array([f"Obj-{i:07d}" for i in range(n)], dtype=object),
        "ra": rng.uniform(0, 360, n),
        "decl": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "twomassid": np.array([f"J{i:08d}+{(7 * i) % 10_000_000:07d}" for i in range(n)], dtype=object),
        "ticid": np.array([str(10_000_000 + 37 * i) for i in range(n)], dtype=object),
        "gaia_id": np.array([f"Gaia DR3 {i}" if i % 2 else f"G{i}" for i in range(n)], dtype=object),
        "vmag": rng.uniform(8, 16, n),
    }
    for column, (row, value) in odd.items():
        arrays[column][row] = value
    return arrays


def _index_and_brute_force(path) -> tuple[list, list]:
    with closing(sqlite3.connect(path)) as conn:
        got = conn.execute(f"SELECT norm, col, row_id FROM {TABLE} ORDER BY norm, col, row_id").fetchall()
        names = [r[0] for r in conn.execute("SELECT name FROM object_id_columns ORDER BY col")]
        rows = conn.execute(f"SELECT row_id, {', '.join(names)} FROM object_catalog").fetchall()
    expected = sorted({(normalize_id(v), k, r[0]) for r in rows for k, v in enumerate(r[1:])
                       if v is not None and normalize_id(v) != ""})
    return got, expected


def test_an_ingest_whose_ids_are_all_plain_but_a_few_late_ones_indexes_every_id_as_python_would(tmp_path):
    """Three batches; the odd ids sit in the second and the last: a tab and inner spaces
    (to be collapsed), capitals and non-ASCII (case-folded, NFKC), a trailing space."""
    n = 2 * BATCH_ROWS + 1_000
    odd = {"objectid": (n - 3, "Obj  Δ\t7"), "twomassid": (BATCH_ROWS + 5, "J 0001\t+ 02 "),
           "ticid": (n - 1, "ＴＩＣ 42")}
    build_catalog(tmp_path, _arrays(n, odd), show_progress=False, kdtree=False)
    got, expected = _index_and_brute_force(tmp_path / CATALOG_SQLITE)
    assert got == expected
    assert len(got) == 4 * n  # every object has four ids, none normalises to nothing
    assert any(e[0] == "obj δ 7" and e[1] == 0 for e in got)
    assert any(e[0] == "j 0001 + 02" and e[1] == 1 for e in got)
    assert any(e[0] == "tic 42" and e[1] == 2 for e in got)


def test_an_ingest_whose_ids_are_all_plain_indexes_them_as_python_would(tmp_path):
    n = BATCH_ROWS + 500
    build_catalog(tmp_path, _arrays(n, {}), show_progress=False, kdtree=False)
    got, expected = _index_and_brute_force(tmp_path / CATALOG_SQLITE)
    assert got == expected and len(got) == 4 * n
