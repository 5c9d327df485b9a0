"""``lcpanel serve`` says it is serving once it is: the line with the URL comes after the
port takes connections, once, however many processes serve.

The line used to come before the server was made (Panel imported, the port bound): for
~0.85 s after it, opening the URL it names was refused (found running ``make demo``).
"""

from __future__ import annotations

import socket

import pytest
from support.servers import free_port, server_log, spawn_server, stop_server, wait_live, wait_output

LINE = "lcpanel serving "


@pytest.mark.parametrize("procs", [1, 2])
def test_the_serving_line_comes_once_the_port_takes_connections(basedir, procs):
    port = free_port()
    proc = spawn_server(basedir.path, port, "--num-procs", str(procs))
    try:
        wait_output(proc, LINE)
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # refused before the fix
            pass
        wait_live(f"http://127.0.0.1:{port}", proc, proc.log_path)
        out = server_log(proc)
        assert out.count(LINE) == 1, out
        assert f"at http://127.0.0.1:{port}/" in out
    finally:
        stop_server(proc)
