"""Progress bars for long command-line work (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A tqdm bar on stderr (``disable=True`` for quiet runs and tests)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)
