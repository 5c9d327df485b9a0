"""The vectorised hat-csv reader (:mod:`lcpanel.core.objects.hatcsv`) against astrobase's
``hatlc.read_csvlc``, called directly: on the real HATNet light curve and on files made
from it with every irregularity astrobase's line splitting and Python casts treat in their
own way."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from lcpanel.core.objects import hatcsv
from support.gzdamage import DAMAGES, damaged
from test_formats_real import HAT

pytestmark = pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")


def _astrobase_read(path):
    from astrobase.hatsurveys import hatlc

    return hatlc.read_csvlc(str(path))


def assert_same_lcdict(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            other = got[key]
            assert isinstance(other, np.ndarray) and other.dtype == value.dtype and other.shape == value.shape, key
            if value.dtype.kind == "f":  # bit for bit: the FITS and Parquet exports write NaN's bits
                assert np.array_equal(other.view(np.uint64), value.view(np.uint64)), key
            else:  # object columns (an integer too large for int64 beside NaN) hold NaN too
                assert all(a == b or (a != a and b != b) for a, b in zip(other.tolist(), value.tolist())), key
        else:
            assert got[key] == value or (value != value and got[key] != got[key]), key


def _parts():
    text = gzip.decompress(HAT.read_bytes()).decode()
    start = text.index("# LIGHTCURVE\n") + len("# LIGHTCURVE\n")
    rows = [line.split(",") for line in text[start:].splitlines()[:6]]
    return text[:start], rows


def _write(tmp_path, name: str, text: str, gz: bool = True):
    path = tmp_path / (name + (".hatlc.csv.gz" if gz else ".hatlc.csv"))
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path


def _both(path):
    """Both readers' lcdicts, or both errors' types."""
    try:
        want = _astrobase_read(path)
    except Exception as exc:  # noqa: BLE001 -- the same failure is what is compared
        with pytest.raises(type(exc)):
            hatcsv.read_csvlc(str(path))
        return None, None
    return hatcsv.read_csvlc(str(path)), want


def test_the_real_hat_light_curve_reads_as_astrobase_reads_it_and_by_the_fast_path(monkeypatch):
    want = _astrobase_read(HAT)
    from astrobase.hatsurveys import hatlc

    def refuse(*args, **kwargs):
        raise AssertionError("fell back to astrobase's reader")

    monkeypatch.setattr(hatlc, "read_csvlc", refuse)
    monkeypatch.setattr(hatcsv, "_python_column", refuse)
    got = hatcsv.read_csvlc(str(HAT))
    assert len(got["rjd"]) == 10564 and got["aim_000"].dtype == np.float64 and got["stf"].dtype == np.int64
    assert_same_lcdict(got, want)


# (column, value) edits of the real rows: what Python casts and Arrow does not, what neither
# casts, signed and special floats, text with quotes, commas' neighbours and non-ASCII
EDITS = [("aim_000", ""), ("aim_000", " 14.5"), ("aim_000", "1_4.5"), ("aim_000", "-nan"), ("aim_000", "+inf"),
         ("aim_000", "Infinity"), ("aim_000", "1e400"), ("aim_000", "1.5e"), ("aim_000", "nan"), ("aim_000", "-0.0"),
         ("stf", "+1"), ("stf", "1.0"), ("stf", ""), ("stf", " 7"), ("stf", "99999999999999999999"), ("stf", "nan"),
         ("cfs", '"quoted"'), ("cfs", ""), ("cfs", "é"), ("net", "H S"), ("aiq_000", "'")]


@pytest.mark.parametrize("column, value", EDITS)
def test_edited_values_read_as_astrobase_reads_them(tmp_path, column, value):
    head, rows = _parts()
    names = _astrobase_read(HAT)["columns"]
    rows[2][names.index(column)] = value
    got, want = _both(_write(tmp_path, "edit", head + "\n".join(",".join(r) for r in rows) + "\n"))
    if want is not None:
        assert_same_lcdict(got, want)


@pytest.mark.parametrize("case", ["blank lines", "no final newline", "crlf", "short row", "long rows", "space line",
                                  "no rows", "not gzipped", "lcc marker"])
def test_irregular_files_read_as_astrobase_reads_them(tmp_path, case):
    head, rows = _parts()
    lines = [",".join(r) for r in rows]
    body = "\n".join(lines) + "\n"
    if case == "blank lines":
        body = "\n" + "\n\n".join(lines) + "\n\n"
    elif case == "no final newline":
        body = "\n".join(lines)
    elif case == "crlf":
        body = "\r\n".join(lines) + "\r\n"
    elif case == "short row":
        body = "\n".join(lines[:3] + [",".join(rows[3][:-2])] + lines[4:]) + "\n"
    elif case == "long rows":
        body = "\n".join(line + ",extra" for line in lines) + "\n"
    elif case == "space line":
        body = "\n".join(lines[:2] + [" "] + lines[2:]) + "\n"
    elif case == "no rows":
        body = ""
    text = head + body
    if case == "lcc marker":
        pytest.importorskip("astrobase")
        text = "LCC-CSVLC-V1" + text[12:]
    got, want = _both(_write(tmp_path, case.replace(" ", "-"), text, gz=case != "not gzipped"))
    if want is not None:
        assert_same_lcdict(got, want)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_gzip_fails_as_astrobase_fails(tmp_path, damage):
    """The fast reader decompresses with ISA-L; a damaged file must still raise the error
    astrobase (Python's gzip) raises for it."""
    path = tmp_path / f"{damage.replace(' ', '-')}.hatlc.csv.gz"
    path.write_bytes(damaged(HAT.read_bytes(), damage))
    got, want = _both(path)
    assert got is None and want is None  # both failed, with the same error (checked in _both)


def test_random_rows_read_as_astrobase_reads_them(tmp_path):
    """Rows whose values are drawn from what each column's cast accepts, rejects or reads
    differently from Arrow; the fast reader must give astrobase's lcdict every time."""
    head, rows = _parts()
    names = _astrobase_read(HAT)["columns"]
    rng = np.random.default_rng(23)
    floats = ["1.5", "-2.25", "nan", "", "inf", "-inf", "1e-5", " 3.0", "2_0", "x", "0", "+4", ".5", "5."]
    ints = ["1", "-3", "0", "+2", "", "nan", "1.5", " 4", "012", "9" * 20]
    texts = ["G", "", "a b", "HS", "é", "'q'"]
    pools = {float: floats, int: ints, str: texts}
    from astrobase.hatsurveys import hatlc

    for trial in range(25):
        out = []
        for _ in range(int(rng.integers(1, 40))):
            row = []
            for name in names:
                pool = pools.get(hatcsv.column_caster(hatlc, name), texts)
                common = rng.random() < 0.8
                row.append(str(rows[0][names.index(name)]) if common else pool[int(rng.integers(len(pool)))])
            out.append(",".join(row))
        got, want = _both(_write(tmp_path, f"fuzz{trial}", head + "\n".join(out) + "\n"))
        if want is not None:
            assert_same_lcdict(got, want)


def test_the_astrobase_format_reads_hat_csv_with_the_fast_reader():
    from pathlib import Path

    from lcpanel.plugins.lcformats import AstrobaseFormat

    fmt = AstrobaseFormat.from_spec({"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}, Path("."))
    reader = fmt.lcformat[1]
    assert getattr(reader, "func", reader) is hatcsv.read_csvlc


def test_bad_utf8_in_the_rows_fails_as_astrobase_fails(tmp_path):
    """Only the header is decoded by the fast reader: bytes that are not UTF-8 in a row
    must still give astrobase's UnicodeDecodeError, not an lcdict."""
    head, rows = _parts()
    raw = (head + "\n".join(",".join(r) for r in rows) + "\n").encode()
    at = raw.rindex(b",G,") + 1
    path = tmp_path / "bad.hatlc.csv.gz"
    path.write_bytes(gzip.compress(raw[:at] + b"\xff" + raw[at + 1:], mtime=0))
    with pytest.raises(UnicodeDecodeError):
        _astrobase_read(path)
    with pytest.raises(UnicodeDecodeError):
        hatcsv.read_csvlc(str(path))


def test_fixed_width_text_columns_are_made_from_arrows_bytes_as_python_makes_them():
    """A text column whose values are ASCII of one length (the real file's network, field and
    quality columns) is made from Arrow's buffers: the same array as ``np.array`` of the
    values, sliced arrays included; any other column is left to ``np.array``."""
    import pyarrow as pa

    rng = np.random.default_rng(5)
    taken = 0
    for trial in range(3000):
        n = int(rng.integers(1, 40))
        width = int(rng.integers(0, 6))
        alphabet = list("ab1-_ .'") + (["é"] if trial % 7 == 0 else []) + (["\x00"] if trial % 11 == 0 else [])
        values = ["".join(rng.choice(alphabet, width if rng.random() < 0.99 else int(rng.integers(0, 6))))
                  for _ in range(n)]
        array = pa.array(values, pa.string())
        skip = int(rng.integers(0, n)) if rng.random() < 0.3 else 0
        array, values = array.slice(skip), values[skip:]
        got = hatcsv._fixed_width_ascii(array)
        lengths = {len(v) for v in values}
        if got is None:
            assert not values or len(lengths) > 1 or lengths == {0} or not all(v.isascii() for v in values), values
            continue
        taken += 1
        want = np.array(values)
        assert got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes(), values
    assert taken > 1000
    assert hatcsv._fixed_width_ascii(pa.array(["ab", "cd"], pa.large_string())) is None  # 64-bit offsets


def test_numbers_arrow_parses_read_as_astrobase_reads_them(tmp_path, monkeypatch):
    """Rows of numbers Arrow's CSV reader parses itself (signs, NaN, infinities, out of
    range, leading zeros, no digit before or after the point): the columns it parses
    as numbers give astrobase's lcdict, and that way is taken (not the text one)."""
    head, rows = _parts()
    names = _astrobase_read(HAT)["columns"]
    from astrobase.hatsurveys import hatlc

    floats = ["1.5", "-2.25", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e-5", "1E5", "0", "+4", ".5", "5.",
              "-0.0", "1e400", "-1e-400", "0.1", "2455000.123456789", "007.25", "1.7976931348623157e308"]
    ints = ["1", "-3", "0", "012", "9223372036854775807", "-9223372036854775808"]  # "+2": Arrow refuses it
    pools = {float: floats, int: ints}
    typed = []
    read_rows = hatcsv._read_rows

    def spy(body, types, fail=False):
        table = read_rows(body, types, fail)
        typed.append(table is not None and any(t != hatcsv.pa.string() for t in types))
        return table

    monkeypatch.setattr(hatcsv, "_read_rows", spy)
    rng = np.random.default_rng(41)
    for trial in range(25):
        out = []
        for _ in range(int(rng.integers(1, 40))):
            row = []
            for name in names:
                pool = pools.get(hatcsv.column_caster(hatlc, name))
                keep = pool is None or rng.random() < 0.5
                row.append(str(rows[0][names.index(name)]) if keep else pool[int(rng.integers(len(pool)))])
            out.append(",".join(row))
        typed.clear()
        got, want = _both(_write(tmp_path, f"numbers{trial}", head + "\n".join(out) + "\n"))
        assert_same_lcdict(got, want)
        assert typed[0], trial  # the numbers were parsed by Arrow's CSV reader
