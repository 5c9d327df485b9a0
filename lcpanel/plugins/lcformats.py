"""Built-in light-curve formats.

- ``astrobase``: any format registered with astrobase's ``lcproc.register_lcformat``
  (a format key plus the directory holding its JSON; the JSON names the reader module).
- ``lcc-description``: a format description JSON file read as lcc-server reads it
  (``lc_readermodule`` path or module + ``lc_readerfunc``, ``{{collection_dir}}`` and
  ``{{home_dir}}``, normalisation function, metadata keys, per-column descriptions and
  formats, apertures).
- ``fits-table``: a FITS binary-table light curve astrobase has no reader for, its units,
  descriptions and time system taken from its headers.

What the columns mean is added by :func:`lcpanel.core.objects.formatinfo.describe_lightcurve`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from ..core.objects.lcformats import LCFormat, LightCurve
from ..errors import UserError
from ..hookspecs import hookimpl

# keys of an lcdict (or its objectinfo) that state how times and magnitudes are measured
META_KEYS = ("timesys", "timeref", "timeformat", "timeoffset", "timeunit", "magsys", "magsarefluxes", "telescope", "instrument")


def _resolve(path: str | None, base: Path) -> Path | None:
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _dict_get(data: dict, dotted: str):
    for part in dotted.split("."):
        data = data[int(part)] if isinstance(data, (list, tuple)) else data[part]
    return data


def _first_dict(result):
    """astrobase readers may return (lcdict, message) tuples."""
    if isinstance(result, (list, tuple)) and result and isinstance(result[0], dict):
        return result[0]
    if not isinstance(result, dict):
        raise ValueError(f"the reader returned {type(result).__name__}, not an lcdict")
    return result


def _collect_meta(lcdict: dict) -> dict:
    meta = {}
    for source in (lcdict.get("objectinfo") or {}, lcdict, lcdict.get("meta") or {}):
        for key in META_KEYS:
            if key in source and source[key] is not None:
                meta[key] = source[key]
    return meta


def _array_columns(lcdict: dict, n: int, skip: set) -> dict[str, np.ndarray]:
    """Every other 1-d array of length n in the lcdict (flags, other apertures...)."""
    out = {}
    for key, value in lcdict.items():
        if key in skip or key in ("objectinfo", "columns"):
            continue
        if isinstance(value, np.ndarray) and value.ndim == 1 and len(value) == n:
            out[key] = value
        elif isinstance(value, dict):
            for sub, subval in value.items():
                dotted = f"{key}.{sub}"
                if dotted not in skip and isinstance(subval, np.ndarray) and subval.ndim == 1 and len(subval) == n:
                    out[dotted.replace(".", "_")] = subval
    return out


# astrobase 0.5.3's own binned-hat/binned-hp JSONs name a module it does not have
# (astrobase.lcproc_batch); its binned-kep/binned-tess JSONs name the reader that exists
_FIXED_READERS = {"astrobase.lcproc_batch": ("astrobase.lcproc", "_read_pklc")}


def _builtin_with_fixed_reader(formatkey: str):
    """get_lcformat's tuple for a built-in format whose JSON names a missing reader, or None."""
    import importlib.resources

    try:
        path = importlib.resources.files("astrobase").joinpath(f"data/lcformats/{formatkey}.json")
        spec = json.loads(path.read_text())
    except (FileNotFoundError, OSError, ValueError, ModuleNotFoundError):
        return None
    fixed = _FIXED_READERS.get(spec.get("lcreader_module"))
    if fixed is None:
        return None
    reader = getattr(importlib.import_module(fixed[0]), fixed[1])
    return (spec["fileglob"], reader, spec["timecols"], spec["magcols"], spec["errcols"],
            bool(spec["magsarefluxes"]), None)


def _function_files(*functions) -> list[Path]:
    """The source files of the Python functions among ``functions`` (partials and
    decorated functions followed to what they call)."""
    import functools
    import inspect

    out = []
    for func in functions:
        while isinstance(func, functools.partial):
            func = func.func
        try:
            found = inspect.getsourcefile(inspect.unwrap(func)) if func is not None else None
        except TypeError:  # a built-in
            found = None
        if found:
            out.append(Path(found))
    return out


def _accepted_kwargs(reader):
    """The reader without keyword arguments its function does not take: astrobase's own
    ``hat-csv`` format passes ``verbose`` to ``hatlc.read_csvlc``, which has no such argument."""
    import functools
    import inspect

    if not isinstance(reader, functools.partial) or not reader.keywords:
        return reader
    try:
        params = inspect.signature(reader.func).parameters
    except (TypeError, ValueError):
        return reader
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return reader
    kept = {k: v for k, v in reader.keywords.items() if k in params}
    return functools.partial(reader.func, *reader.args, **kept)


def _faster(reader):
    """The reader, or lcpanel's vectorised equivalent where there is one: astrobase's
    ``hatlc.read_csvlc`` (``hat-csv``) becomes :func:`lcpanel.core.objects.hatcsv.read_csvlc`,
    which returns the same lcdict four times faster."""
    import functools

    from astrobase.hatsurveys import hatlc

    from ..core.objects import hatcsv

    func = reader.func if isinstance(reader, functools.partial) else reader
    if func is not hatlc.read_csvlc:
        return reader
    if isinstance(reader, functools.partial):
        return functools.partial(hatcsv.read_csvlc, *reader.args, **reader.keywords)
    return hatcsv.read_csvlc


class AstrobaseFormat(LCFormat):
    """A format registered with astrobase: ``{"kind": "astrobase", "formatkey": ..., "lcformat_dir": ...}``."""

    name = "astrobase"
    title = "astrobase registered format"

    def __init__(self, formatkey: str, lcformat_dir: Path | None):
        self.formatkey = formatkey
        self.lcformat_dir = lcformat_dir

    @classmethod
    def from_spec(cls, spec: dict, base: Path) -> "AstrobaseFormat":
        if not spec.get("formatkey"):
            raise UserError("an astrobase light-curve format needs a 'formatkey'")
        fmt = cls(spec["formatkey"], _resolve(spec.get("lcformat_dir"), base))
        fmt.lcformat  # fail now, not at the first download
        return fmt

    def to_spec(self) -> dict:
        return {"kind": self.name, "formatkey": self.formatkey,
                "lcformat_dir": str(self.lcformat_dir) if self.lcformat_dir else None}

    def describe(self) -> str:
        return f"astrobase format {self.formatkey!r}"

    @cached_property
    def lcformat(self) -> tuple:
        from ..core.objects.astrobase_compat import import_astrobase

        import_astrobase()
        from astrobase.lcproc import get_lcformat

        where = str(self.lcformat_dir) if self.lcformat_dir else None
        if where and not Path(where).is_dir():
            raise UserError(f"lcformat directory {where} does not exist")
        try:
            found = get_lcformat(self.formatkey, use_lcformat_dir=where)
        except Exception as exc:
            raise UserError(f"astrobase cannot load LC format {self.formatkey!r}: {exc}") from None
        if found is None and not where:
            found = _builtin_with_fixed_reader(self.formatkey)
        if found is None:
            raise UserError(f"astrobase knows no LC format {self.formatkey!r}"
                            + (f" in {where}" if where else "") + " (register it with lcproc.register_lcformat)")
        return (found[0], _faster(_accepted_kwargs(found[1])), *found[2:])

    @property
    def fileglob(self) -> str:
        return self.lcformat[0]

    def source_files(self) -> list[Path]:
        """The reader function's module and, from an lcformat directory, the format's JSON
        and the reader and normalisation modules it names (a process that imported a
        module of the same name before runs that one: both are counted)."""
        out = _function_files(self.lcformat[1])
        if self.lcformat_dir:
            for described in sorted(Path(self.lcformat_dir).glob("*.json")):
                out.append(described)
                try:
                    named = json.loads(described.read_text())
                except (OSError, ValueError):
                    continue
                if isinstance(named, dict):
                    out += [Path(named[k]) for k in ("lcreader_module", "lcnorm_module")
                            if isinstance(named.get(k), str) and named[k].endswith(".py")]
        return out

    def read(self, path) -> LightCurve:
        _glob, reader, timecols, magcols, errcols, magsarefluxes, _norm = self.lcformat
        lcdict = _first_dict(reader(str(path)))
        columns: dict[str, np.ndarray] = {}
        used = set()
        kinds = {"time": [], "mag": [], "err": []}
        for kind, keys in (("time", timecols), ("mag", magcols), ("err", errcols)):
            for key in keys:
                name = key.replace(".", "_")
                if name not in columns:
                    columns[name] = np.asarray(_dict_get(lcdict, key))
                    used.add(key)
                if name not in kinds[kind]:
                    kinds[kind].append(name)
        n = len(columns[kinds["time"][0]])
        columns.update(_array_columns(lcdict, n, used))
        info = lcdict.get("column_info") or lcdict.get("columndefs") or {}
        meta = _collect_meta(lcdict)
        meta.setdefault("magsarefluxes", bool(magsarefluxes))
        return LightCurve(
            objectid=str(lcdict.get("objectid") or (lcdict.get("objectinfo") or {}).get("objectid")),
            columns=columns, objectinfo=dict(lcdict.get("objectinfo") or {}),
            column_info={k: v for k, v in info.items() if k in columns}, meta=meta,
            time_columns=tuple(kinds["time"]), mag_columns=tuple(kinds["mag"]), err_columns=tuple(kinds["err"]))


def _substituted(value, descpath: Path):
    """lcc-server's substitutions: ``{{collection_dir}}`` is the directory holding the
    description file, ``{{home_dir}}`` the user's home; in strings and in the string values
    of a kwargs dict. (lcc-server replaces ``{{home_dir}}`` in kwargs only by a branch it
    never reaches; lcpanel replaces both everywhere.)"""
    if isinstance(value, str):
        return (value.replace("{{collection_dir}}", os.path.abspath(os.path.dirname(descpath)))
                .replace("{{home_dir}}", os.path.abspath(os.path.expanduser("~"))))
    if isinstance(value, dict):
        return {k: _substituted(v, descpath) for k, v in value.items()}
    return value


def _lcc_function(module: str, func: str, descpath: Path):
    """lcc-server's ``check_extmodule`` + ``getattr``: ``module`` is an existing file path
    (after substitution) or a dotted module name."""
    module = _substituted(module, descpath)
    if os.path.exists(module):
        return _load_function(f"{module}:{func}", descpath.parent) if module.endswith(".py") else \
            _load_function(f"{module}.py:{func}", descpath.parent)
    return _load_function(f"{module}:{func}", descpath.parent)


def _load_function(ref: str, base: Path):
    """``module:function`` or ``path/to/file.py:function``."""
    if ":" not in ref:
        raise UserError(f"reader {ref!r} must look like 'module:function' or 'file.py:function'")
    modref, func = ref.rsplit(":", 1)
    if modref.endswith(".py"):
        path = _resolve(modref, base)
        if not path.is_file():
            raise UserError(f"reader module {path} does not exist")
        spec = importlib.util.spec_from_file_location(f"lcpanel_lcreader_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(modref)
        except ImportError as exc:
            raise UserError(f"cannot import reader module {modref!r}: {exc}") from None
    try:
        return getattr(module, func)
    except AttributeError:
        raise UserError(f"reader module {modref!r} has no function {func!r}") from None


class DescriptionFormat(LCFormat):
    """A format described by an lcc-server style JSON file: ``{"kind": "lcc-description", "path": ...}``.

    The file holds ``lc_formatkey``, ``lc_fileglob``, ``lc_readermodule``
    (``module:function`` or ``file.py:function``), optional ``lc_readerfunc_kwargs``,
    ``metadata_keys``, ``column_keys`` (name -> ``[description, format, dtype]`` or
    ``{"description", "format", "dtype", "unit"}``), ``unaffiliated_cols``,
    ``per_aperture_cols``, ``mag_apertures``, ``aperture_joiner``, and optionally
    ``time_columns``, ``mag_columns``, ``err_columns``, ``timesys``, ``magsys``.
    """

    name = "lcc-description"
    title = "lcc-server format description"

    def __init__(self, path: Path):
        self.path = path
        try:
            self.desc = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"format description {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"format description {path} is not valid JSON: {exc}") from None
        if not isinstance(self.desc, dict) or "lc_readermodule" not in self.desc:
            raise UserError(f"format description {path} has no 'lc_readermodule'")
        self.reader_kwargs = _substituted(self.desc.get("lc_readerfunc_kwargs"), path)
        if self.desc.get("lc_readerfunc"):
            # lcc-server's form: a module (a .py path or a dotted name) and a function name
            self.reader = _lcc_function(self.desc["lc_readermodule"], self.desc["lc_readerfunc"], path)
        else:
            self.reader = _load_function(_substituted(self.desc["lc_readermodule"], path), path.parent)
        self.normfunc = None
        if self.desc.get("lc_normalizemodule") and self.desc.get("lc_normalizefunc"):
            self.normfunc = _lcc_function(self.desc["lc_normalizemodule"], self.desc["lc_normalizefunc"], path)
        self.norm_kwargs = _substituted(self.desc.get("lc_normalizefunc_kwargs"), path)
        flux_or_mag = self.desc.get("lc_measurements_flux_or_mag")
        if flux_or_mag not in (None, "flux", "mag"):
            raise UserError(f"format description {path}: lc_measurements_flux_or_mag must be 'flux' or 'mag'")
        self.magsarefluxes = flux_or_mag == "flux"

    def check(self, path):
        """Read one file and, as lcc-server does when adding a collection, run the
        normalisation function on it (it is not applied to what lcpanel serves)."""
        lc = super().check(path)
        if self.normfunc is not None:
            try:
                lcdict = _first_dict(self.reader(str(path), **(self.reader_kwargs or {})))
                self.normfunc(lcdict, **(self.norm_kwargs or {}))
            except Exception as exc:
                raise UserError(f"the normalisation function {self.desc['lc_normalizefunc']!r} of "
                                f"{self.path} fails on {Path(path).name}: {exc}") from None
        return lc

    @classmethod
    def from_spec(cls, spec: dict, base: Path) -> "DescriptionFormat":
        if not spec.get("path"):
            raise UserError("an lcc-description light-curve format needs a 'path'")
        return cls(_resolve(spec["path"], base))

    def to_spec(self) -> dict:
        return {"kind": self.name, "path": str(self.path)}

    def describe(self) -> str:
        return f"format {self.desc.get('lc_formatkey', self.path.name)!r}"

    @property
    def fileglob(self) -> str:
        return self.desc.get("lc_fileglob", "*")

    def source_files(self) -> list[Path]:
        return [self.path, *_function_files(self.reader)]

    def column_names(self) -> list[str]:
        joiner = self.desc.get("aperture_joiner", "_")
        names = list(self.desc.get("unaffiliated_cols", []))
        for col in self.desc.get("per_aperture_cols", []):
            names += [f"{col}{joiner}{ap}" for ap in self.desc.get("mag_apertures", [])]
        return names or list(self.desc.get("column_keys", {}))

    def _column_info(self, name: str) -> dict:
        keys = self.desc.get("column_keys", {})
        entry = keys.get(name)
        if entry is None:
            joiner = self.desc.get("aperture_joiner", "_")
            entry = keys.get(name.split(joiner)[0]) if joiner in name else None
        joiner = self.desc.get("aperture_joiner", "_")
        ap = name.split(joiner, 1)[1] if joiner in name and name not in keys else None
        if isinstance(entry, (list, tuple)):
            desc = str(entry[0]) if entry else ""
            try:
                desc = desc % ap if ap is not None and "%s" in desc else desc
            except (TypeError, ValueError):
                pass
            out = {"description": desc}
            if len(entry) > 1 and entry[1]:
                out["format"] = str(entry[1])
            return out
        if isinstance(entry, dict):
            return {k: entry[k] for k in ("description", "unit", "format") if k in entry}
        return {}

    def read(self, path) -> LightCurve:
        lcdict = _first_dict(self.reader(str(path), **(self.reader_kwargs or {})))
        columns = {}
        for name in self.column_names():
            try:
                columns[name] = np.asarray(_dict_get(lcdict, name))
            except (KeyError, IndexError, TypeError):
                continue
        if not columns:
            raise ValueError("none of the described columns is in the light curve")
        meta = _collect_meta(lcdict)
        for key in META_KEYS:
            if key in self.desc:
                meta[key] = self.desc[key]
        objectinfo = dict(lcdict.get("objectinfo") or {})
        for key, spec in (self.desc.get("metadata_keys") or {}).items():
            # lcc-server: "objectinfo.ra": [description, format, caster]; kept under its last part
            try:
                value = _dict_get(lcdict, key)
            except (KeyError, IndexError, TypeError):
                continue
            last = key.split(".")[-1]
            if last not in objectinfo and not isinstance(value, (dict, list, np.ndarray)):
                objectinfo[last] = value
        if "lc_measurements_flux_or_mag" in self.desc:
            meta["magsarefluxes"] = self.magsarefluxes
        if self.desc.get("lc_formatkey"):
            meta.setdefault("formatkey", self.desc["lc_formatkey"])
        if self.desc.get("lc_readerfunc"):
            meta.setdefault("readermodule", self.desc["lc_readermodule"])
        return LightCurve(
            objectid=str(lcdict.get("objectid") or objectinfo.get("objectid")),
            columns=columns, objectinfo=objectinfo,
            column_info={n: self._column_info(n) for n in columns}, meta=meta,
            time_columns=tuple(c for c in self.desc.get("time_columns", []) if c in columns),
            mag_columns=tuple(c for c in self.desc.get("mag_columns", []) if c in columns),
            err_columns=tuple(c for c in self.desc.get("err_columns", []) if c in columns))


class FitsTableFormat(LCFormat):
    """A FITS binary-table light curve astrobase has no reader for:
    ``{"kind": "fits-table", "hdu": 1, "objectid_key": "OBJECT", "ra_key": "RA_OBJ",
    "dec_key": "DEC_OBJ", "time_columns": [...], "mag_columns": [...], "err_columns": [...]}``.

    Every 1-d column is kept, with its unit (TUNITn) and description (the TTYPEn
    comment). The header's TIMESYS, TIMEREF/TREFPOS and BJDREFI/F, JDREF or MJDREF
    describe the first of ``time_columns``; other time columns are described in
    collection.json (``columns``), which also wins over anything read here.
    """

    name = "fits-table"
    title = "FITS binary-table light curve"
    KEYS = ("hdu", "objectid_key", "ra_key", "dec_key", "time_columns", "mag_columns", "err_columns",
            "magsarefluxes")

    def __init__(self, spec: dict):
        self.spec = {k: spec[k] for k in self.KEYS if k in spec}
        for key in ("time_columns", "mag_columns", "err_columns"):
            value = self.spec.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError(f"fits-table format: {key} must be a list of column names")
        if not self.spec.get("time_columns"):
            raise UserError("fits-table format needs 'time_columns' (the first is described by the header)")

    @classmethod
    def from_spec(cls, spec: dict, base: Path) -> "FitsTableFormat":
        return cls(spec)

    def to_spec(self) -> dict:
        return {"kind": self.name, **self.spec}

    def read(self, path) -> LightCurve:
        from astropy.io import fits

        from ..core.objects.fitsread import table_columns
        from ..core.objects.formatinfo import fits_column_info

        with fits.open(path, memmap=False) as hdul:
            index = self.spec.get("hdu", 1)
            hdu = hdul[index]
            primary = hdul[0].header
            info, timeinfo = fits_column_info(primary, hdu.header)
            columns = table_columns(path, hdul, index)
            objectinfo = {}
            wanted = ((self.spec.get("objectid_key", "OBJECT"), "objectid"), (self.spec.get("ra_key", "RA_OBJ"), "ra"),
                      (self.spec.get("dec_key", "DEC_OBJ"), "decl"))
            for key, target in wanted:
                for hdr in (hdu.header, primary):
                    if key in hdr:
                        objectinfo[target] = hdr[key]
                        break
            for key in ("TICID", "TESSMAG", "SECTOR", "CAMERA", "CCD", "TELESCOP", "INSTRUME"):
                if key in primary:
                    objectinfo[key.lower()] = primary[key]
        times = [c for c in self.spec["time_columns"] if c in columns]
        if not times:
            raise ValueError(f"none of the time columns {self.spec['time_columns']} is in the table")
        info[times[0]] = {**info.get(times[0], {}), "role": "time", **timeinfo}
        for c in times[1:]:
            info[c] = {**info.get(c, {}), "role": "time"}
        fluxes = bool(self.spec.get("magsarefluxes", False))
        for c in self.spec.get("mag_columns", []):
            if c in info:
                info[c]["role"] = "flux" if fluxes else "mag"
        for c in self.spec.get("err_columns", []):
            if c in info:
                info[c]["role"] = "flux_err" if fluxes else "mag_err"
        return LightCurve(
            objectid=str(objectinfo.get("objectid") or Path(path).name), columns=columns, objectinfo=objectinfo,
            column_info={k: v for k, v in info.items() if k in columns},
            meta={"magsarefluxes": fluxes,
                  **({"telescope": objectinfo["telescop"]} if "telescop" in objectinfo else {})},
            time_columns=tuple(times),
            mag_columns=tuple(c for c in self.spec.get("mag_columns", []) if c in columns),
            err_columns=tuple(c for c in self.spec.get("err_columns", []) if c in columns))


@hookimpl(trylast=True)
def register_lc_formats(app):
    return [AstrobaseFormat, DescriptionFormat, FitsTableFormat]
