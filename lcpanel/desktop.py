"""``lcpanel desktop``: the web app as a local desktop program.

Serves the basedir on 127.0.0.1 at a free port (nothing is reachable from other
machines), opens an app-style window (Chromium, Chrome or Edge ``--app=URL`` with a
profile of its own, so the window's life is the program's life), and stops the server
cleanly when that window closes or on Ctrl-C. Without such a browser it opens the
default browser and serves until Ctrl-C.

Run as root, Chromium refuses to start without ``--no-sandbox``, which is then added.
``--browser-command`` is any command; ``{url}`` in it is replaced by the app's URL (else
the URL is appended), so ``firefox --kiosk {url}`` or ``brave --app={url}`` work. When the
window closes with an error (the browser failed to open it), the browser's own error
output is printed and the command exits with status 1.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import webbrowser

APP_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "microsoft-edge")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: how much of the browser's error output is shown when its window fails
BROWSER_LOG_TAIL = 4000


def app_window_command(url: str, profile: str) -> list[str] | None:
    for name in APP_BROWSERS:
        path = shutil.which(name)
        if path:
            cmd = [path, f"--app={url}", f"--user-data-dir={profile}", "--no-first-run",
                   "--disable-background-networking", "--disable-sync", "--window-size=1400,950"]
            if os.name == "posix" and os.geteuid() == 0:
                cmd.append("--no-sandbox")  # Chromium will not run as root with its sandbox
            return cmd
    return None


def browser_command_line(command: str, url: str) -> list[str]:
    """``--browser-command`` as an argument list: ``{url}`` replaced by the URL wherever
    it appears, or the URL appended when it does not."""
    args = shlex.split(command)
    if not args:
        raise SystemExit("lcpanel desktop: --browser-command is empty")
    if any("{url}" in a for a in args):
        return [a.replace("{url}", url) for a in args]
    return [*args, url]


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - BROWSER_LOG_TAIL))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


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
    cmd = browser_command_line(browser_command, url) if browser_command else app_window_command(url, profile)
    proc = None
    browser_log = os.path.join(profile, "browser.log")
    print(f"lcpanel desktop: {app.basedir} at {url}", flush=True)

    def stop(*_):
        loop.add_callback_from_signal(loop.stop)

    def watch_browser():
        if proc is not None and proc.poll() is not None:
            loop.stop()

    from tornado.ioloop import PeriodicCallback

    if cmd:
        with open(browser_log, "wb") as log:
            try:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            except OSError as exc:
                server.stop()
                app.close()
                shutil.rmtree(profile, ignore_errors=True)
                print(f"lcpanel desktop: could not start the browser {cmd[0]!r}: {exc}", file=sys.stderr, flush=True)
                return 1
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
        failed = proc is not None and proc.poll() not in (None, 0)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        if failed:
            print(f"lcpanel desktop: the browser window closed with status {proc.returncode}; its output:\n"
                  f"{_tail(browser_log) or '(none)'}", file=sys.stderr, flush=True)
        shutil.rmtree(profile, ignore_errors=True)
    print("lcpanel desktop: stopped", flush=True)
    return 1 if failed else 0
