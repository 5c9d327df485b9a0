"""The overview page: every collection with its description, citation and size."""

from __future__ import annotations

import html

import panel as pn
import param

from ..core.basedir import Basedir

ACCENT = "#1f5f8b"


class Overview(pn.viewable.Viewer):
    app = param.Parameter(doc="the lcpanel App")

    def _collection_card(self, info) -> pn.viewable.Viewable:
        text = (
            f"<h3 style='margin:0'>{html.escape(info.name)}</h3>"
            f"<p style='margin:4px 0;color:#555'>{html.escape(info.collection_id)} · {info.kind} · "
            f"{info.nobjects:,} objects · project {html.escape(info.project or '—')} · "
            f"data release {info.datarelease}</p>"
            f"<p>{html.escape(info.description)}</p>"
            f"<p style='color:#555'><b>Cite:</b> {html.escape(info.citation or '—')}</p>"
        )
        return pn.pane.HTML(text, sizing_mode="stretch_width", styles={"border-left": f"4px solid {ACCENT}",
                                                                         "padding": "4px 12px"})

    def __panel__(self):
        infos = Basedir(self.app.basedir).collections()
        if not infos:
            body = [pn.pane.Markdown("No collections yet. Add one with `lcpanel add-collection`.")]
        else:
            body = [self._collection_card(i) for i in infos]
        return pn.Column(pn.pane.Markdown("## Collections"), *body, sizing_mode="stretch_width")

    def servable_page(self):
        return pn.template.FastListTemplate(title="lcpanel", main=[self], accent=ACCENT,
                                           header_background=ACCENT)
