"""Browser tests: a served basedir, Chromium through pytest-playwright, and helpers.

- ``lcpanel_server`` (session): a basedir with the example astrobase collection
  (``csv_collection``) and a plain catalog straddling RA 0/360, served by
  ``lcpanel serve`` in its own process group, killed as a group at teardown.
- Chromium: the system binary (``LCPANEL_CHROMIUM``, default ``/usr/bin/chromium``)
  with the headless flags that keep it off the network (see ../shared/E2E.md).
- ``page`` records console messages; :func:`wait_idle` waits until every Bokeh document
  is idle and fails at once on the console errors that mean the session never came up.
- :func:`screenshot` saves full-page PNGs into ``artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.data import random_catalog, set_config, write_table
from support.servers import running_server

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("LCPANEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
FATAL_CONSOLE = ("Could not open websocket", "Error rendering Bokeh items", "Failed to load Bokeh session")
#: in every console message of a Content-Security-Policy violation (Chromium)
CSP_CONSOLE = "Content Security Policy"
IDLE_JS = "() => !!(window.Bokeh && Bokeh.documents.length && Bokeh.documents.every(d => d.is_idle))"

#: the plain catalog: 1500 objects in a 4 degree cap around RA 1, Dec -30 (crosses RA 0/360)
WRAP_FIELD = {"collection_id": "wrapfield", "name": "Sculptor wrap field",
              "description": "A plain catalog straddling RA 0h: positions and magnitudes, no light curves.",
              "project": "Test survey", "citation": "Nobody et al. (2026), Test Journal 1, 1",
              "datarelease": 2}


def page_api(url: str) -> dict:
    """Headers of an API write made with a browser context's cookies as a page of the
    server makes it (JSON, same Origin; see lcpanel.csrf)."""
    return {"Content-Type": "application/json", "Origin": url}


# --- Chromium -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = dict(browser_type_launch_args)
    if Path(CHROMIUM).exists():
        args["executable_path"] = CHROMIUM
    args["args"] = [*args.get("args", []), *CHROMIUM_ARGS]
    return args


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "accept_downloads": True, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture
def page(page):
    """pytest-playwright's page, recording console messages and page errors; a test fails
    if the browser reported a Content-Security-Policy violation (the pages must work
    under the policy :mod:`lcpanel.security_headers` sends)."""
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
    page.lcp_console = messages
    yield page
    violations = csp_violations(messages)
    assert not violations, "Content-Security-Policy violations: " + " | ".join(violations)


def csp_violations(messages) -> list[str]:
    """The console messages in which the browser refused something of the page because of
    the CSP. A page of another site trying to frame ours ("Framing ... frame-ancestors") is
    our ``frame-ancestors 'none'`` working, as the attacker pages in test_csrf_browser do."""
    return [m for m in messages if CSP_CONSOLE in m and "frame-ancestors" not in m]


def wait_idle(page, timeout: float = 30.0) -> float:
    """Poll until every Bokeh document on the page is idle; return the seconds waited.

    Fails fast when the console says the Bokeh session could not come up."""
    from playwright.sync_api import Error

    started = time.monotonic()
    while True:
        fatal = [m for m in getattr(page, "lcp_console", []) if any(f in m for f in FATAL_CONSOLE)]
        if fatal:
            raise AssertionError("the Bokeh session failed: " + " | ".join(fatal))
        violations = csp_violations(getattr(page, "lcp_console", []))
        if violations:
            raise AssertionError("Content-Security-Policy violations: " + " | ".join(violations))
        try:
            if page.evaluate(IDLE_JS):
                return time.monotonic() - started
        except Error:  # navigating: the execution context went away
            pass
        if time.monotonic() - started > timeout:
            recent = getattr(page, "lcp_console", [])[-5:]
            raise TimeoutError(f"Bokeh did not become idle in {timeout:.0f} s; console: {recent}")
        page.wait_for_timeout(50)


SCROLLER_JS = """() => {
    let best = null
    for (const el of document.querySelectorAll('body *')) {
        const s = getComputedStyle(el)
        if ((s.overflowY === 'auto' || s.overflowY === 'scroll') && el.scrollHeight > el.clientHeight + 1
            && (!best || el.scrollHeight > best.scrollHeight)) best = el
    }
    return best ? best.scrollHeight - best.clientHeight : 0
}"""


@pytest.fixture(name="wait_idle")
def wait_idle_fixture():
    """:func:`wait_idle`, for test modules (they cannot import this conftest by name)."""
    return wait_idle


@pytest.fixture(name="screenshot")
def screenshot_fixture():
    """:func:`screenshot`, for test modules."""
    return screenshot


def screenshot(page, name: str) -> Path:
    """A full-page PNG in artifacts/screenshots/. Templates scroll inside a container,
    not the body, so the viewport is made tall enough to show everything meanwhile."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (name if name.endswith(".png") else name + ".png")
    size = page.viewport_size
    hidden = page.evaluate(SCROLLER_JS)
    if size and hidden > 0:
        page.set_viewport_size({"width": size["width"], "height": size["height"] + int(hidden)})
        page.wait_for_timeout(300)
        wait_idle(page)
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        if size and hidden > 0:
            page.set_viewport_size(size)
    return path


# --- the server -----------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    basedir: Path
    log: Path
    #: collection id -> name
    collections: dict
    #: (ra, dec) of an object of the example collection
    star: tuple[float, float]

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


#: a staff account (may review objects) in the browser tests' basedir
REVIEWER = ("reviewer", "pw-of-reviewer")


@pytest.fixture(scope="session")
def lcpanel_basedir(csv_collection, tmp_path_factory) -> tuple[Path, dict, tuple[float, float]]:
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection
    from lcpanel.core.search import run_search

    root = tmp_path_factory.mktemp("browser")
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    demo = add_astrobase_collection(app, base, csv_collection, collection_id="demo", show_progress=False)
    meta = {k: v for k, v in WRAP_FIELD.items() if k != "collection_id"}
    cols = random_catalog(1500, seed=3, center=(1.0, -30.0), radius_deg=4.0)
    wrap = add_catalog_collection(app, base, write_table(cols, root / "wrapfield.parquet"),
                                  collection_id=WRAP_FIELD["collection_id"], meta=meta, show_progress=False)
    row = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["demo"],
                           "sort": "objectid", "limit": 1}).rows[0]
    app.users.add_user(REVIEWER[0], REVIEWER[1], "staff")
    # every page test is one anonymous address: lift the disk quota and product cap
    # (tests/test_quotas.py is about those)
    set_config(base.path, "[quotas]\nanonymous_disk_mb = 0.0\nanonymous_product_mb = 0.0\n")
    return base.path, {demo.collection_id: demo.name, wrap.collection_id: wrap.name}, (row["ra"], row["decl"])


@contextlib.contextmanager
def served(basedir, log: Path):
    """``lcpanel serve`` on ``basedir`` as users run it, its output in ``log``; yields the
    URL once live and stops the process group afterwards."""
    with running_server(basedir, log=log, cwd=ROOT, timeout=90.0) as (url, _proc):
        yield url


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used the shared server gets the server's log tail in its report:
    pytest keeps only its last three temporary directories, so in CI the log is gone by
    the time anyone looks."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("lcpanel_server")
    if report.failed and isinstance(server, LiveServer):
        report.sections.append(("lcpanel serve log (last 80 lines)", server.log_tail(80)))


@pytest.fixture(scope="session")
def lcpanel_server(lcpanel_basedir, tmp_path_factory) -> LiveServer:
    basedir, collections, star = lcpanel_basedir
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    with served(basedir, log) as url:
        yield LiveServer(url=url, basedir=basedir, log=log, collections=collections, star=star)
