"""A light curve as a visitor asked for it: named quality masks applied and times added in
another system. Nothing is applied unless asked; what was done is written into
``lc.meta`` (``mask``, ``time_conversion``) so that every export states it.

Raw flag columns are always kept; a mask removes the points it rejects and the count is
stated.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import UserError
from .timeconv import TARGETS, convert_times


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
                       magcol: str | None = None):
    """``lc`` with masks applied (points removed, the count stated) and, with ``times``, a
    first column ``time_<target>`` holding the times in that system (its source and
    accuracy stated). ``location``: the collection's observatory (else ``lc.meta['location']``).
    With ``magcol``, only that magnitude/flux series and its own columns
    (:func:`lcpanel.core.objects.lcseries.select_series`), after the masks."""
    masks = [m for m in (masks.split(",") if isinstance(masks, str) else masks) if m and m.strip()]
    if magcol:
        from .lcseries import select_series

        return select_series(prepare_lightcurve(lc, times=times, masks=masks, location=location), magcol)
    if not masks and not times:
        return lc
    meta = dict(lc.meta)
    columns = dict(lc.columns)
    info = dict(lc.column_info)
    time_columns = tuple(lc.time_columns)
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
    if masks:
        keep = np.ones(len(lc), dtype=bool)
        statements = []
        for name in masks:
            this = mask_keep(lc, name.strip())
            statements.append(f"{name.strip()} ({lc.masks[name.strip()].get('description', '')}): "
                              f"{int((~this).sum())} points rejected")
            keep &= this
        columns = {k: np.asarray(v)[keep] for k, v in columns.items()}
        meta["mask"] = (f"{int((~keep).sum())} of {len(keep)} points removed by mask "
                        + "; ".join(statements) + "; raw flag columns kept")
    return replace(lc, columns=columns, column_info=info, meta=meta, time_columns=time_columns)


def read_lightcurve(fmt, spec: dict | None, path):
    """Read ``path`` with the collection's format and describe every column from the
    format's knowledge and the collection's declarations (``spec``: its stored lcformat)."""
    from .formatinfo import describe_lightcurve

    return describe_lightcurve(fmt.read(path), spec)
