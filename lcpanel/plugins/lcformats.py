"""Built-in light-curve formats.

- ``astrobase``: any format registered with astrobase's ``lcproc.register_lcformat``
  (a format key plus the directory holding its JSON; the JSON names the reader module).
- ``lcc-description``: a format description JSON file as lcc-server used (reader
  function, metadata keys, per-column descriptions, formats and units, apertures).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from ..core.lcformats import LCFormat, LightCurve
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
        from ..core.astrobase_compat import import_astrobase

        import_astrobase()
        from astrobase.lcproc import get_lcformat

        where = str(self.lcformat_dir) if self.lcformat_dir else None
        if where and not Path(where).is_dir():
            raise UserError(f"lcformat directory {where} does not exist")
        try:
            found = get_lcformat(self.formatkey, use_lcformat_dir=where)
        except Exception as exc:
            raise UserError(f"astrobase cannot load LC format {self.formatkey!r}: {exc}") from None
        if found is None:
            raise UserError(f"astrobase knows no LC format {self.formatkey!r}"
                            + (f" in {where}" if where else "") + " (register it with lcproc.register_lcformat)")
        return found

    @property
    def fileglob(self) -> str:
        return self.lcformat[0]

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
        if "lc_readermodule" not in self.desc:
            raise UserError(f"format description {path} has no 'lc_readermodule'")
        self.reader = _load_function(self.desc["lc_readermodule"], path.parent)

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
        if isinstance(entry, (list, tuple)):
            return {"description": entry[0] if entry else ""}
        if isinstance(entry, dict):
            return {k: entry[k] for k in ("description", "unit") if k in entry}
        return {}

    def read(self, path) -> LightCurve:
        kwargs = self.desc.get("lc_readerfunc_kwargs") or {}
        lcdict = _first_dict(self.reader(str(path), **kwargs))
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
        return LightCurve(
            objectid=str(lcdict.get("objectid") or objectinfo.get("objectid")),
            columns=columns, objectinfo=objectinfo,
            column_info={n: self._column_info(n) for n in columns}, meta=meta,
            time_columns=tuple(c for c in self.desc.get("time_columns", []) if c in columns),
            mag_columns=tuple(c for c in self.desc.get("mag_columns", []) if c in columns),
            err_columns=tuple(c for c in self.desc.get("err_columns", []) if c in columns))


@hookimpl(trylast=True)
def register_lc_formats(app):
    return [AstrobaseFormat, DescriptionFormat]
