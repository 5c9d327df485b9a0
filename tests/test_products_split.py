"""One large product built across the worker pool: its members split in slices over the
workers and joined in order give the same zip, byte for byte, as one worker writing it
alone; progress counts every member; a failing member fails the build with its name and
leaves no part files."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest

from lcpanel.core import products as products_mod
from lcpanel.core.datasets import Principal
from lcpanel.core.search import run_search

pytestmark = pytest.mark.slow
ALICE = Principal("anon:alice")
NMEMBERS = 2 * products_mod.SPLIT_MIN + 7


@pytest.fixture
def many_app(demo_app, tmp_path):
    from lcpanel.app import App
    from lcpanel.core.products import Entry, ProductBuilder
    from lcpanel.hookspecs import hookimpl

    source = tmp_path / "readme.txt"
    source.write_bytes(b"a file member\n" * 100)

    class Many(ProductBuilder):
        """Hundreds of small members of every kind (deflated and stored), one of them
        failing on request."""
        name, title = "many", "Many"
        options = {"fail": ("no", "yes")}

        def plan(self, app, dataset, rows, options):
            out = [Entry(arcname="readme.txt", kind="file", source=str(source))]
            for i in range(NMEMBERS):
                suffix = ".gz" if i % 5 == 0 else ".txt"  # .gz members are stored, the others deflated
                args = {"obj": f"member {i} of {len(rows)} " * (1 + i % 40)}
                if options["fail"] == "yes" and i == NMEMBERS - 3:
                    args = {"obj": 12}  # codecs.encode(12) raises TypeError in the worker
                out.append(Entry(arcname=f"m/{i:04d}{suffix}", kind="call", func="codecs:encode", args=args))
            out.append(Entry(arcname="about.json", kind="bytes", data=b'{"n": 1}'))
            return out

    class Plugin:
        @hookimpl
        def register_product_builders(self, app):
            return [Many]

    app = App(demo_app.basedir, plugins=(Plugin(),))
    yield app
    app.products.shutdown()


def _workers(app, n: int) -> None:
    app.products.shutdown()
    app.products.max_workers = n


def test_split_build_equals_one_worker_byte_for_byte(many_app, monkeypatch):
    app = many_app
    res = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 5})
    ds = app.datasets.create(res, ALICE.identity)
    joins = []
    real_join = products_mod.join_parts
    monkeypatch.setattr(products_mod, "join_parts",
                        lambda index, key, parts, target: (joins.append(len(parts)), real_join(index, key, parts, target)))

    _workers(app, 1)
    one = app.products.request(app, ds, "many", {}, wait=True)
    assert one["status"] == "done", one
    path = app.products.file_path(one["key"], "many")
    serial = path.read_bytes()
    assert joins == []
    path.unlink()

    _workers(app, 2)
    split = app.products.request(app, ds, "many", {}, wait=True)
    assert split["status"] == "done", split
    assert joins == [4]  # 2 workers x PARTS_PER_WORKER slices
    data = path.read_bytes()
    assert data == serial
    assert split["sha256"] == one["sha256"] == hashlib.sha256(data).hexdigest()
    assert split["done"] == split["total"] == NMEMBERS + 2
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    names = zf.namelist()
    assert names == ["readme.txt"] + [n for n in names if n.startswith("m/")] + ["about.json", "SHA256SUMS"]
    assert [n for n in names if n.startswith("m/")] == sorted(n for n in names if n.startswith("m/"))
    assert zf.read("m/0007.txt") == ("member 7 of 5 " * 8).encode()
    assert zf.getinfo("m/0005.gz").compress_type == zipfile.ZIP_STORED
    assert zf.getinfo("m/0007.txt").compress_type == zipfile.ZIP_DEFLATED
    assert not list(path.parent.glob(".tmp-*"))


def test_split_build_failure_names_the_member_and_leaves_nothing(many_app):
    app = many_app
    res = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "limit": 4})
    ds = app.datasets.create(res, ALICE.identity)
    _workers(app, 2)
    status = app.products.request(app, ds, "many", {"fail": "yes"}, wait=True)
    assert status["status"] == "failed", status
    assert f"m/{NMEMBERS - 3:04d}.txt could not be made: TypeError" in status["error"]
    path = app.products.file_path(status["key"], "many")
    assert not path.exists() and not list(path.parent.glob(".tmp-*"))
