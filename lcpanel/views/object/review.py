"""The object page's review form (:class:`ReviewForm`): objectisvar, varperiod, varepoch
and vartags (staff and admins: :func:`lcpanel.core.objects.reviews.can_edit_varinfo`) and
a new comment (everyone), saved with :mod:`lcpanel.core.objects.reviews` in the basedir
(author: the visitor's identity, the same cookie identity as the JSON API); the
comments, each with its author and time (a delete button on one's own, on all for
admins), and the object's edit history. Each save or delete spends one request of the
visitor's budget (:mod:`lcpanel.views.budget`), like an HTTP request; a spent budget
shows a message and writes nothing. The survey's checkplot is never written."""

from __future__ import annotations

import logging

import panel as pn

from ...core.objects import reviews
from ...core.objects.annotations import OBJECTISVAR, history, validate_changes, validate_comment
from ...errors import UserError
from ..budget import spend
from ..escaping import md
from ...visitor import login_url
from ..theme import esc, section, styled
from .context import ObjectContext
from .style import NumberField, object_html, value_of, value_text, who

log = logging.getLogger(__name__)


class ReviewForm:
    """The "Review" section. ``on_saved()`` is called after variability info changed
    (the page re-renders what shows it)."""

    def __init__(self, ctx: ObjectContext, *, on_saved):
        self.ctx, self.on_saved = ctx, on_saved
        self._build()

    def _build(self) -> None:
        v = self.ctx.values
        options = {label: code for code, label in OBJECTISVAR.items()}
        isvar = v.get("objectisvar") if v.get("objectisvar") in OBJECTISVAR else 0
        lock = not self.ctx.may_edit_varinfo
        self.f_isvar = styled(pn.widgets.Select(label="Variability", options=options, value=isvar, width=170,
                                                disabled=lock, css_classes=["lcp-edit-isvar"]))
        self.f_period = styled(NumberField(label="Period [d]", value=v.get("varperiod"), width=170,
                                                     step=1e-4, disabled=lock, css_classes=["lcp-edit-period"]))
        self.f_epoch = styled(NumberField(label="Epoch", value=v.get("varepoch"), width=190, step=1e-3,
                                                    disabled=lock, css_classes=["lcp-edit-epoch"]))
        self.f_tags = styled(pn.widgets.TextInput(label="Tags (comma-separated)", value=v.get("vartags") or "",
                                                  max_length=500, sizing_mode="stretch_width", disabled=lock,
                                                  placeholder="e.g. RR Lyrae, RRab", css_classes=["lcp-edit-tags"]))
        max_chars = self.ctx.app.config.reviews.max_comment_chars
        self.f_comments = styled(pn.widgets.TextAreaInput(
            label="Add a comment", value="", max_length=max_chars, height=90, sizing_mode="stretch_width",
            placeholder="kept with your name and the time; everyone sees it", css_classes=["lcp-edit-comments"]))
        self.f_save = styled(pn.widgets.Button(label="Save", color="primary", width=100,
                                               css_classes=["lcp-save-review"]))
        self.f_save.on_click(self._save_form)
        self.review_msg = pn.pane.Alert("", visible=False, alert_type="info", sizing_mode="stretch_width",
                                        css_classes=["lcp-review-message"], margin=(4, 10))
        self.comment_list = pn.Column(sizing_mode="stretch_width", css_classes=["lcp-comment-list"], margin=(0, 10))
        self.history_pane = object_html("", css_classes=["lcp-history"], margin=(0, 10))
        self._render_comments()
        self._render_history()

    def panel(self):
        here = self.ctx.here()
        who = ("You may change the variability info (staff) and comment." if self.ctx.may_edit_varinfo else
               "Only the collection's staff may change the variability info (<a href=\""
               f"{esc(login_url(here))}\">log in</a>); "
               "everyone may comment.")
        varinfo = pn.FlexBox(self.f_isvar, self.f_period, self.f_epoch, flex_wrap="wrap", gap="0",
                             sizing_mode="stretch_width", margin=0)
        form = pn.Column(varinfo, self.f_tags, self.f_comments, pn.Row(self.f_save), self.review_msg,
                         sizing_mode="stretch_width", styles={"flex": "1 1 460px"}, margin=0)
        hist = pn.Column(object_html('<p class="lcp-small-title">Comments</p>', margin=(0, 10)), self.comment_list,
                         object_html('<p class="lcp-small-title">History</p>', margin=(0, 10)),
                         self.history_pane, sizing_mode="stretch_width", styles={"flex": "1 1 460px"}, margin=0)
        return section("Review", pn.FlexBox(form, hist, gap="16px", sizing_mode="stretch_width"),
                       subtitle=who + " Reviews are kept by this server with who made them and when (searches "
                                "see them at once); the survey's own files are never changed.",
                       css_classes=["lcp-review"])

    def _render_comments(self) -> None:
        items = []
        for c in reviews.comments(self.ctx.app.basedir, self.ctx.collection, self.ctx.objectid):
            edited = " · edited" if c["edited"] else ""
            text = (f'<div class="lcp-comment-item"><p class="lcp-muted" style="margin:0">'
                    f'<b>{who(c["author"], self.ctx.viewer)}</b> · '
                    f'{esc(c["time"][:16].replace("T", " "))} UTC{edited}</p>'
                    f'<p class="lcp-comments-text">{esc(c["text"])}</p></div>')
            row = [object_html(text, sizing_mode="stretch_width")]
            if reviews.can_change_comment(self.ctx.viewer, c):
                btn = pn.widgets.Button(label="delete", color="light", width=70, margin=(2, 3),
                                        css_classes=["lcp-delete-comment"])
                btn.on_click(lambda _ev, cid=c["comment_id"]: self._delete_comment(cid))
                row.append(btn)
            items.append(pn.Row(*row, sizing_mode="stretch_width", margin=0))
        self.comment_list.objects = items or [object_html('<p class="lcp-muted">No comments yet.</p>')]

    def _render_history(self) -> None:
        rows = history(self.ctx.app.basedir, self.ctx.collection, self.ctx.objectid, limit=200)
        if not rows:
            self.history_pane.object = '<p class="lcp-muted">No edits yet.</p>'
            return

        def change(r) -> str:
            if r["field"] != "comment":
                return f'{value_text(r["field"], r["old_value"])} → {value_text(r["field"], r["new_value"])}'
            if r["old_value"] is None:
                return "added: " + value_text("comment", r["new_value"])
            if r["new_value"] is None:
                return "deleted: " + value_text("comment", r["old_value"])
            return f'{value_text("comment", r["old_value"])} → {value_text("comment", r["new_value"])}'

        body = "".join(
            f'<tr><td class="lcp-mono" style="white-space:nowrap">{esc(r["time"][:19].replace("T", " "))}</td>'
            f'<td>{who(r["author"], self.ctx.viewer)}</td><td>{esc(r["field"])}</td><td>{change(r)}</td></tr>'
            for r in reversed(rows))
        self.history_pane.object = (
            '<div style="overflow-x:auto"><table class="lcp-table"><tr><th>when (UTC)</th><th>who</th>'
            f'<th>field</th><th>change</th></tr>{body}</table></div>')

    def _form_changes(self) -> dict:
        if not self.ctx.may_edit_varinfo:
            return {}
        wanted = {"objectisvar": self.f_isvar.value, "varperiod": value_of(self.f_period),
                  "varepoch": value_of(self.f_epoch), "vartags": self.f_tags.value}
        new = validate_changes(wanted)  # UserError on a bad value: nothing is saved
        return {f: val for f, val in new.items() if val != self.ctx.values.get(f)}

    def _save_form(self, _event=None) -> None:
        text = (self.f_comments.value or "").strip()
        try:
            changes = self._form_changes()
            if text:
                validate_comment(text, self.ctx.app.config.reviews.max_comment_chars)
        except UserError as exc:
            self._say(md(exc.message), "danger")
            return
        if not changes and not text:
            self._say("Nothing changed.", "info")
            return
        if changes and self.save(changes, None) is None:
            return
        if text:
            if not self.write(lambda: reviews.add_comment(self.ctx.app.basedir, self.ctx.rec.info, self.ctx.objectid,
                                                           self.ctx.viewer, text, settings=self.ctx.app.config.reviews),
                               None, spent=bool(changes)):
                return
            self.f_comments.value = ""
            self._render_comments()
            self._render_history()
        self._say("Saved: " + ", ".join([*changes, *(["comment"] if text else [])]), "success")

    def _delete_comment(self, comment_id: int) -> None:
        if self.write(lambda: reviews.delete_comment(self.ctx.app.basedir, self.ctx.rec.info, self.ctx.objectid, comment_id,
                                                      self.ctx.viewer), None):
            self._say("Comment deleted.", "success")
            self._render_comments()
            self._render_history()

    def write(self, action, message_pane, *, spent: bool = False):
        """Run a write ``action`` after taking one request from the visitor's budget (the
        same as the JSON API's; ``spent``: already taken for this click); its result, or
        None after showing why it did not happen."""

        def fail(text: str) -> None:
            if message_pane is None:
                self._say(md(text), "danger")
            else:
                message_pane.object = f'<p class="lcp-error-text">{esc(text)}</p>'

        refused = None if spent else spend(self.ctx.app, self.ctx.viewer)
        if refused is not None:
            fail(refused)
            return None
        try:
            return action() or True
        except UserError as exc:
            fail(exc.message)
        except Exception:  # a bug or a broken file: logged, never shown as a traceback
            log.exception("saving %s/%s failed", self.ctx.collection, self.ctx.objectid)
            fail("Saving failed; the error is in the server's log.")
        return None

    def save(self, changes: dict, message_pane) -> dict | None:
        """Save variability info ``changes`` and refresh the page's values; the edit's
        result, or None after showing why it failed. The values this page showed are
        the ``expect``-ed ones, so a concurrent edit is a Conflict, not lost."""
        expect = {f: self.ctx.values.get(f) for f in changes
                  if f in self.ctx.rec.varcols and not (f == "objectisvar" and self.ctx.values.get(f) is None)}
        magcol = self.ctx.rec.varprefix.rstrip("_") or None
        result = self.write(lambda: reviews.set_varinfo(self.ctx.app.basedir, self.ctx.rec.info, self.ctx.objectid, self.ctx.viewer,
                                                         changes, expect=expect or None, magcol=magcol), message_pane)
        if result is None:
            return None
        self._refresh()
        return result

    def _refresh(self) -> None:
        """Re-read the edited values and show them everywhere."""
        self.ctx.refresh_values()
        v = self.ctx.values
        self.f_isvar.value = v.get("objectisvar") if v.get("objectisvar") in OBJECTISVAR else 0
        self.f_period.value = v.get("varperiod")
        self.f_epoch.value = v.get("varepoch")
        self.f_tags.value = v.get("vartags") or ""
        self._render_history()
        self.on_saved()

    def _say(self, text: str, kind: str = "info") -> None:
        self.review_msg.object = text
        self.review_msg.alert_type = kind
        self.review_msg.visible = True

