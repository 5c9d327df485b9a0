"""Waiting for a test server: a free port, and the one loop that waits for ``/liveness``.

Every test that starts ``lcpanel serve`` (tests/test_api.py's ``running_server``, the
resilience tests' ``Server``, the browser tests' ``served``) waits through
:func:`wait_live`, which fails at once, with the server's output, if the process exits.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_live(url: str, proc: subprocess.Popen | None, log: str | Path | None = None,
              timeout: float = 90.0) -> None:
    """Return once ``url + "/liveness"`` answers 200; raise with the tail of ``log`` (the
    server's output file) if ``proc`` (None: a server in this process) exits first, or
    TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            output = Path(log).read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"lcpanel serve exited with {proc.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(url + "/liveness", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
    raise TimeoutError(f"lcpanel serve did not become live in {timeout:.0f} s")
