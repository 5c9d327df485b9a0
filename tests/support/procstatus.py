"""A process's memory figures, as Linux's ``/proc/<pid>/status`` gives them."""

from __future__ import annotations

from pathlib import Path


def rss_kib(pid: int | str = "self", field: str = "VmRSS") -> int:
    """One ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``, ``RssFile``...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)
