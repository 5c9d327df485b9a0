"""The demo CSV format's reader (examples/lcformats/lcpanel_demo_csv.py) against an
independent parse of the same files: gzip and the standard library's csv and json
modules, value by value.

The reader is on the path of every converted product of the demo collection, so it is
written for speed; these tests hold it to what the file says, for the demo's own light
curves and for files written otherwise (CRLF line ends, several gzip members, no points).
"""

import csv
import gzip
import io
import json

import numpy as np
import pytest

import make_collection as mc  # examples/, installed (pip install -e examples)

FORMATKEY = "lcpanel-demo-csv"
demo = mc._load_format_module(FORMATKEY)


def reference(raw: bytes, mask_flagged: bool = True) -> dict:
    """The file's header document and columns, parsed by the standard library."""
    text = gzip.decompress(raw).decode("utf-8")
    lines = text.splitlines()
    header = [line[2:] for line in lines[1:] if line.startswith("#")]
    meta = json.loads("\n".join(header))
    rows = list(csv.reader(line for line in lines if not line.startswith("#")))
    names, body = rows[0], rows[1:]
    columns = {name: np.array([float(row[i]) for row in body], dtype=float) for i, name in enumerate(names)}
    columns["qflag"] = columns["qflag"].astype(np.int16)
    if mask_flagged:
        for name in demo.MAGCOLS + demo.ERRCOLS:
            columns[name][columns["qflag"] != 0] = np.nan
    return {"meta": meta, "names": names, "columns": columns}


def assert_same(lcdict: dict, ref: dict) -> None:
    meta = ref["meta"]
    assert lcdict["objectid"] == meta["objectid"]
    assert lcdict["objectinfo"] == {**meta["objectinfo"], "ndet": len(ref["columns"]["bjd"]),
                                    "objectid": meta["objectid"]}
    assert lcdict["columns"] == ref["names"]
    assert lcdict["column_info"] == meta["columns"]
    for key in demo.METADATA:
        assert lcdict[key] == meta[key]
    for name in ref["names"]:
        got, want = lcdict[name], ref["columns"][name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want)  # NaN where both are NaN


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("democsv")
    catalog = mc.simulate_catalog(6, seed=11)
    infos = mc._objectinfos(catalog, 11)
    schedule = mc.simulate_schedule(11)
    truth = mc.simulate_variability(6, 11, schedule["times"])
    return mc.write_lightcurves(outdir, FORMATKEY, infos, truth, schedule, 11, catalog,
                                (290.0, 45.0, 0.6), False)


@pytest.mark.parametrize("mask_flagged", [True, False])
def test_demo_light_curves_read_as_the_standard_library_parses_them(files, mask_flagged):
    flagged = 0
    for path in files:
        lcdict = demo.read_lightcurve(str(path), mask_flagged=mask_flagged)
        ref = reference(path.read_bytes(), mask_flagged)
        assert_same(lcdict, ref)
        flagged += int(np.count_nonzero(lcdict["qflag"]))
    assert flagged > 0  # the masking was exercised


def _variant(tmp_path, path, name: str, text_of, members: int = 1):
    text = text_of(gzip.decompress(path.read_bytes()).decode("utf-8"))
    data = text.encode("utf-8")
    cut = [len(data) * k // members for k in range(members + 1)]
    raw = b"".join(gzip.compress(data[a:b], mtime=0) for a, b in zip(cut, cut[1:]))
    out = tmp_path / name
    out.write_bytes(raw)
    return out


def test_crlf_line_ends_and_several_gzip_members(files, tmp_path):
    path = files[0]
    want = reference(path.read_bytes())
    crlf = _variant(tmp_path, path, "crlf-lc.csv.gz", lambda t: t.replace("\n", "\r\n"))
    members = _variant(tmp_path, path, "members-lc.csv.gz", lambda t: t, members=3)
    for variant in (crlf, members):
        assert_same(demo.read_lightcurve(str(variant)), want)


def test_a_light_curve_without_points_reads_as_empty_columns(tmp_path):
    path = tmp_path / "X-lc.csv.gz"
    demo.write_lightcurve(path, {"objectid": "X", "ra": 1.0, "decl": 2.0},
                          {name: np.array([]) for name, *_ in demo.COLUMNS})
    lcdict = demo.read_lightcurve(str(path))
    assert lcdict["objectinfo"]["ndet"] == 0
    for name, *_ in demo.COLUMNS:
        assert lcdict[name].shape == (0,)
    assert lcdict["qflag"].dtype == np.int16 and lcdict["bjd"].dtype == np.float64
    assert_same(lcdict, reference(path.read_bytes()))


def test_a_file_of_another_format_is_refused(tmp_path):
    path = tmp_path / "other-lc.csv.gz"
    path.write_bytes(gzip.compress(b"# some other format\nbjd,mag\n1,2\n"))
    with pytest.raises(ValueError, match="is not a lcpanel-demo-csv file"):
        demo.read_lightcurve(str(path))


def test_reader_keeps_written_values_to_their_printed_precision(files):
    # what write_lightcurve printed (%.6f, %.5f) is what comes back, to the last digit
    lcdict = demo.read_lightcurve(str(files[0]), mask_flagged=False)
    text = gzip.decompress(files[0].read_bytes()).decode()
    first = next(line for line in io.StringIO(text) if line[:1].isdigit()).strip().split(",")
    assert [f"{lcdict['bjd'][0]:.6f}", f"{lcdict['aep_000'][0]:.5f}"] == first[:2]


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "fits", "ecsv", "votable"])
def test_a_light_curve_without_points_exports_and_reads_back_empty(tmp_path, fmt):
    from astropy.table import Table

    from lcpanel.plugins.products import converted_lightcurve

    base = tmp_path / "collection"
    base.mkdir()
    lcformat_dir = mc.register_lcformat(base, FORMATKEY)  # the reader and astrobase's description of it
    path = base / "X-lc.csv.gz"
    demo.write_lightcurve(path, {"objectid": "X", "ra": 1.0, "decl": 2.0},
                          {name: np.array([]) for name, *_ in demo.COLUMNS})
    spec = {"kind": "astrobase", "formatkey": FORMATKEY, "lcformat_dir": lcformat_dir.name}
    data = converted_lightcurve("lcpanel.plugins.lcformats:AstrobaseFormat", spec, str(base), str(path), fmt)
    out = tmp_path / f"X.{fmt}"
    out.write_bytes(data)
    kind = {"csv": "ascii.csv", "csv.gz": "ascii.csv", "fits": "fits", "ecsv": "ascii.ecsv", "votable": "votable"}[fmt]
    if fmt in ("csv", "csv.gz"):
        text = gzip.decompress(data).decode() if fmt == "csv.gz" else data.decode()
        header = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert header[0].split(",")[:2] == ["bjd", "aep_000"] and len(header) == 1  # the column names, no rows
    else:
        table = Table.read(out, format=kind)
        assert len(table) == 0 and "bjd" in table.colnames
