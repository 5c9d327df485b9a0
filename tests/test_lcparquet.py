"""The ``parquet`` light-curve product: one long table per dataset, read back by pyarrow,
pandas and astropy to the values, units, descriptions and time systems of the per-object
FITS export (read by astropy) of the same light curves."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from lcpanel.core.datasets import Principal
from lcpanel.core.objects.lcexport import SLOW_WRITERS, lightcurve_table
from lcpanel.core.objects.lcrequest import read_lightcurve
from lcpanel.core.search import run_search

ALICE = Principal("anon:alice")


@pytest.fixture(scope="module")
def parquet_product(demo_app):
    res = run_search(demo_app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 1000})
    dataset = demo_app.datasets.create(res, ALICE.identity)
    status = demo_app.products.request(demo_app, dataset, "lightcurves", {"format": "parquet"}, wait=True)
    assert status["status"] == "done", status
    zf = zipfile.ZipFile(demo_app.products.file_path(status["key"], "lightcurves"))
    assert sorted(zf.namelist()) == ["SHA256SUMS", "lightcurves.parquet"]
    assert zf.getinfo("lightcurves.parquet").compress_type == zipfile.ZIP_STORED
    return demo_app, dataset, zf.read("lightcurves.parquet")


def test_parquet_reads_back_in_pyarrow_pandas_astropy(parquet_product):
    import pyarrow.parquet as pq

    app, dataset, data = parquet_product
    table = pq.read_table(io.BytesIO(data))
    pf = pq.ParquetFile(io.BytesIO(data))
    frame = table.to_pandas()
    keys = dataset.keys()
    assert sorted(set(zip(frame["collection"], frame["objectid"]))) == sorted(tuple(k.split("/", 1)) for k in keys)
    assert pf.metadata.num_row_groups >= 1
    about = json.loads(table.schema.metadata[b"lcpanel"])
    assert "demo" in about["collections"]
    bjd = table.schema.field("bjd").metadata
    assert bjd[b"unit"] == b"d" and bjd[b"timescale"] == b"TDB" and bjd[b"refpos"] == b"BARYCENTER"
    assert bjd[b"role"] == b"time" and float(bjd[b"timeorigin"]) == 0.0
    for key in keys[:5]:
        cid, objectid = key.split("/", 1)
        i = keys.index(key)
        info = app.catalogs.get(cid).info
        fmt = app.lc_formats.get(info.lcformat["kind"]).from_spec(info.lcformat, Path(info.source))
        lc = read_lightcurve(fmt, info.lcformat, info.object_file(dataset.data["lcfname"][i]))
        want = Table.read(io.BytesIO(SLOW_WRITERS["fits"](lc)), format="fits")
        described = lightcurve_table(lc)  # what every export states of the columns
        got = frame[(frame["collection"] == cid) & (frame["objectid"] == objectid)]
        for name in want.colnames:
            np.testing.assert_array_equal(got[name].to_numpy(), np.asarray(want[name]))
            assert got[name].dtype == want[name].dtype.newbyteorder("=")
            field = table.schema.field(name).metadata
            assert field[b"unit"].decode() == (str(want[name].unit) if want[name].unit else "")
            assert field[b"description"].decode() == (described[name].description or "")


def test_parquet_reads_in_astropy_with_units(parquet_product, tmp_path):
    app, dataset, data = parquet_product
    path = tmp_path / "lc.parquet"
    path.write_bytes(data)
    table = Table.read(path, format="parquet")
    assert str(table["bjd"].unit) == "d" and str(table["aep_000"].unit) == "mag"
    assert table["aep_000"].description.startswith("magnitude")
    assert table["collection"].description == "collection id"
    assert len(table) == sum(int(n) for n in dataset.data["ndet"])


# --- streamed into the zip (bounded memory) equals the in-memory Parquet ----------------------

def _assert_same_parquet(streamed: bytes, in_memory: bytes) -> None:
    import pyarrow.parquet as pq

    assert streamed == in_memory  # deterministic output: the same bytes, not only the same values
    got, want = pq.read_table(io.BytesIO(streamed)), pq.read_table(io.BytesIO(in_memory))
    assert got.schema.equals(want.schema, check_metadata=True)
    assert got.num_rows == want.num_rows and got.to_pandas().equals(want.to_pandas())  # NaN == NaN here
    assert pq.ParquetFile(io.BytesIO(streamed)).metadata.num_row_groups == \
        pq.ParquetFile(io.BytesIO(in_memory)).metadata.num_row_groups


def _build_stream_zip(tmp_path, entry) -> zipfile.ZipFile:
    from dataclasses import asdict

    from lcpanel.core.products import ProductStore, build_product

    store = ProductStore(tmp_path / "basedir", max_workers=1)
    target = tmp_path / "out.zip"
    build_product(str(store.index_path), "k", [asdict(entry)], str(target))
    zf = zipfile.ZipFile(target)
    assert zf.testzip() is None
    return zf


def test_parquet_product_is_streamed_and_equals_the_in_memory_table(parquet_product):
    from lcpanel.core.objects.lcparquet import dataset_parquet
    from lcpanel.plugins.products import LightcurvesProduct

    app, dataset, data = parquet_product
    options = LightcurvesProduct.validate_options({"format": "parquet"})
    [entry] = LightcurvesProduct().plan(app, dataset, list(range(dataset.nobjects)), options)
    assert entry.kind == "stream"
    _assert_same_parquet(data, dataset_parquet(**entry.args))


def test_streamed_parquet_of_real_light_curves_equals_the_in_memory_one(tmp_path):
    from test_formats_real import CDIPS, HAT, make_cdips_collection

    from lcpanel.core.objects.lcparquet import dataset_parquet
    from lcpanel.core.products import Entry

    if not HAT.exists() or len(CDIPS) < 2:
        pytest.skip("no ../shared/realdata")
    cdips = make_cdips_collection(tmp_path)
    collections = {
        "hat": {"lcformat": {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None},
                "base": str(HAT.parent), "reader": "lcpanel.plugins.lcformats:AstrobaseFormat"},
        "cdips": {"lcformat": json.loads((cdips / "collection.json").read_text())["lcformat"],
                  "base": str(cdips), "reader": "lcpanel.plugins.lcformats:FitsTableFormat"},
    }
    objects = [["hat", "HAT-579-0051858", str(HAT)]] + [
        ["cdips", p.name.split("_")[4], str(cdips / "lightcurves" / p.name)] for p in CDIPS]
    entry = Entry(arcname="lightcurves.parquet", kind="stream", func="lcpanel.core.objects.lcparquet:dataset_parquet",
                  args={"objects": objects, "collections": collections})
    zf = _build_stream_zip(tmp_path, entry)
    streamed = zf.read("lightcurves.parquet")
    in_memory = dataset_parquet(objects, collections)
    _assert_same_parquet(streamed, in_memory)
    import hashlib

    sums = dict(line.split("  ")[::-1] for line in zf.read("SHA256SUMS").decode().splitlines())
    assert sums["lightcurves.parquet"] == hashlib.sha256(streamed).hexdigest()
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(streamed))
    assert set(table["collection"].to_pylist()) == {"hat", "cdips"}
    assert table.num_rows == sum(len(read_lightcurve(
        __import__("lcpanel.plugins.lcformats", fromlist=["x"]).__dict__[c["reader"].split(":")[1]].from_spec(
            c["lcformat"], Path(c["base"])), c["lcformat"], src)) for cid, _, src in objects
        for c in [collections[cid]])
