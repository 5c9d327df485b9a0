"""A light curve as a visitor asked for it: one magnitude series, one time column or
times in another system, named quality masks applied. Nothing is applied unless asked;
what was done is written into ``lc.meta`` (``magcol``, ``times``, ``time_conversion``,
``mask``) so that every export states it.

The request's options, the same for the object API (``?magcol=&times=&mask=&masked=``)
and the light-curve products (:func:`parse_request` checks them, :func:`apply_request`
applies them):

- ``magcol``: one magnitude (or flux) series to keep, with its own error and flag
  columns and every time and frame column (:func:`lcpanel.core.objects.lcseries.select_series`:
  the VO serves the same series).
- ``times``: a time column of the light curve (``bjd``, ``TMID_BJD``; any case): only
  that time column is kept; or a system of :data:`~.timeconv.TARGETS` (``BJD_TDB``...):
  a first column ``time_<system>`` is computed (see :mod:`.timeconv`), the stored ones kept.
- ``mask``: comma-separated named masks of the format (``aiq_000_good``, ``default``...);
  ``masked``: ``drop`` (remove the points a mask rejects) or ``flag`` (keep every point,
  with a boolean column ``masked`` true where a mask rejects it). Raw flag columns are
  always kept and the count is stated.
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from ...errors import UserError
from .timeconv import TARGETS, convert_times

REQUEST_KEYS = ("magcol", "times", "mask", "masked")
MASKED = ("drop", "flag")
MASKED_COLUMN = "masked"
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MAX_NAMES = 32


def parse_request(values: dict) -> dict:
    """The request options (:data:`REQUEST_KEYS`) checked for form and normalised (names
    trimmed, de-duplicated and sorted; a ``times`` system upper-cased), every key present
    (``""`` when not asked). Whether the light curves have those columns and masks is
    checked when they are read. Raises :class:`UserError` naming the field."""
    out = {}
    for key in ("magcol", "mask"):
        value = values.get(key)
        if value is None:
            value = ""
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str):
            raise UserError(f"{key} must be a comma-separated list of names, not {type(value).__name__}", field=key)
        names = sorted({n.strip() for n in value.split(",") if n.strip()})
        if len(names) > _MAX_NAMES:
            raise UserError(f"{key} names at most {_MAX_NAMES} columns or masks", field=key)
        bad = [n for n in names if not _NAME.match(n)]
        if bad:
            raise UserError(f"{key}: {bad[0][:80]!r} is not a column or mask name (letters, digits, _ . -)",
                            field=key)
        if key == "magcol" and len(names) > 1:
            raise UserError("magcol names one magnitude or flux column (one series); build one product per magcol",
                            field="magcol")
        out[key] = ",".join(names)
    times = values.get("times")
    times = "" if times is None else times
    if not isinstance(times, str) or (times.strip() and not _NAME.match(times.strip())):
        raise UserError(f"times must be a time column of the light curves or one of {', '.join(TARGETS)}",
                        field="times")
    times = times.strip()
    out["times"] = times.upper() if times.upper() in TARGETS else times
    masked = values.get("masked")
    masked = masked.strip().lower() if isinstance(masked, str) and masked.strip() else "drop" if masked is None \
        or masked == "" else masked
    if masked not in MASKED:
        raise UserError(f"masked must be drop or flag, not {str(masked)[:40]!r}", field="masked")
    if masked == "flag" and not out["mask"]:
        raise UserError("masked=flag flags the points a mask rejects: name the mask too (mask=...)",
                        field="masked")
    out["masked"] = masked
    return out


def apply_request(lc, request: dict, location: dict | None = None):
    """``lc`` as ``request`` (from :func:`parse_request`) asks."""
    return prepare_lightcurve(lc, times=request.get("times") or None, masks=request.get("mask") or (),
                              magcol=request.get("magcol") or None, masked=request.get("masked") or "drop",
                              location=location)


def describe_request(request: dict) -> list[str]:
    """One line per option asked, for a product's README."""
    lines = []
    if request.get("magcol"):
        lines.append(f"magcol = {request['magcol']}: only this magnitude/flux series, with its own error and flag "
                     "columns, flags of no aperture and every time and frame column")
    times = request.get("times")
    if times in TARGETS:
        lines.append(f"times = {times}: a first column time_{times.lower()} holds the times as {TARGETS[times]}, "
                     "computed from a stored time column (each file states which, how and how accurately); "
                     "the stored time columns are kept")
    elif times:
        lines.append(f"times = {times}: the only time column kept is {times} (each file states its system)")
    if request.get("mask"):
        how = ("removed" if request.get("masked", "drop") == "drop" else
               f"kept, with a column {MASKED_COLUMN!r} true where a mask rejects the point")
        lines.append(f"mask = {request['mask']}: points the mask rejects are {how}; each file states how many; "
                     "raw flag columns are kept")
    return lines


def _match(name: str, candidates, what: str, field: str) -> str:
    if name in candidates:
        return name
    folded = [c for c in candidates if c.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise UserError(f"no {what} {name!r} in this light curve; its {what}s: {', '.join(candidates) or 'none'}",
                    field=field)


def mask_keep(lc, name: str) -> np.ndarray:
    """Boolean array: the points mask ``name`` keeps."""
    mask = lc.masks.get(name)
    if mask is None:
        known = ", ".join(lc.masks) or "none"
        raise UserError(f"no mask {name!r} for this light curve; its masks: {known}", field="mask")
    values = np.asarray(lc.columns[mask["column"]])
    if "bits" in mask:
        bits = int(mask["bits"])
        ints = values.astype(np.int64)
        return ints == 0 if bits == -1 else (ints & bits) == 0
    text = np.char.strip(values.astype(str))
    if "good" in mask:
        return np.isin(text, [str(v) for v in mask["good"]])
    return ~np.isin(text, [str(v) for v in mask["bad"]])


def prepare_lightcurve(lc, *, times: str | None = None, masks=(), location: dict | None = None,
                       magcol: str | None = None, masked: str = "drop"):
    """``lc`` with masks applied (points removed, or with ``masked="flag"`` flagged in a
    column ``masked``; the count stated) and, with ``times``, only that time column or a
    first column ``time_<target>`` holding the times in that system (its source and
    accuracy stated). ``location``: the collection's observatory (else ``lc.meta['location']``).
    With ``magcol``, only that magnitude/flux series and its own columns
    (:func:`lcpanel.core.objects.lcseries.select_series`), after the masks."""
    masks = [m.strip() for m in (masks.split(",") if isinstance(masks, str) else masks) if m and m.strip()]
    if masked not in MASKED:
        raise UserError(f"masked must be drop or flag, not {masked!r}", field="masked")
    if magcol:
        from .lcseries import select_series

        return select_series(prepare_lightcurve(lc, times=times, masks=masks, location=location, masked=masked),
                             magcol)
    if not masks and not times:
        return lc
    meta = dict(lc.meta)
    columns = dict(lc.columns)
    info = dict(lc.column_info)
    time_columns = tuple(lc.time_columns)
    keep = np.ones(len(lc), dtype=bool)
    statements = []
    for name in masks:
        this = mask_keep(lc, name)
        statements.append(f"{name} ({lc.masks[name].get('description', '')}): {int((~this).sum())} points rejected")
        keep &= this
    if times and str(times).upper() not in TARGETS:
        from .formatinfo import time_sentence

        try:
            chosen = _match(str(times), time_columns, "time column", "times")
        except UserError:
            raise UserError(f"times must be one of {', '.join(TARGETS)} or a time column of this light curve "
                            f"({', '.join(time_columns) or 'it has none'}), not {str(times)!r}", field="times") from None
        columns = {k: v for k, v in columns.items() if k == chosen or k not in time_columns}
        time_columns = (chosen,)
        meta["times"] = f"time column asked for: {time_sentence(chosen, info.get(chosen) or {})}"
        times = None
    if times:
        values, note = convert_times(lc, times, location or lc.meta.get("location"))
        target = str(times).upper()
        name = f"time_{target.lower()}"
        columns = {name: values, **columns}
        scale = target.split("_")[1]
        info[name] = {"role": "time", "unit": "d", "timescale": scale,
                      "refpos": {"BJD": "BARYCENTER", "HJD": "HELIOCENTER"}.get(target.split("_")[0], "TOPOCENTER"),
                      "timeorigin": 0.0 if not target.startswith("MJD") else 2400000.5,
                      "description": f"{TARGETS[target]}, computed from {note['source']}: {note['conversion']}; "
                                     f"accuracy {note['accuracy']}"}
        time_columns = (name,) + time_columns
        meta["time_conversion"] = (f"{name} = {target} from {note['source']}; {note['conversion']}; "
                                   f"accuracy: {note['accuracy']}")
    if masks and masked == "flag":
        name = MASKED_COLUMN if MASKED_COLUMN not in columns else f"lcpanel_{MASKED_COLUMN}"
        columns[name] = ~keep
        info[name] = {"role": "flag", "flags": {"True": "rejected by the mask", "False": "kept by the mask"},
                      "description": f"true where mask {', '.join(masks)} rejects the point (masked=flag: "
                                     "every point kept)"}
        meta["mask"] = (f"{int((~keep).sum())} of {len(keep)} points flagged in column {name} by mask "
                        + "; ".join(statements) + "; every point kept; raw flag columns kept")
    elif masks:
        columns = {k: np.asarray(v)[keep] for k, v in columns.items()}
        meta["mask"] = (f"{int((~keep).sum())} of {len(keep)} points removed by mask "
                        + "; ".join(statements) + "; raw flag columns kept")
    return replace(lc, columns=columns, column_info=info, meta=meta, time_columns=time_columns,
                   masks={k: v for k, v in lc.masks.items() if v.get("column") in columns})


def read_lightcurve(fmt, spec: dict | None, path):
    """Read ``path`` with the collection's format and describe every column from the
    format's knowledge and the collection's declarations (``spec``: its stored lcformat)."""
    from .formatinfo import describe_lightcurve

    return describe_lightcurve(fmt.read(path), spec)
