"""``/search/types`` (lcpanel.views.search_types_page): every search type as a readable
page, from the same schemas as ``GET /api/search/types``, with plugin text escaped."""

from __future__ import annotations

import html
import json
import re


def test_page_lists_every_type_with_its_parameters_and_example(app_factory, basedir):
    from lcpanel.views.search_types_page import render

    schemas = [b.schema() for b in app_factory(basedir.path).search_backends]
    page = render(schemas)
    assert page.startswith("<!doctype html>") and 'name="viewport"' in page
    for s in schemas:
        section = re.search(rf'<section id="{re.escape(s["type"])}">(.*?)</section>', page, re.S).group(1)
        assert html.escape(s["title"]) in section
        for name in s["params"]:
            assert f"<code>{html.escape(name)}</code>" in section
        example = json.loads(html.unescape(re.search(r"<pre>(.*?)</pre>", section, re.S).group(1)))
        assert example == {"type": s["type"], "params": s.get("example") or {}}


def test_plugin_text_is_escaped():
    from lcpanel.views.search_types_page import render

    evil = "<script>alert(1)</script>"
    page = render([{"type": evil, "title": evil, "description": evil, "example": {"x": evil},
                    "params": {evil: {"type": evil, "description": evil, "default": evil}},
                    "extra_columns": [evil]}])
    assert "<script>" not in page and "&lt;script&gt;" in page
