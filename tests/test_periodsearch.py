"""Period search on demand through the JSON API (``lcpanel serve`` in a process of its
own): the best periods equal astrobase's, called directly on the same light curve read by
an independent reader (the demo format's own module; astrobase's HATNet reader for the
real light curve); bad options are refused with the field named and start nothing; each
identity has a limit of searches at once; only who started a search (or an admin)
cancels it; results live in the basedir, never in the survey's directory."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import set_config, snapshot
from test_api import running_server
from test_reviews import tree_digest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[periodsearch]
workers = 2
anonymous_concurrent = 1
user_concurrent = 1
"""


def call(url: str, method: str = "GET", body=None, key: str | None = None, headers: dict | None = None):
    head = {"Content-Type": "application/json", "Origin": url.split("/api/")[0], **(headers or {})}
    if key:
        head["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=head, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def wait_done(base: str, job: dict, key: str | None = None, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        status, out, _ = call(base + job["url"], key=key)
        assert status == 200, out
        seen.append((out["status"], out.get("progress")))
        if out["status"] not in ("queued", "running") or time.monotonic() > deadline:
            assert out["status"] == "done", (out, seen[-5:])
            return out
        time.sleep(0.3)


def demo_reader():
    """The demo format's own reader module (examples/lcformats), independent of lcpanel."""
    path = ROOT / "examples" / "lcformats" / "lcpanel_demo_csv.py"
    spec = importlib.util.spec_from_file_location("demo_csv_reader_ps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def astrobase_direct(func_path: str, times, mags, errs, **kwargs) -> dict:
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    module, _, name = func_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(np.asarray(times, float), np.asarray(mags, float),
                                                          np.asarray(errs, float), verbose=False, **kwargs)


@pytest.fixture(scope="module")
def env(csv_collection, tmp_path_factory):
    """The demo collection (a private copy) and the real HATNet light curve, ingested into
    one basedir with two users, an admin and their API keys; served."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from test_magcols_realdata import make_hat_collection

    tmp = tmp_path_factory.mktemp("ps")
    demo = tmp / "survey" / "demo_csv"
    shutil.copytree(csv_collection, demo)
    hat = make_hat_collection(tmp / "survey" / "hat")
    base = Basedir.init(tmp / "basedir")
    set_config(base.path, CONFIG)
    app = App(base.path)
    add_astrobase_collection(app, base, demo, collection_id="demo", show_progress=False)
    add_astrobase_collection(app, base, hat, collection_id="hat", show_progress=False)
    keys = {}
    for name, role in (("ann", "user"), ("bob", "user"), ("root", "admin")):
        user = app.users.add_user(name, f"pw-{name}-123456", role)
        keys[name] = app.users.issue_key(user.identity, role, label="test")[0]
    surveys = {"demo": demo, "hat": hat}
    before = {k: tree_digest(v) for k, v in surveys.items()}
    with running_server(base.path) as (url, _proc):
        yield {"url": url, "base": base.path, "keys": keys, "demo": demo, "hat": hat, "app": app}
    # the survey's directories never changed, whatever the tests did
    assert {k: tree_digest(v) for k, v in surveys.items()} == before


def _object_url(env, collection: str, oid: str) -> str:
    return f"{env['url']}/api/collections/{collection}/objects/{oid}/periodsearch"


def _demo_variable(env) -> str:
    rows = env["app"].catalogs.get("demo").query("SELECT objectid FROM object_catalog ORDER BY objectid")
    return rows[0][0]


def _same_periods(ours: dict, theirs: dict) -> None:
    assert ours["bestperiod"] == pytest.approx(float(theirs["bestperiod"]), rel=1e-12)
    assert ours["nbestperiods"] == pytest.approx([float(p) for p in theirs["nbestperiods"]], rel=1e-12)
    assert len(ours["periods"]) == len(theirs["periods"])
    assert np.allclose(np.asarray(ours["lspvals"], float), np.asarray(theirs["lspvals"], float), equal_nan=True)


def test_gls_and_pdm_on_the_demo_equal_astrobase(env):
    oid = _demo_variable(env)
    url = _object_url(env, "demo", oid)
    key = env["keys"]["ann"]
    opts = {"startp": 0.2, "endp": 8.0, "stepsize": 2e-3, "nbestpeaks": 5}
    results = {}
    for method in ("gls", "pdm"):
        status, job, _ = call(url, "POST", {"method": method, **opts}, key=key)
        assert status == 202, job
        assert job["status"] in ("queued", "running") and job["who"] == "user:ann"
        results[method] = wait_done(env["url"], job, key)

    lc = demo_reader().read_lightcurve(str(next((env["demo"] / "lightcurves").glob(f"{oid}*"))))
    for method, func in (("gls", "astrobase.periodbase.zgls.pgen_lsp"),
                         ("pdm", "astrobase.periodbase.spdm.stellingwerf_pdm")):
        ours = results[method]
        assert (ours["magcol"], ours["timecol"], ours["errcol"]) == ("aep_000", "bjd", "aie_000")
        theirs = astrobase_direct(func, lc["bjd"], lc["aep_000"], lc["aie_000"], startp=0.2, endp=8.0,
                                  stepsize=2e-3, autofreq=False, nbestpeaks=5, sigclip=10.0, nworkers=1)
        _same_periods(ours, theirs)
        assert ours["options"]["stepsize"] == 2e-3 and ours["finished"] and ours["who"] == "user:ann"

    # everyone who can see the object sees the results, anonymous visitors included
    status, listing, _ = call(url)
    assert status == 200
    assert sorted(r["method"] for r in listing["results"]) == ["gls", "pdm"]
    assert all("periods" not in r and r["url"].endswith(r["id"]) for r in listing["results"])
    status, one, _ = call(env["url"] + listing["results"][0]["url"])
    assert status == 200 and len(one["periods"]) == len(one["lspvals"]) > 1000
    # stored in the basedir, one JSON file per result under the object's magcol
    files = sorted((Path(env["base"]) / "workbench" / "periodsearch" / "demo" / oid / "aep_000").glob("*.json"))
    assert sorted(f.stem for f in files) == sorted(r["id"] for r in results.values())


def test_gls_and_pdm_on_the_real_hatnet_light_curve_equal_astrobase(env):
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    oid = "HAT-579-0051858"
    url = _object_url(env, "hat", oid)
    key = env["keys"]["bob"]
    opts = {"magcol": "aep_000", "startp": 0.5, "endp": 10.0, "stepsize": 1e-3, "nbestpeaks": 3}
    results = {}
    for method in ("gls", "pdm"):
        status, job, _ = call(url, "POST", {"method": method, **opts}, key=key)
        assert status == 202, job
        results[method] = wait_done(env["url"], job, key)

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    lcd = hatlc.read_csvlc(str(next((env["hat"] / "lightcurves").glob("*.csv.gz"))))
    for method, func in (("gls", "astrobase.periodbase.zgls.pgen_lsp"),
                         ("pdm", "astrobase.periodbase.spdm.stellingwerf_pdm")):
        ours = results[method]
        assert ours["npoints"] == 10554 and ours["timecol"] == "rjd" and ours["errcol"] == "aie_000"
        theirs = astrobase_direct(func, lcd["rjd"], lcd["aep_000"], lcd["aie_000"], startp=0.5, endp=10.0,
                                  stepsize=1e-3, autofreq=False, nbestpeaks=3, sigclip=10.0, nworkers=1)
        _same_periods(ours, theirs)
    # the other magcol and the other time column are searched when asked
    status, job, _ = call(url, "POST", {"method": "gls", **opts, "magcol": "atf_000", "timecol": "bjd"}, key=key)
    assert status == 202, job
    other = wait_done(env["url"], job, key)
    assert (other["magcol"], other["timecol"]) == ("atf_000", "bjd")
    theirs = astrobase_direct("astrobase.periodbase.zgls.pgen_lsp", lcd["bjd"], lcd["atf_000"], lcd["aie_000"],
                              startp=0.5, endp=10.0, stepsize=1e-3, autofreq=False, nbestpeaks=3, sigclip=10.0,
                              nworkers=1)
    _same_periods(other, theirs)
    status, listing, _ = call(url + "?magcol=atf_000")
    assert [r["id"] for r in listing["results"]] == [other["id"]]


BAD = [
    ({"method": "lombscargle"}, "method"),
    ({"method": "gls", "startp": -1}, "startp"),
    ({"method": "gls", "startp": 5, "endp": 2}, "startp"),
    ({"method": "gls", "stepsize": 1e-3, "autofreq": True}, "stepsize"),
    ({"method": "gls", "stepszie": 1e-3}, "stepszie"),
    ({"method": "pdm", "nbestpeaks": 2.5}, "nbestpeaks"),
    ({"method": "gls", "sigclip": "lots"}, "sigclip"),
    ({"method": "gls", "tmin": 10, "tmax": 5}, "tmin"),
    ({"method": "bls", "nharmonics": 3}, "nharmonics"),
    ({"method": "gls", "magcol": "no_such_mag"}, "magcol"),
    ({"method": "gls", "timecol": "aep_000"}, "timecol"),
    ({"method": "gls", "magmin": 90.0}, "magmin"),
    ({"method": "pdm", "startp": 0.01, "endp": 100, "stepsize": 1e-6}, "stepsize"),
]


def test_bad_options_name_the_field_and_start_nothing(env):
    oid = _demo_variable(env)
    url = _object_url(env, "demo", oid.replace("0", "0"))
    work = Path(env["base"]) / "workbench"
    before = snapshot(work) if work.exists() else {}
    for body, field in BAD:
        status, out, _ = call(url, "POST", body, key=env["keys"]["ann"])
        assert status == 400, (body, out)
        assert out["field"] == field, (body, out)
        assert field in out["error"] or field == "method", out
    status, out, _ = call(_object_url(env, "demo", "NO-SUCH-OBJECT"), "POST", {"method": "gls"},
                          key=env["keys"]["ann"])
    assert status == 404, out
    assert (snapshot(work) if work.exists() else {}) == before  # no job, no file


def test_limit_per_identity_and_who_may_cancel(env):
    oid = _demo_variable(env)
    url = _object_url(env, "demo", oid)
    ann, bob, root = env["keys"]["ann"], env["keys"]["bob"], env["keys"]["root"]
    slow = {"method": "pdm", "startp": 0.1, "endp": 20.0, "stepsize": 2e-5}  # ~500k frequencies: minutes
    status, job, _ = call(url, "POST", slow, key=ann)
    assert status == 202, job
    # ann's second search waits for her first: 429 with Retry-After, and nothing queued
    status, out, headers = call(url, "POST", {"method": "gls"}, key=ann)
    assert status == 429 and "at once" in out["error"] and headers["Retry-After"], out
    # another identity is not held up
    status, other, _ = call(url, "POST", {"method": "gls", "stepsize": 2e-3, "startp": 0.2, "endp": 8}, key=bob)
    assert status == 202, other
    # nobody but ann (or an admin) cancels it: anonymous, then another user
    status, out, _ = call(env["url"] + job["url"], "DELETE")
    assert status == 403, out
    status, out, _ = call(env["url"] + job["url"], "DELETE", key=bob)
    assert status == 403, out
    deadline = time.monotonic() + 120
    while call(env["url"] + job["url"], key=ann)[1]["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status, out, _ = call(env["url"] + job["url"], "DELETE", key=ann)
    assert status == 200 and out["status"] in ("running", "cancelled"), out
    while (state := call(env["url"] + job["url"], key=ann)[1])["status"] != "cancelled":
        assert state["status"] == "running" and time.monotonic() < deadline, state
        time.sleep(0.2)
    status, listing, _ = call(url)
    assert job["id"] not in [r["id"] for r in listing["results"]]
    # her slot is free again
    status, again, _ = call(url, "POST", {"method": "gls", "stepsize": 2e-3, "startp": 0.2, "endp": 8}, key=ann)
    assert status == 202, again
    done = wait_done(env["url"], again, ann)
    wait_done(env["url"], other, bob)
    # a finished result: bob may not delete it, an admin may
    assert call(env["url"] + done["url"], "DELETE", key=bob)[0] == 403
    status, out, _ = call(env["url"] + done["url"], "DELETE", key=root)
    assert status == 200 and out["status"] == "deleted"
    assert call(env["url"] + done["url"])[0] == 404


def test_writes_need_the_same_site(env):
    """A cookie-carrying POST from another site is refused before anything runs."""
    oid = _demo_variable(env)
    url = _object_url(env, "demo", oid)
    _, _, headers = call(url)
    cookie = headers["Set-Cookie"].split(";")[0]
    status, out, _ = call(url, "POST", {"method": "gls"}, headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert status == 403, out
    status, listing, _ = call(url)
    assert all(j["who"] != "x" for j in listing["running"])


def test_options_schema_lists_every_method(env):
    status, out, _ = call(_object_url(env, "demo", _demo_variable(env)) + "?schema=1")
    assert status == 200
    assert [m["code"] for m in out["methods"]] == ["gls", "bls", "pdm", "aov", "mav", "acf", "win"]
    assert "stepsize" in out["methods"][0]["options"] and "startp" not in out["methods"][5]["options"]


def test_every_method_runs_in_process():
    """Each method's astrobase call works on this stack (a sine of period 1.7 d)."""
    from lcpanel.core.objects.periodsearch import run_method, validate_options

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 60, 300))
    m = 12 + 0.1 * np.sin(2 * np.pi * t / 1.7) + rng.normal(0, 0.01, t.size)
    e = np.full(t.size, 0.01)
    for code in ("gls", "bls", "pdm", "aov", "mav", "acf", "win"):
        body = {"method": code} if code == "acf" else {"method": code, "startp": 0.5, "endp": 5, "stepsize": 2e-3}
        out = run_method(validate_options(body), t, m, e)
        assert out["bestperiod"] is not None, code
        if code in ("gls", "pdm", "aov"):
            assert out["bestperiod"] == pytest.approx(1.7, rel=0.01), (code, out["bestperiod"])
        elif code == "mav":  # several harmonics fit a sine at twice its period as well
            assert out["bestperiod"] / 1.7 == pytest.approx(round(out["bestperiod"] / 1.7), rel=0.01), out["bestperiod"]


def test_time_limit_stops_a_search_and_queued_jobs_stay_alive(tmp_path):
    """A search past ``time_limit_s`` is killed and marked failed; a job waiting for a
    worker meanwhile is not taken for dead, and runs after it."""
    from dataclasses import replace

    from lcpanel.config import PeriodSearchSettings
    from lcpanel.core.datasets import Principal
    from lcpanel.core.objects import periodsearch as ps

    settings = replace(PeriodSearchSettings(), workers=1, time_limit_s=4.0, user_concurrent=0)
    service = ps.PeriodSearchService(tmp_path, settings)
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 100, 3000))
    data = ps.SearchInput(t, 12 + 0.1 * np.sin(t), np.full(t.size, 0.01), "mag", "time", None, t.size, 0)
    who = Principal("user:ann", "user")
    slow = service.submit("c", "o", ps.validate_options({"method": "pdm", "startp": 0.1, "endp": 50,
                                                        "stepsize": 2e-5}), data, who, who.identity)
    quick = service.submit("c", "o", ps.validate_options({"method": "gls", "startp": 1, "endp": 10,
                                                         "stepsize": 1e-2}), data, who, who.identity)
    old_stale, ps.STALE_AFTER_S = ps.STALE_AFTER_S, 2.0  # so that a queued job without heartbeats would read dead
    try:
        deadline = time.monotonic() + 120
        while (state := service.status(slow["id"]))["status"] in ps.ACTIVE:
            assert service.status(quick["id"])["status"] == "queued"
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert state["status"] == "failed" and "time limit of 4 s" in state["error"], state
        while (done := service.status(quick["id"]))["status"] in ps.ACTIVE:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert done["status"] == "done", (done["error"], done["stage"])
        assert ps.load_result(tmp_path, "c", "o", slow["id"]) is None
        assert ps.load_result(tmp_path, "c", "o", quick["id"])["bestperiod"] > 0
    finally:
        ps.STALE_AFTER_S = old_stale
        service.shutdown()
