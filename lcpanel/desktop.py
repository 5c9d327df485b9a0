"""``lcpanel desktop``: the web app as a local desktop program.

Serves the basedir on 127.0.0.1 at a free port (nothing is reachable from other
machines), opens an app-style window (Chromium, Chrome or Edge ``--app=URL`` with a
profile of its own, so the window's life is the program's life), and stops the server
cleanly when that window closes or on Ctrl-C. Without such a browser it opens the
default browser and serves until Ctrl-C.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import webbrowser

APP_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "microsoft-edge")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_window_command(url: str, profile: str) -> list[str] | None:
    for name in APP_BROWSERS:
        path = shutil.which(name)
        if path:
            return [path, f"--app={url}", f"--user-data-dir={profile}", "--no-first-run",
                    "--disable-background-networking", "--disable-sync", "--window-size=1400,950"]
    return None


def run_desktop(basedir, *, port: int = 0, browser_command: str | None = None) -> int:
    from .app import App
    from .core.catalogs.basedir import Basedir
    from .server import make_server

    Basedir(basedir)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}/"
    app = App(basedir).start()
    server = make_server(app, address="127.0.0.1", port=port)
    server.start()
    loop = server.io_loop
    profile = tempfile.mkdtemp(prefix="lcpanel-desktop-")
    cmd = shlex.split(browser_command) + [url] if browser_command else app_window_command(url, profile)
    proc = None
    print(f"lcpanel desktop: {app.basedir} at {url}", flush=True)

    def stop(*_):
        loop.add_callback_from_signal(loop.stop)

    def watch_browser():
        if proc is not None and proc.poll() is not None:
            loop.stop()

    from tornado.ioloop import PeriodicCallback

    if cmd:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        PeriodicCallback(watch_browser, 300).start()
    else:
        webbrowser.open(url)
        print("no app-window browser found: opened the default browser; Ctrl-C stops", flush=True)
    previous = signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        loop.start()
    finally:
        signal.signal(signal.SIGINT, previous)
        server.stop()
        app.close()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    print("lcpanel desktop: stopped", flush=True)
    return 0
