"""Files only the server's operator may read: accounts, signing secrets, counters.

:func:`private_file` makes such a file (or tightens an existing one) mode 0600 whatever
the process umask, before anything is written into it. SQLite gives a database's
``-wal`` and ``-shm`` files the database file's mode, so opening a database on a path
made private here keeps its companions private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600


def private_file(path: str | Path) -> Path:
    """``path``, created empty if missing, with mode exactly 0600 (never group- or
    world-readable, umask-independent). Safe when several processes race to create it."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, PRIVATE_MODE)
        return path
    try:
        os.fchmod(fd, PRIVATE_MODE)  # the umask may have taken bits away; say exactly what we mean
    finally:
        os.close(fd)
    return path
