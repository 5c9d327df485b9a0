"""The ``periodfinding_csv`` and ``phased_pdf`` products, built by lcpanel's own product
store (worker processes, content-keyed zips, SHA256SUMS), checked against the pickles."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import pickle
import re
import zipfile
from pathlib import Path

import pytest

from lcpanel.plugin_api import App, Config, OPERATOR, run_search, UserError

pytestmark = pytest.mark.slow


def _dataset(app, spec):
    return app.datasets.create(run_search(app, spec), OPERATOR.identity)


def _zip_members(app, status) -> dict[str, bytes]:
    assert status["status"] == "done", status
    path = app.products.file_path(status["key"], status["builder"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == status["sha256"]
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    sums = dict(line.split("  ")[::-1] for line in members.pop("SHA256SUMS").decode().splitlines())
    assert sums == {n: hashlib.sha256(d).hexdigest() for n, d in members.items()}
    return members


def _pickle(path: Path) -> dict:
    raw = path.read_bytes()
    return pickle.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def test_periodfinding_csv_has_one_row_per_object_and_method(ps_app, csv_collection):
    ds = _dataset(ps_app, {"type": "period", "params": {"min_period_days": 0.5, "max_period_days": 5},
                           "collections": ["demo"]})
    assert ds.nobjects >= 5
    status = ps_app.products.request(ps_app, ds, "periodfinding_csv", wait=True)
    members = _zip_members(ps_app, status)
    assert list(members) == ["periodfinding.csv"]
    rows = list(csv.DictReader(io.StringIO(members["periodfinding.csv"].decode())))
    expected = []
    for oid in ds.data["objectid"]:
        pf = _pickle(Path(csv_collection, "periodfinding", f"periodfinding-{oid}.pkl"))
        for key in pf["aep_000"]["pfmethods"]:
            expected.append((oid, key.split("-", 1)[1], pf["aep_000"][key]))
    assert [(r["objectid"], r["method"]) for r in rows] == [(oid, m) for oid, m, _ in expected]
    for row, (_oid, _m, entry) in zip(rows, expected):
        assert row["collection"] == "demo" and row["magcol"] == "aep_000"
        assert float(row["bestperiod_days"]) == pytest.approx(entry["bestperiod"], rel=1e-9)
        assert float(row["bestpeak"]) == pytest.approx(entry["bestlspval"], rel=1e-9)
        nbest = [float(x) for x in row["nbestperiods_days"].split()]
        assert nbest == pytest.approx([float(x) for x in entry["nbestperiods"]], rel=1e-9)
        assert len(row["nbestpeaks"].split()) == len(entry["nbestlspvals"])
        assert row["pffname"].startswith("periodfinding/")
    # the same objects again: the same zip, not a new build
    again = ps_app.products.request(ps_app, ds, "periodfinding_csv", wait=True)
    assert again["key"] == status["key"] and again["sha256"] == status["sha256"]


def test_periodfinding_csv_of_a_selection_and_of_a_catalog_without_pickles(ps_app):
    # (over demo and wrap together a dataset keeps only shared columns, so no pffname: see the README)
    ds = _dataset(ps_app, {"type": "box", "params": {"ra_min": 280, "ra_max": 300, "dec_min": 40, "dec_max": 50},
                           "collections": ["demo"]})
    keys = ds.keys()[:2]
    status = ps_app.products.request(ps_app, ds, "periodfinding_csv", objects=keys, wait=True)
    rows = list(csv.DictReader(io.StringIO(_zip_members(ps_app, status)["periodfinding.csv"].decode())))
    assert {f"{r['collection']}/{r['objectid']}" for r in rows} == set(keys)
    plain = _dataset(ps_app, {"type": "box", "collections": ["wrap"],
                              "params": {"ra_min": 359, "ra_max": 1, "dec_min": -31, "dec_max": -29}})
    assert plain.nobjects > 0
    with pytest.raises(UserError, match="would be empty"):
        ps_app.products.request(ps_app, plain, "periodfinding_csv")


def _pdf_pages(data: bytes) -> int:
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))
    counts = [int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", data)]
    assert counts == [pages], (counts, pages)
    return pages


def test_phased_pdf_has_a_page_per_object(ps_app):
    ds = _dataset(ps_app, {"type": "period", "params": {"min_period_days": 0.5, "max_period_days": 5,
                                                         "method": "gls"}, "collections": ["demo"]})
    status = ps_app.products.request(ps_app, ds, "phased_pdf", wait=True)
    pdf = _zip_members(ps_app, status)["phased-lightcurves.pdf"]
    assert pdf.startswith(b"%PDF-")
    assert _pdf_pages(pdf) == ds.nobjects
    # deterministic: the same objects make the same bytes, so the zip is reused
    assert ps_app.products.request(ps_app, ds, "phased_pdf", wait=True)["key"] == status["key"]
    two = ps_app.products.request(ps_app, ds, "phased_pdf", objects=ds.keys()[:2], wait=True)
    assert _pdf_pages(_zip_members(ps_app, two)["phased-lightcurves.pdf"]) == 2


def test_phased_pdf_respects_the_operators_limit(ps_basedir):
    app = App(ps_basedir, config=Config(plugin={"periodsearch": {"phased_pdf_max_objects": 3}}))
    try:
        ds = _dataset(app, {"type": "period", "params": {"min_period_days": 0.1}, "collections": ["demo"]})
        assert ds.nobjects > 3
        with pytest.raises(UserError, match=r"at most 3 objects and \d+ are chosen") as info:
            app.products.request(app, ds, "phased_pdf")
        assert info.value.field == "objects"
        status = app.products.request(app, ds, "phased_pdf", objects=ds.keys()[:3], wait=True)
        assert status["status"] == "done"
    finally:
        app.products.shutdown()


def test_builders_describe_themselves(ps_app):
    described = {b.name: b.describe() for b in ps_app.product_builders}
    assert described["periodfinding_csv"]["options"] == {}
    assert "PDF" in described["phased_pdf"]["title"]
    assert ps_app.product_builders.owner("phased_pdf") == "periodsearch"
