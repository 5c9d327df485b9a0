"""One look for every lcpanel page, and browser navigation.

Every page is built with :func:`page` (``page(title, main, app)``): a
``BootstrapTemplate`` with "lcpanel" (linking home), the page title, the accent colour
and the header links, plus the few invisible helpers a page needs. Bootstrap rather
than Fast: Panel's Fast design loads its font from Google's CDN, which leaks visitors'
addresses and can stall the first render on an observatory network without internet;
everything Bootstrap needs is served by the server itself.

Panel renders components in shadow DOM, so page-wide CSS does not reach them: HTML
panes get :data:`STYLESHEET` (see :func:`html`, :func:`section`) and widgets get
:data:`WIDGET_CSS` (see :func:`styled`) through ``stylesheets=[...]``.

The visitor
-----------
Who is looking at a page (:func:`session_viewer`), their client address and log-out token
come from :mod:`lcpanel.visitor`, the same identity as the JSON API's; this module only
shows it (the header's account links).

Navigation
----------
:func:`navigate` sends the browser to another URL (``/datasets/<id>`` after a search)
through a hidden widget that :func:`page` adds, whose change runs
``window.location.assign`` (``pn.state.location`` cannot do this reliably: with
``reload=False`` it only pushes history state, and turning ``reload`` on from Python
reloads the current page first). Outside a page built by :func:`page` it can only change
the address bar.
"""

from __future__ import annotations

import logging

import panel as pn
from panel.io.resources import LOCAL_DIST
from panel.layout import Column, FlexBox, Row
from panel.theme import Bootstrap
from panel.theme.base import Inherit, _stylesheet_cache

from ..visitor import account_links, end_with_login, session_state, session_viewer
from .colours import ACCENT, ACCENT_DARK, ACCENT_LIGHT, DANGER, MUTED, PALETTE  # noqa: F401  (theme's names)
from .escaping import LOGIN_WITH_NEXT, MARK_LEAVING, esc, handler
from .stylesheets import PREFIX, shared, stylesheet, url_of

log = logging.getLogger(__name__)

APP_NAME = "lcpanel"

#: below this window width (px) pages take their one-column phone layout
NARROW_PX = 700

pn.config.loading_indicator = True
pn.config.loading_spinner = "arc"
pn.config.loading_color = ACCENT

FONT = ("-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
        "'Noto Sans', sans-serif")

#: the CSS of HTML panes and custom-styled widgets (shadow DOM)
PANE_CSS = f"""
:host {{ --lcp-accent: {ACCENT}; --lcp-muted: {MUTED}; font-family: {FONT}; font-size: 14px; }}
a {{ color: {ACCENT}; text-decoration: none; }}
a:hover {{ text-decoration: underline; }}
.lcp-intro h1 {{ font-size: 1.55em; font-weight: 600; margin: 0 0 4px 0; color: #1d2a33; }}
.lcp-intro p {{ margin: 0; color: {MUTED}; font-size: 1.02em; line-height: 1.45; }}
.lcp-section-title {{ font-size: 1.25em; font-weight: 600; color: #1d2a33; margin: 0; }}
.lcp-section-sub {{ color: {MUTED}; font-size: 0.95em; margin: 2px 0 0 0; }}
.lcp-muted {{ color: {MUTED}; }}
.lcp-help {{ color: {MUTED}; font-size: 0.95em; line-height: 1.45; margin: 0; }}
.lcp-cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 14px; }}
.lcp-card {{ background: #fff; border: 1px solid #dde3e8; border-radius: 8px; padding: 14px 16px 12px 16px;
             border-top: 4px solid var(--swatch, {ACCENT}); display: flex; flex-direction: column; gap: 6px;
             box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04); }}
.lcp-card h3 {{ margin: 0; font-size: 1.08em; font-weight: 600; color: #1d2a33; }}
.lcp-card .lcp-id {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.85em;
                     color: {MUTED}; }}
.lcp-card .lcp-desc {{ margin: 0; line-height: 1.42; color: #29343c; font-size: 0.94em; }}
.lcp-card .lcp-cite {{ margin: 0; font-size: 0.86em; color: {MUTED}; line-height: 1.35; }}
.lcp-facts {{ display: grid; grid-template-columns: auto 1fr; column-gap: 12px; row-gap: 2px;
              font-size: 0.9em; margin: 2px 0; }}
.lcp-facts dt {{ color: {MUTED}; }}
.lcp-facts dd {{ margin: 0; color: #1d2a33; }}
.lcp-badges {{ display: flex; flex-wrap: wrap; gap: 6px; }}
.lcp-badge {{ display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 0.78em;
              background: {ACCENT_LIGHT}; color: {ACCENT_DARK}; border: 1px solid #c9dbe8; white-space: nowrap; }}
.lcp-badge.off {{ background: #f3f4f6; color: #7a848c; border-color: #e1e4e8; }}
.lcp-badge.mine {{ background: #fff4e0; color: #8a5300; border-color: #f1d7a6; }}
.lcp-badge.public {{ background: #e6f4ea; color: #1e6b35; border-color: #bfe0c9; }}
.lcp-badge.private {{ background: #fde8e7; color: #8c1d18; border-color: #f4c7c3; }}
.lcp-empty {{ padding: 18px; border: 1px dashed #c3ccd3; border-radius: 8px; color: {MUTED}; background: #fafbfc; }}
.lcp-empty code {{ background: #eef1f4; padding: 1px 5px; border-radius: 4px; }}
table.lcp-table {{ width: 100%; border-collapse: collapse; font-size: 0.92em; }}
table.lcp-table th {{ text-align: left; font-weight: 600; color: {MUTED}; border-bottom: 2px solid #dde3e8;
                      padding: 6px 8px; white-space: nowrap; }}
table.lcp-table td {{ border-bottom: 1px solid #edf0f2; padding: 7px 8px; vertical-align: top; }}
table.lcp-table tr:hover td {{ background: #f6f9fb; }}
table.lcp-table td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.lcp-table th.num {{ text-align: right; }}
table.lcp-table .lcp-name {{ font-weight: 500; }}
.lcp-error-text {{ color: {DANGER}; font-size: 0.9em; margin: 0; }}
.lcp-field-error, :host(.lcp-field-error) {{ color: {DANGER}; }}
.lcp-nowrap {{ white-space: nowrap; }}
@media (max-width: {NARROW_PX}px) {{
  table.lcp-table a, table.lcp-table code {{ overflow-wrap: anywhere; }}
  :host > div {{ max-width: 100% !important; min-width: 0 !important; }}  /* a fixed width set inline */
  .lcp-cards {{ grid-template-columns: minmax(0, 1fr); }}
  .lcp-facts {{ grid-template-columns: auto minmax(0, 1fr); }}
  .lcp-facts dd, .lcp-facts code {{ overflow-wrap: anywhere; }}
  .lcp-object-head {{ grid-template-columns: minmax(0, 1fr) !important; }}
  .lcp-object-head figure {{ justify-self: start; }}
  .lcp-object-head .lcp-facts {{ grid-template-columns: 110px minmax(0, 1fr) !important; }}
}}
"""
#: the shared stylesheet of HTML panes (:data:`PANE_CSS` as a file)
STYLESHEET = stylesheet("panes", PANE_CSS)

#: the look of inputs and buttons (added to each widget's stylesheets: shadow DOM again)
WIDGET_CSS = stylesheet("widgets", f"""
:host {{ --bs-primary: {ACCENT}; --bs-primary-rgb: 31, 95, 139; --panel-primary-color: {ACCENT}; }}
.bk-input, select.bk-input, textarea.bk-input, .choices__inner {{
  background-color: #ffffff !important; border: 1px solid #b8c3cc; border-radius: 6px; color: #1d2a33; }}
.bk-input:focus, textarea.bk-input:focus {{ border-color: {ACCENT}; box-shadow: 0 0 0 3px rgba(31, 95, 139, 0.18);
  outline: none; }}
.bk-input::placeholder, textarea.bk-input::placeholder {{ color: #8a959e; }}
.bk-btn-primary {{ background-color: {ACCENT}; border-color: {ACCENT}; color: #fff; font-weight: 500; }}
.bk-btn-primary:hover, .bk-btn-primary:focus {{ background-color: {ACCENT_DARK}; border-color: {ACCENT_DARK}; }}
label, .bk-input-group > label {{ color: #34414b; font-weight: 500; }}
""")


def styled(widget):
    """The widget with the shared input and button look."""
    widget.stylesheets = [*widget.stylesheets, WIDGET_CSS]
    return widget


#: CSS for the page outside shadow roots
PAGE_CSS = f"""
body {{ font-family: {FONT}; background: #f4f6f8; }}
#main {{ background: #f4f6f8; }}
@media (max-width: {NARROW_PX}px) {{
  #header {{ flex-wrap: wrap; justify-content: flex-start; padding-top: 2px; padding-bottom: 6px; }}
  #header .title {{ font-size: 1.2em; line-height: 1.7em; white-space: normal; }}
  #header-items {{ margin-left: 0; flex: 1 1 100%; min-width: 0; white-space: normal; }}
  #header .pn-busy-container {{ position: absolute; right: 12px; top: 12px; }}  /* no row of its own */
  /* the title wraps before the busy indicator, in the header's corner */
  #header .app-header > .title:last-child {{ margin-right: 64px; }}
  #main {{ padding-left: 6px; padding-right: 6px; }}
}}
"""

#: rows and columns on a phone: a row's columns stack at full width, and nothing in a
#: column is wider than the column (a fixed-width image or form shrinks to it). Outer
#: shadow-root rules beat a child's own ``:host`` sizes, so these reach every layout.
NARROW_LAYOUT_CSS = stylesheet("narrow-layout", f"""
@media (max-width: {NARROW_PX}px) {{
  :host(.bk-Row) {{ flex-wrap: wrap; }}
  :host(.bk-Row) > .bk-panel-models-layout-Column {{ flex: 1 1 100%; width: auto; max-width: 100%; }}
  :host(.bk-Row) > .bk-panel-models-widgets-TextInput {{ min-width: min(100%, 200px); }}  /* wraps, not 0 px */
  :host(.bk-Column) > div {{ max-width: 100%; min-width: 0; }}
}}
""")
#: the same for a FlexBox (a ReactiveHTML: its items sit in a div of its shadow root and
#: carry their sizes inline)
NARROW_FLEX_CSS = stylesheet("narrow-flex", f"@media (max-width: {NARROW_PX}px) {{ div > div {{ max-width: 100% "
                             "!important; min-width: 0 !important; } }")


#: Panel's loading-spinner CSS for the settings above, as a file: made when this module
#: loads (Panel's settings read in a page's session are its defaults, not the ones set
#: here), so every server process has the same one, whether or not it has built a page
LOADING_CSS = stylesheet("loading-spinner", Bootstrap.loading_css())


class LcpanelDesign(Bootstrap):
    """Panel's Bootstrap design with :data:`NARROW_LAYOUT_CSS` on every row and column
    (:data:`NARROW_FLEX_CSS` on every FlexBox), every stylesheet a shared file."""

    modifiers = {**Bootstrap.modifiers,
                 Row: {"stylesheets": [Inherit, NARROW_LAYOUT_CSS]},
                 Column: {"stylesheets": [Inherit, NARROW_LAYOUT_CSS]},
                 FlexBox: {"stylesheets": [Inherit, NARROW_FLEX_CSS]}}

    @classmethod
    def loading_css(cls):
        """Panel's loading-spinner CSS, which it gives every component as text:
        :data:`LOADING_CSS`, the page's one shared stylesheet of it
        (:mod:`lcpanel.views.stylesheets`)."""
        return shared(LOADING_CSS)

    @classmethod
    def loading_resources(cls, inline: bool = False, include_base: bool = True, dist_path: str | None = None):
        """Panel's, for the page's ``<head>``: the spinner's CSS as a file there too."""
        resources = super().loading_resources(inline=inline, include_base=include_base, dist_path=dist_path)
        raw, files = [], []
        for css in map(url_of, resources["raw_css"]):
            (files if css.startswith(PREFIX) else raw).append(css)
        return {"css": [*resources["css"], *files], "raw_css": raw}

    def apply(self, viewable, root, isolated: bool = True):
        """Panel's ``Design.apply``, telling the design pass which document it works in.

        Panel swaps each component's stylesheet models (``loading.css``, the design's
        files) for its document's shared ones only when the component's model already
        belongs to the document; in :class:`PageTemplate`'s frozen build none does yet
        (Bokeh attaches models when the freeze ends), so every component kept copies of
        its own: 163 of ``loading.css`` among an object page's 562 models. Given the
        document, the pass shares them, at no cost of its own."""
        doc = root.document
        if doc is None:
            return super().apply(viewable, root, isolated=isolated)
        with doc.models.freeze():
            self._reapply(viewable, root, isolated=isolated, cache=_stylesheet_cache(doc), document=doc)
            if self.theme and self.theme.bokeh_theme:
                doc.theme = self.theme.bokeh_theme


#: (label, href) links in every page's header, after "lcpanel" (which links home)
HEADER_LINKS = (
    ("JSON API", "/api/collections"),
    ("Search types", "/search/types"),
    ("Datasets (JSON)", "/api/datasets"),
)


def html(text: str, *, css_classes=(), sheet: str = STYLESHEET, **kwargs) -> pn.pane.HTML:
    """An HTML pane with the shared stylesheet (stretching to the width by default);
    ``sheet``: a stylesheet that includes :data:`PANE_CSS` instead (one file per pane)."""
    kwargs.setdefault("sizing_mode", "stretch_width")
    kwargs.setdefault("margin", (0, 0))
    return pn.pane.HTML(text, stylesheets=[sheet], css_classes=list(css_classes), **kwargs)


def collection_colors(collection_ids) -> dict[str, str]:
    """A stable colour per collection id (by sorted position), shared by cards and plots."""
    return {cid: PALETTE[i % len(PALETTE)] for i, cid in enumerate(sorted(collection_ids))}


def plot_look(fig, label_color: str = MUTED) -> None:
    """The look every Bokeh plot shares: no logo, a light background and grid, quiet axes
    (axis labels in ``label_color``)."""
    fig.toolbar.logo = None
    fig.background_fill_color = "#fbfcfd"
    fig.border_fill_color = "#ffffff"
    fig.outline_line_color = "#c9d2d9"
    fig.grid.grid_line_color = "#e3e8ec"
    fig.axis.axis_label_text_font_style = "normal"
    fig.axis.axis_label_text_color = label_color
    fig.axis.axis_label_text_font_size = "13px"
    fig.axis.major_label_text_color = MUTED
    fig.axis.axis_line_color = "#c9d2d9"
    fig.axis.major_tick_line_color = "#c9d2d9"
    fig.axis.minor_tick_line_color = "#dfe4e8"


# --- navigation -------------------------------------------------------------------------


def _navigator() -> pn.widgets.TextInput:
    nav = pn.widgets.TextInput(value="", visible=False, label="", css_classes=["lcp-navigator"])
    # a page already leaving through a form (log-out) keeps going where that form leads
    nav.jscallback(value="if (cb_obj.value && !window.lcpLeaving) { window.location.assign(cb_obj.value) }")
    return nav


def navigate(url: str) -> None:
    """Send this session's browser to ``url`` (a path on this server)."""
    nav = session_state().get("navigator")
    if nav is not None:
        nav.value = url
        return
    # not a page made by page(): Location can only change the address bar (pushState)
    log.warning("navigate(%r) outside an lcpanel page: only the address bar changes", url)
    loc = pn.state.location
    if loc is not None:
        loc.pathname = url


# --- pages ------------------------------------------------------------------------------


def _account_html(viewer) -> str:
    """A link to the account page (/account), with who is logged in and a log-out button,
    or a log-in link back to this page."""
    account = '<a class="lcp-account-link" href="/account" title="Your identity, limits and API keys">Account</a>'
    who = account_links(viewer)
    if not who.logged_in:
        return (account + f'<a class="lcp-login" href="/login" onclick="{handler(LOGIN_WITH_NEXT)}">Log in</a>')
    role = f' <span class="lcp-role">{esc(who.role)}</span>' if who.role else ""
    token = f'<input type="hidden" name="csrf_token" value="{esc(who.logout_token)}">'
    return (f'<span class="lcp-user">{esc(who.name)}{role}</span>{account}<form method="post" action="/logout" '
            f'onsubmit="{handler(MARK_LEAVING)}">'
            f'{token}<button type="submit">Log out</button></form>')


#: the header's links and account box
HEADER_CSS = stylesheet("header", f"""
.lcp-header-links {{ display: flex; flex-wrap: wrap; gap: 4px 20px; font-size: 15px; align-items: center; }}
.lcp-header-links a {{ color: #fff; opacity: 0.88; text-decoration: none; }}
.lcp-header-links a:hover {{ opacity: 1; text-decoration: underline; }}
.lcp-account {{ display: flex; gap: 10px; align-items: center; margin-left: 18px; padding-left: 18px;
                border-left: 1px solid rgba(255,255,255,.35); color: #fff; }}
.lcp-role {{ font-size: 12px; background: rgba(255,255,255,.2); border-radius: 8px; padding: 1px 7px; }}
.lcp-account form {{ margin: 0; }}
.lcp-account button {{ background: transparent; color: #fff; border: 1px solid rgba(255,255,255,.6);
                       border-radius: 4px; padding: 2px 10px; cursor: pointer; font-size: 14px; }}
@media (max-width: {NARROW_PX}px) {{
  .lcp-header-links {{ column-gap: 14px; font-size: 14px; }}
  .lcp-account {{ margin-left: 0; padding-left: 0; border-left: 0; }}
}}
""")


def header_links(extra=(), viewer=None) -> pn.pane.HTML:
    links = "".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in (*HEADER_LINKS, *extra))
    account = _account_html(viewer) if viewer is not None else ""
    return pn.pane.HTML(
        f'<nav class="lcp-header-links">{links}<span class="lcp-account">{account}</span></nav>', margin=(0, 10),
        align="center", sizing_mode="stretch_width",
        stylesheets=[HEADER_CSS])


class PageTemplate(pn.template.BootstrapTemplate):
    """Panel's Bootstrap template, attached to its document in one step: Bokeh works out
    the document's models again after each of the template's roots is added (eight
    roots, each time walking every model of the page: ten walks of ~400 models for an
    object page); frozen, it does so once at the end. 0.4-0.5 s less server time for
    each object page view here."""

    def server_doc(self, doc=None, title=None, location=True):
        doc = doc or pn.state.curdoc
        if doc is None:
            return super().server_doc(doc, title, location)
        with doc.models.freeze():
            return super().server_doc(doc, title, location)


def page(title: str, main, app, *, links=()) -> PageTemplate:
    """The page template every lcpanel page uses.

    ``main`` is a viewable or a list of them; ``title`` names the page (the browser tab
    shows "title · lcpanel"); ``links`` adds (label, href) pairs to the header.
    """
    viewer = session_viewer(app)  # before anything renders: the page acts for this visitor
    state = session_state()
    nav = _navigator()
    state["navigator"] = nav
    items = list(main) if isinstance(main, (list, tuple)) else [main]
    template = PageTemplate(
        design=LcpanelDesign,
        site=APP_NAME,  # links home
        site_url="/",
        title=esc(title or APP_NAME),  # Panel's templates put it in the page unescaped
        main=[*items, nav],
        header=[header_links(links, viewer)],
        header_background=ACCENT,
        main_max_width="1400px",
        collapsed_sidebar=True,
        raw_css=[PAGE_CSS],
        meta_description="lcpanel: light-curve collections, searches and datasets",
    )
    end_with_login(app, state, navigate)
    doc = pn.state.curdoc
    if doc is not None:
        doc.title = f"{title} · {APP_NAME}" if title and title != APP_NAME else APP_NAME
        # a session re-made by another --num-procs process never rendered its page, and Panel
        # then points its stylesheets at its CDN: keep them on this server (offline, and the CSP)
        doc._template_variables.setdefault("dist_url", "/" + LOCAL_DIST)
    log.debug("page %r for %s", title, viewer.identity)
    return template


def section(title: str, *objects, subtitle: str = "", css_classes=(), flex: str | None = None,
            **kwargs) -> pn.Column:
    """A white panel with a heading: the building block of page layouts. ``subtitle`` is
    HTML (escape what comes from users); ``flex`` is its CSS flex inside a FlexBox."""
    head = f'<h2 class="lcp-section-title">{esc(title)}</h2>'
    if subtitle:
        head += f'<p class="lcp-section-sub">{subtitle}</p>'
    kwargs.setdefault("sizing_mode", "stretch_width")
    kwargs.setdefault("margin", (8, 0))
    styles = {"background": "#ffffff", "border": "1px solid #dde3e8", "border-radius": "10px",
              "padding": "14px 10px 10px 10px", "box-shadow": "0 1px 2px rgba(16,24,40,0.04)"}
    if flex:
        styles["flex"] = flex
    return pn.Column(html(head, margin=(0, 10, 6, 10)), *objects, css_classes=["lcp-section", *css_classes],
                     styles=styles, **kwargs)
