"""DataLink 1.1 (``/datalink``) through ``lcpanel serve``: pyvo reads the links, every
link resolves to what it says, faults per ID, counterparts found by brute force, and the
service descriptors that TAP and cone-search results carry (pyvo's ``iter_datalinks``)."""

from __future__ import annotations

import io
import shutil
import subprocess
import urllib.parse

import numpy as np
import pytest
from support.data import snapshot, write_table
from support.servers import running_server
from test_vo_server import get, unlimited_requests

pyvo = pytest.importorskip("pyvo")
CDIPS = sorted((__import__("pathlib").Path(__file__).resolve().parent / "realdata").glob("hlsp_cdips_*_llc.fits"))


@pytest.fixture(scope="module")
def dl_server(tmp_path_factory, csv_collection):
    """The astrobase collection ``demo`` and a plain catalog ``other`` holding three of its
    objects again (0.5" away, other ids) and some unrelated stars."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection, add_catalog_collection

    root = tmp_path_factory.mktemp("datalink")
    base = Basedir.init(root / "basedir")
    app = App(base.path)
    add_astrobase_collection(app, base, csv_collection, collection_id="demo", show_progress=False)
    demo = app.catalogs.get("demo")
    rows = demo.query("SELECT objectid, ra, decl FROM object_catalog ORDER BY objectid")
    twins = rows[:3]
    cols = {"objectid": [f"OTHER-{i}" for i in range(len(twins))] + ["FAR-1", "FAR-2"],
            "ra": [r[1] + 0.5 / 3600 / np.cos(np.radians(r[2])) for r in twins] + [10.0, 20.0],
            "decl": [r[2] for r in twins] + [-10.0, -20.0]}
    write_table(cols, root / "other.csv")
    add_catalog_collection(app, base, root / "other.csv", collection_id="other", show_progress=False)
    if len(CDIPS) >= 2:  # the real TESS CDIPS files (tests/realdata): nine series per light curve
        from test_formats_real import make_cdips_collection

        add_astrobase_collection(app, base, make_cdips_collection(root), collection_id="cdips", show_progress=False)
    unlimited_requests(base.path / "lcpanel.toml")
    with running_server(base.path) as (url, _proc):
        # the basedir's one-time state (its secret, made at the first anonymous request) exists
        # before a test compares the basedir before and after a request of its own
        assert get(f"{url}/api/collections")[0] == 200
        yield url, base.path, rows, twins


def links_of(url: str, *ids: str, endpoint: str = "/datalink"):
    query = urllib.parse.urlencode([("ID", i) for i in ids])
    return pyvo.dal.adhoc.DatalinkResults.from_result_url(f"{url}{endpoint}?{query}")


def test_links_of_an_object_resolve_to_what_they_say(dl_server):
    url, _path, rows, twins = dl_server
    oid = twins[0][0]
    links = links_of(url, f"demo/{oid}")
    by_sem = {}
    for row in links:
        assert row["error_message"] in (None, "", np.ma.masked)
        by_sem.setdefault(row["semantics"], []).append(row)
    assert {"#this", "#preview", "#progenitor", "#auxiliary", "#counterpart"} <= set(by_sem)
    # #this: the light curve as VOTable (astropy reads it, times and values as in the file)
    this = {r["local_semantics"]: r for r in by_sem["#this"]}
    assert set(this) == {"lightcurve-votable", "lightcurve-fits", "lightcurve-csv"}
    status, ctype, body = get(this["lightcurve-votable"]["access_url"])
    assert status == 200 and "votable" in ctype
    from astropy.io.votable import parse_single_table

    table = parse_single_table(io.BytesIO(body)).to_table()
    status, _, original = get(by_sem["#progenitor"][0]["access_url"])
    assert status == 200 and len(original) == by_sem["#progenitor"][0]["content_length"]
    assert len(table) > 10
    status, ctype, fits = get(this["lightcurve-fits"]["access_url"])
    assert status == 200 and fits[:6] == b"SIMPLE"
    # #preview: a PNG; #auxiliary: the checkplot pickle and its images
    status, ctype, png = get(by_sem["#preview"][0]["access_url"])
    assert status == 200 and ctype.startswith("image/png") and png[:8] == b"\x89PNG\r\n\x1a\n"
    aux = {r["local_semantics"]: r for r in by_sem["#auxiliary"]}
    from lcpanel.app import App
    from lcpanel.core.objects.magcols import collection_magcols

    magcols = collection_magcols(App(_path).catalogs.get("demo").info.columns)
    assert magcols and {f"checkplot-{m}" for m in magcols} <= set(aux)  # one checkplot per magnitude column
    aux["checkplot"] = aux[f"checkplot-{magcols[0]}"]
    aux["checkplot-unphased"] = aux[f"checkplot-unphased-{magcols[0]}"]
    status, _, pickle_bytes = get(aux["checkplot"]["access_url"])
    assert status == 200 and len(pickle_bytes) == aux["checkplot"]["content_length"]
    status, ctype, _ = get(aux["checkplot-unphased"]["access_url"])
    assert status == 200 and ctype.startswith("image/png")
    # #counterpart: the twin in the other collection, itself a DataLink document
    (cp,) = by_sem["#counterpart"]
    assert "OTHER-0" in cp["description"] and cp["content_type"].endswith("content=datalink")
    twin_links = pyvo.dal.adhoc.DatalinkResults.from_result_url(cp["access_url"])
    assert any(r["semantics"] == "#counterpart" and oid in r["description"] for r in twin_links)


def test_counterparts_match_brute_force(dl_server):
    url, _path, rows, twins = dl_server
    links = links_of(url, *[f"demo/{r[0]}" for r in rows])
    found = {(r["ID"], r["description"].split()[0]) for r in links if r["semantics"] == "#counterpart"}
    ra = np.radians([r[1] for r in rows])
    dec = np.radians([r[2] for r in rows])
    expected = set()
    for i, (tra, tdec) in enumerate(((t[1] + 0.5 / 3600 / np.cos(np.radians(t[2])), t[2]) for t in twins)):
        cosd = (np.sin(dec) * np.sin(np.radians(tdec))
                + np.cos(dec) * np.cos(np.radians(tdec)) * np.cos(ra - np.radians(tra)))
        for j in np.flatnonzero(np.degrees(np.arccos(np.clip(cosd, -1, 1))) * 3600 < 2.0):
            expected.add((f"demo/{rows[j][0]}", f"OTHER-{i}"))
    assert found == expected and len(expected) == 3


def test_faults_per_id_and_request_errors(dl_server):
    url, path, rows, _twins = dl_server
    before = snapshot(path)
    good = f"ivo://lcpanel/demo?{rows[1][0]}"
    links = links_of(url, good, "demo/NOPE", "nocollection/x", "no-slash", "other/FAR-1")
    errors = {r["ID"]: r["error_message"] for r in links if r["error_message"]}
    assert errors["demo/NOPE"].startswith("NotFoundFault")
    assert errors["nocollection/x"].startswith("NotFoundFault")
    assert errors["no-slash"].startswith("UsageFault")
    assert errors["other/FAR-1"].startswith("NotFoundFault")  # a plain catalog row: nothing to link to
    assert good not in errors and any(r["ID"] == good and r["semantics"] == "#this" for r in links)
    status, _, body = get(f"{url}/datalink")
    assert status == 400 and b"UsageFault" in body and b"QUERY_STATUS" in body
    status, _, body = get(f"{url}/datalink?ID=demo/x&RESPONSEFORMAT=image/png")
    assert status == 400 and b"RESPONSEFORMAT" in body
    status, _, _ = get(f"{url}/datalink/missing?ID=x")
    assert status == 404
    many = urllib.parse.urlencode([("ID", f"demo/{i}") for i in range(5001)]).encode()
    status, _, body = _post(f"{url}/datalink", many)
    assert status == 413 and b"5000" in body, body[-600:]
    assert snapshot(path) == before


def _post(url: str, body: bytes):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_links_in_other_formats(dl_server):
    url, _path, rows, _twins = dl_server
    status, ctype, body = get(f"{url}/datalink?ID=demo/{rows[0][0]}&RESPONSEFORMAT=application/json")
    doc = __import__("json").loads(body)
    names = [m["name"] for m in doc["metadata"]]
    assert status == 200 and ctype.startswith("application/json") and names[:2] == ["ID", "access_url"]
    assert {r[names.index("semantics")] for r in doc["data"]} >= {"#this", "#preview"}
    status, ctype, body = get(f"{url}/datalink?ID=demo/{rows[0][0]}")
    assert ctype == "application/x-votable+xml;content=datalink" and b"<TABLEDATA>" in body


def test_tap_and_cone_results_lead_to_the_light_curves(dl_server):
    url, _path, rows, _twins = dl_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    result = tap.run_sync("SELECT TOP 4 objectid, ra, decl FROM lcpanel.demo ORDER BY objectid")
    seen = []
    for obj, links in zip(result, result.iter_datalinks()):
        this = [r for r in links if r["semantics"] == "#this" and r["local_semantics"] == "lightcurve-votable"]
        assert len(this) == 1 and this[0]["ID"] == obj["objectid"]
        seen.append(obj["objectid"])
    assert seen == [r[0] for r in rows[:4]]
    # a cone over all collections: ids are collection/objectid, the global endpoint answers
    ra, dec = rows[0][1], rows[0][2]
    cone = pyvo.dal.SCSService(f"{url}/scs").search(pos=(ra, dec), radius=1 / 3600)
    ids = [r["id"] for r in cone]
    assert f"demo/{rows[0][0]}" in ids
    for obj, links in zip(cone, cone.iter_datalinks()):
        assert {r["ID"] for r in links} == {obj["id"]}


def test_async_results_carry_the_service_descriptor_like_sync_ones(dl_server):
    """An async job's result names the DataLink service at the URL the job was created at."""
    url, _path, rows, _twins = dl_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    query = "SELECT TOP 3 objectid, ra, decl FROM lcpanel.demo ORDER BY objectid"
    sync, job = tap.run_sync(query), tap.run_async(query)
    assert [r["objectid"] for r in job] == [r["objectid"] for r in sync] == [r[0] for r in rows[:3]]
    for obj, links in zip(job, job.iter_datalinks()):
        this = [r for r in links if r["semantics"] == "#this"]
        assert this and {r["ID"] for r in links} == {obj["objectid"]}
        assert all(r["access_url"].startswith(f"{url}/api/collections/demo/") for r in this)
    (descriptor,) = [r for r in job.votable.resources if r.type == "meta"]
    assert {p.name: p.value for p in descriptor.params}["accessURL"] == f"{url}/datalink/demo"
    obscore = tap.run_async("SELECT TOP 2 obs_publisher_did, access_url FROM ivoa.obscore "
                            "WHERE obs_collection = 'demo'")
    assert all(r["access_url"].startswith(f"{url}/datalink?ID=") for r in obscore)
    assert next(iter(obscore.iter_datalinks())) is not None


def test_datalinklint_and_votlint_accept_the_answers(dl_server):
    url, _path, rows, _twins = dl_server
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.skip("STILTS is not installed (scripts/bootstrap.sh --taplint installs it)")
    links_url = f"{url}/datalink?ID=demo/{urllib.parse.quote(rows[0][0])}"
    out = subprocess.run([stilts, "datalinklint", f"votable={links_url}"], capture_output=True, text=True, timeout=300)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    # '#counterpart' joined the DataLink core vocabulary after the vocabulary copy in
    # Debian's STILTS 3.4.7 was made; every other finding counts
    problems = [line for line in report.splitlines() if line.startswith(("E-", "F-"))
                and "Unknown predicate 'counterpart'" not in line]
    assert not problems, report
    tap_url = f"{url}/tap/sync?" + urllib.parse.urlencode(
        {"LANG": "ADQL", "QUERY": "SELECT TOP 3 objectid, ra, decl FROM lcpanel.demo"})
    out = subprocess.run([stilts, "votlint", f"votable={tap_url}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ERROR" not in (out.stdout + out.stderr), out.stdout + out.stderr


def _stilts(*args: str, timeout: int = 300) -> str:
    out = subprocess.run(["stilts", *args], capture_output=True, text=True, timeout=timeout, errors="replace")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_topcat_path_with_stilts_sync_async_upload_and_activation(dl_server, csv_collection, tmp_path):
    """What TOPCAT does, done by STILTS (TOPCAT's own table library): a TAP query found
    through /capabilities, sync and async (with an uploaded table); the result keeps the
    DataLink service descriptor; invoking it for a row (TOPCAT's Activation -> Invoke
    Service) gives the links, and the #this VOTable holds the light curve whose times
    astrobase's own reader gives. (STILTS 3.4.7 has no tapresolve, and resolving a short
    name goes to the IVOA registry, where a local lcpanel is not: not tested.)"""
    from astropy.io.votable import parse, parse_single_table

    url, path, rows, _twins = dl_server
    if shutil.which("stilts") is None:
        pytest.skip("STILTS is not installed (scripts/bootstrap.sh --taplint installs it)")
    # sync, endpoints read from /capabilities as TOPCAT's TAP window does
    result = tmp_path / "sync.vot"
    _stilts("tapquery", f"tapurl={url}/tap", "interface=cap", "sync=true", "ofmt=votable", f"out={result}",
            "adql=SELECT TOP 4 objectid, ra, decl FROM lcpanel.demo ORDER BY objectid")
    doc = parse(str(result))
    table = doc.get_first_table().to_table()
    assert list(table["objectid"]) == [r[0] for r in rows[:4]]
    services = [r for res in doc.resources for r in [res, *res.resources]
                if r.type == "meta" and r.utype == "adhoc:service"]
    assert len(services) == 1, "STILTS kept no service descriptor"
    params = {p.name: p.value for p in services[0].params}
    (id_param,) = [p for g in services[0].groups for p in g.entries if p.name == "ID"]
    id_column = [f.name for f in doc.get_first_table().fields if f.ID == id_param.ref]
    assert params["accessURL"] == f"{url}/datalink/demo" and id_column == ["objectid"]
    # Activation -> Invoke Service on the first row, read by STILTS
    oid = str(table["objectid"][0])
    links_csv = _stilts("tpipe", f"in={params['accessURL']}?ID={urllib.parse.quote(oid)}", "ifmt=votable",
                        "ofmt=csv", "out=-", "cmd=keepcols 'semantics local_semantics access_url'")
    links = [line.split(",", 2) for line in links_csv.splitlines()[1:]]
    (this_url,) = [u for sem, local, u in links if sem == "#this" and local == "lightcurve-votable"]
    lc_file = tmp_path / "lc.vot"
    _stilts("tcopy", f"in={this_url}", "ifmt=votable", "ofmt=votable", f"out={lc_file}")
    lc = parse_single_table(str(lc_file)).to_table()
    (lcfname,) = _demo_catalog(path).query("SELECT lcfname FROM object_catalog WHERE objectid = ?", (oid,))[0]
    np.testing.assert_array_equal(_filled(lc["bjd"]), _astrobase_times(csv_collection, lcfname))
    # async with an uploaded table: a cross-match against brute force
    targets = tmp_path / "targets.csv"
    targets.write_text("name,ra,dec\n" + "\n".join(f"t{i},{r[1]!r},{r[2]!r}" for i, r in enumerate(rows[:5])) + "\n")
    radius = 2 / 3600
    out = _stilts("tapquery", f"tapurl={url}/tap", "sync=false", "nupload=1", f"upload1={targets}", "ufmt1=csv",
                  "upname1=targets", "ofmt=csv", "out=-",
                  "adql=SELECT u.name, c.objectid FROM TAP_UPLOAD.targets AS u JOIN lcpanel.demo AS c ON "
                  f"1 = CONTAINS(POINT('ICRS', c.ra, c.decl), CIRCLE('ICRS', u.ra, u.dec, {radius!r}))")
    got = {tuple(line.split(",")) for line in out.splitlines()[1:]}
    ra, dec = np.radians([r[1] for r in rows]), np.radians([r[2] for r in rows])
    expected = set()
    for i, t in enumerate(rows[:5]):
        cosd = np.sin(dec) * np.sin(np.radians(t[2])) + np.cos(dec) * np.cos(np.radians(t[2])) * np.cos(
            ra - np.radians(t[1]))
        expected |= {(f"t{i}", rows[j][0]) for j in np.flatnonzero(np.degrees(np.arccos(np.clip(cosd, -1, 1)))
                                                                     < radius)}
    assert got == expected and len(expected) >= 5
    # the ObsCore time series, async
    out = _stilts("tapquery", f"tapurl={url}/tap", "sync=false", "ofmt=csv", "out=-",
                  "adql=SELECT obs_publisher_did FROM ivoa.obscore WHERE obs_collection = 'demo' "
                  "AND dataproduct_type = 'timeseries'")
    assert len(out.splitlines()) - 1 == 2 * len(rows)


def _demo_catalog(path):
    from lcpanel.app import App

    return App(path).catalogs.get("demo")


def _astrobase_times(collection_dir, lcfname, column="bjd"):
    """The light curve's ``bjd`` (or another column) read with astrobase's own reader for
    the format (not lcpanel's)."""
    import json
    from pathlib import Path

    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.lcproc import get_lcformat

    spec = json.loads((Path(collection_dir) / "collection.json").read_text())
    fmt = spec.get("lcformat") or {}
    reader = get_lcformat(fmt.get("formatkey", "lcpanel-demo-csv"),
                          use_lcformat_dir=str(Path(collection_dir) / fmt.get("lcformat_dir", "lcformat")))[1]
    lcdict = reader(str(Path(collection_dir) / lcfname))
    lcdict = lcdict[0] if isinstance(lcdict, tuple) else lcdict
    return np.asarray(lcdict[column], dtype=float)


def test_obscore_lists_every_light_curve_with_its_time_range(dl_server, csv_collection):
    url, _path, rows, _twins = dl_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    ra, dec, r = 290.2, 45.1, 0.3
    result = tap.run_sync(
        "SELECT obs_id, magcol, obs_collection, s_ra, s_dec, t_min, t_max, t_xel, access_url, obs_publisher_did "
        "FROM ivoa.obscore WHERE dataproduct_type = 'timeseries' AND "
        f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {ra}, {dec}, {r}))").to_table()
    # brute force over the demo catalog (the plain catalog has no light curves: no rows)
    sep = np.degrees(np.arccos(np.clip(
        np.sin(np.radians(dec)) * np.sin(np.radians([x[2] for x in rows]))
        + np.cos(np.radians(dec)) * np.cos(np.radians([x[2] for x in rows]))
        * np.cos(np.radians([x[1] - ra for x in rows])), -1, 1)))
    expected = {x[0] for x, d in zip(rows, sep) if d < r}
    assert set(result["obs_id"]) == expected and set(result["obs_collection"]) == {"demo"} and expected
    from lcpanel.app import App

    app = App(_path)
    demo = app.catalogs.get("demo")
    for row in result:
        (lcfname,) = demo.query("SELECT lcfname FROM object_catalog WHERE objectid = ?", (row["obs_id"],))[0]
        bjd = _astrobase_times(csv_collection, lcfname)
        bjd = bjd[np.isfinite(bjd) & np.isfinite(_astrobase_times(csv_collection, lcfname, row["magcol"]))]
        assert row["t_min"] == pytest.approx(bjd.min() - 2400000.5, abs=1e-9)
        assert row["t_max"] == pytest.approx(bjd.max() - 2400000.5, abs=1e-9)
        assert row["access_url"].startswith(f"{url}/datalink?ID=")
    links = next(iter(tap.run_sync(f"SELECT TOP 1 * FROM ivoa.obscore WHERE obs_id = '{rows[0][0]}'"
                                   ).iter_datalinks()))
    assert any(r["semantics"] == "#this" for r in links)
    status, _, caps = get(f"{url}/tap/capabilities")
    assert b'<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">' in caps


def _lightcurve_of(url: str, access_url: str):
    from astropy.io.votable import parse_single_table

    assert access_url.startswith(url)
    status, ctype, body = get(access_url)
    assert status == 200 and "votable" in ctype, body[:300]
    return parse_single_table(io.BytesIO(body)).to_table()


def _filled(column):
    return np.ma.filled(np.ma.asarray(column, dtype=float), np.nan)


def test_obscore_has_one_row_per_series_and_its_links_return_that_series(dl_server, csv_collection):
    """ObsCore rows are (object, magcol) pairs with unique DIDs; pyvo's DataLink on a row
    gives ``#this`` holding that series (with its aperture's errors) and nothing else,
    values as astrobase's own reader gives them."""
    import json
    from pathlib import Path

    url, path, rows, _twins = dl_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    result = tap.run_sync("SELECT obs_id, magcol, obs_publisher_did, obs_title, t_xel, t_min, t_max, o_ucd "
                          "FROM ivoa.obscore WHERE obs_collection = 'demo'")
    table = result.to_table()
    magcols = ["aep_000", "aep_001"]  # the generator's (examples/make_collection.py MAGCOLS)
    assert sorted(zip(table["obs_id"], table["magcol"])) == sorted((r[0], m) for r in rows for m in magcols)
    dids = list(table["obs_publisher_did"])
    assert len(set(dids)) == len(dids) == len(rows) * 2
    assert all(d == f"ivo://lcpanel/demo?{o}/{m}" for d, o, m in zip(dids, table["obs_id"], table["magcol"]))
    from lcpanel.app import App

    demo = App(path).catalogs.get("demo")
    from lcpanel.core.objects.magcols import collection_magcols

    with_checkplots = set(collection_magcols(demo.info.columns))
    assert with_checkplots and with_checkplots < set(magcols)
    spec = json.loads((Path(csv_collection) / "collection.json").read_text()).get("lcformat") or {}
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.lcproc import get_lcformat

    reader = get_lcformat(spec.get("formatkey", "lcpanel-demo-csv"),
                          use_lcformat_dir=str(Path(csv_collection) / spec.get("lcformat_dir", "lcformat")))[1]
    checked = 0
    for row, links in zip(result, result.iter_datalinks()):
        if row["obs_id"] not in {r[0] for r in rows[:3]}:
            continue
        (lcfname,) = demo.query("SELECT lcfname FROM object_catalog WHERE objectid = ?", (row["obs_id"],))[0]
        lcdict = reader(str(Path(csv_collection) / lcfname))
        lcdict = lcdict[0] if isinstance(lcdict, tuple) else lcdict
        magcol, other = row["magcol"], ({"aep_000", "aep_001"} - {row["magcol"]}).pop()
        mag, bjd = np.asarray(lcdict[magcol], dtype=float), np.asarray(lcdict["bjd"], dtype=float)
        ok = np.isfinite(mag) & np.isfinite(bjd)
        assert row["t_xel"] == np.isfinite(mag).sum() and row["o_ucd"] == "phot.mag" and magcol in row["obs_title"]
        assert row["t_min"] == pytest.approx(bjd[ok].min() - 2400000.5, abs=1e-9)
        this = {r["local_semantics"]: r for r in links if r["semantics"] == "#this"}
        assert set(this) == {"lightcurve-votable", "lightcurve-fits", "lightcurve-csv"}
        assert {r["ID"] for r in links} == {row["obs_publisher_did"]}
        lc = _lightcurve_of(url, this["lightcurve-votable"]["access_url"])
        aperture = magcol[-3:]
        assert magcol in lc.colnames and other not in lc.colnames and f"aie_{other[-3:]}" not in lc.colnames
        assert f"aie_{aperture}" in lc.colnames and "bjd" in lc.colnames
        np.testing.assert_array_equal(_filled(lc[magcol]), mag)
        np.testing.assert_array_equal(_filled(lc["bjd"]), bjd)
        aux = {r["local_semantics"] for r in links if r["semantics"] == "#auxiliary"}
        assert {a for a in aux if a.startswith("checkplot-aep")} == (
            {f"checkplot-{magcol}"} if magcol in with_checkplots else set())  # its own checkplot only
        (preview,) = [r for r in links if r["semantics"] == "#preview"]
        status, ctype, png = get(preview["access_url"])
        assert status == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and "magcol=" + magcol in preview["access_url"]
        checked += 1
    assert checked == 6


def test_series_ids_in_every_form_and_their_faults(dl_server):
    url, path, rows, _twins = dl_server
    before = snapshot(path)
    oid = rows[0][0]
    forms = {f"ivo://lcpanel/demo?{oid}/aep_001": "/datalink", f"demo/{oid}/aep_001": "/datalink",
             f"{oid}/aep_001": "/datalink/demo"}
    for ident, endpoint in forms.items():
        links = links_of(url, ident, endpoint=endpoint)
        (votable,) = [r for r in links if r["local_semantics"] == "lightcurve-votable"]
        assert votable["ID"] == ident and votable["access_url"].endswith("&magcol=aep_001"), ident
    links = links_of(url, f"demo/{oid}/nope", f"demo/{oid}/aep_000/x", f"demo/{oid}")
    errors = {r["ID"]: r["error_message"] for r in links if r["error_message"]}
    assert errors[f"demo/{oid}/nope"].startswith("NotFoundFault") and "aep_000, aep_001" in errors[f"demo/{oid}/nope"]
    assert errors[f"demo/{oid}/aep_000/x"].startswith("NotFoundFault")
    assert f"demo/{oid}" not in errors  # the object itself: the whole file
    (whole,) = [r for r in links if r["ID"] == f"demo/{oid}" and r["local_semantics"] == "lightcurve-votable"]
    lc = _lightcurve_of(url, whole["access_url"])
    assert {"aep_000", "aep_001", "aie_000", "aie_001"} <= set(lc.colnames)
    base = f"{url}/api/collections/demo/objects/{urllib.parse.quote(oid)}/lightcurve"
    for query, status_expected, words in (("?format=csv&magcol=nope", 400, b"aep_000, aep_001"),
                                          ("?magcol=aep_000", 400, b"converted light curves"),
                                          ("?format=csv&magcol=aep_000", 200, b"aep_000")):
        status, _, body = get(base + query)
        assert status == status_expected and words in body, (query, body[:300])
    assert snapshot(path) == before


@pytest.mark.skipif(len(CDIPS) < 2, reason="no tests/realdata CDIPS files")
def test_real_cdips_series_through_pyvo(dl_server):
    """The real TESS CDIPS files: ObsCore lists IRM, TFA and PCA of the three apertures of
    each; the #this of TFA2 holds TFA2 with IRE2 and IRQ2, as astropy reads the file."""
    import re

    from astropy.io import fits

    url, _path, _rows, _twins = dl_server
    tap = pyvo.dal.TAPService(f"{url}/tap")
    result = tap.run_sync("SELECT obs_id, magcol, t_xel, t_min FROM ivoa.obscore WHERE obs_collection = 'cdips' "
                          "AND dataproduct_type = 'timeseries'")
    files = {}
    for path in CDIPS:
        with fits.open(path) as hdul:
            files[str(hdul[0].header["OBJECT"])] = (hdul[1].data.copy(), hdul[1].columns.names)
    expected = {(o, n) for o, (_d, names) in files.items() for n in names if re.fullmatch(r"(IRM|TFA|PCA)[1-3]", n)}
    assert {(r["obs_id"], r["magcol"]) for r in result} == expected and len(expected) == 18
    for row, links in zip(result, result.iter_datalinks()):
        if row["magcol"] != "TFA2":
            continue
        data = files[row["obs_id"]][0]
        tfa2, bjd = np.asarray(data["TFA2"], dtype=float), np.asarray(data["TMID_BJD"], dtype=float)
        assert row["t_xel"] == np.isfinite(tfa2).sum()
        assert row["t_min"] == pytest.approx(bjd[np.isfinite(tfa2)].min() - 2400000.5, abs=1e-9)
        (this,) = [r for r in links if r["local_semantics"] == "lightcurve-votable"]
        lc = _lightcurve_of(url, this["access_url"])
        assert {c for c in lc.colnames if re.fullmatch(r"(IRM|TFA|PCA|IRE|IRQ)\d", c)} == {"TFA2", "IRE2", "IRQ2"}
        np.testing.assert_array_equal(_filled(lc["TFA2"]), tfa2)
        np.testing.assert_array_equal(_filled(lc["TMID_BJD"]), bjd)


def _upload_dir_count() -> int:
    import glob
    import tempfile

    return len(glob.glob(f"{tempfile.gettempdir()}/lcpanel-upload-*"))


def test_tap_upload_crossmatch_sync_and_async_match_brute_force(dl_server):
    from astropy.table import Table

    url, path, rows, _twins = dl_server
    before, uploads_before = snapshot(path), _upload_dir_count()
    rng = np.random.default_rng(3)
    picks = rows[::2]
    targets = Table({"name": [f"t{i}" for i in range(len(picks) + 2)],
                     "ra": [r[1] + rng.normal(0, 1 / 3600) for r in picks] + [10.0, 11.0],
                     "dec": [r[2] + rng.normal(0, 1 / 3600) for r in picks] + [-5.0, -6.0]})
    radius = 5 / 3600
    ra_c, dec_c = np.radians([r[1] for r in rows]), np.radians([r[2] for r in rows])
    expected = set()
    for name, tra, tdec in zip(targets["name"], np.radians(targets["ra"]), np.radians(targets["dec"])):
        cosd = np.sin(dec_c) * np.sin(tdec) + np.cos(dec_c) * np.cos(tdec) * np.cos(ra_c - tra)
        for j in np.flatnonzero(np.degrees(np.arccos(np.clip(cosd, -1, 1))) < radius):
            expected.add((name, rows[j][0]))
    assert len(expected) >= len(picks)
    tap = pyvo.dal.TAPService(f"{url}/tap")
    query = ("SELECT u.name, c.objectid FROM TAP_UPLOAD.targets AS u JOIN lcpanel.demo AS c "
             f"ON 1 = CONTAINS(POINT('ICRS', c.ra, c.decl), CIRCLE('ICRS', u.ra, u.dec, {radius!r}))")
    sync = tap.run_sync(query, uploads={"targets": targets}).to_table()
    assert {(a, b) for a, b in zip(sync["name"], sync["objectid"])} == expected
    query2 = ("SELECT u.name, c.objectid FROM TAP_UPLOAD.targets AS u, lcpanel.demo AS c "
              f"WHERE DISTANCE(POINT('ICRS', u.ra, u.dec), POINT('ICRS', c.ra, c.decl)) < {radius!r}")
    job = tap.run_async(query2, uploads={"targets": targets}).to_table()
    assert {(a, b) for a, b in zip(job["name"], job["objectid"])} == expected
    before = snapshot(path)  # an async job keeps its files under vo/jobs: only sync queries write nothing
    csv_text = "name,ra,dec\n" + "\n".join(f"{n},{float(r)!r},{float(d)!r}" for n, r, d in zip(targets["name"], targets["ra"],
                                                                                  targets["dec"]))
    status, _, body = _multipart(f"{url}/tap/sync", {"LANG": "ADQL", "QUERY": query, "UPLOAD": "targets,param:t",
                                                     "RESPONSEFORMAT": "csv"}, {"t": csv_text.encode()})
    assert status == 200 and len(body.decode().splitlines()) == len(expected) + 1
    assert snapshot(path) == before and _upload_dir_count() == uploads_before


def test_sky_index_answers_upload_joins():
    """The translation of an upload join reads the sky index's pairs, not every row."""
    from lcpanel.core.vo.adql import translate
    from lcpanel.core.vo.tap_schema import TapColumn, TapModel, TapTable

    coll = TapTable("lcpanel", "c", "", (TapColumn("objectid", "char", "*"), TapColumn("ra", "double"),
                                         TapColumn("decl", "double"), TapColumn("row_id", "long")),
                    db="c_c", sql_table="object_catalog", path="/nonexistent", collection_id="c")
    up = TapTable("TAP_UPLOAD", "t", "", (TapColumn("ra", "double"), TapColumn("dec", "double")),
                  db="upload_t", sql_table="t", path="/nonexistent")
    asked = []

    def match_rows(table, upload, ra, dec, radius):
        asked.append((table.name, upload.name, ra, dec, radius))
        return [[1, 2], []]

    tr = translate("SELECT c.objectid FROM TAP_UPLOAD.t AS u JOIN lcpanel.c AS c "
                   "ON 1 = CONTAINS(POINT('ICRS', c.ra, c.decl), CIRCLE('ICRS', u.ra, u.dec, 0.001))",
                   TapModel([coll, up], tap_schema_path="/nonexistent"), lambda *a: None, match_rows=match_rows)
    assert asked == [("c", "t", "ra", "dec", 0.001)], asked
    assert "json_each" in tr.sql.lower() and tr.regions == ["index"]


def _multipart(url: str, fields: dict, files: dict):
    import urllib.error
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in
             fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{k}"\r\n'
              f"Content-Type: application/octet-stream\r\n\r\n".encode() + v + b"\r\n" for k, v in files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


@pytest.mark.parametrize("upload, files, message", [
    ("t,http://127.0.0.1:1/x.vot", {}, b"private or local network"),
    ("t,file:///etc/passwd", {}, b"param:&lt;part&gt; or an http(s) URL"),
    ("t,param:p", {"p": b"<?xml version='1.0'?><VOTABLE><RESOURCE><TABLE><FIELD name='a'"}, b"neither a readable"),
    ("t,param:p", {"p": b'"a b",ra\n1,2\n'}, b"not a plain identifier"),
    ("t,param:p", {"p": b"x;drop,ra\n1,2\n"}, b"not a plain identifier"),
    ("t,param:missing", {"p": b"a\n1\n"}, b"no part named"),
    ("bad-name,param:p", {"p": b"a\n1\n"}, b"letters, digits"),
    ("t,param:p", {"p": b"a\n" + b"1\n" * 100_001}, b"rows; the limit"),
])
def test_bad_uploads_get_clear_errors_and_change_nothing(dl_server, upload, files, message):
    url, path, _rows, _twins = dl_server
    before, uploads_before = snapshot(path), _upload_dir_count()
    status, _, body = _multipart(f"{url}/tap/sync", {"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t",
                                                     "UPLOAD": upload}, files)
    assert status in (400, 413) and b'value="ERROR"' in body and message in body, body[-400:]
    assert snapshot(path) == before and _upload_dir_count() == uploads_before


def test_taplint_every_stage_with_obscore_uploads_and_examples(dl_server):
    """Every taplint stage but ObsLocTAP (observation planning, not a light-curve service):
    0 errors, 0 failures."""
    import re

    url, _path, _rows, _twins = dl_server
    if shutil.which("stilts") is None:
        pytest.skip("STILTS is not installed (scripts/bootstrap.sh --taplint installs it)")
    stages = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS MDQ OBS UPL EXA"
    proc = subprocess.run(["stilts", "taplint", f"tapurl={url}/tap", "report=EWF", "maxrepeat=20",
                           f"stages={stages}"], capture_output=True, text=True, timeout=900, errors="replace")
    totals = re.search(r"Totals: Errors: (\d+); Warnings: (\d+); Failures: (\d+)", proc.stdout)
    print("\n[taplint]", totals.group(0) if totals else "no Totals line")
    assert totals, proc.stdout[-2000:] + proc.stderr[-2000:]
    problems = [line for line in proc.stdout.splitlines() if line.startswith(("E-", "F-"))]
    assert int(totals.group(1)) == 0 and int(totals.group(3)) == 0, "\n".join(problems[:40])
