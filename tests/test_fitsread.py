"""The columns of a FITS binary-table light curve (the ``fits-table`` format, TESS CDIPS
in tests/realdata): read straight from the file's bytes when the table is plain, through
astropy otherwise, and in both cases what astropy reads: the same names in the same order,
dtypes and values (NaN, infinities and extremes bit for bit; text as astropy decodes it)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits

from lcpanel.core.objects.fitsread import plain_layout, table_columns
from test_formats_real import CDIPS

KINDS = ("D", "E", "J", "I", "K", "B", "L", "A")


def astropy_columns(path, index=1) -> dict[str, np.ndarray]:
    """What the fits-table reader read before this module: every 1-d column as astropy
    gives it, in native byte order, bytes decoded (ASCII, unknown bytes replaced)."""
    out = {}
    with fits.open(path, memmap=False) as hdul:
        hdu = hdul[index]
        for col in hdu.columns:
            values = np.asarray(hdu.data[col.name])
            if values.ndim != 1:
                continue
            if values.dtype.kind == "S":
                values = np.char.decode(values, "ascii", errors="replace")
            out[col.name] = values.astype(values.dtype.newbyteorder("="))
    return out


def read(path, index=1):
    with fits.open(path, memmap=False) as hdul:
        return table_columns(path, hdul, index), plain_layout(hdul[index].header) is not None


def assert_same(got: dict, want: dict):
    assert list(got) == list(want)
    for name in want:
        g, w = got[name], want[name]
        assert g.dtype == w.dtype, (name, g.dtype, w.dtype)
        assert g.dtype.isnative and g.ndim == 1
        if w.dtype.kind == "O":  # a variable-length column: an array per row
            assert all(np.array_equal(a, b) for a, b in zip(g, w)) and len(g) == len(w), name
        elif w.dtype.kind == "f":  # bit for bit, NaN payloads included
            assert g.view(f"u{w.dtype.itemsize}").tolist() == w.view(f"u{w.dtype.itemsize}").tolist(), name
        else:
            assert g.tolist() == w.tolist(), name


def random_column(rng, kind: str, n: int, j: int) -> fits.Column:
    name = f"C{j}_{kind}" if rng.random() < 0.8 else f"lower_{j}"
    if kind in ("D", "E"):
        values = rng.normal(0, 10.0 ** rng.integers(-3, 12), n).astype("f8" if kind == "D" else "f4")
        special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, np.finfo("f4").max])
        pick = rng.random(n) < 0.2
        values[pick] = rng.choice(special, int(pick.sum())).astype(values.dtype)
        return fits.Column(name=name, format=kind, array=values)
    if kind in ("J", "I", "K", "B"):
        dtype = {"J": "i4", "I": "i2", "K": "i8", "B": "u1"}[kind]
        info = np.iinfo(dtype)
        return fits.Column(name=name, format=kind,
                           array=rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True))
    if kind == "L":
        return fits.Column(name=name, format="L", array=rng.random(n) < 0.5)
    width = int(rng.integers(1, 12))
    letters = list("abXY09 _-.") + ["\x00"] * 2
    values = ["".join(rng.choice(letters, int(rng.integers(0, width + 1)))) for _ in range(n)]
    return fits.Column(name=name, format=f"{width}A", array=np.array(values, dtype=f"S{width}"))


def test_plain_tables_read_as_astropy_reads_them(tmp_path):
    rng = np.random.default_rng(31)
    for trial in range(120):
        n = int(rng.integers(0, 40))
        cols = [random_column(rng, kind, n, j) for j, kind in enumerate(rng.choice(KINDS, int(rng.integers(1, 10))))]
        path = tmp_path / f"t{trial}.fits"
        hdus = [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]
        if trial % 5 == 0:  # the table further into the file
            hdus.insert(1, fits.ImageHDU(np.zeros((3, 7), np.float32)))
        fits.HDUList(hdus).writeto(path)
        index = len(hdus) - 1
        got, plain = read(path, index)
        assert plain, (trial, [c.format for c in cols])
        assert_same(got, astropy_columns(path, index))


def test_text_cells_with_spaces_nuls_and_other_bytes_are_decoded_as_astropy_decodes_them(tmp_path):
    """Space padding is kept, trailing NULs are not; a column holding bytes that are not
    ASCII reads with them replaced (astropy leaves such a column undecoded)."""
    cells = [b" ab  ", b"ab", b"", b"a b\x00 ", b"abcde", b"\x00\x00", b"x\xe9y", b"\xff"]
    for with_other in (False, True):
        values = cells if with_other else cells[:6]
        path = tmp_path / f"text{with_other}.fits"
        marks = [f"Q{i:04d}".encode() for i in range(len(values))]
        col = fits.Column(name="s", format="5A", array=np.array(marks))
        fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
        raw = bytearray(path.read_bytes())  # astropy strips spaces when it writes: put the cells in after
        for mark, v in zip(marks, values):
            at = raw.index(mark)
            raw[at:at + 5] = v.ljust(5, b"\x00")
        path.write_bytes(bytes(raw))
        got, plain = read(path)
        assert plain
        assert_same(got, astropy_columns(path))
        assert got["s"][0] == " ab  "


@pytest.mark.parametrize("case", ["scaled", "unsigned", "two_d", "tdim", "bits", "varlength", "gzip"])
def test_tables_that_are_not_plain_are_read_by_astropy(tmp_path, case):
    n = 6
    t = fits.Column(name="t", format="D", array=np.arange(n) + 2457000.5)
    extra = {
        "scaled": fits.Column(name="f", format="J", array=np.arange(n, dtype=np.int32) * 150),
        "unsigned": fits.Column(name="u", format="I", bzero=32768, array=np.arange(n, dtype=np.uint16) * 9000),
        "two_d": fits.Column(name="m", format="3D", array=np.arange(3 * n, dtype=float).reshape(n, 3)),
        "tdim": fits.Column(name="s", format="6A", dim="(3,2)", array=np.array([[b"abc", b"de"]] * n)),
        "bits": fits.Column(name="x", format="8X", array=np.zeros((n, 8), bool)),
        "varlength": fits.Column(name="v", format="PD()", array=np.array([np.arange(i + 1.0) for i in range(n)],
                                                                         dtype=object)),
        "gzip": fits.Column(name="e", format="E", array=np.linspace(1, 2, n, dtype=np.float32)),
    }[case]
    path = tmp_path / "t.fits"
    table = fits.BinTableHDU.from_columns([t, extra])
    if case == "scaled":
        table.header["TSCAL2"], table.header["TZERO2"] = 0.01, 5.0
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    if case == "gzip":
        packed = tmp_path / "t.fits.gz"
        packed.write_bytes(gzip.compress(path.read_bytes(), compresslevel=0))  # longer than the FITS stream
        path = packed
    got, _ = read(path)
    with fits.open(path) as hdul:
        if case != "gzip":
            assert plain_layout(hdul[1].header) is None
    assert_same(got, astropy_columns(path))
    assert "t" in got
    if case == "scaled":
        assert got["f"].tolist() == pytest.approx([5.0 + 1.5 * i for i in range(n)])


@pytest.mark.skipif(len(CDIPS) < 2, reason="no CDIPS files")
def test_the_real_cdips_light_curves_are_plain_and_read_as_astropy_reads_them():
    for path in CDIPS:
        got, plain = read(path)
        assert plain
        assert_same(got, astropy_columns(path))
        assert len(got) == 34 and len(got["TMID_BJD"]) == 985


def every_card(header, table_header) -> dict:
    """Every card of both headers read into one dict, the table's over the primary's: what
    fits_column_info read before it looked up only the time keywords."""
    merged = {}
    for hdr in (header, table_header):
        merged.update({k: hdr[k] for k in hdr if k and k not in ("COMMENT", "HISTORY", "")})
    return merged


def test_time_keywords_equal_those_of_every_card_read():
    """Time keywords in either header or both (the table's win), in each of their forms,
    among column and other cards: the keywords fits_column_info's time facts come from,
    looked up one by one, are those reading every card found."""
    from lcpanel.core.objects.formatinfo import _TIME_KEYWORDS, fits_time_keywords

    rng = np.random.default_rng(37)
    time_keys = {"TIMESYS": ["TDB", "utc", " TT ", "GPS", "MARS", ""], "TIMEREF": ["SOLARSYSTEM", "LOCAL", "x"],
                 "TREFPOS": ["BARYCENTER", "TOPOCENTER", ""], "BJDREFI": [2457000, 0], "BJDREFF": [0.5, 0.0],
                 "JDREFI": [2400000], "JDREFF": [0.25], "JDREF": [2450000.0], "MJDREF": [0.0, 58000.5],
                 "MJDREFI": [58000], "MJDREFF": [0.125]}
    units = ["mag", "day", "days", "pixels", "unitless", "-", "", "electron/s", "degcelcius"]
    for trial in range(300):
        primary, table = fits.Header(), fits.Header()
        for key, choices in time_keys.items():
            for hdr in (primary, table):
                if rng.random() < 0.25:
                    hdr[key] = choices[int(rng.integers(0, len(choices)))]
        for i in range(1, int(rng.integers(0, 8)) + 1):
            table[f"TTYPE{i}"] = (f"COL{i}", "" if rng.random() < 0.3 else f"column {i} <&>")
            table[f"TFORM{i}"] = "D"
            if rng.random() < 0.7:
                table[f"TUNIT{i}"] = str(rng.choice(units))
        primary["OBJECT"] = "x"
        table["HISTORY"] = "made here"
        want = {k: v for k, v in every_card(primary, table).items() if k in _TIME_KEYWORDS}
        assert fits_time_keywords(primary, table) == want, trial


def test_a_table_longer_than_its_file_is_left_to_astropy(tmp_path):
    """A header promising more rows than the file holds (a truncated or corrupt file) is
    not read directly, and nothing the size of its promise is allocated."""
    from lcpanel.core.objects.fitsread import _table_bytes

    path = tmp_path / "t.fits"
    col = fits.Column(name="t", format="D", array=np.arange(10.0))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([col])]).writeto(path)
    with fits.open(path) as hdul:
        offset = hdul[1].fileinfo()["datLoc"]
    assert _table_bytes(path, offset, 80) is not None
    assert _table_bytes(path, offset, 10**15) is None
