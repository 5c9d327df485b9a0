"""``lcpanel desktop``: serves on 127.0.0.1 at a free port, opens a window, and stops by
itself when the window closes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import random_catalog, write_table


def test_desktop_serves_then_stops_when_the_window_closes(tmp_path):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    base = Basedir.init(tmp_path / "basedir")
    add_catalog_collection(App(base.path), base, write_table(random_catalog(50, seed=8, allsky=True),
                                                             tmp_path / "sky.parquet"), show_progress=False)
    # a stand-in "browser window": loads the page and the API, then closes
    window = tmp_path / "window.py"
    report = tmp_path / "report.json"
    window.write_text(textwrap.dedent(f"""
        import json, sys, time, urllib.request
        url = sys.argv[1]
        for _ in range(300):
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        api = json.load(urllib.request.urlopen(url + "api/collections", timeout=5))
        json.dump({{"url": url, "page": "Bokeh" in page, "collections": len(api["collections"])}},
                  open({str(report)!r}, "w"))
    """))
    out = subprocess.run([sys.executable, "-m", "lcpanel", "desktop", str(base.path), "--browser-command",
                          f"{sys.executable} {window}"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "stopped" in out.stdout
    seen = json.loads(report.read_text())
    assert seen["url"].startswith("http://127.0.0.1:") and seen["page"] and seen["collections"] == 1
