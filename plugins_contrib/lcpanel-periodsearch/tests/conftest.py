"""Fixtures of the plugin's tests.

The plugin is tested as users get it: installed (``pip install -e``), found through its
``lcpanel`` entry point by a plain ``App(basedir)``, ``lcpanel`` subprocesses and
``lcpanel serve``. No test registers it by hand.

The example astrobase collection and the browser fixtures come from lcpanel's own test
suite (``tests/conftest.py``, ``tests/browser/conftest.py``, ``tests/support/``), loaded as modules of their
own so that this directory can be run alone or together with ``tests/``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str, path: Path, package: bool = False):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, path, submodule_search_locations=[str(path.parent)] if package else None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_load("support", ROOT / "tests" / "support" / "__init__.py", package=True)  # what lcpanel's conftests import
helpers = _load("lcpanel_tests_helpers", ROOT / "tests" / "conftest.py")
browser = _load("lcpanel_browser_helpers", ROOT / "tests" / "browser" / "conftest.py")

# lcpanel's fixtures, re-exported for this directory
generator = helpers.generator
csv_collection = helpers.csv_collection
browser_type_launch_args = browser.browser_type_launch_args
browser_context_args = browser.browser_context_args
page = browser.page

#: the plain catalog straddling RA 0/360 (no light curves, no periods)
WRAP = {"center": (1.0, -30.0), "radius_deg": 4.0, "n": 800, "seed": 5}


@pytest.fixture(scope="session")
def ps_basedir(csv_collection, tmp_path_factory) -> Path:
    """A basedir with the example astrobase collection (``demo``) and a plain catalog
    around RA 0 (``wrap``), added as ``lcpanel add-collection`` does (so the plugin's
    ``collection_added`` hook runs)."""
    from lcpanel.plugin_api import add_astrobase_collection, add_catalog_collection, App, Basedir

    root = tmp_path_factory.mktemp("periodsearch")
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    add_astrobase_collection(app, base, csv_collection, collection_id="demo", show_progress=False)
    cols = helpers.random_catalog(WRAP["n"], seed=WRAP["seed"], center=WRAP["center"], radius_deg=WRAP["radius_deg"])
    add_catalog_collection(app, base, helpers.write_table(cols, root / "wrap.parquet"), collection_id="wrap",
                           show_progress=False)
    app.products.shutdown()
    return base.path


@pytest.fixture(scope="module")
def ps_app(ps_basedir):
    """A fresh App on that basedir, loading plugins from entry points like every process."""
    from lcpanel.plugin_api import App

    app = App(ps_basedir)
    yield app
    app.products.shutdown()


@pytest.fixture(scope="session")
def ps_server(ps_basedir, tmp_path_factory):
    """``lcpanel serve`` on that basedir, as users run it; yields its URL."""
    log = tmp_path_factory.mktemp("periodsearch-serve") / "serve.log"
    with browser.served(ps_basedir, log) as url:
        yield url


@pytest.fixture(name="wait_idle")
def wait_idle_fixture():
    return browser.wait_idle


@pytest.fixture(name="screenshot")
def screenshot_fixture():
    return browser.screenshot
