"""lcpanel.client against a real ``lcpanel serve``: tables equal to in-process searches,
dataset paging, products with verified and resumable downloads, errors and privacy."""

from __future__ import annotations

import hashlib
import math
import zipfile

import numpy as np
import pytest

from lcpanel.client import Client, ClientError
from lcpanel.core.search import run_search

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(demo_app):
    return demo_app


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


@pytest.fixture(scope="module")
def client(server):
    return Client(server)


@pytest.fixture(scope="module")
def built(client):
    """A dataset of every object, and its CSV light-curve product, built."""
    res = client.search("filter", where="ndet > 0", limit=1000)
    seen = []
    status = client.product(res.dataset_id, "lightcurves", format="csv", progress=seen.append, poll=0.1)
    return res, status, seen


class Spy:
    """Wraps a client's opener to record each request's URL, Range header and answer."""

    def __init__(self, client, monkeypatch):
        self.calls = []
        original = client.opener.open

        def spy(req, *args, **kwargs):
            resp = original(req, *args, **kwargs)
            self.calls.append({"url": req.full_url, "range": req.get_header("Range"), "status": resp.status,
                               "length": resp.headers.get("Content-Length")})
            return resp

        monkeypatch.setattr(client.opener, "open", spy)


def assert_table_matches(table, columns, rows):
    """The table holds exactly these rows, typed by the column metadata."""
    assert table.colnames == [c.name for c in columns]
    assert len(table) == len(rows)
    for col in columns:
        tcol = table[col.name]
        for i, row in enumerate(rows):
            want, got = row.get(col.name), tcol[i]
            if col.sqltype == "REAL":
                assert tcol.dtype.kind == "f"
                assert (math.isnan(got) if want is None else got == want), (col.name, i, got, want)
            elif want is None:
                assert np.ma.is_masked(got), (col.name, i, got)
            else:
                assert not np.ma.is_masked(got) and got == want, (col.name, i, got, want)
                if col.sqltype == "INTEGER":
                    assert tcol.dtype.kind == "i"
                else:
                    assert tcol.dtype.kind == "U"


# --- search ---------------------------------------------------------------------------------


def test_search_table_equals_in_process_search(app, client):
    spec = {"type": "cone", "params": {"coords": "290 45 60"}, "filter": "vmag < 15", "limit": 100}
    res = client.search("cone", coords="290 45 60", filter="vmag < 15", limit=100)
    local = run_search(app, spec)
    assert res.nreturned == local.nreturned == len(res.table) > 0
    assert res.nmatched == local.nmatched
    assert len(res.dataset_id) == 64
    assert res.messages == local.messages
    assert list(res.table["objectid"]) == [r["objectid"] for r in local.rows]
    assert_table_matches(res.table, local.columns, local.rows)
    # units and descriptions from the column metadata
    import astropy.units as u

    assert res.table["ra"].unit == u.deg and res.table["decl"].unit == u.deg
    assert res.table["vmag"].unit == u.mag and res.table["dist_arcsec"].unit == u.arcsec
    assert res.table["ra"].description == "right ascension (ICRS)"
    assert res.table["ra"].meta["ucd"].startswith("pos.eq.ra")
    assert res.table.meta["dataset_id"] == res.dataset_id
    # nulls: REAL all-null columns are NaN floats, TEXT nulls are masked
    assert np.isnan(res.table["rmag"]).all()
    assert res.table["gaia_id"].mask.all()


def test_search_with_a_whole_spec_and_sort(app, client):
    spec = {"type": "filter", "params": {"where": "ndet > 0"}, "sort": "vmag", "limit": 7}
    res = client.search(spec)
    local = run_search(app, spec)
    assert list(res.table["objectid"]) == [r["objectid"] for r in local.rows]
    assert list(res.table["vmag"]) == sorted(res.table["vmag"])
    # keywords override the spec's keys and add parameters
    res2 = client.search(spec, limit=3, sort=["-vmag"])
    assert res2.nreturned == 3 and res2.spec["limit"] == 3
    local2 = run_search(app, {**spec, "limit": 3, "sort": ["-vmag"]})
    assert list(res2.table["objectid"]) == [r["objectid"] for r in local2.rows]
    every = run_search(app, {**spec, "limit": 1000}).rows
    assert list(res2.table["vmag"]) == sorted((r["vmag"] for r in every), reverse=True)[:3]


def test_collections(client):
    [coll] = client.collections()
    assert coll["collection_id"] == "demo" and coll["nobjects"] == 24
    one = client.collection("demo")
    assert any(c["name"] == "ra" and c["unit"] == "deg" for c in one["columns"])
    assert {"cone", "filter"} <= {t["type"] for t in client.search_types()}


# --- datasets -------------------------------------------------------------------------------


def test_dataset_paging_returns_every_row(app, server, monkeypatch):
    c = Client(server)
    res = c.search("filter", where="ndet > 0", limit=1000, name="everything")
    local = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 1000})
    assert res.nreturned == 24
    c.page_size = 5
    spy = Spy(c, monkeypatch)
    ds = c.dataset(res.dataset_id)
    pages = [call["url"] for call in spy.calls]
    assert len(pages) == 5 and all("start=" in u and "stop=" in u for u in pages)
    assert ds["name"] == "everything" and ds["nobjects"] == 24 and ds.dataset_id == res.dataset_id
    assert "rows" not in ds
    assert len(ds.rows) == len(ds.table) == 24
    assert list(ds.table["objectid"]) == [r["objectid"] for r in local.rows]
    assert_table_matches(ds.table, local.columns, local.rows)
    # an explicit page size works too, and gives the same table
    again = c.dataset(res.dataset_id, page_size=7)
    assert list(again.table["objectid"]) == list(ds.table["objectid"])


def test_edit_freeze_and_list(server):
    c = Client(server)
    res = c.search("cone", coords="290 45 30", visibility="private", name="mine")
    assert res.dataset_id in {d["dataset_id"] for d in c.datasets(mine=True)}
    out = c.edit_dataset(res.dataset_id, name="renamed", visibility="public", comment="nice field")
    assert set(out["changed"]) == {"name", "visibility", "comments"}
    ds = c.dataset(res.dataset_id)
    assert ds["name"] == "renamed" and ds["visibility"] == "public"
    assert ds["comments"][0]["text"] == "nice field"
    frozen = c.freeze(res.dataset_id)
    assert frozen["dataset"]["frozen"] and frozen["dataset"]["parent"] == res.dataset_id
    assert c.dataset(frozen["dataset"]["dataset_id"])["frozen"] is True
    # another session sees the public dataset but may not rename it
    other = Client(server)
    assert res.dataset_id in {d["dataset_id"] for d in other.datasets()}
    with pytest.raises(ClientError) as err:
        other.edit_dataset(res.dataset_id, name="hijacked")
    assert err.value.status == 403


def test_private_dataset_is_invisible_to_another_client(server):
    alice, bob = Client(server), Client(server)
    res = alice.search("cone", coords="290 45 30", visibility="private")
    assert alice.dataset(res.dataset_id)["visibility"] == "private"
    with pytest.raises(ClientError) as err:
        bob.dataset(res.dataset_id)
    assert err.value.status == 404
    with pytest.raises(ClientError) as err:
        bob.products(res.dataset_id)
    assert err.value.status == 404
    assert res.dataset_id not in {d["dataset_id"] for d in bob.datasets()}


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,status,field", [
    ({"coords": "290 99"}, 400, "coords"),
    ({"coords": "290 45", "radius_arcmin": 1e6}, 400, "radius_arcmin"),
    ({"coords": "290 45", "limit": -1}, 400, "limit"),
    ({"coords": "290 45", "filter": "vmag < 1; DROP TABLE object_catalog"}, 400, "filter"),
    ({"coords": "290 45", "collections": ["nope"]}, 404, None),
    ({"coords": "290 45", "visibility": "secret"}, 400, "visibility"),
])
def test_api_errors_become_client_errors(client, kwargs, status, field):
    with pytest.raises(ClientError) as err:
        client.search("cone", **kwargs)
    assert err.value.status == status
    assert err.value.field == field
    assert err.value.message and "Traceback" not in err.value.message
    if field:
        assert f"field: {field}" in str(err.value)


def test_other_errors(client):
    with pytest.raises(ClientError) as err:
        client.search("nope")
    assert err.value.status == 404
    with pytest.raises(ClientError) as err:
        client.dataset("0" * 64)
    assert err.value.status == 404 and err.value.type == "NotFound"
    with pytest.raises(ClientError) as err:
        client.product(client.search("cone", coords="290 45 5").dataset_id, "lightcurves", fromat="csv")
    assert err.value.status == 400 and err.value.field == "fromat"


def test_unreachable_server_is_a_client_error():
    from support.servers import free_port

    c = Client(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(ClientError, match="cannot reach") as err:
        c.collections()
    assert err.value.status is None


# --- products and downloads -----------------------------------------------------------------


def test_product_build_and_download(app, client, built, tmp_path):
    res, status, seen = built
    assert status["status"] == "done" and status["progress"] == 1.0
    assert seen and seen[-1]["status"] == "done"
    path = client.download(res.dataset_id, status, dest_dir=tmp_path)
    assert path.name == status["filename"] and path.parent == tmp_path
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == status["sha256"] and len(data) == status["size"]
    assert not list(tmp_path.glob("*.part"))
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if n.startswith("lightcurves/demo/")]
        assert len(members) == 24 and all(n.endswith(".csv") for n in members)
    # the same request again reuses the built product; a key works in place of the status
    again = client.product(res.dataset_id, "lightcurves", format="csv")
    assert again["key"] == status["key"]
    path2 = client.download(res.dataset_id, status["key"], dest_dir=tmp_path / "by-key")
    assert path2.read_bytes() == data
    assert status["key"] in {p["key"] for p in client.products(res.dataset_id)}


def _real_zip(app, status) -> bytes:
    return app.products.file_path(status["key"], status["builder"]).read_bytes()


def test_download_resumes_a_partial_file_with_range(app, server, built, tmp_path, monkeypatch):
    res, status, _ = built
    whole = _real_zip(app, status)
    n = len(whole) // 3
    assert n > 0
    part = tmp_path / (status["filename"] + ".part")
    part.write_bytes(whole[:n])
    c = Client(server)  # an unlisted dataset: anyone with the id may download it
    spy = Spy(c, monkeypatch)
    got = []
    path = c.download(res.dataset_id, status, dest_dir=tmp_path, progress=lambda done, total: got.append(done))
    [call] = spy.calls
    assert call["range"] == f"bytes={n}-"
    assert call["status"] == 206 and int(call["length"]) == len(whole) - n, "only the rest was sent"
    assert path.read_bytes() == whole
    assert hashlib.sha256(path.read_bytes()).hexdigest() == status["sha256"]
    assert not part.exists()
    assert got[-1] == len(whole)


def test_download_of_a_complete_part_needs_no_request(app, client, built, tmp_path, monkeypatch):
    res, status, _ = built
    whole = _real_zip(app, status)
    (tmp_path / (status["filename"] + ".part")).write_bytes(whole)
    spy = Spy(client, monkeypatch)
    path = client.download(res.dataset_id, status, dest_dir=tmp_path)
    assert spy.calls == [] and path.read_bytes() == whole
    # and a file that is already there and intact is not fetched again
    assert client.download(res.dataset_id, status, dest_dir=tmp_path) == path and spy.calls == []


def test_corrupt_part_is_detected_and_removed(app, client, built, tmp_path):
    res, status, _ = built
    whole = _real_zip(app, status)
    n = len(whole) // 2
    part = tmp_path / (status["filename"] + ".part")
    part.write_bytes(bytes(b ^ 0xFF for b in whole[:n]))
    with pytest.raises(ClientError, match="SHA256 mismatch"):
        client.download(res.dataset_id, status, dest_dir=tmp_path)
    assert not (tmp_path / status["filename"]).exists()
    assert not part.exists()
    # the next attempt starts afresh and succeeds
    path = client.download(res.dataset_id, status, dest_dir=tmp_path)
    assert path.read_bytes() == whole


def test_a_too_long_part_is_discarded(app, client, built, tmp_path):
    res, status, _ = built
    whole = _real_zip(app, status)
    part = tmp_path / (status["filename"] + ".part")
    part.write_bytes(whole + b"junk")
    path = client.download(res.dataset_id, status, dest_dir=tmp_path)
    assert path.read_bytes() == whole and not part.exists()


def test_stale_checksum_in_status_is_refused(client, built, tmp_path):
    res, status, _ = built
    wrong = dict(status, sha256="0" * 64)
    with pytest.raises(ClientError, match="changed"):
        client.download(res.dataset_id, wrong, dest_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


class Flaky:
    """A response that breaks (connection reset) after ``chunks`` reads."""

    def __init__(self, resp, chunks):
        self.resp, self.left = resp, chunks
        self.status, self.headers = resp.status, resp.headers

    def read(self, n=-1):
        if self.left == 0:
            raise ConnectionResetError("connection reset by peer")
        self.left -= 1
        return self.resp.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.resp.close()


def test_interrupted_download_keeps_its_part_and_resumes(app, server, built, tmp_path, monkeypatch):
    import lcpanel.client as client_mod

    res, status, _ = built
    whole = _real_zip(app, status)
    monkeypatch.setattr(client_mod, "CHUNK", 1000)
    c = Client(server)
    original = c.opener.open
    monkeypatch.setattr(c.opener, "open", lambda req, *a, **kw: Flaky(original(req, *a, **kw), 3))
    with pytest.raises(ClientError, match="interrupted after 3000 of"):
        c.download(res.dataset_id, status, dest_dir=tmp_path)
    part = tmp_path / (status["filename"] + ".part")
    assert part.read_bytes() == whole[:3000]
    assert not (tmp_path / status["filename"]).exists()
    monkeypatch.setattr(c.opener, "open", original)
    spy = Spy(c, monkeypatch)
    path = c.download(res.dataset_id, status, dest_dir=tmp_path)
    assert [call["range"] for call in spy.calls] == ["bytes=3000-"]
    assert path.read_bytes() == whole and not part.exists()


def test_product_of_a_selection(client, built, tmp_path):
    res, _, _ = built
    keys = [f"demo/{o}" for o in res.table["objectid"][:2]]
    status = client.product(res.dataset_id, "lightcurves", objects=keys, options={"format": "csv"}, poll=0.1)
    path = client.download(res.dataset_id, status, dest_dir=tmp_path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(n for n in zf.namelist() if n.startswith("lightcurves/")) == \
            sorted(f"lightcurves/demo/{k.split('/')[1]}.csv" for k in keys)


def test_cookie_file_keeps_the_session(server, tmp_path):
    jar = tmp_path / "cookies.txt"
    first = Client(server, cookie_file=jar)
    res = first.search("cone", coords="290 45 30", visibility="private")
    assert jar.exists() and (jar.stat().st_mode & 0o077) == 0
    later = Client(server, cookie_file=jar)
    assert later.dataset(res.dataset_id)["visibility"] == "private"
    with pytest.raises(ClientError) as err:
        Client(server).dataset(res.dataset_id)
    assert err.value.status == 404


def test_object_file(client, tmp_path):
    path = client.object_file("demo", "LCP-000001", "lightcurve", format="csv", dest_dir=tmp_path)
    assert path.name == "LCP-000001.csv"
    assert path.read_bytes().startswith(b"# objectid:")
    assert not list(tmp_path.glob("*.part"))
    original = client.object_file("demo", "LCP-000001", "lightcurve", dest_dir=tmp_path)
    assert original.name.endswith(".csv.gz") and original.stat().st_size > 0
    with pytest.raises(ClientError) as err:
        client.object_file("demo", "LCP-000001", "lightcurve", format="xls", dest_dir=tmp_path)
    assert err.value.status == 400 and err.value.field == "format"
    with pytest.raises(ClientError) as err:
        client.object_file("demo", "NOPE", "lightcurve", dest_dir=tmp_path)
    assert err.value.status == 404


def test_lightcurves_as_parquet_pandas_and_astropy(app, client, built, tmp_path):
    res, _, _ = built
    frame = client.lightcurves(res.dataset_id, dest_dir=tmp_path)
    assert set(frame["collection"]) == {"demo"} and frame["objectid"].nunique() == 24
    assert len(frame) == int(np.sum(res.table["ndet"]))  # every point of every object
    table = client.lightcurves(res.dataset_id, as_table="astropy", dest_dir=tmp_path / "astropy")
    assert len(table) == len(frame) and str(table["bjd"].unit) == "d"
    np_bjd = frame["bjd"].to_numpy()
    assert (table["bjd"].value == np_bjd).all()


def test_url_manifest_per_kind_and_format(app, client, built):
    res, _, _ = built
    every = client.urls(res.dataset_id)
    fits_urls = client.urls(res.dataset_id, kind="lightcurve", format="fits")
    assert len(fits_urls) == 24 and all(u.endswith("/lightcurve?format=fits") for u in fits_urls)
    assert len(every) > len(fits_urls)
    with pytest.raises(ClientError, match="format must be"):
        client.urls(res.dataset_id, format="parquet")
    path = client.object_file("demo", fits_urls[0].split("/objects/")[1].split("/")[0], format="fits",
                              dest_dir=app.basedir / "tmp-urls")
    assert path.read_bytes()[:6] == b"SIMPLE"


def test_product_status_reports_its_rate(built):
    _, status, _ = built
    assert status["done"] == 24 and status["rate"] > 0  # light curves per second, queue wait included
