"""The one clock: timezone-aware UTC now, and its ISO 8601 text as stored in indexes and files.

Every stored time stamp comes from here, so they compare as text (ISO 8601 with ``+00:00``)
and tests can control time in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def now_iso(timespec: str = "seconds") -> str:
    """The current UTC time as ISO 8601 text, e.g. ``2026-12-02T16:10:00+00:00``."""
    return now().isoformat(timespec=timespec)
