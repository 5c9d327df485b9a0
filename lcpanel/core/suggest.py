"""Did-you-mean hints for unknown names (collections, columns, settings, registry items)."""

from __future__ import annotations

import difflib


def did_you_mean(name: str, choices) -> str:
    """A short hint naming the closest known choice, or listing them all."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    if not close:
        # a misspelled prefix: 'radus' for 'radius_arcmin'
        heads = {c[: len(name) + 1]: c for c in choices}
        close = [heads[h] for h in difflib.get_close_matches(name, list(heads), n=1, cutoff=0.75)]
    if close:
        return f"did you mean {close[0]!r}?"
    return "known: " + (", ".join(choices) if choices else "none")
