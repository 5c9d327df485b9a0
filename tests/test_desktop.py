"""``lcpanel desktop``: serves on 127.0.0.1 at a free port, opens a window, and stops by
itself when the window closes; ``{url}`` in ``--browser-command``; the browser's errors
shown when its window fails; ``--no-sandbox`` for Chromium as root; and real Chromium in
an X display made by ``xvfb-run``, whose screenshot shows the app's window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from support.data import random_catalog, write_table


def _basedir(tmp_path):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    base = Basedir.init(tmp_path / "basedir")
    add_catalog_collection(App(base.path), base, write_table(random_catalog(50, seed=8, allsky=True),
                                                             tmp_path / "sky.parquet"), show_progress=False)
    return base


def test_desktop_serves_then_stops_when_the_window_closes(tmp_path):
    base = _basedir(tmp_path)
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


def _window_script(tmp_path, report):
    """A stand-in browser: takes the URL as an argument or as --app=URL, loads the
    page, writes what it saw and exits."""
    window = tmp_path / "window.py"
    window.write_text(textwrap.dedent(f"""
        import json, sys, time, urllib.request
        url = next(a for a in sys.argv[1:] if "http" in a).removeprefix("--app=")
        for _ in range(300):
            try:
                page = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        json.dump({{"argv": sys.argv[1:], "page": "Bokeh" in page}}, open({str(report)!r}, "w"))
    """))
    return window


def test_browser_command_url_placeholder(tmp_path):
    base = _basedir(tmp_path)
    report = tmp_path / "report.json"
    window = _window_script(tmp_path, report)
    out = subprocess.run([sys.executable, "-m", "lcpanel", "desktop", str(base.path), "--browser-command",
                          f"{sys.executable} {window} --app={{url}} --kiosk"], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    seen = json.loads(report.read_text())
    # {url} replaced in place, nothing appended after --kiosk
    assert seen["argv"][-1] == "--kiosk" and seen["argv"][0].startswith("--app=http://127.0.0.1:"), seen
    assert seen["page"]


def test_failing_browser_window_shows_its_errors(tmp_path):
    base = _basedir(tmp_path)
    fail = tmp_path / "fail.py"
    fail.write_text("import sys\nprint('Missing X server or $DISPLAY', file=sys.stderr)\nsys.exit(3)\n")
    out = subprocess.run([sys.executable, "-m", "lcpanel", "desktop", str(base.path), "--browser-command",
                          f"{sys.executable} {fail}"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 1
    assert "status 3" in out.stderr and "Missing X server or $DISPLAY" in out.stderr, out.stderr
    assert "stopped" in out.stdout


def test_missing_browser_is_a_clear_error(tmp_path):
    base = _basedir(tmp_path)
    out = subprocess.run([sys.executable, "-m", "lcpanel", "desktop", str(base.path), "--browser-command",
                          "no-such-browser-here {url}"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 1 and "no-such-browser-here" in out.stderr, out.stderr


@pytest.mark.parametrize("uid", [0, 1000])
def test_chromium_as_root_runs_without_its_sandbox(monkeypatch, uid):
    from lcpanel import desktop

    monkeypatch.setattr(desktop.shutil, "which", lambda name: "/usr/bin/chromium" if name == "chromium" else None)
    monkeypatch.setattr(desktop.os, "geteuid", lambda: uid)
    cmd = desktop.app_window_command("http://127.0.0.1:1/", "/tmp/profile")
    assert cmd[0] == "/usr/bin/chromium" and "--app=http://127.0.0.1:1/" in cmd
    assert ("--no-sandbox" in cmd) == (uid == 0)


#: the accent colour of every page's header bar (lcpanel.views.theme.ACCENT)
ACCENT_RGB = (0x1F, 0x5F, 0x8B)
SCREEN = (1400, 1000)


def _grab(display: str, xauthority: str | None, path) -> None:
    """A screenshot of the whole X display into ``path`` (Pillow, through XCB)."""
    env = {**os.environ, "DISPLAY": display}
    if xauthority:
        env["XAUTHORITY"] = xauthority
    out = subprocess.run([sys.executable, "-c", "import sys; from PIL import ImageGrab; "
                          "ImageGrab.grab(xdisplay=sys.argv[1]).save(sys.argv[2])", display, str(path)],
                         env=env, timeout=60, capture_output=True, text=True)
    assert out.returncode == 0, f"screenshot of {display} failed: {out.stderr[-2000:]}"


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="xvfb-run missing (scripts/bootstrap.sh --browser installs it)")
@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium missing (scripts/bootstrap.sh --browser installs it)")
def test_real_chromium_app_window_under_xvfb(tmp_path):
    """``lcpanel desktop`` with its default browser (Chromium's app window; as root here and
    in CI, with --no-sandbox) in an X display of its own: the screenshot of the display
    shows the app's page (its header bar in the accent colour over a wide area), and the
    program stops when the window goes."""
    from PIL import Image

    base = _basedir(tmp_path)
    where = tmp_path / "display.txt"
    log = tmp_path / "desktop.log"
    script = (f'echo "$DISPLAY $XAUTHORITY" > {where}; '
              f'exec {sys.executable} -m lcpanel desktop {base.path}')
    with open(log, "wb") as out:
        proc = subprocess.Popen(["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24", "sh", "-c", script],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    shot = tmp_path / "screen.png"
    accent = 0
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and accent < 1400 * 30:
            assert proc.poll() is None, log.read_text(errors="replace")
            time.sleep(1.0)
            written = where.read_text() if where.exists() else ""
            if not written.endswith("\n") or "lcpanel desktop:" not in log.read_text(errors="replace"):
                continue  # the display's name not written whole yet, or the server not up
            display, _, xauth = written.strip().partition(" ")
            _grab(display, xauth or None, shot)
            img = Image.open(shot).convert("RGB")
            accent = sum(n for n, rgb in img.getcolors(SCREEN[0] * SCREEN[1])
                         if all(abs(a - b) <= 6 for a, b in zip(rgb, ACCENT_RGB)))
        screenshots = os.path.join(os.path.dirname(__file__), "..", "artifacts", "screenshots")
        os.makedirs(screenshots, exist_ok=True)
        if shot.exists():
            shutil.copy(shot, os.path.join(screenshots, "desktop-xvfb.png"))
        assert accent >= 1400 * 30, f"no app window on the display ({accent} accent pixels): " + \
            log.read_text(errors="replace")[-3000:]
        colours = Image.open(shot).convert("RGB").getcolors(SCREEN[0] * SCREEN[1])
        assert len(colours) > 50  # a rendered page, not a flat fill
        # closing the window (the browser going away) stops the app by itself
        browsers = subprocess.run(["pgrep", "-s", str(os.getsid(proc.pid)), "-f", "--", "--app=http://127.0.0.1"],
                                  capture_output=True, text=True).stdout.split()
        assert browsers, "no Chromium app window process"
        main = min(int(pid) for pid in browsers)
        os.kill(main, 15)
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")
        assert "lcpanel desktop: stopped" in log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
