"""The object page's checkplot images are fetched by URL, not carried in the page.

Each period-finding method's row shows the checkplot's own phased light curve at the
method's best period. Until 2026-12-07 the page embedded each PNG in its document as
base64 (~75 KB of text each, a quarter of the object page's document); now it is an
``<img>`` of the JSON API's ``tiles/method-<n>.png`` (the n-th method in the checkplot's
``pfmethods`` order, with the page's magcol), loaded by the browser beside the page like
the finder chart. Checked against the checkplot read directly, on the real HATNet light
curve's two apertures and on the demo.
"""

from __future__ import annotations

import html
import json
import re
import urllib.request

import panel as pn
import pytest
from support.servers import running_server
from test_checkplots import all_checkplots, reviewed_variable, unreviewed
from test_magcols_realdata import MAGCOLS, OID, hat_app  # noqa: F401

from lcpanel.core.objects.checkplots import decode_png, load_checkplot, method_label, pf_entries


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _section_html(page) -> str:
    from lcpanel.views.object.periodograms import CheckplotPeriodograms

    section = CheckplotPeriodograms(page.ctx, on_period=lambda p: None, markers=[]).panel()
    assert not section.select(pn.pane.PNG), "a PNG carried in the page's document"
    return "".join(str(p.object) for p in section.select(pn.pane.HTML))


def test_phased_images_are_urls_to_the_checkplots_own_pngs(hat_app):  # noqa: F811
    from lcpanel.views.object_page import ObjectPage

    app, coll = hat_app
    with running_server(app.basedir) as (url, _proc):
        for m in MAGCOLS:
            page = ObjectPage(app=app, collection="hat", objectid=OID, magcol=m)
            text = _section_html(page)
            assert "data:image" not in text
            cp = load_checkplot(coll / "checkplots" / f"checkplot-{OID}-{m}.pkl")
            srcs = [html.unescape(s) for s in re.findall(r'<img[^>]* src="([^"]+)"', text)]
            expected = [f"/api/collections/hat/objects/{OID}/tiles/method-{n}.png?magcol={m}"
                        for n, (_key, entry) in enumerate(pf_entries(cp)) if decode_png(entry[0].get("plot"))]
            assert srcs == expected and expected
            for n, (key, entry) in enumerate(pf_entries(cp)):
                status, body = _get(url + srcs[n])
                assert status == 200 and body == decode_png(entry[0]["plot"]), (m, key)
            # the two apertures' checkplots are different images
        first = [_get(f"{url}/api/collections/hat/objects/{OID}/tiles/method-0.png?magcol={m}")[1] for m in MAGCOLS]
        assert first[0] != first[1]


@pytest.mark.parametrize("which", ["unreviewed", "reviewed variable"])
def test_method_tiles_over_http(demo_app, demo_server, csv_collection, which):
    """Every method's image, also for a reviewed variable, whose tiles show one phased
    plot (the adopted period's) but whose page shows every method's."""
    cps = all_checkplots(csv_collection)
    oid = reviewed_variable(cps) if which == "reviewed variable" else unreviewed(cps)
    cp = load_checkplot(demo_app.catalogs.get("demo").object_file(oid, "cpfname"))
    entries = pf_entries(cp)
    status, body = _get(f"{demo_server}/api/collections/demo/objects/{oid}/tiles")
    answer = json.loads(body)
    listed, magcol = answer["methods"], answer["magcol"]
    assert [(t["key"], t["label"]) for t in listed] == [(k, method_label(k)) for k, _ in entries]
    assert len(entries) >= 2 and magcol
    assert len(answer["phased"]) == (1 if which == "reviewed variable" else len(entries))
    for n, ((key, entry), tile) in enumerate(zip(entries, listed)):
        assert tile["period"] == float(entry[0]["period"])
        assert tile["url"] == f"/api/collections/demo/objects/{oid}/tiles/method-{n}.png?magcol={magcol}"
        status, png = _get(demo_server + tile["url"])
        assert status == 200 and png == decode_png(entry[0]["plot"])
    status, body = _get(f"{demo_server}/api/collections/demo/objects/{oid}/tiles/method-{len(entries)}.png")
    assert status == 404 and b"method-0" in body
