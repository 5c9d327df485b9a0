"""A server loads what searches and the VO services import before its first request
(lcpanel.warmup), so its first searcher does not wait ~1 s for cdshealpix to import
astropy.coordinates.

The server runs as users run it, under ``PYTHONPROFILEIMPORTTIME`` (``python -X
importtime``): every module a process imports is a line of its log, so the lines written
while it answers are exactly what answering imported.
"""

import importlib.util
import json
import subprocess
import sys
import time
import urllib.request

from support.clients import send
from support.servers import running_server

IMPORT_LINE = "import time:"


def _imported(log_text: str) -> list[str]:
    """Modules named in ``-X importtime`` lines, but codecs (``encodings.*``, looked up by
    name on first use, sub-millisecond) and failed attempts at optional modules (a line
    is written for those too)."""
    names = []
    for line in log_text.splitlines():
        if line.startswith(IMPORT_LINE) and line.count("|") == 2:
            name = line.split("|")[2].strip()
            if name and not name.startswith("encodings.") and importlib.util.find_spec(name.split(".")[0]):
                names.append(name)
    return names


def test_answering_searches_and_vo_requests_first_imports_nothing(demo_app, monkeypatch, tmp_path):
    catalog = demo_app.catalogs.get("demo")
    objectid, ra, dec = catalog.query("SELECT objectid, ra, decl FROM object_catalog ORDER BY row_id LIMIT 1")[0]
    requests = {
        "cone": {"type": "cone", "params": {"ra": ra, "dec": dec, "radius_arcmin": 10.0}},
        "cross-match": {"type": "xmatch", "params": {"targets": f"a {ra} {dec}", "radius_arcsec": 5.0}},
        "full text": {"type": "fulltext", "params": {"query": objectid}},
        "object id": {"type": "objectid", "params": {"ids": objectid}},
        "column filter": {"type": "filter", "params": {"where": "ndet > 0"}},
        "Simple Cone Search": f"/scs/demo?RA={ra}&DEC={dec}&SR=0.1",
        "TAP tables": "/tap/tables",
        "TAP capabilities": "/tap/capabilities",
    }
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    log = tmp_path / "serve.log"
    imported, matched = {}, {}
    with running_server(demo_app.basedir, log=log) as (url, _proc):
        for name, request in requests.items():
            time.sleep(0.2)  # the log has every line of what came before
            start = log.stat().st_size
            if isinstance(request, dict):
                req = urllib.request.Request(url + "/api/search", data=json.dumps(request).encode(),
                                             headers={"Content-Type": "application/json", "Origin": url})
            else:
                req = urllib.request.Request(url + request)
            status, _headers, body = send(req, timeout=60)
            assert status == 200, (name, body[:300])
            if isinstance(request, dict):
                matched[name] = json.loads(body)["nmatched"]
            time.sleep(0.2)
            with open(log, "rb") as fh:
                fh.seek(start)
                imported[name] = _imported(fh.read().decode("utf-8", "replace"))
        with open(log, "rb") as fh:
            assert "cdshealpix" in _imported(fh.read().decode("utf-8", "replace"))  # the log is the import log
    assert all(n >= 1 for n in matched.values()), matched
    assert imported == {name: [] for name in requests}


def test_warm_up_loads_what_the_server_module_does_not():
    code = ("import sys; import lcpanel.server; before = 'cdshealpix' in sys.modules; "
            "from lcpanel.warmup import warm_up; warm_up(); "
            "print(before, 'cdshealpix.cdshealpix' in sys.modules, 'sqlglot.dialects.sqlite' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["False", "True", "True"]


def test_a_failing_warm_up_step_is_logged_and_the_others_run(monkeypatch, caplog):
    from lcpanel import warmup

    ran = []

    def no_sky():
        raise ImportError("no cdshealpix here")

    monkeypatch.setattr(warmup, "_modules", lambda: ran.append("modules"))
    monkeypatch.setattr(warmup, "_sky", no_sky)
    monkeypatch.setattr(warmup, "_sql", lambda: ran.append("sql"))
    with caplog.at_level("WARNING", logger="lcpanel.warmup"):
        seconds = warmup.warm_up()
    assert ran == ["modules", "sql"] and seconds >= 0
    assert "warm-up step no_sky failed" in caplog.text and "no cdshealpix here" in caplog.text
