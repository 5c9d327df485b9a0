"""The object page, ``/objects/<collection>/<objectid>``: a checkplot view in the spirit of
astrobase's checkplotserver.

What it shows
-------------
- **Header**: objectid, collection (with a link back), position (decimal and
  sexagesimal, galactic when known), magnitudes and cross-ids (2MASS, TIC, Gaia,
  SIMBAD), the reviewed variability info (objectisvar in words, period, epoch, tags),
  the comments, the finder chart from the checkplot (an ``<img>`` of the JSON API's
  ``tiles/finder.png``, so it loads asynchronously) and download links for the object's
  files (light curve as stored, CSV, FITS, VOTable; checkplot; period-finding pickle).
- **Light curve**: the unphased light curve as a Bokeh scatter (magnitude axis
  inverted, time relative to a whole day so the ticks stay readable): the checkplot's
  series or the file as stored, any time column, quality masks
  (:mod:`lcpanel.views.lightcurve_plot`).
- **Period finding**: one row per method in the checkplot: its periodogram (Bokeh line,
  log period axis, from :func:`~lcpanel.core.objects.checkplots.object_summary`'s downsampled
  arrays that keep every peak), its best periods as "pick" buttons, and the checkplot's
  own phased light curve of its best period (decoded from the pickle's base64 PNG).
  Clicking a periodogram folds at the best peak within 1% of the click.
- **Phase fold**: period, epoch and bins inputs; the folded light curve is drawn over two
  cycles (phase -0.5 to 1.5, each point twice, minimum light at phase 0 and 1), with
  median magnitudes in phase bins as a line when bins > 0. A status line says what is
  shown ("folded at P = 0.6968028 d, E = ..., 476 points"). A bad value shows a message
  under its field and changes nothing else. Changing the period resets the epoch to
  the time of minimum light for that period (:func:`minimum_light_epoch`); typing an
  epoch folds at it, and clearing the field goes back to minimum light. ×2 / ÷2, error
  bars and astrobase's Fourier fit (χ² stated) are beside it.
- **Variability features**: astrobase's non-periodic features, computed on request.
- **Review**: a form for objectisvar, varperiod, varepoch and vartags (staff) and a new
  comment (everyone), saved with :mod:`lcpanel.core.objects.reviews` in the basedir (author: the
  visitor's identity, the same cookie identity as the JSON API); the comments, each with
  its author and time (a delete button on one's own, on all for admins), and the
  object's edit history. Each save or delete spends one request of the visitor's budget
  (:mod:`lcpanel.views.budget`), like an HTTP request; a spent budget shows a message and
  writes nothing. The survey's checkplot is never written.

Periods: saved, adopted, candidates
-----------------------------------
- "Save period" keeps the fold's period (with a label) for everyone who can see the
  object, in the basedir (:mod:`lcpanel.core.objects.savedperiods`); saved periods fold
  at the object's one shared epoch, and the reviewer's adopted period is listed first;
- "Add to candidates" keeps the fold's (period, epoch) in a list for this browser
  session only, shown as buttons that fold again at them;
- "Adopt period" (staff) saves the fold's period and epoch as the object's ``varperiod``
  and ``varepoch`` (what checkplotserver's "set period" does), so it reaches the
  reviews, the catalog searches read, and the history;
- "Periods adopted by reviewers" lists every ``varperiod`` value in the object's edit
  history (who, when), also as buttons.

Who may edit
------------
Staff and admins may edit variability info (:func:`lcpanel.core.objects.reviews.can_edit_varinfo`
is the single place of that rule); everyone may comment. Visitors who may not edit see the form locked, with
a link to log in.

Like every page it never shows a traceback: an unknown collection or object, an object
without a checkplot (a plain catalog) or an unreadable checkplot each give a short
message page with a link back.

Structure
---------
This module is the page's entry: :class:`ObjectPage` finds the object
(:func:`lcpanel.core.objects.record.find_object`: the catalog row through
``Catalog.object_row``, files through ``CollectionInfo.object_file``, with the same
inside-the-directory check as the JSON API's file routes), makes one
:class:`~lcpanel.views.object.context.ObjectContext` and composes the parts of
:mod:`lcpanel.views.object`:

- ``record.RecordView``: the header (facts, magcol chooser, finder, downloads);
- ``lightcurve_plot.LightCurvePlot`` (views/): the unphased light curve;
- ``periodograms.CheckplotPeriodograms``: the checkplot's periodograms; further
  periodogram panels go in :meth:`ObjectPage.periodogram_panels`;
- ``fold.FoldPanel``: the phase fold (×2 / ÷2, error bars, bins, astrobase's Fourier
  fit overlaid) and its period lists, with ``saved.SavedPeriodsView`` (periods saved
  for everyone, one shared epoch);
- ``features.FeaturesView``: astrobase's variability features on demand;
- ``review.ReviewForm``: the review form, comments and history.
"""


from __future__ import annotations

import panel as pn
import param

from ..core.objects import reviews
from ..core.objects.record import ObjectRecord, find_object  # noqa: F401  (the page's look-up)
from ..core.urls import object_page_path, segment
from .lightcurve_plot import LightCurvePlot, read_stored
from .object.context import ObjectContext
from .object.features import FeaturesView
from .object.fold import FoldPanel
from .object.periodograms import CheckplotPeriodograms
from .object.record import RecordView, problem_title
from .object.review import ReviewForm
from .object.saved import SavedPeriodsView
from .object.style import LC_HEIGHT, mag_range, object_html, plot_column, sexagesimal, style_figure  # noqa: F401
from ..pagestatus import answer_redirect, answer_status
from ..visitor import session_viewer
from .theme import page, section


def can_edit_varinfo(viewer, collection) -> bool:
    """Whether ``viewer`` may change the variability info (objectisvar, varperiod,
    varepoch, vartags) of ``collection``'s objects.

    Staff and admins only (comments stay open to everyone): the rule of
    :func:`lcpanel.core.objects.reviews.can_edit_varinfo`.
    """
    return reviews.can_edit_varinfo(viewer)


class ObjectPage(pn.viewable.Viewer):
    """One object of one collection (see the module docstring)."""

    app = param.Parameter()
    collection = param.String()
    objectid = param.String()
    magcol = param.String(default="", doc="the magnitude column to show ('': the collection's first)")

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = session_viewer(self.app)
        self.rec = find_object(self.app.catalogs, self.collection, self.objectid, self.magcol)
        if self.rec.error or self.rec.no_checkplot:
            self.ctx = ObjectContext(self.app, self.viewer, self.collection, self.objectid, self.rec)
            self.record = RecordView(self.ctx)
            return
        self.ctx = ObjectContext.of(self.app, self.viewer, self.collection, self.objectid, self.rec)
        self.magcol = self.ctx.magcol
        self.record = RecordView(self.ctx)
        self.review = ReviewForm(self.ctx, on_saved=self._on_saved)
        self.fold = FoldPanel(self.ctx, save_varinfo=self.review.save)
        self.saved = SavedPeriodsView(self.ctx, fold=self.fold, write=self.review.write)
        self.fold.extra_lists.append(self.saved.panel())
        self.features = FeaturesView(self.ctx)

    def _on_saved(self) -> None:
        """Variability info changed: show it everywhere."""
        self.record.render()
        self.fold.render_tried()
        self.saved.render()

    # --- the parts ------------------------------------------------------------------------

    def _lightcurve(self):
        ctx = self.ctx
        if not len(ctx.times):
            return section("Light curve", object_html('<p class="lcp-empty">The checkplot holds no light-curve '
                                                      'points.</p>', margin=(0, 10)))
        stored = read_stored(self.app, self.rec.info, self.rec.row, self.rec.magcol or ctx.magcol)
        self.lc_plot = LightCurvePlot(ctx.times, ctx.mags, magcol=ctx.magcol, stored=stored,
                                      sigclip=self.rec.checkplot.get("sigclip"), style=style_figure,
                                      mag_range=mag_range, plot_column=plot_column, height=LC_HEIGHT)
        return section("Light curve", self.lc_plot.panel(),
                       subtitle="Brighter is up. Drag to pan, scroll to zoom. The checkplot's series is what "
                                "period finding used; 'as stored' is every point of the light-curve file.")

    def periodogram_panels(self) -> list:
        """The periodogram sections, in page order. Each folds through
        ``self.fold.set_period`` and marks the folded period with spans it appends to
        ``self.fold.markers``; add new periodogram panels here."""
        from .periodsearch_panel import PeriodSearchPanel  # period search on demand (its own module)

        self.period_search = PeriodSearchPanel(self.ctx, on_period=self.fold.set_period, markers=self.fold.markers,
                                               stored=getattr(getattr(self, "lc_plot", None), "stored", None))
        return [CheckplotPeriodograms(self.ctx, on_period=self.fold.set_period, markers=self.fold.markers).panel(),
                self.period_search.panel()]

    def __panel__(self):
        if self.rec.error or self.rec.no_checkplot:
            return pn.Column(self.record.message_page(), sizing_mode="stretch_width")
        return pn.Column(self.record.panel(), self._lightcurve(), *self.periodogram_panels(), self.fold.panel(),
                         self.features.panel(), self.review.panel(), sizing_mode="stretch_width")

    def servable_page(self):
        if self.rec.canonical:
            title = self.rec.canonical
            query = f"?magcol={segment(self.magcol)}" if self.magcol else ""
            answer_redirect(object_page_path(self.collection, self.rec.canonical) + query)
        elif self.rec.error:
            title = problem_title(self.rec)
            answer_status(400 if self.rec.bad_magcol else 404)
        else:
            title = f"{self.objectid} · {self.rec.info.name}"
        return page(title, [self], self.app)
