"""TAP and Simple Cone Search through ``lcpanel serve``, with pyvo as the client, and
STILTS taplint as the independent validator (0 errors required)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings

import pytest
from support.data import snapshot
from support.servers import running_server
from support.vo_data import brute_cone, build_basedir, near_boundary

pyvo = pytest.importorskip("pyvo")


@pytest.fixture(scope="module")
def vo_server(tmp_path_factory):
    path, cols = build_basedir(tmp_path_factory.mktemp("vo"))
    unlimited_requests(path / "lcpanel.toml")
    with running_server(path) as (url, _proc):
        yield url, path, cols


def unlimited_requests(config):
    """These tests (taplint alone sends ~150 requests in seconds) are about the protocols,
    not the request budget: lift the anonymous budget in the test basedir."""
    lines = config.read_text().splitlines() if config.exists() else []
    setting = "anonymous_requests_per_minute = 0"
    if "[limits]" in lines:
        lines.insert(lines.index("[limits]") + 1, setting)
    else:
        lines += ["", "[limits]", setting]
    config.write_text("\n".join(lines) + "\n")


def get(url: str, data: dict | None = None, method: str | None = None) -> tuple[int, str, bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def votable_rows(body: bytes):
    import io

    from astropy.io.votable import parse_single_table

    return parse_single_table(io.BytesIO(body)).to_table()


# --- Simple Cone Search ------------------------------------------------------------------------


def test_scs_with_pyvo_matches_brute_force(vo_server):
    url, path, cols = vo_server
    c = cols["field"]
    service = pyvo.dal.SCSService(f"{url}/scs/field")
    result = service.search(pos=(290.2, 45.1), radius=0.25, verbosity=3)
    fuzzy = near_boundary(c, 290.2, 45.1, 0.25)
    assert {r.id for r in result} - fuzzy == brute_cone(c, 290.2, 45.1, 0.25) - fuzzy
    first = result[0]
    assert first.pos.ra.deg == pytest.approx(c["ra"][c["objectid"] == first.id][0])
    dist = result.to_table()["dist_deg"]
    assert list(dist) == sorted(dist) and "vmag" in result.fieldnames
    minimal = service.search(pos=(290.2, 45.1), radius=0.25, verbosity=1)
    assert set(minimal.fieldnames) == {"objectid", "ra", "decl", "dist_deg"} and len(minimal) == len(result)


def test_scs_over_all_collections_and_limits(vo_server):
    url, path, cols = vo_server
    result = pyvo.dal.SCSService(f"{url}/scs").search(pos=(0.0, -30.0), radius=0.5)
    expected = {f"wrap/{i}" for i in brute_cone(cols["wrap"], 0.0, -30.0, 0.5)}
    fuzzy = {f"wrap/{i}" for i in near_boundary(cols["wrap"], 0.0, -30.0, 0.5)}
    assert {r.id for r in result} - fuzzy == expected - fuzzy and set(result["collection"]) == {"wrap"}
    empty = pyvo.dal.SCSService(f"{url}/scs/field").search(pos=(290, 45), radius=0.0)
    assert len(empty) == 0 and "objectid" in empty.fieldnames  # SR=0: the columns, no rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        capped = pyvo.dal.SCSService(f"{url}/scs/field").search(pos=(290, 45), radius=0.5, maxrec=5)
    assert len(capped) == 5


@pytest.mark.parametrize("query,message", [
    ("RA=290&DEC=45", "SR parameter is required"),
    ("RA=290&DEC=95&SR=0.1", "DEC must be between"),
    ("RA=abc&DEC=45&SR=0.1", "RA must be a number"),
    ("RA=290&DEC=45&SR=30", "over this service's maximum"),
    ("RA=290&DEC=45&SR=0.1&VERB=7", "VERB must be"),
])
def test_scs_errors_follow_the_standard(vo_server, query, message):
    url, path, cols = vo_server
    status, ctype, body = get(f"{url}/scs/field?{query}")
    text = body.decode()
    assert status == 200 and "votable" in ctype
    assert re.search(r'<INFO name="Error" value="[^"]*' + re.escape(message), text)
    assert "Traceback" not in text and str(path) not in text
    with pytest.raises(pyvo.dal.DALQueryError, match=re.escape(message)):
        pyvo.dal.SCSService(f"{url}/scs/field").create_query(**dict(
            p.split("=") for p in query.split("&"))).execute()
    status, _, body = get(f"{url}/scs/nosuch?RA=1&DEC=1&SR=0.1")
    assert b'name="Error"' in body and b"unknown collection" in body


# --- TAP ------------------------------------------------------------------------------------------


def test_tap_sync_with_pyvo(vo_server):
    url, path, cols = vo_server
    c = cols["field"]
    tap = pyvo.dal.TAPService(f"{url}/tap")
    result = tap.run_sync("SELECT objectid, vmag FROM lcpanel.field WHERE "
                          "1 = CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', 290.3, 44.8, 0.2))")
    fuzzy = near_boundary(c, 290.3, 44.8, 0.2)
    assert set(result["objectid"]) - fuzzy == brute_cone(c, 290.3, 44.8, 0.2) - fuzzy
    table = result.to_table()
    assert str(table["vmag"].unit) == "mag"
    post = tap.run_sync("SELECT COUNT(*) AS n FROM lcpanel.polar")  # pyvo POSTs
    assert int(post["n"][0]) == len(cols["polar"]["objectid"])
    capped = tap.run_sync("SELECT objectid FROM lcpanel.field", maxrec=3)
    assert len(capped) == 3 and capped.status[0] == "OVERFLOW"


def test_tap_sync_parameters(vo_server):
    url, path, cols = vo_server
    q = "SELECT TOP 2 objectid, ndet FROM lcpanel.wrap ORDER BY objectid"
    status, ctype, body = get(f"{url}/tap/sync?lang=adql-2.1&query={urllib.parse.quote(q)}&request=doQuery"
                              "&responseformat=csv&whatever=ignored")
    assert status == 200 and ctype.startswith("text/csv")
    lines = body.decode().splitlines()
    first = sorted(cols["wrap"]["objectid"])[:2]
    assert lines[0] == "objectid,ndet" and [row.split(",")[0] for row in lines[1:]] == first
    status, ctype, body = get(f"{url}/tap/sync", {"LANG": "ADQL", "QUERY": q, "FORMAT": "votable"})
    assert status == 200 and "votable" in ctype and b"<BINARY2>" in body  # no serialization asked: BINARY2
    assert list(votable_rows(body)["objectid"]) == first
    for params, message in [({"LANG": "SQL", "QUERY": q}, "LANG"), ({"LANG": "ADQL"}, "QUERY parameter"),
                            ({"LANG": "ADQL", "QUERY": q, "RESPONSEFORMAT": "image/png"}, "RESPONSEFORMAT"),
                            ({"LANG": "ADQL", "QUERY": q, "MAXREC": "-1"}, "MAXREC"),
                            ({"LANG": "ADQL", "QUERY": "SELECT nope FROM lcpanel.wrap"}, "column 'nope'")]:
        status, ctype, body = get(f"{url}/tap/sync", params)
        assert status == 400 and b'<INFO name="QUERY_STATUS" value="ERROR">' in body and message.encode() in body
    with pytest.raises(pyvo.dal.DALQueryError, match="did you mean 'vmag'"):
        pyvo.dal.TAPService(f"{url}/tap").run_sync("SELECT vmg FROM lcpanel.field")


def test_tap_async_with_pyvo(vo_server):
    url, path, cols = vo_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    result = tap.run_async("SELECT objectid FROM lcpanel.polar WHERE DISTANCE(ra, decl, 10, 89.5) < 0.8")
    fuzzy = near_boundary(cols["polar"], 10, 89.5, 0.8)
    expected = brute_cone(cols["polar"], 10, 89.5, 0.8, strict=True)
    assert set(result["objectid"]) - fuzzy == expected - fuzzy
    job = tap.submit_job("SELECT TOP 3 objectid FROM lcpanel.wrap")
    assert job.phase == "PENDING"
    job.run().wait()
    assert job.phase == "COMPLETED" and len(job.fetch_result()) == 3
    assert job.job_id in {j.jobid for j in tap.get_job_list()}  # the session cookie owns it
    job.delete()
    bad = tap.submit_job("SELECT nope FROM lcpanel.wrap")
    bad.run().wait()
    assert bad.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="nope"):
        bad.raise_if_error()
    bad.delete()


def test_uws_resources(vo_server):
    url, path, cols = vo_server
    status, _, _ = get(f"{url}/tap/async/{'0' * 32}")
    assert status == 404
    req = urllib.request.Request(f"{url}/tap/async", data=urllib.parse.urlencode(
        {"LANG": "ADQL", "QUERY": "SELECT TOP 1 objectid FROM lcpanel.wrap"}).encode())

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as created:
        opener.open(req, timeout=30)
    assert created.value.code == 303
    job = created.value.headers["Location"]
    assert get(job + "/phase")[2] == b"PENDING"
    assert get(job + "/executionduration", {"EXECUTIONDURATION": "30"})[0] == 200
    assert get(job + "/executionduration")[2] == b"30"
    soon = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
    assert get(job + "/destruction", {"DESTRUCTION": soon + "Z"})[0] == 200
    assert get(job + "/destruction")[2].startswith(soon.encode())
    assert b'id="query"' in get(job + "/parameters")[2]
    assert get(job + "/phase", {"PHASE": "JUMP"})[0] == 400
    assert get(job + "/phase", {"PHASE": "RUN"})[0] == 200
    status, _, body = get(job + "?WAIT=10&PHASE=QUEUED")
    assert status == 200 and b"<uws:phase>" in body
    for _ in range(50):
        if get(job + "/phase")[2] == b"COMPLETED":
            break
        get(job + "?WAIT=1")
    assert len(votable_rows(get(job + "/results/result")[2])) == 1
    assert get(job + "/error")[0] == 404
    assert get(job, {"ACTION": "DELETE"})[0] == 200  # 303 to the job list, followed
    assert get(job + "/phase")[0] == 404


def test_vosi_endpoints(vo_server):
    url, path, cols = vo_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    names = {t.name for t in tap.tables}
    assert {"lcpanel.field", "lcpanel.polar", "lcpanel.wrap", "TAP_SCHEMA.tables"} <= names
    columns = {c.name: c for c in tap.tables["lcpanel.field"].columns}
    assert columns["ra"].unit == "deg" and columns["ra"].ucd == "pos.eq.ra;meta.main"
    standards = {c.standardid for c in tap.capabilities}
    assert "ivo://ivoa.net/std/TAP" in standards
    assert tap.maxrec == 10_000 and tap.hardlimit == 100_000
    status, _, body = get(f"{url}/tap/availability")
    assert status == 200 and b"<vosi:available>true</vosi:available>" in body
    status, _, body = get(f"{url}/tap/tables/lcpanel.wrap")
    assert status == 200 and b"<name>lcpanel.wrap</name>" in body
    status, _, body = get(f"{url}/tap/tables?detail=min")
    assert b"<column>" not in body and b"lcpanel.field" in body


def test_nothing_is_written_by_refused_queries(vo_server):
    url, path, cols = vo_server
    before = snapshot(path / "collections")
    tap = pyvo.dal.TAPService(f"{url}/tap")
    for query in ["DELETE FROM lcpanel.field", "SELECT * FROM lcpanel.field; DROP TABLE lcpanel.field",
                  "PRAGMA query_only=OFF", "ATTACH DATABASE '/tmp/x.sqlite' AS x",
                  "SELECT load_extension('x') FROM lcpanel.field", "SELECT * FROM sqlite_master"]:
        with pytest.raises(pyvo.dal.DALQueryError):
            tap.run_sync(query)
    assert snapshot(path / "collections") == before


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("stilts") is None and not os.environ.get("CI"),
                    reason="needs STILTS (scripts/bootstrap.sh --taplint); never skipped in CI")
def test_taplint_finds_no_errors(vo_server):
    """STILTS taplint over every stage; it exits 0 even with errors, so read its Totals."""
    url, path, cols = vo_server
    proc = subprocess.run(["stilts", "taplint", f"tapurl={url}/tap", "report=EWF", "maxrepeat=20"],
                          capture_output=True, text=True, timeout=600)
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+)", proc.stdout)
    print("\n[taplint]", totals.group(0) if totals else "no Totals line")
    assert totals, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stdout.splitlines() if line.startswith("E-")]
    assert int(totals.group(1)) == 0, "\n".join(errors[:40])


@pytest.mark.parametrize("fmt", ["votable/b2", "votable/td", "votable/b", "csv", "tsv", "json", "fits", "html"])
def test_tap_answers_every_output_format_with_its_mime_type(vo_server, fmt):
    import io
    import json as jsonlib

    from astropy.table import Table

    from lcpanel.core.vo.voformats import find_format

    url, path, cols = vo_server
    q = "SELECT TOP 3 objectid, ra, ndet FROM lcpanel.wrap ORDER BY objectid"
    expected = sorted(cols["wrap"]["objectid"])[:3]
    mime = find_format(fmt).mime
    status, ctype, body = get(f"{url}/tap/sync", {"LANG": "ADQL", "QUERY": q, "RESPONSEFORMAT": mime})
    assert status == 200 and ctype.split(";")[0] == mime.split(";")[0], ctype
    if fmt.startswith("votable"):
        assert list(votable_rows(body)["objectid"]) == expected
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        assert [line.split(sep)[0] for line in body.decode().splitlines()[1:]] == expected
    elif fmt == "json":
        assert [row[0] for row in jsonlib.loads(body)["data"]] == expected
    elif fmt == "fits":
        assert list(Table.read(io.BytesIO(body), format="fits")["objectid"]) == expected
    else:
        assert all(f"<td>{oid}</td>" in body.decode() for oid in expected)
    status, _, caps = get(f"{url}/tap/capabilities")
    assert mime.encode() in caps.replace(b"&amp;", b"&")


def test_a_small_tap_answer_is_sent_whole_and_a_large_one_streamed(vo_server):
    """A small synchronous answer goes out in one write with its Content-Length (clients
    can show progress; no chunk per piece of the VOTable); a large one still streams in
    chunks, so the server never holds it whole."""
    import http.client

    url, path, cols = vo_server
    host, port = urllib.parse.urlsplit(url).netloc.split(":")

    def raw(query: str, maxrec: int):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            conn.request("GET", "/tap/sync?" + urllib.parse.urlencode({"LANG": "ADQL", "QUERY": query,
                                                                        "MAXREC": maxrec}))
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    status, headers, body = raw("SELECT TOP 5 objectid, ra, decl FROM lcpanel.wrap ORDER BY objectid", 10)
    assert status == 200 and "Transfer-Encoding" not in headers
    assert int(headers["Content-Length"]) == len(body)
    assert list(votable_rows(body)["objectid"]) == sorted(cols["wrap"]["objectid"])[:5]

    status, headers, body = raw("SELECT a.*, b.* FROM lcpanel.wrap AS a, lcpanel.wrap AS b", 10_000)
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked" and len(body) > 1.5 * 2**20, len(body)
    assert len(votable_rows(body)) == 10_000
