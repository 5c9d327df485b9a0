"""The header of an ECSV light curve as astropy's ECSV writer writes it, byte for byte,
without PyYAML's pure-Python emitter (which made the header 80 % of an ECSV export).

The YAML document is the one astropy builds (``astropy.table.meta.get_yaml_from_header``:
column attributes in astropy's order, the meta as an ``!!omap``, floats as astropy
represents them), emitted by libyaml (PyYAML's C emitter, about a fifth of the cost) or,
for the common keywords, directly. libyaml and PyYAML's emitter agree except where a line
reaches the 130-column width (they fold long scalars differently) and on keys that need
quoting, so :func:`ecsv_head` answers None there and the caller uses astropy.

Most of the header is the same for every light curve of a collection and is written
once: the column attributes (libyaml) and the ``comments`` notes (astropy; libyaml does
not fold long flow sequences as PyYAML does). The per-object keywords are written here
when they are plain numbers and words, as PyYAML writes them, else by libyaml.
``tests/test_lcfast.py`` compares the bytes with astropy's on the demo, synthetic and
real light curves and on hostile metadata.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache

import numpy as np
import yaml

from .lcformats import LightCurve

#: astropy dumps the header with this line width; longer lines may be folded
#: differently by the two emitters
_WIDTH = 130
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-]*\Z")
_SCALARS = {str, int, float, bool}


@lru_cache(maxsize=1)
def _dumper():
    """A C-emitting dumper with the representers of astropy's ECSV ``TableDumper``, or
    None when PyYAML was built without libyaml."""
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    from astropy.io.misc.yaml import AstropyDumper
    from astropy.table import meta as table_meta

    class Dumper(yaml.CSafeDumper):
        represent_float = AstropyDumper.represent_float

        def represent_mapping(self, tag, mapping, flow_style=None):
            # astropy's TableDumper.represent_mapping: items in the mapping's own order
            # (ColumnDict sorts them astropy's way), flow style when all are plain scalars
            value = []
            node = yaml.MappingNode(tag, value, flow_style=flow_style)
            if self.alias_key is not None:
                self.represented_objects[self.alias_key] = node
            items = mapping.items()
            if hasattr(items, "sort"):
                items.sort()
            else:
                try:
                    items = sorted(items)
                except TypeError:
                    items = list(items)
            best = True
            for key, item in items:
                nkey, nitem = self.represent_data(key), self.represent_data(item)
                best = best and all(isinstance(n, yaml.ScalarNode) and not n.style for n in (nkey, nitem))
                value.append((nkey, nitem))
            if flow_style is None:
                node.flow_style = self.default_flow_style if self.default_flow_style is not None else best
            return node

    Dumper.yaml_representers = dict(AstropyDumper.yaml_representers)
    Dumper.yaml_multi_representers = dict(AstropyDumper.yaml_multi_representers)
    Dumper.add_representer(OrderedDict, table_meta._repr_odict)
    Dumper.add_representer(table_meta.ColumnDict, table_meta._repr_column_dict)
    return Dumper


@lru_cache(maxsize=1024)
def _unit_text(unit: str) -> str:
    """The unit as an astropy Column with ``unit=unit`` writes it."""
    from astropy.units import Unit

    return str(Unit(unit, parse_strict="silent"))


@lru_cache(maxsize=256)
def _comment_lines(notes: tuple[str, ...]) -> tuple[str, ...]:
    """``meta: !!omap`` and the ``comments`` item of the meta, last in it, as astropy
    writes them. libyaml does not fold long flow sequences as PyYAML does, and these notes
    are long; they are mostly the same for every light curve of a collection, so they are
    written by astropy once per distinct list."""
    from astropy.table.meta import get_yaml_from_header

    lines = get_yaml_from_header({"cols": [], "meta": OrderedDict(comments=list(notes))})
    return tuple(lines[lines.index("meta: !!omap"):lines.index("schema: astropy-2.0") if "schema: astropy-2.0" in lines
                       else len(lines)])


@lru_cache(maxsize=64)
def _datatype(dtype: np.dtype) -> str | None:
    if dtype.kind == "U":
        return "string"
    if dtype.kind in "fiub":
        return dtype.name
    return None


def ecsv_head(lc: LightCurve) -> bytes | None:
    """The ECSV header and column-name line astropy writes for ``lc`` (see the module
    docstring), or None where this writer does not promise astropy's bytes."""
    from .lcexport import _column_unit_description, _header_cards, _plain_array

    columns = []
    for name, values in lc.columns.items():
        arr = _plain_array(values)
        kind = _datatype(arr.dtype)
        if kind is None or arr.ndim != 1 or not _SAFE_NAME.match(name):
            return None
        unit, description = _column_unit_description(lc, name)
        columns.append((name, kind, _unit_text(unit) if unit else None, description))
    cards, notes = _header_cards(lc)
    meta = OrderedDict((key, value) for key, value, _ in cards)
    for key, value in meta.items():
        if type(value) not in _SCALARS or not _safe_key(key):
            return None
    if not all(type(note) is str for note in notes):
        return None
    lines = _datatype_lines(tuple(columns))
    if lines is None:
        return None
    items = _meta_items(meta)
    if items is None:
        items = _meta_items_libyaml(meta)
        if items is None:
            return None
    lines = ["datatype:", *lines]
    if meta or notes:
        lines += ["meta: !!omap", *items]
    if notes:
        lines += _comment_lines(tuple(notes))[1:]
    lines.append("schema: astropy-2.0")
    names = " ".join(lc.columns)
    return "".join(f"# {line}\n" for line in ["%ECSV 1.0", "---", *lines]).encode() + f"{names}\n".encode()


def _dump(header: dict) -> list[str] | None:
    """``header`` as YAML lines by libyaml, or None where a line is too long for the
    emitters to agree."""
    dumper = _dumper()
    if dumper is None:
        return None
    lines = yaml.dump(header, default_flow_style=None, Dumper=dumper, width=_WIDTH).splitlines()
    return None if any(len(line) > _WIDTH for line in lines) else lines


@lru_cache(maxsize=256)
def _datatype_lines(columns: tuple) -> tuple[str, ...] | None:
    """The items of ``datatype:``, one per (name, datatype, unit, description); the same
    for every light curve of a collection, so written once per distinct set."""
    from astropy.table import meta as table_meta

    datatype = []
    for name, kind, unit, description in columns:
        attrs = table_meta.ColumnDict(name=name, datatype=kind)
        if unit:
            attrs["unit"] = unit
        if description is not None:
            attrs["description"] = description
        datatype.append(attrs)
    lines = _dump({"datatype": datatype})
    return None if lines is None else tuple(lines[1:])


def _meta_items_libyaml(meta: OrderedDict) -> list[str] | None:
    if not meta:
        return []
    lines = _dump({"meta": meta})
    return None if lines is None else lines[1:]


#: text PyYAML writes unquoted in a flow mapping: letters, digits, ``_+./()-`` and single
#: spaces, starting with a letter or digit (no indicator, no ``: `` or `` #``)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+./()\-]*(?: [A-Za-z0-9_+./()\-]+)*\Z")
_STR_TAG = "tag:yaml.org,2002:str"


@lru_cache(maxsize=4096)
def _safe_key(key: str) -> bool:
    return _SAFE_KEY.match(key) is not None


def _meta_items(meta: OrderedDict) -> list[str] | None:
    """The ``- {KEY: value}`` lines of the meta, written here when every value is a bool,
    int, float or text of :data:`_PLAIN`'s characters (the cards of survey light curves);
    None otherwise. Such text is written plain, or single-quoted where YAML would read it
    as something else (``'100001375'``, ``'2024-01-01'``, ``'yes'``), as PyYAML does."""
    out = []
    for key, value in meta.items():
        if type(value) is bool:
            text = "true" if value else "false"
        elif type(value) is int:
            text = str(value)
        elif type(value) is float:
            text = _float_text(value)
        elif _PLAIN.match(value):
            text = value if _resolves_to_str(value) else f"'{value}'"
        else:
            return None
        line = f"- {{{key}: {text}}}"
        if len(line) > _WIDTH:
            return None
        out.append(line)
    return out


def _float_text(value: float) -> str:
    """A float as astropy's YAML dumper represents it (``AstropyDumper.represent_float``)."""
    text = repr(value)
    if "." in text and "e" not in text:  # finite, written without an exponent: as it is
        return text
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = str(value).lower()
    return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text


@lru_cache(maxsize=4096)
def _resolves_to_str(text: str) -> bool:
    return yaml.resolver.Resolver().resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG
