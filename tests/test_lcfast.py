"""The fast light-curve writers (lcpanel.core.objects.lcfast) against the astropy-based ones
(lcexport.SLOW_WRITERS), the reference: same bytes for CSV and FITS, the same VOTable
document but its producer comment, and astropy reads each back to the same values,
units, descriptions and time metadata; for the demo collection, the synthetic light
curves of test_lcexport and the real HAT and CDIPS light curves."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import subprocess
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from astropy.io import fits
from astropy.io.votable import parse as parse_votable
from astropy.table import Table

from lcpanel.core.objects.lcexport import SLOW_WRITERS, export_lightcurve
from lcpanel.core.objects.lcfast import FAST_WRITERS
from lcpanel.core.objects.lcrequest import prepare_lightcurve, read_lightcurve
from test_formats_real import CDIPS, HAT
from test_lcexport import make_lc


def demo_lightcurves(root: Path, n: int = 6):
    from lcpanel.plugins.lcformats import AstrobaseFormat

    spec = json.loads((root / "collection.json").read_text())["lcformat"]
    fmt = AstrobaseFormat.from_spec(spec, root)
    return [read_lightcurve(fmt, spec, p) for p in sorted((root / "lightcurves").glob("*"))[:n]]


def real_lightcurves():
    from lcpanel.plugins.lcformats import AstrobaseFormat

    out = []
    if HAT.exists():
        spec = {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}
        hat = read_lightcurve(AstrobaseFormat.from_spec(spec, Path(".")), spec, HAT)
        out += [hat, prepare_lightcurve(hat, masks="aiq_000_good")]
    return out


def cdips_lightcurves(tmp_path):
    from lcpanel.plugins.lcformats import FitsTableFormat
    from test_formats_real import make_cdips_collection

    root = make_cdips_collection(tmp_path)
    spec = json.loads((root / "collection.json").read_text())["lcformat"]
    fmt = FitsTableFormat.from_spec(spec, root)
    return [read_lightcurve(fmt, spec, root / "lightcurves" / p.name) for p in CDIPS]


def synthetic():
    base = make_lc()
    strings = replace(base, columns={**base.columns, "frame": np.array([f"F{i}" for i in range(len(base))]),
                                     "good": np.arange(len(base)) % 2 == 0})
    return [base, strings, make_lc(meta={}), make_lc(meta={"timesys": "UNKNOWN"})]


def read_fits(data: bytes) -> Table:
    return Table.read(io.BytesIO(data), format="fits", astropy_native=True)


def read_votable(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any astropy VOTable warning is a failure
        return parse_votable(io.BytesIO(data), verify="exception")


def assert_tables_equal(got: Table, want: Table):
    assert got.colnames == want.colnames
    for name in want.colnames:
        g, w = got[name], want[name]
        assert str(getattr(g, "unit", None)) == str(getattr(w, "unit", None)), name
        assert getattr(g, "description", None) == getattr(w, "description", None), name
        if hasattr(w, "scale"):  # astropy Time
            assert g.scale == w.scale and g.format == w.format, name
            np.testing.assert_array_equal(g.jd1, w.jd1)
            np.testing.assert_array_equal(g.jd2, w.jd2)
        else:
            assert g.dtype == w.dtype, name
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    assert dict(got.meta) == dict(want.meta)


def check_same(lc, tmp_path=None):
    for fmt, fast in FAST_WRITERS.items():
        got = fast(lc)
        want = SLOW_WRITERS[fmt](lc)
        assert got is not None, (fmt, lc.objectid)
        assert type(got) is bytes, (fmt, type(got))  # what a product member must be
        assert fast(lc) == got  # deterministic
        if fmt in ("csv", "ecsv"):
            assert got == want
        elif fmt == "csv.gz":
            assert gzip.decompress(got) == gzip.decompress(want)
        elif fmt == "fits":
            assert got == want
            assert_tables_equal(read_fits(got), read_fits(want))
            with fits.open(io.BytesIO(got)) as a, fits.open(io.BytesIO(want)) as b:
                assert a[1].header.tostring() == b[1].header.tostring()
        elif fmt == "votable":
            strip = re.compile(rb"<!--.*?-->\n", re.S)
            assert strip.sub(b"", got) == strip.sub(b"", want)
            vg, vw = read_votable(got), read_votable(want)
            tg, tw = vg.get_first_table(), vw.get_first_table()
            assert_tables_equal(tg.to_table(), tw.to_table())
            assert [(f.name, f.ref, f.ucd, f.unit, f.datatype) for f in tg.fields] == \
                [(f.name, f.ref, f.ucd, f.unit, f.datatype) for f in tw.fields]
            assert [(t.ID, t.timescale, t.refposition, t.timeorigin) for t in vg.time_systems] == \
                [(t.ID, t.timescale, t.refposition, t.timeorigin) for t in vw.time_systems]
            assert [(i.name, i.value, i.unit, i.content) for i in vg.resources[0].infos] == \
                [(i.name, i.value, i.unit, i.content) for i in vw.resources[0].infos]
            if tmp_path is not None and shutil.which("stilts"):
                path = tmp_path / "fast.vot"
                path.write_bytes(got)
                out = subprocess.run(["stilts", "votlint", f"votable={path}"], capture_output=True, text=True,
                                     timeout=120)
                bad = [line for line in (out.stdout + out.stderr).splitlines()
                       if line.startswith(("WARNING", "ERROR"))]
                assert not bad, bad
    # the public entry point uses the fast writers
    assert export_lightcurve(lc, "fits") == FAST_WRITERS["fits"](lc)


def test_fast_writers_equal_astropy_on_the_demo_collection(csv_collection, tmp_path):
    for i, lc in enumerate(demo_lightcurves(csv_collection)):
        check_same(lc, tmp_path if i == 0 else None)


@pytest.mark.parametrize("index", range(4))
def test_fast_writers_equal_astropy_on_synthetic_light_curves(index, tmp_path):
    check_same(synthetic()[index], tmp_path)


def test_the_votable_of_a_light_curve_is_binary2_and_reads_back_bit_for_bit(tmp_path):
    """A light curve's VOTable carries its rows as BINARY2 (the serialization the TAP
    service answers by default: no text round trip, nulls for every type): astropy and
    STILTS read back every value exactly, float32 and float64 (NaN included), 16- and
    64-bit integers, unsigned bytes, booleans, one-character and wider strings."""
    base = make_lc()
    n = len(base)
    rng = np.random.default_rng(3)
    columns = {**base.columns,
               "f32": (rng.normal(size=n) * 1e3).astype(np.float32),
               "big": rng.integers(-2**62, 2**62, size=n),
               "u8": rng.integers(0, 256, size=n).astype(np.uint8),
               "good": rng.random(n) < 0.5,
               "band": np.array(["g", "r", "", "i"] * n)[:n],
               "frame": np.array([f"F{i:03d}<&>" for i in range(n)])}
    lc = replace(base, columns=columns)
    data = export_lightcurve(lc, "votable")
    assert b"<BINARY2>" in data and b"<TABLEDATA>" not in data
    table = read_votable(data).get_first_table()
    assert {f.name: f.datatype for f in table.fields}["good"] == "boolean"
    for name, want in columns.items():
        got = table.array[name]
        nan = np.isnan(want) if want.dtype.kind == "f" else np.zeros(len(want), bool)
        assert (np.ma.getmaskarray(got) == nan).all(), name  # astropy masks NaN floats as it reads
        got = np.asarray(got.data)
        if want.dtype.kind == "U" and got.dtype.kind == "O":  # the variable-length one-character column
            got = got.astype(want.dtype)
        assert got.dtype.kind == want.dtype.kind, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        if want.dtype.kind == "f":
            assert (got.view(f"u{got.dtype.itemsize}") == want.view(f"u{want.dtype.itemsize}")).all(), name
    if shutil.which("stilts"):
        path = tmp_path / "lc.vot"
        path.write_bytes(data)
        out = subprocess.run(["stilts", "tpipe", f"in={path}", "ifmt=votable", "omode=out", "ofmt=csv"],
                             capture_output=True, text=True, timeout=120)
        rows = out.stdout.splitlines()
        assert rows[0].split(",")[-6:] == ["f32", "big", "u8", "good", "band", "frame"], out.stderr
        cells = rows[1].split(",")[-6:]
        assert (float(cells[0]), int(cells[1]), int(cells[2])) == (columns["f32"][0], columns["big"][0], columns["u8"][0])
        assert cells[3] == str(bool(columns["good"][0])).lower() and cells[4:] == ["g", "F000<&>"]


def test_a_light_curve_with_no_points_left_is_written_in_every_format(tmp_path):
    """A request can leave no points (a time range or mask that removes them all); the
    light curve, text columns included (HAT's layout), is still written in every format,
    the fast writers' output equal to astropy's."""
    base = synthetic()[1]
    check_same(replace(base, columns={k: np.asarray(v)[:0] for k, v in base.columns.items()}), tmp_path)


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
def test_fast_writers_equal_astropy_on_the_real_hat_light_curve(tmp_path):
    """As read, with a quality mask applied, and with that mask and times converted to
    BJD_TDB (votlint on the first: the masked ones differ only in their rows)."""
    hat, masked = real_lightcurves()
    check_same(hat, tmp_path)
    check_same(masked)
    check_same(prepare_lightcurve(masked, times="BJD_TDB", location={"lon": -110.88, "lat": 31.68, "height": 2345.0}))


@pytest.mark.skipif(len(CDIPS) < 2, reason="no CDIPS files")
def test_fast_writers_equal_astropy_on_the_real_cdips_light_curves(tmp_path):
    for lc in cdips_lightcurves(tmp_path):
        check_same(lc, tmp_path)


def test_unhandled_dtypes_fall_back_to_astropy():
    lc = make_lc()
    odd = replace(lc, columns={**lc.columns, "u": np.arange(len(lc), dtype=np.uint32)})
    assert FAST_WRITERS["fits"](odd) is None
    assert export_lightcurve(odd, "fits") == SLOW_WRITERS["fits"](odd)
    comma = replace(lc, columns={**lc.columns, "s": np.array(["a,b"] * len(lc))})
    assert FAST_WRITERS["csv"](comma) is None
    assert export_lightcurve(comma, "csv") == SLOW_WRITERS["csv"](comma)


@pytest.mark.parametrize("by_orjson", [True, False], ids=["orjson", "arrow"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float_text_is_pythons_on_values_of_every_magnitude(dtype, by_orjson, monkeypatch):
    """The vectorised float formatting writes exactly what ``repr`` (float64) or numpy's
    ``str`` (float32) writes, for values across every decade, the band
    edges, integral values, signed zeros, subnormals, the extremes and non-finite values;
    by orjson and by Arrow (the fallback should an orjson release write otherwise)."""
    from lcpanel.core.objects import lcfast
    from lcpanel.core.objects.lcfast import _float_text

    monkeypatch.setattr(lcfast, "_ORJSON_REPR", by_orjson)

    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    decades = np.arange(int(np.log10(info.tiny)) - 1, int(np.log10(info.max)) + 1)
    with np.errstate(over="ignore"):
        random = rng.uniform(1, 10, (len(decades), 400)) * 10.0 ** decades[:, None]
        edges = 10.0 ** decades[:, None] * np.array([1.0, 1 - 1e-9, 1 + 1e-9, 0.9, 1.1, 9.999999])
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, info.max, info.tiny, info.smallest_subnormal, 1.0, 2455000.0,
               2455000.123456789, 1e-4, 1e-6, 1e6, 1e10, 1e16, 0.1, 0.5, 12.25]
    values = np.concatenate([random.ravel(), edges.ravel(), rng.integers(-10**6, 10**6, 2000), special])
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
    values = np.concatenate([values, -values])
    got = _float_text(values, "NaN").to_pylist()
    if dtype == np.float32:
        want = [str(v) if np.isfinite(v) else "NaN" for v in values]
    else:
        want = [repr(v) if np.isfinite(v) else "NaN" for v in values.tolist()]
    wrong = [(w, g) for w, g in zip(want, got) if w != g]
    assert not wrong, wrong[:10]


def test_the_installed_orjson_writes_repr_so_the_fast_path_is_taken():
    """orjson's notation is its own choice; the writers check it once (and fall back to
    Arrow if a release changes it). With the orjson lcpanel installs, the check passes."""
    from lcpanel.core.objects import lcfast

    assert lcfast._ORJSON_REPR and lcfast._orjson_writes_repr()
    values = np.array([1.5, 2.0, np.nan, -0.0, 12345.678])
    assert lcfast._orjson_text(values).to_pylist() == ["1.5", "2.0", "null", "-0.0", "12345.678"]
    assert lcfast._orjson_text(values[:0]).to_pylist() == [] and lcfast._orjson_text(values[:1]).to_pylist() == ["1.5"]


def test_ecsv_header_is_written_by_libyaml_for_the_demo_and_real_light_curves(csv_collection, tmp_path):
    """The fast ECSV header (not astropy's, its fallback) is what the demo's and the real
    light curves get, and it is astropy's byte for byte (check_same compares the files)."""
    from lcpanel.core.objects.ecsvhead import ecsv_head

    lcs = demo_lightcurves(csv_collection, 3) + synthetic() + real_lightcurves()
    if len(CDIPS) >= 2:
        lcs += cdips_lightcurves(tmp_path)
    for lc in lcs:
        head = ecsv_head(lc)
        assert head is not None, lc.objectid
        empty = replace(lc, columns={k: np.asarray(v)[:0] for k, v in lc.columns.items()})
        assert head == SLOW_WRITERS["ecsv"](empty), lc.objectid


def hostile_text(rng, length):
    alphabet = list("abc XYZ019 _-.,:;#'\"{}[]&*!|>%@`?=<\\/\t\r\n") + ["\u00e9", "\u2013", "\u4e2d", "\u2028", "\ufeff"]
    specials = ["", " ", "yes", "No", "null", "~", "true", "1", "1.5", "0x1F", "1e5", "- a", ": a", "a: b", "a #b",
                "'", '"', ".inf", "2024-01-01", "12:30", "*ref", "&anchor", "!tag", "%x", "@x", "[a]", "{a}"]
    if rng.random() < 0.3:
        return str(rng.choice(specials))
    return "".join(rng.choice(alphabet, size=length))


def test_xml_text_wraps_as_textwrap_does():
    """Element text one line long is not run through ``textwrap`` (its cost in a VOTable
    header); the text must be what ``textwrap.fill`` gives, on hostile strings of every
    length around the 70-column wrap: runs of spaces, tabs, Unicode white space, hyphens."""
    import textwrap

    from astropy.utils.xml._iterparser import escape_xml_cdata

    from lcpanel.core.objects.lcfast import _clean, _xml_text

    rng = np.random.default_rng(5)
    alphabet = list("ab-_. ") + ["  ", "\t", "\u2028", "\xa0", "\u3000", "<&>", "\n", "\x1f"]
    for trial in range(3000):
        size = int(rng.integers(0, 80))
        text = "".join(rng.choice(alphabet, size))[:size]
        for indent in ("    ", "     "):
            want = escape_xml_cdata(textwrap.fill(_clean(text), initial_indent=indent, subsequent_indent=indent))
            assert _xml_text(text, indent) == want, (trial, text, indent)


def test_headers_equal_astropy_on_hostile_metadata():
    """Object ids, catalog values, column descriptions, units and notes anyone may set,
    of every length around the 130-column fold: the ECSV the fast writer makes is
    astropy's byte for byte, whether its libyaml header or astropy's fallback wrote it;
    so are the FITS and the VOTable (every fourth trial), one light curve after another
    (the header pieces the writers keep from one light curve to the next must not leak
    into the next one's: signed zeros, NaN, ids)."""
    from lcpanel.core.objects.ecsvhead import ecsv_head

    rng = np.random.default_rng(7)
    by_libyaml = 0  # light curves whose ECSV header the fast path wrote (not astropy's fallback)
    for trial in range(400):
        lc = make_lc()
        length = int(rng.choice([3, 20, 60, 90, 100, 105, 110, 115, 120, 125, 130, 140, 200]))
        info = {**lc.objectinfo, "objecttags": hostile_text(rng, length), "twomassid": hostile_text(rng, 10),
                "vmag": float(rng.choice([0.0, -0.0, 1e17, 1.5e-7, np.nan, 12.5]))}
        column_info = {**lc.column_info,
                       "aep_000": {"unit": str(rng.choice(["mag", "electron/s", "foo bar", ""])),
                                   "description": hostile_text(rng, length)}}
        meta = {**lc.meta, "magsys": hostile_text(rng, length)}
        if trial % 3 == 0:
            meta = {k: v for k, v in meta.items() if k != "timesys"}  # adds a long note
        objectid = hostile_text(rng, int(rng.choice([1, 12, 40]))) or "x"
        lc = replace(lc, objectid=objectid, objectinfo=info, column_info=column_info, meta=meta)
        got, want = FAST_WRITERS["ecsv"](lc), SLOW_WRITERS["ecsv"](lc)
        assert got == want, (trial, objectid)
        by_libyaml += ecsv_head(lc) is not None
        if trial % 4 == 0:
            assert FAST_WRITERS["fits"](lc) == SLOW_WRITERS["fits"](lc), (trial, objectid)
            strip = re.compile(rb"<!--.*?-->\n", re.S)
            got, want = (strip.sub(b"", w(lc)) for w in (FAST_WRITERS["votable"], SLOW_WRITERS["votable"]))
            assert got == want, (trial, objectid)
    assert 50 < by_libyaml < 400  # both ways are taken: the libyaml header and astropy's fallback


#: the missing-value text and the cell separator of each text format
_ROW_STYLES = {"csv": ("", ","), "ecsv": ("nan", " ")}


def _python_rows(columns, nan, between):
    """The rows as Python writes each cell: ``repr`` of floats (``nan`` when not
    finite), ``str`` of integers."""
    def cell(value, is_int):
        if isinstance(value, str):
            return value
        if is_int:
            return str(int(value))
        if not np.isfinite(value):
            return nan
        return repr(float(value))
    kinds = [c.dtype.kind in "iu" for c in columns]
    return "".join(between.join(cell(v, k) for v, k in zip(row, kinds)) + "\n"
                   for row in zip(*[c.tolist() for c in columns])).encode()


@pytest.mark.parametrize("style", sorted(_ROW_STYLES))
def test_numeric_rows_are_written_at_once_as_python_writes_them(style):
    """Light curves of float64 and integer columns (the demo's: times, magnitudes,
    errors, an int16 flag) are written in one orjson pass over the whole table; every
    cell must read as Python writes it: integral values, signed zeros, NaN, negative
    and large integers, one column and one row."""
    from lcpanel.core.objects.lcfast import _numeric_rows

    nan, between = _ROW_STYLES[style]
    rng = np.random.default_rng(7)
    for trial in range(60):
        n, k = int(rng.integers(1, 300)), int(rng.integers(1, 7))
        columns = []
        for j in range(k):
            kind = rng.choice(["time", "mag", "err", "int16", "int64", "whole"])
            if kind == "time":
                col = 2455000 + np.sort(rng.uniform(0, 3000, n))
            elif kind == "mag":
                col = rng.uniform(-2, 25, n).round(int(rng.integers(0, 8)))
            elif kind == "err":
                col = rng.uniform(1.2e-4, 0.5, n)
            elif kind == "whole":
                col = rng.integers(-10**6, 10**6, n).astype(np.float64)
            else:
                col = rng.integers(-(2**15) if kind == "int16" else -(10**9), 2**15 - 1, n).astype(kind)
            if col.dtype.kind == "f":
                pick = rng.random(n)
                col[pick < 0.05] = np.nan
                col[(pick > 0.05) & (pick < 0.08)] = 0.0
                col[(pick > 0.08) & (pick < 0.1)] = -0.0
            columns.append(col)
        got = _numeric_rows(columns, nan, between)
        assert got is not None, [c.dtype for c in columns]
        assert got == _python_rows(columns, nan, between), (trial, style)


def test_numeric_rows_leave_what_they_cannot_write_to_the_column_path():
    """Floats out of the band where orjson writes repr's text, float32 (whose text is not
    its float64 widening's), booleans, strings and integers float64 cannot hold or orjson
    would write in exponent notation: None (the column-by-column path writes them)."""
    from lcpanel.core.objects.lcfast import _numeric_rows

    t = np.array([2455000.5, 2455000.6])
    for odd in (np.array([1.5, 1e-7]), np.array([1.5, 3e12]), np.array([1.5, 2.5], np.float32),
                np.array([True, False]), np.array(["a", "b"]), np.array([1, 2**60]), np.array([1, 10**10])):
        assert _numeric_rows([t, odd], "", ",") is None, odd
    assert _numeric_rows([t, np.array([np.inf, 1.0])], "", ",") is None
    assert _numeric_rows([t, np.array([0, -3], np.int16)], "", ",") == b"2455000.5,0\n2455000.6,-3\n"


def _hostile_strings(rng, n):
    alphabet = list("abcXYZ019 _-.,\"'#&<>\t\r\n\x00\x01\x0b\x1f\x7fé✓")
    out = []
    for _ in range(n):
        size = int(rng.integers(0, 6))
        out.append("".join(rng.choice(alphabet, size)))
    return out


def test_string_column_checks_equal_pythons_on_hostile_strings():
    """The vectorised checks of unicode columns (ASCII only, holds a separator, empty)
    decide as Python does value by value, and the FITS bytes of
    an ASCII column are numpy's encoding: for random strings of separators, quotes,
    markup, control characters, NULs (inside and at the end) and non-ASCII letters."""
    from lcpanel.core.objects.lcfast import _codes, _holds_any

    rng = np.random.default_rng(3)
    alphabet = "a,\"' #&<>\t\r\n\x00\x01\x1fé"
    pairs = [[a + b] for a in alphabet for b in alphabet] + [["ok", a + "z"] for a in alphabet]
    for values in pairs + [_hostile_strings(rng, int(rng.integers(1, 6))) for _ in range(400)]:
        arr = np.array(values)
        if arr.dtype.itemsize == 0:
            continue
        kept = arr.tolist()  # numpy drops trailing NULs, as the writers see the values
        assert (_codes(arr) < 128).all() == all(v.isascii() for v in kept), kept
        for chars in (',"\r\n', ' "\'\t\r\n#,'):
            assert _holds_any(arr, chars) == any(c in v for v in kept for c in chars), (kept, chars)
        assert (_codes(arr)[:, 0] == 0).any() == any(not v or v[0] == "\0" for v in kept), kept
        if all(v.isascii() for v in kept):
            fits = _codes(arr).astype(np.uint8).view(f"S{arr.dtype.itemsize // 4}").ravel()
            assert fits.tolist() == np.char.encode(arr, "ascii").tolist(), kept


@pytest.mark.parametrize("style", ["csv", "ecsv"])
def test_rows_with_text_columns_are_written_as_python_writes_them(style):
    """Tables of numeric runs between text columns (HAT's layout): the runs are written
    by one orjson pass each and joined with the text by Arrow; every cell must read as
    Python writes it, including runs that fall back (a value out of orjson's band)."""
    from lcpanel.core.objects.lcfast import _body

    nan, between = _ROW_STYLES[style]
    rng = np.random.default_rng(17)
    for trial in range(60):
        n = int(rng.integers(1, 200))
        columns = []
        for j in range(int(rng.integers(1, 9))):
            kind = rng.choice(["float", "int", "text", "far"])
            if kind == "text":
                columns.append(np.array([f"F{int(v)}" for v in rng.integers(0, 10**6, n)]))
            elif kind == "int":
                columns.append(rng.integers(-1000, 1000, n).astype(np.int32))
            else:
                col = rng.uniform(-30, 30, n).round(int(rng.integers(0, 7)))
                col[rng.random(n) < 0.1] = np.nan
                if kind == "far":
                    col[0] = 3e-7  # outside orjson's band: its run goes column by column
                columns.append(col)
        want = _python_rows(columns, nan, between)
        assert _body(columns, nan, between) == want, trial


def test_a_light_curves_own_header_cards_are_written_without_astropy(csv_collection, monkeypatch):
    """The cards that differ from one light curve to the next (object id, position,
    magnitudes, row count) are formatted directly: at bulk-export scale each object's
    values are new, so a card made by ``astropy.io.fits.Card`` (0.02 ms each, ~16 per
    light curve) cannot come from a cache. The bytes stay astropy's (see the tests
    around this one)."""
    from astropy.io import fits as astropy_fits

    first = demo_lightcurves(csv_collection, n=1)[0]
    FAST_WRITERS["fits"](first)  # the collection's fixed cards may come from astropy, once
    made, counting = [], [False]
    real_card = astropy_fits.Card

    class CountingCard(real_card):
        def __init__(self, *args, **kwargs):
            if counting[0]:
                made.append(args[:1])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(astropy_fits, "Card", CountingCard)
    rng = np.random.default_rng(3)
    for k in range(20):
        info = {key: (float(rng.normal(12, 3)) if isinstance(value, float) else
                      int(rng.integers(0, 10**6)) if isinstance(value, int) and not isinstance(value, bool) else
                      value) for key, value in first.objectinfo.items()}
        lc = replace(first, objectid=f"LCP-X{k:05d}", objectinfo={**info, "objectid": f"LCP-X{k:05d}"})
        lc = replace(lc, columns={name: col[: len(col) - k] for name, col in lc.columns.items()})
        counting[0] = True
        got = FAST_WRITERS["fits"](lc)
        counting[0] = False
        assert got == SLOW_WRITERS["fits"](lc)
    assert made == [], "cards made by astropy for new values"


_KEYWORDS = st.one_of(st.sampled_from(["OBJECT", "RA", "DEC", "NAXIS2", "TTYPE1", "V-MAG", "A_B", "X" * 8, "",
                                       "END", "COMMENT", "HISTORY", "CONTINUE"]),
                      st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=1, max_size=8))
_PRINTABLE = st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
                       st.text(st.characters(min_codepoint=0, max_codepoint=300), max_size=12))


@settings(max_examples=3000, deadline=None)
@given(keyword=_KEYWORDS,
       value=st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-999, 999),
                       st.floats(allow_nan=False, allow_infinity=False), st.floats(-1e3, 1e3),
                       st.sampled_from([0.0, -0.0, 1e16, 1e-5, 123456789012.5, 5e-324, 1.7976931348623157e308]),
                       _PRINTABLE, st.sampled_from(["", "'", "a'b", " x ", "O'Neil" * 12])),
       comment=st.one_of(st.none(), st.just(""), _PRINTABLE))
def test_header_cards_are_astropys_byte_for_byte(keyword, value, comment):
    """Every card the FITS writer makes is the image astropy's ``Card`` gives for the same
    keyword, value and comment: value alignment, quotes doubled, 8-character minimum
    string, exponent 'E', comments cut at 80 columns, long strings on CONTINUE cards; and
    what astropy refuses (text that is not printable ASCII) is refused."""
    from lcpanel.core.objects.lcfast import _card

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=fits.verify.VerifyWarning)
        try:
            card = fits.Card(keyword, value, comment) if comment is not None else fits.Card(keyword, value)
            want = card.image.encode("ascii")
        except ValueError:  # not printable ASCII: refused by both
            with pytest.raises(ValueError):
                _card(keyword, value, comment)
            return
    assert _card(keyword, value, comment) == want


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=40),
                 st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
                 st.sampled_from(["", " ", "\t", "a\nb", "x\x7fy", "é", "\u00a0", "\u2028", "\x85"])))
def test_header_and_xml_text_cleaning_keeps_its_rules(text):
    """The short cuts for text with nothing to change give what the rules give: FITS
    header text is printable ASCII (non-ASCII '?', control characters a space), XML text
    has no control characters but tab, newline and carriage return."""
    from lcpanel.core.objects.lcexport import _fits_text
    from lcpanel.core.objects.lcfast import _clean

    assert _fits_text(text) == re.sub(r"[\x00-\x1f\x7f]", " ", text.encode("ascii", "replace").decode("ascii"))
    assert _clean(text) == re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", text)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.floats(), st.floats(-1e3, 1e3), st.floats(-1e-3, 1e-3),
                 st.sampled_from([0.0, -0.0, 1e16, 1e17, 1.5e-7, 5e-324, 1.7976931348623157e308])))
def test_ecsv_header_floats_are_written_as_astropys_yaml_dumper_writes_them(value):
    """A catalog value in the ECSV header (``- {VMAG: 12.5}``) is the text astropy's YAML
    dumper gives it: ``.nan``, ``.inf``, ``1.0e+17`` for an exponent without a point, and
    the plain ``repr`` otherwise."""
    from astropy.io.misc.yaml import AstropyDumper

    from lcpanel.core.objects.ecsvhead import _float_text

    assert _float_text(value) == AstropyDumper(io.StringIO()).represent_float(value).value


def test_votable_rows_of_mixed_columns_equal_astropys():
    """The BINARY2 stream of random tables mixing every column kind the fast VOTable writer
    takes (floats and integers of each width, booleans, one-character columns, empty cells
    among them, and wider text) is astropy's, byte for byte, and reads back as written."""
    rng = np.random.default_rng(23)
    strip = re.compile(rb"<!--.*?-->\n", re.S)
    kinds = ["f8", "f4", "i8", "i4", "i2", "u1", "b1", "char", "char-empties", "text"]
    for trial in range(80):
        n = int(rng.integers(1, 40))
        columns = {"btjd": 1000.0 + np.arange(n) * 0.02}
        for j, kind in enumerate(rng.choice(kinds, int(rng.integers(1, 9)))):
            if kind in ("f8", "f4"):
                values = rng.normal(12, 3, n).astype(kind)
                values[rng.random(n) < 0.2] = np.nan
            elif kind == "b1":
                values = rng.random(n) < 0.5
            elif kind.startswith("char"):
                letters = list("GXC0") + ([""] if kind == "char-empties" else [])
                values = np.array(rng.choice(letters, n).tolist() + ["G"])[:n]
            elif kind == "text":
                values = np.array([f"F{int(v)}"[: int(w)] for v, w in zip(rng.integers(0, 10**6, n),
                                                                         rng.integers(1, 8, n))])
            else:
                info = np.iinfo(kind)
                values = rng.integers(info.min, info.max, n, dtype=kind, endpoint=True)
            columns[f"c{j}_{kind}"] = values
        lc = replace(make_lc(), columns=columns, time_columns=("btjd",), mag_columns=(), err_columns=())
        got, want = FAST_WRITERS["votable"](lc), SLOW_WRITERS["votable"](lc)
        assert got is not None, trial
        assert strip.sub(b"", got) == strip.sub(b"", want), (trial, list(columns))
        back = read_votable(got).get_first_table().to_table()
        for name, values in columns.items():
            if values.dtype.kind == "U":
                assert [str(v) for v in back[name].filled("")] == values.tolist(), (trial, name)
            elif name != "btjd":
                np.testing.assert_array_equal(np.asarray(back[name]), values, err_msg=f"{trial} {name}")


def test_text_columns_become_the_strings_tolist_gives():
    """A unicode column as Arrow strings, made from its code points when ASCII: the values
    ``tolist`` gives (trailing NULs dropped, inner ones kept, empty strings), for random
    columns of hostile strings; non-ASCII columns take Python's way and agree too."""
    import pyarrow as pa

    from lcpanel.core.objects.lcfast import _unicode_text

    rng = np.random.default_rng(29)
    ascii_arrays = 0
    for trial in range(600):
        values = _hostile_strings(rng, int(rng.integers(1, 30)))
        if trial % 4:  # mostly ASCII, the shortcut's case
            values = [v.replace("é", "e").replace("✓", "\0") for v in values]
        arr = np.array(values)
        if arr.dtype.itemsize == 0:
            continue
        ascii_arrays += all(v.isascii() for v in values)
        if trial % 3 == 0:
            arr = arr[int(rng.integers(0, len(arr))):]  # a slice: an offset into the buffer
        got = _unicode_text(arr)
        assert got.type == pa.string()
        assert got.to_pylist() == arr.tolist(), (trial, arr.tolist())
    assert ascii_arrays > 300
