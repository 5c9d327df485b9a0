"""The parsed light-curve cache (lcpanel.core.objects.lccache): a cached light curve is the
one its format reads, column for column and value for value, type for type; it is used
only while fresh; what it cannot hold exactly is not cached; a damaged file is never
believed; exports from it are byte-identical; the operator's command fills it outside
the survey's directory."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lcpanel.core.objects import lccache
from lcpanel.core.objects.lccache import LCCache, cached_read, reader_token
from lcpanel.core.objects.lcexport import EXPORT_FORMATS, export_lightcurve
from lcpanel.core.objects.lcformats import LightCurve
from lcpanel.core.objects.lcrequest import read_lightcurve
from test_lcfast import cdips_lightcurves, real_lightcurves, synthetic

CONVERTED = [f for f in EXPORT_FORMATS if f != "original"]


def _stat(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _tree_digest(root: Path) -> dict:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _demo(root: Path):
    from lcpanel.plugins.lcformats import AstrobaseFormat

    spec = json.loads((root / "collection.json").read_text())["lcformat"]
    return AstrobaseFormat.from_spec(spec, root), spec, sorted((root / "lightcurves").glob("*"))


def _cached_copy(collection: Path, tmp_path: Path):
    """A copy of the collection's first light-curve file in ``tmp_path``, cached: its
    format, spec, the collection's files, the copy, the cache, the token and the light
    curve as read."""
    fmt, spec, files = _demo(collection)
    source = tmp_path / files[0].name
    source.write_bytes(files[0].read_bytes())
    cache, token = LCCache(tmp_path / "cache"), reader_token(fmt, spec)
    lc = read_lightcurve(fmt, spec, source)
    assert cache.store(source, token, lc, _stat(source))
    return fmt, spec, files, source, cache, token, lc


def _roundtrip(lc: LightCurve, tmp_path: Path) -> LightCurve | None:
    source = tmp_path / f"source-{lc.objectid}"
    source.write_bytes(b"x")
    cache = LCCache(tmp_path / "cache")
    if not cache.store(source, "token", lc, _stat(source)):
        return None
    return cache.load(source, "token")


def _same_types(a, b) -> bool:
    """Type for type and value for value (NaN equal to NaN), independently of lccache._same."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_types(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (float, np.floating)) and a == 0:
        return math.copysign(1, a) == math.copysign(1, b)
    return a == b


def _assert_same(got: LightCurve, want: LightCurve) -> None:
    assert list(got.columns) == list(want.columns)
    for name, col in want.columns.items():
        assert got.columns[name].dtype == col.dtype, name
        np.testing.assert_array_equal(got.columns[name], col)
        assert got.columns[name].flags.writeable
    for field in ("objectid", "objectinfo", "column_info", "meta", "time_columns", "mag_columns",
                  "err_columns", "masks"):
        assert _same_types(getattr(got, field), getattr(want, field)), field


def test_demo_light_curves_come_back_as_their_format_reads_them(csv_collection, fits_collection, tmp_path):
    for root in (csv_collection, fits_collection):
        fmt, spec, files = _demo(root)
        for path in files[:6]:
            want = read_lightcurve(fmt, spec, path)
            got = _roundtrip(want, tmp_path)
            assert got is not None
            _assert_same(got, want)
            for name in CONVERTED:
                assert export_lightcurve(got, name) == export_lightcurve(want, name), name


def test_real_and_synthetic_light_curves_come_back_exactly(tmp_path):
    lcs = real_lightcurves() + cdips_lightcurves(tmp_path) + synthetic()
    assert lcs
    for want in lcs:
        got = _roundtrip(want, tmp_path)
        assert got is not None, want.objectid
        _assert_same(got, want)
        for name in CONVERTED:
            assert export_lightcurve(got, name) == export_lightcurve(want, name), (want.objectid, name)


def test_metadata_keeps_every_type_and_value(tmp_path):
    base = synthetic()[0]
    info = {"ra": np.float64(290.5), "ndet": np.int32(12), "flag": np.bool_(True), "f32": np.float32(0.1),
            "missing": float("nan"), "npmissing": np.float64("nan"), "inf": float("inf"), "minf": -math.inf,
            "negzero": -0.0, "big": 2 ** 62, "pair": (1, "a", (2.5, None)), "list": [1, [2, (3,)]],
            "text": "Ünïcode \u2603 \"quoted\" \\ </xml>", "none": None, "yes": True}
    lc = replace(base, objectinfo=info, meta={**base.meta, "extra": {"nested": (np.int64(7),)}},
                 masks={"good": {"column": "flag", "good": (0, 1), "description": "x"}})
    got = _roundtrip(lc, tmp_path)
    assert got is not None
    _assert_same(got, lc)
    assert type(got.objectinfo["ra"]) is np.float64 and type(got.objectinfo["pair"][2]) is tuple


@pytest.mark.parametrize("change", [
    {"objectinfo": {"when": __import__("datetime").date(2020, 1, 1)}},
    {"objectinfo": {"set": {1, 2}}},
    {"objectinfo": {1: "integer key"}},
    {"objectinfo": {"$t": ["looks like a tag"]}},
    {"objectinfo": {"huge": 2 ** 70}},
    {"objectinfo": {"d": np.datetime64("2020-01-01")}},
    {"meta": {"timesys": b"bytes"}},
    {"columns": "object"},
    {"columns": "2d"},
    {"columns": "masked"},
    {"time_columns": ["a list, not a tuple"]},
])
def test_what_cannot_be_stored_exactly_is_not_cached(change, tmp_path):
    base = synthetic()[0]
    n = len(base)
    if change.get("columns") == "object":
        lc = replace(base, columns={**base.columns, "obj": np.array([object()] * n, dtype=object)})
    elif change.get("columns") == "2d":
        lc = replace(base, columns={**base.columns, "two": np.zeros((n, 2))})
    elif change.get("columns") == "masked":
        lc = replace(base, columns={**base.columns, "m": np.ma.masked_array(np.zeros(n), mask=np.zeros(n, bool))})
    else:
        lc = replace(base, **change)
    source = tmp_path / "source"
    source.write_bytes(b"x")
    cache = LCCache(tmp_path / "cache")
    assert cache.store(source, "token", lc, _stat(source)) is False
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.lcb"))


def test_a_changed_source_or_reader_is_read_again(csv_collection, tmp_path):
    fmt, spec, files, source, cache, token, first = _cached_copy(csv_collection, tmp_path)
    assert cache.load(source, token) is not None
    # another token (another spec, or the code that reads changed) is not fresh
    assert cache.load(source, reader_token(fmt, {**spec, "declared": {"x": 1}})) is None
    # the survey rewrites the file: the cache no longer answers; cached_read reads the new one
    source.write_bytes(files[1].read_bytes())
    assert cache.load(source, token) is None
    got = cached_read(fmt, spec, source, cache, token)
    assert got.objectid == read_lightcurve(fmt, spec, files[1]).objectid != first.objectid
    # same bytes, but touched: also read again (size and mtime are what is compared)
    assert cache.store(source, token, got, _stat(source))
    os.utime(source, ns=(os.stat(source).st_atime_ns, os.stat(source).st_mtime_ns + 1_000_000))
    assert cache.load(source, token) is None


def test_the_reader_token_follows_the_code_that_reads(csv_collection, tmp_path):
    """An edit to the collection's own reader module (an astrobase format's, an lcc-server
    description and the reader it names) makes every cached copy stale."""
    import shutil

    from lcpanel.plugins.lcformats import AstrobaseFormat, DescriptionFormat

    collection = tmp_path / "collection"
    shutil.copytree(csv_collection / "lcformat", collection / "lcformat")
    for found in (collection / "lcformat").glob("*.json"):  # the copy's JSON names the copy's reader
        described = json.loads(found.read_text())
        described["lcreader_module"] = str(collection / "lcformat" / Path(described["lcreader_module"]).name)
        found.write_text(json.dumps(described))
    spec = {**json.loads((csv_collection / "collection.json").read_text())["lcformat"]}
    fmt = AstrobaseFormat.from_spec(spec, collection)
    reader_file, = [p for p in fmt.source_files() if p.suffix == ".py" and p.parent == collection / "lcformat"]
    token = reader_token(fmt, spec)
    assert reader_token(AstrobaseFormat.from_spec(spec, collection), spec) == token
    reader_file.write_text(reader_file.read_text() + "\n# edited\n")
    assert reader_token(AstrobaseFormat.from_spec(spec, collection), spec) != token

    description = tmp_path / "format.json"
    description.write_text(json.dumps({"lc_formatkey": "x", "lc_readermodule": f"{reader_file}:read_lightcurve",
                                       "column_keys": {}}))
    desc = DescriptionFormat(description)
    assert {str(reader_file), str(description)} <= {str(p) for p in desc.source_files()}
    token = reader_token(desc, None)
    description.write_text(description.read_text() + " ")
    assert reader_token(DescriptionFormat(description), None) != token


def test_a_damaged_cache_file_is_never_believed(csv_collection, tmp_path):
    fmt, spec, _files, source, cache, token, want = _cached_copy(csv_collection, tmp_path)
    target = cache.path_for(source)
    good = target.read_bytes()
    length = int.from_bytes(good[len(lccache.MAGIC):len(lccache.MAGIC) + 8], "little")
    head_end = len(lccache.MAGIC) + 8 + length
    damaged = {
        "empty": b"",
        "magic": b"X" + good[1:],
        "truncated": good[:len(good) - 9],
        "head length past the end": good[:len(lccache.MAGIC)] + (len(good)).to_bytes(8, "little") + good[head_end - length:],
        "head too long": good[:len(lccache.MAGIC)] + (lccache.MAX_HEAD + 1).to_bytes(8, "little") + good[head_end - length:],
        "head not JSON": good[:head_end - length] + b"{" * length + good[head_end:],
        "head longer than stated": good.replace(b'"bjd","<f8",0,', b'"bjd","<f8",9999999,', 1),
        "shifted column": good.replace(b'"bjd","<f8",0,', b'"bjd","<f8",8,', 1),
        "a bit flipped in the data": good[:-100] + bytes([good[-100] ^ 1]) + good[-99:],
        "bytes added at the end": good + b"\0" * 8,
        "object dtype": good.replace(b'"<f8"', b'"|O8"', 1),
    }
    for label, data in damaged.items():
        target.write_bytes(data)
        assert cache.load(source, token) is None, label
        got = cached_read(fmt, spec, source, cache, token)
        _assert_same(got, want)


def test_exports_from_the_cache_are_the_same_bytes_and_skip_the_format(csv_collection, tmp_path, monkeypatch):
    from lcpanel.plugins import products
    from lcpanel.plugins.lcformats import AstrobaseFormat

    fmt, spec, files = _demo(csv_collection)
    root = tmp_path / "lccache"
    cache, token = LCCache(root), reader_token(fmt, spec)
    for path in files[:4]:
        assert cache.store(path, token, read_lightcurve(fmt, spec, path), _stat(path))
    args = {"lcformat": "lcpanel.plugins.lcformats:AstrobaseFormat", "spec": spec, "base": str(csv_collection)}
    want = {(p, f): products.converted_lightcurve(**args, path=str(p), fmt=f) for p in files[:4] for f in CONVERTED}

    def refuse(self, path):
        raise AssertionError(f"the format read {path} although the cache holds it")

    monkeypatch.setattr(lccache, "_WORKER_READERS", {})
    monkeypatch.setattr(AstrobaseFormat, "read", refuse)
    for (path, name), data in want.items():
        assert products.converted_lightcurve(**args, path=str(path), fmt=name, cache=str(root)) == data
    # a light curve the cache does not hold is read by its format (here: refused)
    with pytest.raises(AssertionError, match="the format read"):
        products.converted_lightcurve(**args, path=str(files[5]), fmt="csv", cache=str(root))


def test_parquet_from_the_cache_equals_parquet_from_the_format(csv_collection, tmp_path):
    import pyarrow.parquet as pq

    from lcpanel.core.objects.lcparquet import dataset_parquet

    fmt, spec, files = _demo(csv_collection)
    root = tmp_path / "lccache"
    cache, token = LCCache(root), reader_token(fmt, spec)
    for path in files[:5]:
        assert cache.store(path, token, read_lightcurve(fmt, spec, path), _stat(path))
    objects = [["demo", p.name.split("-lc")[0], str(p)] for p in files[:5]]
    info = {"lcformat": spec, "base": str(csv_collection), "reader": "lcpanel.plugins.lcformats:AstrobaseFormat"}
    plain = dataset_parquet(objects, {"demo": info})
    cached = dataset_parquet(objects, {"demo": {**info, "cache": str(root)}})
    assert cached == plain
    assert pq.read_table(io.BytesIO(cached)).num_rows == sum(len(read_lightcurve(fmt, spec, p)) for p in files[:5])


def test_the_command_caches_a_collection_outside_the_survey_directory(csv_collection, tmp_path, capsys):
    from lcpanel.app import App
    from lcpanel.cli import main
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = tmp_path / "basedir"
    Basedir.init(base)
    info = add_astrobase_collection(App(base), Basedir(base), csv_collection, collection_id="democsv",
                                    show_progress=False)
    before = _tree_digest(csv_collection)
    assert main(["cache-lightcurves", str(base), "democsv", "--workers", "2", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"{info.nobjects} cached, 0 already fresh, 0 not cacheable" in out
    root = lccache.cache_dir(info)
    assert root.is_relative_to(base) and len(list(root.rglob("*.lcb"))) == info.nobjects
    assert not list(root.rglob(".*"))  # no temporary file left
    assert _tree_digest(csv_collection) == before

    fmt, spec, files = _demo(csv_collection)
    cache, token = LCCache(root), reader_token(App(base).lc_formats.get(spec["kind"]).from_spec(spec, csv_collection),
                                               info.lcformat)
    for path in files:
        _assert_same(cache.load(path, token), read_lightcurve(fmt, info.lcformat, path))

    assert main(["cache-lightcurves", str(base), "democsv", "--workers", "1", "-q"]) == 0
    assert f"0 cached, {info.nobjects} already fresh" in capsys.readouterr().out
    assert main(["cache-lightcurves", str(base), "democsv", "--drop"]) == 0
    assert not root.exists()
    assert _tree_digest(csv_collection) == before


def test_a_product_built_from_the_cache_is_the_product_built_without_it(csv_collection, tmp_path):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.datasets import Principal
    from lcpanel.core.objects.lccache import build_cache
    from lcpanel.core.search import run_search

    members = []
    for cached in (False, True):
        base = tmp_path / f"basedir-{cached}"
        Basedir.init(base)
        app = App(base)
        add_astrobase_collection(app, Basedir(base), csv_collection, collection_id="democsv", show_progress=False)
        if cached:
            counts = build_cache(app, "democsv", workers=1, show_progress=False)
            assert counts["cached"] == 24 and counts["bytes"] > 0
        result = run_search(app, {"type": "filter", "params": {"where": "ndet >= 0"}, "limit": 10})
        dataset = app.datasets.create(result, Principal("anon:alice").identity)
        status = app.products.request(app, dataset, "lightcurves", {"format": "fits"}, wait=True)
        assert status["status"] == "done", status
        with zipfile.ZipFile(app.products.file_path(status["key"], "lightcurves")) as zf:
            members.append({n: zf.read(n) for n in zf.namelist() if n.startswith("lightcurves/")})
        app.products.shutdown()
    assert len(members[0]) == 10 and members[0] == members[1]


def test_object_reads_in_the_server_use_a_cache_built_while_it_runs(csv_collection, tmp_path, monkeypatch):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.objects.lccache import build_cache, read_collection_lightcurve
    from lcpanel.plugins.lcformats import AstrobaseFormat

    base = tmp_path / "basedir"
    Basedir.init(base)
    app = App(base)
    info = add_astrobase_collection(app, Basedir(base), csv_collection, collection_id="democsv", show_progress=False)
    fmt, spec, files = _demo(csv_collection)
    path = info.object_file(app.catalogs.get("democsv").query("SELECT lcfname FROM object_catalog LIMIT 1")[0][0])
    reads = []
    real_read = AstrobaseFormat.read
    monkeypatch.setattr(AstrobaseFormat, "read", lambda self, p: reads.append(p) or real_read(self, p))
    want = read_collection_lightcurve(fmt, info, path)  # no cache yet: the format reads it
    assert len(reads) == 1
    build_cache(app, "democsv", workers=1, show_progress=False)
    reads.clear()
    _assert_same(read_collection_lightcurve(fmt, info, path), want)
    assert reads == []


def test_a_product_worker_uses_a_cache_built_after_its_first_build(csv_collection, tmp_path, monkeypatch):
    """Product workers live across builds: one that converted a collection before its cache
    existed reads from the cache once it is built."""
    from lcpanel.plugins import products
    from lcpanel.plugins.lcformats import AstrobaseFormat

    fmt, spec, files = _demo(csv_collection)
    root = tmp_path / "lccache"
    args = {"lcformat": "lcpanel.plugins.lcformats:AstrobaseFormat", "spec": spec, "base": str(csv_collection),
            "cache": str(root)}
    monkeypatch.setattr(lccache, "_WORKER_READERS", {})
    want = products.converted_lightcurve(**args, path=str(files[0]), fmt="csv")  # no cache yet
    cache, token = LCCache(root), reader_token(fmt, spec)
    assert cache.store(files[0], token, read_lightcurve(fmt, spec, files[0]), _stat(files[0]))

    def refuse(self, path):
        raise AssertionError(f"the format read {path} although the cache holds it")

    monkeypatch.setattr(AstrobaseFormat, "read", refuse)
    assert products.converted_lightcurve(**args, path=str(files[0]), fmt="csv") == want


def test_a_cache_that_cannot_be_written_stops_the_command_with_a_clear_error(csv_collection, tmp_path):
    from lcpanel.core.objects.lccache import _fill
    from lcpanel.errors import UserError

    _fmt, spec, files = _demo(csv_collection)
    root = tmp_path / "lccache"
    root.mkdir()
    (root / LCCache(root).path_for(files[0]).parent.name).write_text("a file where a directory goes")
    with pytest.raises(UserError, match="cannot write the light-curve cache"):
        _fill("lcpanel.plugins.lcformats:AstrobaseFormat", spec, str(csv_collection), str(root), [str(files[0])])


def test_add_collection_can_build_the_cache_and_otherwise_says_how(csv_collection, tmp_path, capsys):
    """``add-collection --cache-lightcurves`` ingests and then caches every light curve;
    without it, a collection with light curves gets a one-line hint naming the command,
    and a plain catalog (no light curves) refuses the option before ingesting anything."""
    from lcpanel.cli import main
    from lcpanel.core.catalogs.basedir import Basedir

    base = tmp_path / "basedir"
    Basedir.init(base)
    assert main(["add-collection", str(base), str(csv_collection), "--id", "cached", "-q",
                 "--cache-lightcurves"]) == 0
    out = capsys.readouterr().out
    info = Basedir(base).collection("cached")
    assert f"{info.nobjects} cached, 0 already fresh, 0 not cacheable" in out
    assert len(list(lccache.cache_dir(info).rglob("*.lcb"))) == info.nobjects

    assert main(["add-collection", str(base), str(csv_collection), "--id", "plain", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"lcpanel cache-lightcurves {base} plain" in out and " cached, " not in out
    assert not lccache.cache_dir(Basedir(base).collection("plain")).exists()

    catalog = tmp_path / "sky.csv"
    catalog.write_text("objectid,ra,decl\na,10.0,20.0\nb,11.0,21.0\n")
    assert main(["add-collection", str(base), str(catalog), "-q", "--cache-lightcurves"]) == 2
    assert "no light curves" in capsys.readouterr().err
    assert [c.collection_id for c in Basedir(base).collections()] == ["cached", "plain"]
    assert main(["add-collection", str(base), str(catalog), "-q"]) == 0
    assert "cache-lightcurves" not in capsys.readouterr().out
