"""One photometric series of a light curve: the file's times with one magnitude or flux
column (an astrobase "magcol": a HAT aperture's ``aep_000``, a CDIPS ``TFA2``, TESS's
``pdc_pdcsap_flux``) and the error and quality-flag columns that go with it.

A survey file often holds several series of the same object (HATNet: raw, EPD and TFA
magnitudes of three apertures; CDIPS: IRM/TFA/PCA of three apertures). The VO serves each
as a dataset of its own (one ObsCore row, one DataLink ID, a ``#this`` holding that
series only), as DaCHS does for the bands of Gaia light curves; the stored file stays the
``#progenitor``.

Which columns go with a series: every column that is not a magnitude/flux/error/flag
(times, frame metadata) is kept. An error column is kept when its name starts with the
series' name (``pdc_pdcsap_flux_err``); when no error column does, errors and flags are
matched by aperture, the trailing digits of the name (``aep_000`` with ``aie_000`` and
``aiq_000``; ``TFA2`` with ``IRE2`` and ``IRQ2``), and those naming no aperture are kept.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ...errors import UserError

SERIES_ROLES = ("mag", "flux")
ERROR_ROLES = ("mag_err", "flux_err")
_APERTURE = re.compile(r"(\d+)$")


def _role(lc, name: str) -> str | None:
    return (lc.column_info.get(name) or {}).get("role")


def series_columns(lc) -> list[str]:
    """The light curve's magnitude and flux columns (the format's magnitude columns first)."""
    names = [c for c in lc.mag_columns if c in lc.columns]
    return names + [c for c in lc.columns if c not in names and _role(lc, c) in SERIES_ROLES]


def series_name(lc, magcol: str) -> str:
    """The column of ``magcol`` (astrobase's dotted ``sap.sap_flux`` names column
    ``sap_sap_flux``); UserError naming the choices when the light curve has no such series."""
    names = series_columns(lc)
    for candidate in (magcol, magcol.replace(".", "_")):
        if candidate in names:
            return candidate
    raise UserError(f"no magnitude or flux column {magcol[:80]!r} in this light curve; its columns: "
                    + (", ".join(names) or "none"), field="magcol")


def _aperture(name: str) -> str | None:
    m = _APERTURE.search(name)
    return m.group(1) if m else None


def series_members(lc, column: str) -> list[str]:
    """The columns that make up series ``column``, in the file's order."""
    series = set(series_columns(lc))
    errors = [c for c in lc.columns if _role(lc, c) in ERROR_ROLES or c in lc.err_columns]
    own = [c for c in errors if c.lower().startswith(column.lower())]
    aperture = _aperture(column)

    def same_aperture(name: str) -> bool:
        theirs = _aperture(name)
        return theirs is None or theirs == aperture

    keep = []
    for name in lc.columns:
        role = _role(lc, name)
        if name == column:
            keep.append(name)
        elif name in series:
            continue
        elif name in errors:
            if (name in own) if own else same_aperture(name):
                keep.append(name)
        elif role == "flag":
            if same_aperture(name):
                keep.append(name)
        else:
            keep.append(name)
    return keep


def select_series(lc, magcol: str):
    """``lc`` holding series ``magcol`` only (see the module docstring); ``lc.meta['magcol']``
    names it so that every export states which series it is."""
    column = series_name(lc, magcol)
    keep = series_members(lc, column)
    kept = set(keep)
    meta = dict(lc.meta, magcol=column)
    return replace(lc, columns={c: lc.columns[c] for c in keep},
                   column_info={c: v for c, v in lc.column_info.items() if c in kept},
                   meta=meta, mag_columns=(column,) if column in lc.mag_columns else (),
                   err_columns=tuple(c for c in lc.err_columns if c in kept),
                   time_columns=tuple(c for c in lc.time_columns if c in kept),
                   masks={k: m for k, m in lc.masks.items() if m.get("column") in kept})
