"""Two search types: ``period`` (period range and amplitude) and ``box`` (an RA/Dec box).

A search type is a :class:`lcpanel.core.search.SearchBackend`: its ``param`` parameters
are the whole interface (lcpanel generates the web form, the CLI options and the JSON
schema from them), :meth:`prepare` does cross-field validation and raises
:class:`lcpanel.errors.UserError` naming the field, and :meth:`search_collection` answers
for one collection with :class:`lcpanel.core.search.Hits`. lcpanel applies the column
filter, sort, limit and the merge across collections.
"""

from __future__ import annotations

import math

import numpy as np
import param

from lcpanel.plugin_api import ColumnInfo, conjunction, Filter, Hits, SearchBackend, sql_name, UserError

from .pfindex import get_index

#: astrobase's period-finding method codes (``lcproc.periodsearch``), plus the two choices
#: that are not a single method
METHODS = ["any", "adopted", "gls", "bls", "pdm", "aov", "mav", "acf", "win"]


def _column(name, sqltype, unit="", ucd="", description="") -> ColumnInfo:
    return ColumnInfo(name=name, key=name, sqltype=sqltype, unit=unit, ucd=ucd, description=description)


def _finite(value, field: str, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise UserError(f"{what} must be a finite number, not {str(value)[:40]}", field=field)
    return number


# --- period -------------------------------------------------------------------------------


class PeriodSearch(SearchBackend):
    """Objects whose period lies in ``[min_period_days, max_period_days]``."""

    name = param.String(default="period", constant=True)
    title = "Period range"
    description = ("Variable objects by period: the period a reviewer adopted (the catalog's varperiod) or the "
                   "best period of a period-finding method (GLS, BLS, PDM...; 'any' takes every method), within "
                   "a range in days, optionally with a minimum amplitude (interquartile range of the magnitudes).")
    min_period_days = param.Number(default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
                                   doc="shortest period in days (default: no lower limit)")
    max_period_days = param.Number(default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
                                   doc="longest period in days (default: no upper limit)")
    method = param.Selector(default="any", objects=METHODS,
                            doc="which period: 'adopted' (reviewed varperiod in the catalog), one period-finding "
                                "method's best period, or 'any' method's")
    min_amplitude_mag = param.Number(default=None, allow_None=True, bounds=(0, None),
                                     doc="minimum amplitude in mag: the interquartile range of the light curve "
                                         "(catalog column <magcol>_mag_iqr)")
    magcol = param.String(default="", doc="magnitude column of the period finding, e.g. 'aep_000' "
                                          "(default: each collection's first)")
    extra_columns = (
        _column("period_days", "REAL", "d", "src.var;time.period", "the period that matched"),
        _column("period_method", "TEXT", ucd="meta.code", description="where the period comes from: 'adopted' "
                                                                      "or a period-finding method"),
        _column("period_peak", "REAL", ucd="stat.value", description="periodogram value at that period"),
    )
    default_sort = (("period_days", "ASC"),)
    example = {"min_period_days": 0.5, "max_period_days": 5.0}

    def prepare(self, settings) -> None:
        if self.min_period_days is None and self.max_period_days is None:
            raise UserError("give a period range: min_period_days, max_period_days or both", field="min_period_days")
        lo = 0.0 if self.min_period_days is None else _finite(self.min_period_days, "min_period_days",
                                                              "the shortest period")
        hi = math.inf if self.max_period_days is None else _finite(self.max_period_days, "max_period_days",
                                                                   "the longest period")
        if lo > hi:
            raise UserError(f"the shortest period ({lo:g} d) is longer than the longest ({hi:g} d)",
                            field="max_period_days")
        if self.min_amplitude_mag is not None:
            _finite(self.min_amplitude_mag, "min_amplitude_mag", "the minimum amplitude")
        self.magcol = self.magcol.strip()
        if self.magcol:
            try:
                self._magcol = sql_name(self.magcol)
            except UserError:
                raise UserError(f"{self.magcol!r} is not a magnitude column name", field="magcol") from None
        else:
            self._magcol = None
        self.range = (lo, hi)

    # --- per collection ---------------------------------------------------------------

    def _catalog_magcol(self, catalog) -> str | None:
        """The magcol prefix ("aep_000") this search uses in ``catalog``."""
        if self._magcol is not None:
            return self._magcol
        for name in catalog.columns:
            if name.endswith("_varperiod"):
                return name[: -len("_varperiod")]
        return None

    def _amplitude_filter(self, catalog, magcol) -> tuple[Filter | None, str | None]:
        if self.min_amplitude_mag is None:
            return None, None
        column = f"{magcol}_mag_iqr" if magcol else "mag_iqr"
        if column not in catalog.columns:
            return None, f"{catalog.collection_id}: no amplitudes (no {column} column)"
        return Filter(sql=f'"{column}" >= ?', params=(float(self.min_amplitude_mag),), columns=frozenset([column]),
                      text=f"{column} >= {self.min_amplitude_mag}"), None

    def _adopted(self, catalog, magcol, flt, sort, limit) -> Hits:
        """Adopted periods are a catalog column: let the catalog filter, sort and cut
        (only the ``Catalog`` interface is used, so other catalog kinds work too)."""
        column = f"{magcol}_varperiod" if magcol else "varperiod"
        if column not in catalog.columns:
            return Hits(row_ids=[], nmatched=0, messages=[f"{catalog.collection_id}: no adopted periods "
                                                          f"(no {column} column)"])
        lo, hi = self.range
        sql, params = f'"{column}" > 0 AND "{column}" >= ?', (lo,)
        if math.isfinite(hi):
            sql, params = sql + f' AND "{column}" <= ?', (lo, hi)
        condition = Filter(sql=sql, params=params, columns=frozenset([column]), text=f"{column} in range")
        amplitude, note = self._amplitude_filter(catalog, magcol)
        if note:
            return Hits(row_ids=[], nmatched=0, messages=[note])
        # the catalog sorts by its own columns: period_days is this column
        order = [(column if c == "period_days" else c, d) for c, d in sort] or [(column, "ASC")]
        ids, count = catalog.select(conjunction(condition, amplitude, flt), order, limit)
        periods = [v[0] for v in catalog.fetch_values(ids, [column])]
        return Hits(row_ids=ids, nmatched=count, extra={"period_days": periods,
                                                         "period_method": ["adopted"] * len(ids),
                                                         "period_peak": [None] * len(ids)})

    def _periodfinding(self, catalog, magcol):
        index = get_index(catalog.info)
        if len(index) == 0:
            return None, f"{catalog.collection_id}: no period-finding results"
        magcol = magcol if magcol in index.magcols() else (None if self._magcol else index.magcols()[0])
        if magcol is None:
            return None, f"{catalog.collection_id}: no period-finding results for magcol {self._magcol!r}"
        lo, hi = self.range
        with np.errstate(invalid="ignore"):
            mask = (index.magcol == magcol) & (index.period > 0) & (index.period >= lo) & (index.period <= hi)
        if self.method != "any":
            mask &= index.method == self.method
        where = np.flatnonzero(mask)
        # one row per object: its first matching method, in the pickle's pfmethods order
        _, first = np.unique(index.row_id[where], return_index=True)
        where = where[np.sort(first)]
        return (index.row_id[where], index.period[where], index.method[where].astype(object),
                index.peak[where]), None

    def search_collection(self, catalog, flt, sort, limit) -> Hits:
        magcol = self._catalog_magcol(catalog)
        if self.method == "adopted":
            return self._adopted(catalog, magcol, flt, sort, limit)
        found, note = self._periodfinding(catalog, magcol)
        if found is None:
            return Hits(row_ids=[], nmatched=0, messages=[note])
        amplitude, note = self._amplitude_filter(catalog, magcol)
        if note:
            return Hits(row_ids=[], nmatched=0, messages=[note])
        rows, periods, methods, peaks = found
        keep = catalog.passing(rows, conjunction(amplitude, flt))
        rows, periods, methods, peaks = rows[keep], periods[keep], methods[keep], peaks[keep]
        order = np.lexsort((rows, periods))  # by period, then row
        return Hits(row_ids=rows[order].tolist(), nmatched=len(rows), extra={
            "period_days": periods[order].tolist(),
            "period_method": [str(m) for m in methods[order]],
            "period_peak": [None if math.isnan(p) else p for p in peaks[order].tolist()],
        })


# --- box ----------------------------------------------------------------------------------


class BoxSearch(SearchBackend):
    """Objects with ``ra_min <= ra <= ra_max`` and ``dec_min <= decl <= dec_max``."""

    name = param.String(default="box", constant=True)
    title = "Sky box"
    description = ("Objects inside a box of right ascension and declination in decimal degrees. An RA range "
                   "whose minimum is larger than its maximum wraps through 0: ra_min 350, ra_max 10 is 20 "
                   "degrees wide.")
    ra_min = param.Number(default=None, allow_None=True, bounds=(0.0, 360.0), doc="western edge, RA in degrees")
    ra_max = param.Number(default=None, allow_None=True, bounds=(0.0, 360.0), doc="eastern edge, RA in degrees")
    dec_min = param.Number(default=None, allow_None=True, bounds=(-90.0, 90.0), doc="southern edge, Dec in degrees")
    dec_max = param.Number(default=None, allow_None=True, bounds=(-90.0, 90.0), doc="northern edge, Dec in degrees")
    example = {"ra_min": 289.0, "ra_max": 291.0, "dec_min": 44.0, "dec_max": 46.0}

    def prepare(self, settings) -> None:
        for name in ("ra_min", "ra_max", "dec_min", "dec_max"):
            if getattr(self, name) is None:
                raise UserError(f"give all four edges of the box; {name} is missing", field=name)
            _finite(getattr(self, name), name, name)
        if self.dec_min > self.dec_max:
            raise UserError(f"dec_min ({self.dec_min:g}) is north of dec_max ({self.dec_max:g})", field="dec_max")

    def condition(self) -> Filter:
        """The box as a SQL condition on the catalog's ``ra`` and ``decl`` columns."""
        if self.ra_min <= self.ra_max:
            ra_sql, ra_text = "ra BETWEEN ? AND ?", f"ra between {self.ra_min:g} and {self.ra_max:g}"
        else:  # wraps through RA 0
            ra_sql, ra_text = "(ra >= ? OR ra <= ?)", f"(ra >= {self.ra_min:g} or ra <= {self.ra_max:g})"
        return Filter(sql=f"{ra_sql} AND decl BETWEEN ? AND ?",
                      params=(float(self.ra_min), float(self.ra_max), float(self.dec_min), float(self.dec_max)),
                      columns=frozenset({"ra", "decl"}),
                      text=f"{ra_text} and decl between {self.dec_min:g} and {self.dec_max:g}")

    def search_collection(self, catalog, flt, sort, limit) -> Hits:
        # a box can hold a whole catalog: let SQLite sort and cut, as the column filter does
        ids, count = catalog.select(conjunction(self.condition(), flt), sort, limit)
        return Hits(row_ids=ids, nmatched=count)
