"""Light-curve export: every format reads back with astropy (or csv) to the same values,
units, descriptions and time system; output is byte-deterministic; flags stay integers."""

from __future__ import annotations

import csv
import gzip
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse as parse_votable
from astropy.table import Table

from lcpanel.core.objects.lcexport import EXPORT_FORMATS, export_lightcurve, lightcurve_table
from lcpanel.core.objects.lcformats import LightCurve
from lcpanel.errors import UserError

FORMATS = ("csv", "csv.gz", "fits", "ecsv", "votable")
N = 12


def make_lc(**changes) -> LightCurve:
    """BJD_TDB - 2457000 times, two apertures (a NaN in each), errors (one float32), int flags 0..3."""
    t = 1000.0 + np.arange(N) * 0.0208333
    mag1 = np.round(12.0 + 0.01 * np.sin(np.arange(N)), 5)
    mag2 = mag1 + 0.25
    mag1[3] = np.nan
    mag2[7] = np.nan
    kwargs = {
        "objectid": "LCP-000042",
        "columns": {
            "btjd": t,
            "aep_000": mag1,
            "aie_000": np.full(N, 0.004),
            "aep_001": mag2,
            "aie_001": np.full(N, 0.006, dtype=np.float32),
            "qflag": (np.arange(N) % 4).astype(np.int16),
        },
        "objectinfo": {"objectid": "LCP-000042", "ra": 290.125, "decl": 45.5, "vmag": 12.3,
                       "twomassid": "J19203000+4530000", "ndet": N, "objecttags": "rrab, blend",
                       "gaiaid": np.int64(2130000000000000001), "bmag": float("nan"),
                       "colors": [0.1, 0.2], "missing": None},
        "column_info": {
            "btjd": {"unit": "days", "description": "BJD_TDB - 2457000 at mid-exposure"},
            "aep_000": {"unit": "mag", "description": "magnitude in aperture 0"},
            "aie_000": {"description": "magnitude error in aperture 0"},
            "qflag": {"unit": "", "description": "quality bits: 1 = bad frame, 2 = outlier"},
        },
        "meta": {"timesys": "TDB", "timeref": "BJD", "timeoffset": 2457000.0, "magsys": "Vega",
                 "magsarefluxes": False},
        "time_columns": ("btjd",),
        "mag_columns": ("aep_000", "aep_001"),
        "err_columns": ("aie_000", "aie_001"),
    }
    kwargs.update(changes)
    return LightCurve(**kwargs)


UNITS = {"btjd": "d", "aep_000": "mag", "aie_000": "mag", "aep_001": "mag", "aie_001": "mag", "qflag": None}
DESCRIPTIONS = {
    "btjd": "BJD_TDB - 2457000 at mid-exposure",
    "aep_000": "magnitude in aperture 0",
    "aie_000": "magnitude error in aperture 0",
    "aep_001": "magnitude",
    "aie_001": "magnitude error",
    "qflag": "quality bits: 1 = bad frame, 2 = outlier",
}


def read_csv(data: bytes) -> tuple[dict[str, str], dict[str, tuple], dict[str, np.ndarray]]:
    """(header metadata, column name -> (unit, description), column name -> raw strings)."""
    lines = data.decode("utf-8").splitlines()
    header = [line[2:] for line in lines if line.startswith("# ")]
    meta, columns = {}, {}
    for line in header:
        key, _, rest = line.partition(": ") if not line.startswith("column ") else line.partition(":")
        if key.startswith("column "):
            name, _, unit = key[len("column "):].partition(" [")
            columns[name] = (unit.rstrip("]") or None, rest.strip())
        else:
            meta[key] = rest
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    names, body = rows[0], rows[1:]
    values = {name: np.array([row[i] for row in body]) for i, name in enumerate(names)}
    return meta, columns, values


def csv_column(raw: np.ndarray, like: np.ndarray) -> np.ndarray:
    if like.dtype.kind == "f":
        return np.array([float(v) if v != "" else np.nan for v in raw], dtype=like.dtype)
    return raw.astype(like.dtype)


def assert_same_values(got, expected: np.ndarray):
    if np.ma.isMaskedArray(got):  # VOTable readers mask NaN cells
        assert not got.mask.any() if expected.dtype.kind != "f" else True
        got = np.ma.filled(got, np.nan) if expected.dtype.kind == "f" else got.data
    got = np.asarray(got)
    np.testing.assert_array_equal(got, expected)  # NaN == NaN here


def assert_columns_round_trip(table: Table, lc: LightCurve):
    assert table.colnames == list(lc.columns)
    for name, expected in lc.columns.items():
        assert_same_values(table[name], expected)
        assert table[name].dtype.kind == expected.dtype.kind, name
    assert table["qflag"].dtype.kind == "i"
    assert np.asarray(table["qflag"]).tolist() == [0, 1, 2, 3] * (N // 4)


def assert_units_descriptions(table: Table, descriptions=True):
    for name, unit in UNITS.items():
        got = table[name].unit
        assert (got.to_string() if got is not None else None) == unit, name
        if descriptions:
            assert table[name].description == DESCRIPTIONS[name], name


# -- the format list and errors -----------------------------------------------------

def test_export_formats_table():
    assert set(EXPORT_FORMATS) == set(FORMATS)
    for suffix, mime, description in EXPORT_FORMATS.values():
        assert suffix.startswith(".") and "/" in mime and description
    assert EXPORT_FORMATS["fits"].mime == "application/fits"


@pytest.mark.parametrize("fmt", ["xlsx", "fit", "", "CSV.GZ "])
def test_unknown_format_is_a_user_error_naming_the_known_ones(fmt):
    with pytest.raises(UserError) as err:
        export_lightcurve(make_lc(), fmt)
    assert repr(fmt) in err.value.message
    for name in FORMATS:
        assert name in err.value.message
    if fmt == "fit":
        assert "did you mean 'fits'" in err.value.message


# -- determinism --------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_same_light_curve_gives_the_same_bytes(fmt):
    first = export_lightcurve(make_lc(), fmt)
    assert export_lightcurve(make_lc(), fmt) == first
    assert export_lightcurve(make_lc(), fmt) == export_lightcurve(make_lc(), fmt)
    other = make_lc(objectid="LCP-000043")
    assert export_lightcurve(other, fmt) != first


def test_no_timestamps_written():
    data = export_lightcurve(make_lc(), "fits")
    with fits.open(io.BytesIO(data)) as hdul:
        for hdu in hdul:
            assert not {"DATE", "CHECKSUM", "DATASUM"} & set(hdu.header)
    gz = export_lightcurve(make_lc(), "csv.gz")
    assert gz[4:8] == b"\0\0\0\0"  # gzip MTIME


# -- each format reads back ---------------------------------------------------------

def test_csv_round_trip():
    lc = make_lc()
    meta, columns, values = read_csv(export_lightcurve(lc, "csv"))
    assert meta["objectid"] == "LCP-000042"
    assert meta["timesys"] == "TDB" and meta["timeoffset"] == "2457000.0"
    assert float(meta["ra"]) == 290.125
    assert list(values) == list(lc.columns)
    for name, expected in lc.columns.items():
        assert_same_values(csv_column(values[name], expected), expected)
        unit, description = columns[name]
        assert unit == UNITS[name]
        assert description == DESCRIPTIONS[name]
    assert values["aep_000"][3] == ""  # NaN is an empty cell
    assert values["qflag"].tolist() == ["0", "1", "2", "3"] * (N // 4)  # no "0.0"


def test_csv_gz_is_the_gzipped_csv():
    lc = make_lc()
    assert gzip.decompress(export_lightcurve(lc, "csv.gz")) == export_lightcurve(lc, "csv")


def test_fits_round_trip():
    lc = make_lc()
    data = export_lightcurve(lc, "fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean file: no unit or verify warnings on reading
        table = Table.read(io.BytesIO(data), format="fits")
    assert_columns_round_trip(table, lc)
    assert_units_descriptions(table, descriptions=False)
    # FITS data are big-endian; the types themselves are kept
    assert table["qflag"].dtype.newbyteorder("=") == np.int16
    assert table["aie_001"].dtype.newbyteorder("=") == np.float32
    raw = Table.read(io.BytesIO(data), format="fits", mask_invalid=False)
    assert np.isnan(raw["aep_000"][3]) and np.isnan(raw["aep_001"][7])  # NaN in the file

    with fits.open(io.BytesIO(data)) as hdul:
        hdul.verify("exception")
        header = hdul["LIGHTCURVE"].header
        assert header["TIMESYS"] == "TDB"
        assert header["TIMEUNIT"] == "d"
        assert header["TREFPOS"] == "BARYCENTER" and header["TIMEREF"] == "SOLARSYSTEM"
        assert header["JDREF"] == 2457000.0
        assert header["OBJECT"] == "LCP-000042" and hdul[0].header["OBJECT"] == "LCP-000042"
        assert header["RA"] == 290.125 and header["DEC"] == 45.5
        assert "deg" in header.comments["RA"]
        assert header["MAGSYS"] == "Vega" and header["MAGSFLUX"] is False
        assert header["VMAG"] == 12.3 and header["NDET"] == N
        assert header["TWOMASSID"] == "J19203000+4530000"  # a HIERARCH card
        assert header["GAIAID"] == 2130000000000000001
        for key in ("BMAG", "COLORS", "MISSING"):  # NaN, list, None: left out
            assert key not in header
        for index, name in enumerate(lc.columns, start=1):
            assert header[f"TTYPE{index}"] == name
            assert header[f"TCOMM{index}"] == DESCRIPTIONS[name]
            assert header.comments[f"TTYPE{index}"] == DESCRIPTIONS[name]
            assert header.get(f"TUNIT{index}") == UNITS[name]
    # astropy's FITS time machinery accepts the time keywords
    Table.read(io.BytesIO(data), format="fits", astropy_native=True)


def test_ecsv_round_trip():
    lc = make_lc()
    table = Table.read(io.BytesIO(export_lightcurve(lc, "ecsv")), format="ascii.ecsv")
    assert_columns_round_trip(table, lc)
    assert_units_descriptions(table)
    assert table["qflag"].dtype == np.int16 and table["aie_001"].dtype == np.float32
    assert table.meta["TIMESYS"] == "TDB" and table.meta["JDREF"] == 2457000.0
    assert table.meta["OBJECT"] == "LCP-000042" and table.meta["TWOMASSID"] == "J19203000+4530000"
    assert dict(table.meta) == dict(lightcurve_table(lc).meta)


def test_votable_round_trip_and_valid():
    lc = make_lc()
    data = export_lightcurve(lc, "votable")
    votable = parse_votable(io.BytesIO(data), verify="exception")
    assert votable.version == "1.4"
    (timesys,) = votable.time_systems
    assert (timesys.timescale, timesys.refposition, timesys.timeorigin) == ("TDB", "BARYCENTER", 2457000.0)
    element = votable.get_first_table()
    fields = {f.name: f for f in element.fields}
    assert fields["btjd"].ref == timesys.ID
    assert fields["aep_000"].ref is None
    infos = {i.name: i for i in votable.resources[0].infos}
    assert infos["TIMESYS"].value == "TDB" and infos["OBJECT"].value == "LCP-000042"
    assert infos["RA"].unit == "deg" and float(infos["RA"].value) == 290.125

    table = element.to_table()
    assert_columns_round_trip(table, lc)
    assert_units_descriptions(table)
    table = Table.read(io.BytesIO(data), format="votable")
    assert_columns_round_trip(table, lc)


# -- time system, units and metadata policies ---------------------------------------

def test_unknown_time_system_is_stated_not_guessed():
    lc = make_lc(meta={}, column_info={})
    data = export_lightcurve(lc, "fits")
    with fits.open(io.BytesIO(data)) as hdul:
        header = hdul["LIGHTCURVE"].header
        assert "TIMESYS" not in header and "JDREF" not in header and "MJDREF" not in header
        assert header["TIMEUNIT"] == "d"
        comments = " ".join(str(c) for c in header["COMMENT"])
        assert "time scale unknown" in comments and "do not assume UTC" in comments
    Table.read(io.BytesIO(data), format="fits", astropy_native=True)  # still a valid file

    votable = parse_votable(io.BytesIO(export_lightcurve(lc, "votable")), verify="exception")
    (timesys,) = votable.time_systems
    assert (timesys.timescale, timesys.refposition, timesys.timeorigin) == ("UNKNOWN", "UNKNOWN", None)

    meta, columns, _ = read_csv(export_lightcurve(lc, "csv"))
    assert meta["timesys"] == "UNKNOWN"
    # defaults: time columns in days, magnitudes and their errors in mag, flags unitless
    assert {name: unit for name, (unit, _) in columns.items()} == UNITS
    table = Table.read(io.BytesIO(export_lightcurve(lc, "ecsv")), format="ascii.ecsv")
    assert "TIMESYS" not in table.meta
    assert any("time scale unknown" in c for c in table.meta["comments"])


@pytest.mark.parametrize("meta, expected", [
    ({"timesys": "BJD_TDB"}, {"TIMESYS": "TDB", "TREFPOS": "BARYCENTER", "JDREF": 0.0}),
    ({"timesys": "utc", "timeref": "HJD", "timeoffset": 2400000}, {"TIMESYS": "UTC", "TREFPOS": "HELIOCENTER",
                                                                    "TIMEREF": "HELIOCENTRIC", "JDREF": 2400000.0}),
    ({"timesys": "TT", "timeformat": "MJD"}, {"TIMESYS": "TT", "MJDREF": 0.0}),
    ({"timesys": "TDB", "timeref": "SOLARSYSTEM", "timeunit": "d"},
     {"TIMESYS": "TDB", "TREFPOS": "BARYCENTER", "TIMEREF": "SOLARSYSTEM", "TIMEUNIT": "d"}),
])
def test_time_keywords(meta, expected):
    table = lightcurve_table(make_lc(meta=meta))
    for key, value in expected.items():
        assert table.meta[key] == value, key
    if "SOLARSYSTEM" in meta.values():
        assert "JDREF" not in table.meta and "MJDREF" not in table.meta


def test_fluxes_and_unparseable_units():
    lc = make_lc(meta={"timesys": "TDB", "magsarefluxes": True},
                 column_info={"aep_000": {"unit": "furlong-ish", "description": "flux in aperture 0"},
                              "btjd": {"unit": "BJD"}})
    table = lightcurve_table(lc)
    assert table["aep_000"].unit is None
    assert table["aep_000"].description == "flux in aperture 0 (unit: furlong-ish)"
    assert table["aep_001"].unit is None and table["aep_001"].description == "flux"
    assert table["btjd"].unit == "d"
    assert table.meta["MAGSFLUX"] is True
    parse_votable(io.BytesIO(export_lightcurve(lc, "votable")), verify="exception")


def test_awkward_objectinfo_keys_and_values():
    lc = make_lc(objectinfo={"ra": np.float64(1.0), "decl": -2.0, "naxis": 5, "comment": "x",
                             "filter name": "g'", "a-very-long-keyword-name": 3, "note": "Zürich\nline",
                             "TIMESYS": "UTC"})
    table = lightcurve_table(lc)
    assert table.meta["RA"] == 1.0 and type(table.meta["RA"]) is float
    assert table.meta["FILTER_NAME"] == "g'" and table.meta["A-VERY-LONG-KEYWORD-NAME"] == 3
    assert "NAXIS" not in table.meta and "COMMENT" not in table.meta
    assert table.meta["TIMESYS"] == "TDB"  # objectinfo cannot overwrite the time system
    assert any("'naxis'" in c for c in table.meta["comments"])
    with fits.open(io.BytesIO(export_lightcurve(lc, "fits"))) as hdul:
        hdul.verify("exception")
        header = hdul["LIGHTCURVE"].header
        assert header["NAXIS"] == 2 and header["TIMESYS"] == "TDB"
        assert header["NOTE"] == "Z?rich line"  # FITS headers are ASCII
    assert Table.read(io.BytesIO(export_lightcurve(lc, "ecsv")), format="ascii.ecsv").meta["NOTE"] == "Zürich\nline"
    parse_votable(io.BytesIO(export_lightcurve(lc, "votable")), verify="exception")


def test_empty_light_curve():
    lc = make_lc(columns={name: np.array([], dtype=np.float64) for name in ("btjd", "aep_000")})
    for fmt in FORMATS:
        assert export_lightcurve(lc, fmt)
    table = Table.read(io.BytesIO(export_lightcurve(lc, "fits")), format="fits")
    assert len(table) == 0 and table.colnames == ["btjd", "aep_000"]
    with pytest.raises(UserError):
        export_lightcurve(make_lc(columns={}), "csv")


# -- a real light curve from a generated collection ---------------------------------

@pytest.mark.slow
def test_real_collection_light_curve_exports(csv_collection):
    from lcpanel.app import App

    spec = json.loads((csv_collection / "collection.json").read_text())["lcformat"]
    fmt = App().lc_formats.get(spec["kind"]).from_spec(spec, csv_collection)
    lcfile = min(Path(csv_collection, "lightcurves").glob(fmt.fileglob))
    lc = fmt.check(lcfile)
    assert lc.meta["timesys"] == "TDB" and set(lc.time_columns) == {"bjd"}
    assert lc.columns["qflag"].dtype.kind == "i"

    meta, columns, values = read_csv(export_lightcurve(lc, "csv"))
    assert meta["timesys"] == "TDB" and meta["objectid"] == lc.objectid
    assert columns["bjd"][0] == "d" and columns["aep_000"][0] == "mag"
    for name, expected in lc.columns.items():
        assert_same_values(csv_column(values[name], expected), expected)

    def check_table(table):
        for name, expected in lc.columns.items():
            assert_same_values(table[name], expected)
        assert table["qflag"].dtype.kind == "i"
        assert table["bjd"].unit == "d" and table["aep_001"].unit == "mag" and table["qflag"].unit is None

    data = export_lightcurve(lc, "fits")
    table = Table.read(io.BytesIO(data), format="fits")
    check_table(table)
    assert table.meta["TIMESYS"] == "TDB" and table.meta["TREFPOS"] == "BARYCENTER"
    assert table.meta["OBJECT"] == lc.objectid and table.meta["RA"] == pytest.approx(lc.objectinfo["ra"])

    table = Table.read(io.BytesIO(export_lightcurve(lc, "ecsv")), format="ascii.ecsv")
    check_table(table)
    assert table.meta["TIMESYS"] == "TDB"

    data = export_lightcurve(lc, "votable")
    votable = parse_votable(io.BytesIO(data), verify="exception")
    assert votable.time_systems[0].timescale == "TDB"
    check_table(votable.get_first_table().to_table())

    for fmt_name in FORMATS:
        assert export_lightcurve(lc, fmt_name) == export_lightcurve(fmt.check(lcfile), fmt_name)


@pytest.mark.parametrize("offset, origin", [(2400000.0, 2400000.0), ("2400000.5", 2400000.5), ("", 0.0),
                                            (float("nan"), 0.0), ([2400000.0], 0.0), ({"jd": 1.0}, 0.0)])
def test_the_meta_time_system_is_the_same_whatever_the_offset_is(offset, origin):
    """The time system stated in a light curve's meta is worked out once per set of values
    and kept; a value that cannot be kept (a list, a dict) is worked out all the same, and
    each light curve gets its own copy (changing one changes no other's)."""
    from lcpanel.core.objects.lcexport import _meta_time_info

    lc = LightCurve("x", {"t": np.arange(3.0)},
                    meta={"timesys": "TDB", "timeref": "SOLARSYSTEM", "timeformat": "BJD", "timeoffset": offset})
    first = _meta_time_info(lc)
    assert first == {"scale": "TDB", "refpos": "BARYCENTER", "form": "JD", "origin": origin}
    first["scale"] = "changed"
    assert _meta_time_info(lc)["scale"] == "TDB"
