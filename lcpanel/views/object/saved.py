"""The object page's saved periods (:class:`SavedPeriodsView`): the periods anyone saved
for this object and the reviewer's adopted one, folded at the object's shared epoch
(:mod:`lcpanel.core.objects.savedperiods`: stored in the basedir, visible to everyone
who can see the object). "Save period" keeps the fold's period with an optional label
(its epoch becomes the shared one while there is none); staff may make the fold's epoch
the shared epoch. Each write spends one request of the visitor's budget, like the
review form's."""

from __future__ import annotations

from functools import partial

import panel as pn

from ...core.objects import savedperiods
from ..theme import esc, styled
from .context import ObjectContext
from .chips import Chip, ChipRow
from .style import fmt_period, object_html, who


class SavedPeriodsView:
    """``fold`` is the page's :class:`~lcpanel.views.object.fold.FoldPanel`; ``write(action,
    pane)`` runs a write after spending the visitor's budget (the review form's)."""

    def __init__(self, ctx: ObjectContext, *, fold, write):
        self.ctx, self.fold, self.write = ctx, fold, write
        self.save_label = styled(pn.widgets.TextInput(label="Label (optional)", max_length=savedperiods.MAX_LABEL,
                                                      placeholder="e.g. secondary eclipse", width=220,
                                                      css_classes=["lcp-save-label"]))
        self.save_btn = styled(pn.widgets.Button(label="Save period", color="primary", width=120,
                                                 margin=(23, 5, 5, 5), css_classes=["lcp-save-period"],
                                                 description="keep the fold's period for everyone who sees this "
                                                             "object"))
        self.epoch_btn = styled(pn.widgets.Button(label="Make this epoch the shared one", width=230,
                                                  margin=(23, 5, 5, 5), css_classes=["lcp-share-epoch"],
                                                  visible=ctx.may_edit_varinfo))
        self.save_btn.on_click(self._save)
        self.epoch_btn.on_click(self._share_epoch)
        self.message = object_html("", css_classes=["lcp-saved-message"], margin=(0, 10))
        self.epoch_pane = object_html("", css_classes=["lcp-shared-epoch"], margin=(0, 10))
        self.saved_box = ChipRow(sizing_mode="stretch_width", css_classes=["lcp-saved-periods"], margin=(0, 10))
        self.data = {"epoch": None, "periods": []}
        self.render()

    def _catalog(self):
        return self.ctx.rec.catalog

    def render(self) -> None:
        try:
            self.data = savedperiods.object_periods(self.ctx.app.basedir, self._catalog(), self.ctx.objectid,
                                                    magcol=self.ctx.rec.varprefix.rstrip("_") or None)
        except Exception as exc:  # an unreadable store: say so, keep the page
            self.message.object = f'<p class="lcp-error-text">Saved periods cannot be read: {esc(exc)}</p>'
            return
        epoch = self.data["epoch"]
        if epoch is None:
            self.epoch_pane.object = ('<p class="lcp-muted" style="margin:0">No shared epoch yet: saved periods fold '
                                      "at minimum light; the first save with a fold sets it.</p>")
        else:
            by = {"adopted": "the reviewer's adopted epoch"}.get(epoch["source"]) or (
                f'set by {who(epoch["author"], self.ctx.viewer)}')
            self.epoch_pane.object = (f'<p style="margin:0">Shared epoch <span class="lcp-mono lcp-shared-epoch-value">'
                                      f'{epoch["epoch"]:.6f}</span> <span class="lcp-muted">({by})</span></p>')
        chips = []
        for p in self.data["periods"]:
            label = f'{p["period"]:.8g} d'
            if p["adopted"]:
                label += " · adopted"
            elif p["label"]:
                label += f' · {p["label"][:24]}'
            author = "a reviewer's adopted period" if p["adopted"] else f'saved by {p["author"]} {p["time"][:16]} UTC'
            chips.append(Chip(label, "lcp-saved-period", f'fold at {fmt_period(p["period"])} d; {author}',
                              partial(self._fold, p["period"])))
            if savedperiods.can_delete(self.ctx.viewer, p):
                chips.append(Chip("×", "lcp-delete-period", "delete this saved period",
                                  partial(self._delete, p["period_id"])))
        self.saved_box.show(chips, empty="none yet")

    def _fold(self, period: float) -> None:
        epoch = self.data["epoch"]["epoch"] if self.data["epoch"] else None
        self.fold.fold_at(period, epoch)

    def _save(self, _event=None) -> None:
        fold = self.fold.current_fold
        if fold is None:
            self.message.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        label = self.save_label.value
        magcol = self.ctx.rec.magcol
        done = self.write(lambda: savedperiods.save_period(self.ctx.app.basedir, self._catalog(), self.ctx.objectid,
                                                           self.ctx.viewer, fold[0], label=label, magcol=magcol,
                                                           epoch=fold[1]), self.message)
        if done:
            self.message.object = (f'<p class="lcp-help" style="margin:0">Saved P = {fmt_period(fold[0])} d.</p>')
            self.save_label.value = ""
            self.render()

    def _share_epoch(self, _event=None) -> None:
        fold = self.fold.current_fold
        if fold is None or fold[1] is None:
            self.message.object = '<p class="lcp-error-text">Fold at a period first.</p>'
            return
        if self.write(lambda: savedperiods.set_epoch(self.ctx.app.basedir, self._catalog(), self.ctx.objectid,
                                                     self.ctx.viewer, fold[1]), self.message):
            self.message.object = ""
            self.render()

    def _delete(self, period_id: int) -> None:
        if self.write(lambda: savedperiods.delete_period(self.ctx.app.basedir, self._catalog(), self.ctx.objectid,
                                                         self.ctx.viewer, period_id), self.message):
            self.message.object = ""
            self.render()

    def panel(self) -> pn.Column:
        return pn.Column(
            object_html('<p class="lcp-small-title">Saved periods (everyone who sees this object sees them)</p>',
                        margin=(6, 10, 0, 10)),
            self.epoch_pane, self.saved_box,
            pn.FlexBox(self.save_label, self.save_btn, self.epoch_btn, flex_wrap="wrap", gap="0", margin=(0, 0)),
            self.message, sizing_mode="stretch_width", css_classes=["lcp-saved"])
