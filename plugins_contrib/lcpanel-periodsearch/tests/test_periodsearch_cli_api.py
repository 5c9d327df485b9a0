"""The plugin from the ``lcpanel`` command line and the JSON API of ``lcpanel serve``:
both find it through its entry point, with no change to lcpanel."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from http.cookiejar import CookieJar

import pytest

from lcpanel.plugin_api import run_search

pytestmark = pytest.mark.slow

PERIOD = {"min_period_days": 0.5, "max_period_days": 5.0}


def lcpanel(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lcpanel", *map(str, args)], capture_output=True, text=True,
                          input=stdin, timeout=120)


def _keys(rows) -> list[tuple[str, str]]:
    return [(r["collection"], r["objectid"]) for r in rows]


# --- command line -------------------------------------------------------------------------


def test_cli_lists_the_new_search_types_with_generated_options(ps_basedir):
    out = lcpanel("search", ps_basedir, "--help")
    assert out.returncode == 0 and "period" in out.stdout and "box" in out.stdout
    out = lcpanel("search", ps_basedir, "period", "--help")
    assert out.returncode == 0
    for option in ("--min-period-days", "--max-period-days", "--method", "--min-amplitude-mag", "--magcol"):
        assert option in out.stdout
    assert "gls" in out.stdout and "adopted" in out.stdout  # the method's choices
    plugins = lcpanel("plugins")
    assert "period (periodsearch)" in plugins.stdout and "phased_pdf (periodsearch)" in plugins.stdout


def test_cli_period_search_gives_what_the_library_gives(ps_app, ps_basedir):
    out = lcpanel("search", ps_basedir, "period", "--min-period-days", 0.5, "--max-period-days", 5,
                  "--method", "gls", "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    want = run_search(ps_app, {"type": "period", "params": {**PERIOD, "method": "gls"}})
    assert _keys(got["rows"]) == _keys(want.rows) and got["nmatched"] == want.nmatched > 0
    assert [r["period_days"] for r in got["rows"]] == pytest.approx([r["period_days"] for r in want.rows])
    # the table format shows the search's own columns
    table = lcpanel("search", ps_basedir, "period", "--min-period-days", 0.5, "--max-period-days", 5)
    assert table.returncode == 0 and "period_days" in table.stdout and "period_method" in table.stdout
    assert table.stdout.strip().endswith("matching objects")


def test_cli_box_search_wraps_and_saves_a_dataset_for_a_product(ps_basedir, tmp_path):
    out = lcpanel("search", ps_basedir, "box", "--ra-min", 359, "--ra-max", 1, "--dec-min", -31, "--dec-max", -29,
                  "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows and all(r["collection"] == "wrap" for r in rows)
    assert {float(r["ra"]) > 180 for r in rows} == {True, False}  # both sides of RA 0
    saved = lcpanel("search", ps_basedir, "period", "--min-period-days", 1, "--max-period-days", 3,
                    "--collections", "demo", "--save")
    assert saved.returncode == 0, saved.stderr
    dataset_id = saved.stderr.split("dataset ", 1)[1].split()[0]
    built = lcpanel("product", "build", ps_basedir, dataset_id, "periodfinding_csv", "-q")
    assert built.returncode == 0, built.stderr
    key = built.stdout.split()[0]
    target = tmp_path / "pf.zip"
    assert lcpanel("product", "get", ps_basedir, dataset_id, key, "--output", target).returncode == 0
    with zipfile.ZipFile(target) as zf:
        assert sorted(zf.namelist()) == ["SHA256SUMS", "periodfinding.csv"]


def test_cli_errors_are_clear(ps_basedir):
    out = lcpanel("search", ps_basedir, "period", "--min-period-days", 5, "--max-period-days", 1)
    assert out.returncode != 0
    assert "the shortest period (5 d) is longer than the longest (1 d)" in out.stderr
    assert "Traceback" not in out.stderr
    out = lcpanel("search", ps_basedir, "period", "--min-period-days", -2)
    assert out.returncode != 0 and "must be greater than 0" in out.stderr
    out = lcpanel("search", ps_basedir, "box", "--ra-min", 10, "--ra-max", 20, "--dec-min", 5)
    assert out.returncode != 0 and "dec_max is missing" in out.stderr


# --- JSON API -----------------------------------------------------------------------------


class Client:
    """urllib with a cookie jar: the anonymous owner of the datasets it makes."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def call(self, method: str, path: str, body=None):
        """(status, JSON body or bytes, headers (case-insensitive))."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Origin": self.url})
        try:
            with self.opener.open(req, timeout=60) as resp:
                status, raw, headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, headers = exc.code, exc.read(), exc.headers
        if headers.get("Content-Type", "").startswith("application/json"):
            return status, json.loads(raw), headers
        return status, raw, headers


@pytest.fixture(scope="module")
def client(ps_server):
    return Client(ps_server)


def test_api_lists_the_types_with_their_schema(client):
    status, body, _ = client.call("GET", "/api/search/types")
    assert status == 200
    types = {t["type"]: t for t in body["types"]}
    assert {"cone", "period", "box"} <= set(types)
    period = types["period"]
    assert period["title"] == "Period range" and period["example"] == PERIOD
    params = period["params"]
    assert set(params) == {"min_period_days", "max_period_days", "method", "min_amplitude_mag", "magcol"}
    # param's JSON schema: a number > 0, or null (not given)
    assert {"type": "number", "exclusiveMinimum": 0} in params["min_period_days"]["anyOf"]
    assert set(params["method"]["enum"]) >= {"any", "adopted", "gls", "bls"} and params["method"]["default"] == "any"
    assert "days" in params["max_period_days"]["description"]
    assert period["extra_columns"] == ["period_days", "period_method", "period_peak"]
    assert set(types["box"]["params"]) == {"ra_min", "ra_max", "dec_min", "dec_max"}
    status, body, _ = client.call("GET", "/api/products")
    assert {"periodfinding_csv", "phased_pdf"} <= {b["name"] for b in body["builders"]}


def test_api_period_search_then_products_then_download(client, ps_app):
    # only demo: a dataset over demo and the plain catalog keeps only their shared columns, without pffname
    spec = {"type": "period", "params": {**PERIOD, "min_amplitude_mag": 0.01}, "sort": "-vmag", "limit": 50,
            "collections": ["demo"]}
    status, body, _ = client.call("POST", "/api/search", spec)
    assert status == 200, body
    want = run_search(ps_app, spec)
    assert _keys(body["rows"]) == _keys(want.rows) and body["nmatched"] == want.nmatched > 0
    assert body["summary"] == f"{want.nreturned} of {want.nmatched} matching objects"
    dataset_id = body["dataset_id"]

    for builder, member in (("periodfinding_csv", "periodfinding.csv"), ("phased_pdf", "phased-lightcurves.pdf")):
        status, product, _ = client.call("POST", f"/api/datasets/{dataset_id}/products", {"builder": builder})
        assert status in (200, 202), product
        deadline = time.monotonic() + 60
        while product["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            _, product, _ = client.call("GET", product["url"])
        assert product["status"] == "done", product
        assert [m["name"] for m in product["manifest"]] == [member]
        status, data, headers = client.call("GET", product["download"])
        assert status == 200 and headers["X-Content-SHA256"] == product["sha256"]
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            content = zf.read(member)
        if builder == "periodfinding_csv":
            rows = list(csv.DictReader(io.StringIO(content.decode())))
            assert {r["objectid"] for r in rows} == {r["objectid"] for r in body["rows"]}
        else:
            assert content.startswith(b"%PDF-")


@pytest.mark.parametrize("spec,field,text", [
    ({"type": "period", "params": {"min_period_days": 3, "max_period_days": 2}}, "max_period_days", "longer"),
    ({"type": "period", "params": {"min_period_days": 1, "method": "nope"}}, "method", "bad value"),
    ({"type": "box", "params": {"ra_min": 1, "ra_max": 2, "dec_min": 3, "dec_max": 2}}, "dec_max", "north"),
])
def test_api_bad_parameters_answer_400_naming_the_field(client, spec, field, text):
    status, body, _ = client.call("POST", "/api/search", spec)
    assert status == 400
    assert body["field"] == field and text in body["error"] and body["type"] == "UserError"
