"""The object page's variability features (:class:`FeaturesView`): astrobase's
non-periodic features of the shown magnitude column's light curve (the checkplot's
series), computed when asked (:func:`lcpanel.core.objects.lcanalysis.variability_features`)."""

from __future__ import annotations

import panel as pn

from ...core.objects.lcanalysis import FEATURES, variability_features
from ...core.offload import offloader
from ...errors import UserError
from ..theme import esc, section, styled
from .context import ObjectContext
from .style import object_html


class FeaturesView:
    def __init__(self, ctx: ObjectContext):
        self.ctx = ctx
        self.button = styled(pn.widgets.Button(label="Compute variability features", width=240,
                                               css_classes=["lcp-features-compute"]))
        self.button.on_click(self._compute)
        self.table = object_html("", css_classes=["lcp-features"], margin=(0, 10))

    async def _compute(self, _event=None) -> None:
        """On the server's worker threads, like the fold's fit: the first call in a process
        imports astrobase's feature code (~0.8 s), which would hold every other visitor of
        the process on the event loop."""
        self.button.disabled = True
        try:
            feats = await offloader(self.ctx.app).run(variability_features, self.ctx.times, self.ctx.mags,
                                                      self.ctx.errs)
        except UserError as exc:
            self.table.object = f'<p class="lcp-error-text">{esc(exc.message)}</p>'
            return
        finally:
            self.button.disabled = False
        rows = "".join(
            f'<tr><td>{esc(words)}</td><td class="lcp-mono" data-feature="{esc(key)}">'
            f'{"—" if feats[key] is None else (f"{feats[key]:,.0f}" if key == "ndet" else f"{feats[key]:.5g}")}'
            f'</td><td class="lcp-muted">{esc(unit)}</td></tr>'
            for key, words, unit in FEATURES)
        self.table.object = (f'<p class="lcp-muted" style="margin:0 0 4px 0">of the checkplot\'s '
                             f'<span class="lcp-mono">{esc(self.ctx.magcol)}</span> series (astrobase '
                             f'varfeatures)</p><div style="overflow-x:auto"><table class="lcp-table lcp-features-table">'
                             f'<tr><th>feature</th><th>value</th><th>unit</th></tr>{rows}</table></div>')
        self.button.label = "Compute again"

    def panel(self):
        return section("Variability features", pn.Row(self.button, margin=(0, 10)), self.table,
                       subtitle="astrobase's non-periodic variability features of the light curve shown, "
                                "computed when you ask (a few seconds for ~10,000 points).",
                       css_classes=["lcp-features-section"])
