"""The light-curve format contract: read any collection's light curves into one shape.

A collection stores a format *spec* (a JSON-able dict with a ``kind`` naming a
registered :class:`LCFormat`); the format turns a file into a :class:`LightCurve`:
named 1-d columns of equal length with units and descriptions, the object's
information, and the time and magnitude systems. Exporters (CSV here; FITS, ECSV and
VOTable with the products) work from that shape only.
"""

from __future__ import annotations

import csv
import io
from math import isfinite
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UserError


@dataclass
class LightCurve:
    objectid: str
    columns: dict[str, np.ndarray]
    objectinfo: dict = field(default_factory=dict)
    #: column name -> {"unit": ..., "description": ...}
    column_info: dict[str, dict] = field(default_factory=dict)
    #: time system and offset, magnitude system, etc. (e.g. {"timesys": "TDB", "timeref": "BJD"})
    meta: dict = field(default_factory=dict)
    time_columns: tuple[str, ...] = ()
    mag_columns: tuple[str, ...] = ()
    err_columns: tuple[str, ...] = ()
    #: named quality masks: name -> {"column", "good" | "bad" | "bits", "description"}
    masks: dict = field(default_factory=dict)

    def __post_init__(self):
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"light curve columns differ in length: {lengths}")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


class LCFormat:
    """Base class for light-curve formats registered through ``register_lc_formats``.

    Subclasses set ``name`` (the spec's ``kind``) and implement ``from_spec``,
    ``to_spec`` and ``read``.
    """

    name: str = ""
    title: str = ""

    @classmethod
    def from_spec(cls, spec: dict, base: Path) -> "LCFormat":
        """Build from a stored spec; relative paths in it are relative to ``base``."""
        raise NotImplementedError

    def to_spec(self) -> dict:
        raise NotImplementedError

    def read(self, path: str | Path) -> LightCurve:
        raise NotImplementedError

    def source_files(self) -> list[Path]:
        """Files besides a light curve's own whose contents decide what :meth:`read` returns
        (a reader module, a format description): the light-curve cache
        (:mod:`lcpanel.core.objects.lccache`) stops using its copies when one of them, or
        the module of the format's class, changes. None by default."""
        return []

    def check(self, path: str | Path) -> LightCurve:
        """Read one file, turning any failure into a clear error for the operator."""
        try:
            lc = self.read(path)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(f"cannot read light curve {Path(path).name} as {self.describe()}: {exc}") from None
        if len(lc) == 0:
            raise UserError(f"light curve {Path(path).name} read as {self.describe()} has no points")
        return lc

    def describe(self) -> str:
        return self.name


def lightcurve_to_csv(lc: LightCurve) -> str:
    """CSV text with a ``#`` header stating the object, time system and column units."""
    out = io.StringIO()
    out.write(csv_header(lc))
    writer = csv.writer(out, lineterminator="\n")
    cols = [_formatted(col) for col in lc.columns.values()]
    writer.writerows(zip(*cols))
    return out.getvalue()


def csv_header(lc: LightCurve) -> str:
    """The ``#`` lines and the column-name row of :func:`lightcurve_to_csv`."""
    out = io.StringIO()
    out.write(f"# objectid: {lc.objectid}\n")
    for key in ("ra", "decl"):
        if key in lc.objectinfo:
            out.write(f"# {key}: {lc.objectinfo[key]}\n")
    for key, value in lc.meta.items():
        out.write(f"# {key}: {value}\n")
    for name in lc.columns:
        info = lc.column_info.get(name, {})
        unit = f" [{info['unit']}]" if info.get("unit") else ""
        desc = f" {info['description']}" if info.get("description") else ""
        out.write(f"# column {name}{unit}:{desc}\n")
    csv.writer(out, lineterminator="\n").writerow(list(lc.columns))
    return out.getvalue()


def _formatted(col: np.ndarray) -> list:
    col = np.asarray(col)
    if col.dtype == np.float32:  # shortest repr of the float32 itself, not of its float64 widening
        return [str(v) if np.isfinite(v) else "" for v in col]
    if col.dtype.kind == "f":
        return [repr(v) if isfinite(v) else "" for v in col.astype(np.float64).tolist()]
    return col.tolist()
