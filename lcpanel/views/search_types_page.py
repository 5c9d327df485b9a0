"""``/search/types``: the search types as a page people read (the header's "Search types"
link), built from the same schemas ``GET /api/search/types`` answers in JSON.

Plain HTML from the server, no Bokeh session: each type's title, ``type`` name,
description, parameters (name, JSON type, description, default) and a ready
``POST /api/search`` body. Every text is escaped: plugins write these schemas.
"""

from __future__ import annotations

import json

from tornado.web import RequestHandler

from ..jsonapi import APIMixin
from .escaping import esc
from .colours import ACCENT, MUTED

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Search types · lcpanel</title>
<style>
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f6f8; color: #1d2a33; }}
header {{ background: {accent}; color: #fff; padding: 12px 20px; display: flex; flex-wrap: wrap; gap: 6px 20px;
          align-items: baseline; }}
header a {{ color: #fff; text-decoration: none; }} header .site {{ font-size: 20px; }}
main {{ max-width: 1000px; margin: 0 auto; padding: 12px; }}
h1 {{ font-size: 1.5em; margin: 8px 0 4px; }} .sub {{ color: {muted}; margin: 0 0 12px; }}
section {{ background: #fff; border: 1px solid #dde3e8; border-radius: 10px; padding: 12px 16px; margin: 12px 0; }}
h2 {{ font-size: 1.2em; margin: 0; }} h2 code {{ font-size: 0.8em; color: {muted}; font-weight: normal; }}
p {{ line-height: 1.45; overflow-wrap: anywhere; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.92em; }}
th {{ text-align: left; color: {muted}; border-bottom: 2px solid #dde3e8; padding: 4px 6px; }}
td {{ border-bottom: 1px solid #edf0f2; padding: 5px 6px; vertical-align: top; overflow-wrap: anywhere; }}
.scroll {{ overflow-x: auto; }}
pre {{ background: #f3f5f7; border-radius: 6px; padding: 8px; overflow-x: auto; font-size: 0.85em; }}
a {{ color: {accent}; }}
</style></head><body><header><a class="site" href="/">lcpanel</a><a href="/api/search/types">as JSON</a>
<a href="/account">Account</a></header><main>
<h1>Search types</h1><p class="sub">Each search runs from the form on the <a href="/">front page</a> or as
<code>POST /api/search</code> with a JSON body like the examples below; its result is saved as a dataset.</p>
{sections}</main></body></html>"""


def _param_rows(params: dict) -> str:
    rows = []
    for name, spec in params.items():
        kind = spec.get("type", "")
        if kind == "array" and isinstance(spec.get("items"), dict):
            kind = f"array of {spec['items'].get('type', '')}"
        default = json.dumps(spec["default"]) if "default" in spec else ""
        rows.append(f"<tr><td><code>{esc(name)}</code></td><td>{esc(kind)}</td>"
                    f"<td>{esc(spec.get('description', ''))}</td><td><code>{esc(default)}</code></td></tr>")
    return "".join(rows)


def render(schemas: list[dict]) -> str:
    """The page for these search-type schemas (``SearchBackend.schema()`` of each)."""
    sections = []
    for s in schemas:
        example = {"type": s.get("type"), "params": s.get("example") or {}}
        params = s.get("params") or {}
        table = (f'<div class="scroll"><table><tr><th>parameter</th><th>type</th><th>meaning</th><th>default</th></tr>'
                 f"{_param_rows(params)}</table></div>" if params else "<p>No parameters.</p>")
        extra = s.get("extra_columns") or []
        extra_html = (f"<p>Extra result columns: {', '.join(f'<code>{esc(c)}</code>' for c in extra)}</p>"
                      if extra else "")
        sections.append(f'<section id="{esc(s.get("type", ""))}"><h2>{esc(s.get("title", ""))} '
                        f'<code>{esc(s.get("type", ""))}</code></h2><p>{esc(s.get("description", ""))}</p>{table}'
                        f"{extra_html}<pre>{esc(json.dumps(example, indent=1))}</pre></section>")
    return PAGE.format(accent=ACCENT, muted=MUTED, sections="".join(sections))


class SearchTypesPage(APIMixin, RequestHandler):
    def get(self):
        from ..core.catalogs.basedir import Basedir
        from .overview import served_example

        infos = Basedir(self.app.basedir).collections() if self.app.basedir is not None else []
        # the examples name what this server serves (its collections' tables and ids)
        schemas = [{**b.schema(), "example": served_example(self.app, infos, b)} for b in self.app.search_backends]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render(schemas))
