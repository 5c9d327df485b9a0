"""Shared fixtures: small astrobase collections made by the example generator (built once
per test session), fresh basedirs, a demo app and server. Helpers that are not fixtures
live in ``tests/support/`` (servers, clients, data)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.data import example_collection, random_catalog, set_config, snapshot, write_table  # noqa: F401  (also imported from here)

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    """examples/make_collection.py, installed as the module ``make_collection`` (``pip
    install -e examples``; its worker functions are pickled by name)."""
    import make_collection

    return make_collection


def pytest_configure(config):
    """Every basedir's runtime directory (the shared rate-limit table: ``/dev/shm`` by
    default) goes under one temporary directory of this test process, removed at its end;
    servers started by the tests inherit it. (Each of the suite's hundreds of basedirs
    used to leave a directory in ``/dev/shm``.)"""
    import os
    import tempfile

    config._lcpanel_runtime = tempfile.mkdtemp(prefix="lcpanel-test-runtime-")
    os.environ["XDG_RUNTIME_DIR"] = config._lcpanel_runtime


def pytest_unconfigure(config):
    import shutil

    if getattr(config, "_lcpanel_runtime", None):
        shutil.rmtree(config._lcpanel_runtime, ignore_errors=True)


def pytest_xdist_make_scheduler(config, log):
    """How ``make test`` spreads the suite over its pytest-xdist workers (two unless
    ``LCPANEL_TEST_WORKERS`` says otherwise; ``--dist loadfile``): each test file is one
    unit of work, so that its module fixtures (a built collection, a served basedir) are
    made once; the browser tests are one unit together, so that one Chromium and one
    served basedir (session fixtures) serve them all; each benchmark smoke run is a unit
    of its own (they are long and share nothing)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if "/browser/" in path or path.endswith("_browser.py"):
                return "browser"
            return nodeid if path.endswith("/test_benchmarks.py") else path

    return Units(config, log)


@pytest.fixture(scope="session")
def generator():
    return _load_generator()


@pytest.fixture(scope="session")
def csv_collection(tmp_path_factory) -> Path:
    """An astrobase collection (gzipped-text light curves) of 24 objects."""
    return example_collection(tmp_path_factory, "demo_csv", nobjects=24, seed=7, lcformat="lcpanel-demo-csv",
                              workers=2)


@pytest.fixture(scope="session")
def fits_collection(tmp_path_factory) -> Path:
    """An astrobase collection whose light curves use another registered format (FITS)."""
    return example_collection(tmp_path_factory, "demo_fits", nobjects=12, seed=11, lcformat="lcpanel-demo-fits",
                              workers=2, center_ra=2.0, center_dec=-30.0)


@pytest.fixture
def app_factory():
    from lcpanel.app import App

    return App


@pytest.fixture
def basedir(tmp_path):
    from lcpanel.core.catalogs.basedir import Basedir

    return Basedir.init(tmp_path / "basedir")


@pytest.fixture(scope="module")
def demo_app(csv_collection, tmp_path_factory):
    """An app on a fresh basedir holding the example collection as ``demo`` (one per module)."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = Basedir.init(tmp_path_factory.mktemp("demo") / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


@pytest.fixture(scope="module")
def demo_server(demo_app):
    """``lcpanel serve`` on ``demo_app``'s basedir, as users run it; yields its URL."""
    from support.servers import running_server

    with running_server(demo_app.basedir) as (url, _proc):
        yield url
