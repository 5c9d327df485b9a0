"""The dataset page's light-curve options in Chromium, on the real HAT light curve: the
magnitude column, times and quality-mask choices appear for converted formats, the zip
built from them holds what was chosen, and the products table tells the builds apart."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import served, wait_idle
from .test_dataset_page import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _options_module():
    spec = importlib.util.spec_from_file_location("lcpanel_test_product_options",
                                                  ROOT / "tests" / "test_product_options.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hat_server(tmp_path_factory):
    from dataclasses import dataclass

    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    helpers = _options_module()
    if not helpers.HAT.exists():
        pytest.skip("no realdata")
    root = tmp_path_factory.mktemp("hatpage")
    base = Basedir.init(root / "basedir")
    add_astrobase_collection(App(base.path), base, helpers.make_hat_collection(root / "hat"), collection_id="hat",
                             show_progress=False)

    @dataclass
    class Server:
        url: str

    with served(base.path, root / "serve.log") as url:
        yield Server(url)


@pytest.mark.parametrize("width", [1280, 420])
def test_light_curve_options_in_the_build_form(page, hat_server, screenshot, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(hat_server.url + "/", wait_until="domcontentloaded")
    wait_idle(page)
    ds = make_dataset(page, hat_server, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["hat"]})
    page.goto(f"{hat_server.url}/datasets/{ds}", wait_until="domcontentloaded")
    wait_idle(page)
    options = page.locator(".lcp-lc-options")
    expect(options).to_be_hidden()  # 'original' files take no options
    page.locator("select").filter(has_text="original").select_option("csv")
    expect(options).to_be_visible(timeout=60_000)
    page.locator(".lcp-opt-magcol select").select_option("aep_000")
    page.locator(".lcp-opt-times select").select_option("bjd")
    page.locator(".lcp-opt-mask select").select_option(label="flag points failing aiq_002_good")
    wait_idle(page)
    screenshot(page, f"dataset-lc-options-{width}")
    page.locator(".lcp-build button").click()
    link = page.locator(".lcp-product-status a.lcp-download")
    expect(link).to_be_visible(timeout=120_000)
    with page.expect_download() as info:
        link.click()
    zf = zipfile.ZipFile(io.BytesIO(open(info.value.path(), "rb").read()))
    readme = zf.read("README.txt").decode()
    assert "magcol=aep_000" in readme and "times=bjd" in readme and "mask=aiq_002_good" in readme
    assert "masked=flag" in readme
    [name] = [n for n in zf.namelist() if n.endswith(".csv")]
    header = [line for line in zf.read(name).decode().splitlines() if not line.startswith("#")][0].split(",")
    assert "bjd" in header and "masked" in header and "rjd" not in header and "atf_000" not in header
    expect(page.locator(".lcp-table").filter(has_text="times=bjd")).to_be_visible(timeout=30_000)
