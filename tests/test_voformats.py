"""Every VO output format holds the same values: VOTable BINARY2 and BINARY read back by
astropy equal TABLEDATA (nulls, NaN, unicode, 64-bit integers, booleans), and CSV, TSV,
JSON, FITS and HTML carry the same cells; RESPONSEFORMAT names resolve as TAP lists them."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from astropy.io.votable import parse as parse_votable
from astropy.table import Table

from lcpanel.core.vo.voformats import FORMATS, find_format, render
from lcpanel.core.vo.votable import VOField

FIELDS = [VOField("objectid", "char", "*", ucd="meta.id;meta.main", description="an <id> & more"),
          VOField("name", "unicodeChar", "*"),
          VOField("ra", "double", unit="deg"),
          VOField("mag", "float", unit="mag"),
          VOField("ndet", "long"),
          VOField("flag", "int"),
          VOField("small", "short"),
          VOField("isvar", "boolean")]
ROWS = [("HAT-1", "Ωmega ☃", 10.5, 12.25, 2 ** 40, 7, -3, True),
        ("HAT-2", None, None, float("nan"), None, None, None, None),
        ("<b>&\"'", "𝔘nicode outside BMP", 359.999999999, -1.5, -(2 ** 40), 0, 0, False),
        ("", "", 0.0, 0.0, 0, -1, 32767, False)]


def votable_table(data: bytes) -> Table:
    return parse_votable(io.BytesIO(data), verify="exception").get_first_table().to_table()


def cells(table: Table) -> list[list]:
    out = []
    for row in table:
        vals = []
        for name in table.colnames:
            v = row[name]
            if np.ma.is_masked(v):
                vals.append(None)
            elif isinstance(v, (float, np.floating)) and math.isnan(v):
                vals.append(None)
            else:
                vals.append(v.item() if hasattr(v, "item") else v)
        out.append(vals)
    return out


@pytest.mark.parametrize("key", ["votable/b2", "votable/b"])
def test_binary_serializations_equal_tabledata(key):
    td = cells(votable_table(render(find_format("votable/td"), FIELDS, ROWS)))
    other = cells(votable_table(render(find_format(key), FIELDS, ROWS)))
    assert td[0][:2] == ["HAT-1", "Ωmega ☃"] and td[0][4] == 2 ** 40
    if key == "votable/b":  # BINARY has no null flags: strings come back empty, booleans/ints as declared
        assert other[0] == td[0] and other[2][2:] == td[2][2:] and other[1][4] is None and other[1][5] is None
    else:
        assert other == td
    assert other[1][3] is None and td[1][2] is None  # NaN and null float


def test_default_and_aliases():
    assert find_format(None).key == "votable/b2" and find_format("votable").key == "votable/b2"
    assert find_format("application/x-votable+xml").key == "votable/b2"
    assert find_format("application/x-votable+xml; serialization=TABLEDATA").key == "votable/td"
    assert find_format("TEXT/CSV").key == "csv" and find_format("text/tab-separated-values").key == "tsv"
    assert find_format("application/fits").key == "fits" and find_format("text/html").key == "html"
    assert find_format("image/png") is None
    assert len({f.mime for f in FORMATS}) == len(FORMATS) == 8


def test_text_formats_carry_the_same_cells():
    td = cells(votable_table(render(find_format("votable/td"), FIELDS, ROWS)))
    rows = list(csv.reader(io.StringIO(render(find_format("csv"), FIELDS, ROWS).decode())))
    assert rows[0] == [f.name for f in FIELDS] and rows[1][0] == "HAT-1" and float(rows[1][2]) == 10.5
    assert rows[3][0] == "<b>&\"'"
    tsv = render(find_format("tsv"), FIELDS, ROWS).decode().splitlines()
    assert tsv[0].split("\t") == [f.name for f in FIELDS] and tsv[1].split("\t")[4] == str(2 ** 40)
    doc = json.loads(render(find_format("json"), FIELDS, ROWS))
    assert [m["name"] for m in doc["metadata"]] == [f.name for f in FIELDS]
    assert doc["data"][0][:5] == td[0][:5] and doc["data"][1][3] is None and doc["overflow"] is False
    fits = Table.read(io.BytesIO(render(find_format("fits"), FIELDS, ROWS)), format="fits")
    assert list(fits["objectid"][:3]) == ["HAT-1", "HAT-2", "<b>&\"'"] and fits["ra"].unit == "deg"
    assert fits["ndet"][0] == 2 ** 40 and np.ma.is_masked(fits["ndet"][1])


def test_html_escapes_every_value():
    page = render(find_format("html"), FIELDS, ROWS, description="<script>alert(1)</script>").decode()
    assert "<script>" not in page and "&lt;b&gt;&amp;&quot;&#x27;" in page and "&lt;script&gt;" in page
