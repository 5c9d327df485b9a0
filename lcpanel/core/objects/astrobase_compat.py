"""Make astrobase 0.5.3 usable on lcpanel's stack, and keep it off the network.

astrobase is unmaintained since 2021 and breaks on numpy 2, Pillow >= 10 and
numpy >= 2.4 in a few known places; its checkplot code also contacts SkyView,
GAIA, SIMBAD, MAST and IRSA for every object. This module holds the small
patches that fix both, so the rest of lcpanel never patches astrobase itself:

- :func:`import_astrobase` must be called before anything in lcpanel imports
  astrobase. It restores the numpy aliases astrobase uses, Pillow's
  ``Image.ANTIALIAS``, makes checkplot epochs plain floats (needed on numpy
  >= 2.4), lets ``runcp`` find neighbour light curves in a custom
  ``lcformatdir`` (it forgets to pass it on), stops ``get_lcformat`` from
  appending the reader's directory to ``sys.path`` on every call, and makes
  astrobase's own process pools re-apply these patches in their workers, so
  they also work with the forkserver/spawn start methods.
- :func:`offline` replaces every network look-up on the paths lcpanel uses
  (``lcproc.periodsearch.runpf``, ``lcproc.checkplotgen.runcp``,
  ``checkplot.pkl.checkplot_pickle``, ``lcproc.catalogs.make_lclist``,
  ``add_cpinfo_to_lclist``) with local stand-ins that answer "no result" at
  once, and optionally serves finder charts from a local image.

scipy's ``query_ball_point(n_jobs=)`` (renamed ``workers``) is left alone:
only ``coordutils.conesearch_kdtree`` and ``catalogs.filter_lclist`` use it,
and neither is on those paths.
"""

import functools
import importlib
import inspect
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

# numpy names removed in 2.0 that astrobase still uses (np.bool is back in 2.x)
_NUMPY_ALIASES = {"unicode_": np.str_, "float_": np.float64, "bool": bool}

# astrobase modules that start their own ProcessPoolExecutor
_POOL_MODULES = (
    "astrobase.lcproc.catalogs",
    "astrobase.lcproc.checkplotgen",
    "astrobase.lcproc.periodsearch",
)

_imported = False
_offline_on = False
_finder_stamp = None


def import_astrobase():
    """Apply the compatibility patches and import astrobase's lcproc modules.

    Idempotent. Call it before importing any astrobase module.
    """
    global _imported
    if _imported:
        return
    _add_numpy_aliases()
    _add_pillow_antialias()
    for name in _POOL_MODULES:
        importlib.import_module(name).ProcessPoolExecutor = _PatchedPoolExecutor
    _make_checkplot_epochs_scalar()
    _forward_lcformatdir_to_neighbours()
    _keep_sys_path_unique()
    _imported = True


def offline(finder_stamp=None):
    """Replace astrobase's network look-ups with local answers.

    Parameters
    ----------
    finder_stamp : callable or None
        ``finder_stamp(ra, decl, **kwargs) -> (image, header)`` giving a
        300 x 300 pixel image (astrobase assumes that size when it places
        neighbours on the finder) and an astropy FITS header with its celestial
        WCS; it is used for checkplot finder charts instead of SkyView. It must
        be picklable for astrobase's worker processes under forkserver/spawn.
        If None, finder look-ups raise OSError at once. astrobase then logs the
        failure and also drops the neighbour list of that checkplot; pass
        ``fast_mode=True`` to runcp/checkplot_pickle to skip the finder and
        keep the neighbours.

    GAIA, SIMBAD, TIC (MAST) and dust-extinction (IRSA) queries return None,
    which astrobase records as a failed look-up ("failed: GAIA TAP query
    failed", no dereddening, no TIC info). Idempotent; a later call replaces
    the finder function.
    """
    global _offline_on, _finder_stamp
    import_astrobase()
    _finder_stamp = finder_stamp

    import astrobase.checkplot.pkl_utils as pkl_utils
    import astrobase.checkplot.png as cp_png
    import astrobase.plotbase as plotbase
    from astrobase.services import dust, gaia, mast, simbad, skyview

    for module in (pkl_utils, cp_png, plotbase):
        module.skyview_stamp = _local_skyview_stamp
    for module, name in (
        (skyview, "get_stamp"),
        (gaia, "tap_query"),
        (gaia, "objectlist_conesearch"),
        (gaia, "objectlist_radeclbox"),
        (gaia, "objectid_search"),
        (simbad, "tap_query"),
        (simbad, "objectnames_conesearch"),
        (dust, "extinction_query"),
        (mast, "mast_query"),
        (mast, "tic_conesearch"),
        (mast, "tic_xmatch"),
        (mast, "tic_objectsearch"),
        (pkl_utils, "tic_conesearch"),
    ):
        setattr(module, name, _no_result)
    _offline_on = True


def _add_numpy_aliases():
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def _add_pillow_antialias():
    from PIL import Image

    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.Resampling.LANCZOS


def _no_result(*args, **kwargs):
    """Stand-in for a remote query: astrobase treats None as 'nothing found'."""
    return None


def _local_skyview_stamp(ra, decl, **kwargs):
    if _finder_stamp is None:
        raise OSError("astrobase is offline: no local finder stamp available")
    return _finder_stamp(ra, decl, **kwargs)


def _apply_patches_in_worker(offline_on, finder_stamp):
    import_astrobase()
    if offline_on:
        offline(finder_stamp)


class _PatchedPoolExecutor(ProcessPoolExecutor):
    """astrobase's process pools, with this module's patches in each worker."""

    def __init__(self, max_workers=None, mp_context=None, initializer=None,
                 initargs=(), **kwargs):
        if initializer is None:
            initializer = _apply_patches_in_worker
            initargs = (_offline_on, _finder_stamp)
        super().__init__(max_workers, mp_context, initializer, initargs,
                         **kwargs)


def _make_checkplot_epochs_scalar():
    """Resolve ``varepoch='min'`` to a float before astrobase plots a phased LC.

    astrobase's own resolution leaves a one-element array, which numpy >= 2.4
    refuses to format as a scalar. Doing it here gives the same epoch as a
    float on every numpy version.
    """
    import astrobase.checkplot.pkl as cp_pkl
    import astrobase.checkplot.pkl_utils as pkl_utils
    import astrobase.lcproc.checkplotgen as checkplotgen

    original = pkl_utils._pkl_phased_magseries_plot

    @functools.wraps(original)
    def phased_plot(checkplotdict, lspmethod, periodind, stimes, smags, serrs,
                    varperiod, varepoch, *args, **kwargs):
        if isinstance(varepoch, str) and varepoch == "min":
            varepoch = _min_light_epoch(
                stimes, smags, serrs, varperiod,
                kwargs.get("magsarefluxes", False),
            )
        return original(checkplotdict, lspmethod, periodind, stimes, smags,
                        serrs, varperiod, varepoch, *args, **kwargs)

    for module in (pkl_utils, cp_pkl, checkplotgen):
        module._pkl_phased_magseries_plot = phased_plot


def _min_light_epoch(times, mags, errs, period, magsarefluxes):
    """Time of minimum light from a spline (else Savitzky-Golay) phased fit."""
    from astrobase.lcfit.nonphysical import (
        savgol_fit_magseries,
        spline_fit_magseries,
    )

    for fitter in (spline_fit_magseries, savgol_fit_magseries):
        try:
            fit = fitter(times, mags, errs, period, sigclip=None,
                         magsarefluxes=magsarefluxes, verbose=False)
            return float(np.ravel(fit["fitinfo"]["fitepoch"])[0])
        except Exception:
            continue
    return float(np.min(times))


def _forward_lcformatdir_to_neighbours():
    """Make runcp pass its ``lcformatdir`` to the neighbour-LC update.

    astrobase's runcp calls ``update_checkplotdict_nbrlcs`` without it, so
    for a format registered outside ``~/.astrobase`` the neighbour light
    curves are silently left out of every checkplot.
    """
    import astrobase.lcproc.checkplotgen as checkplotgen

    original_runcp = checkplotgen.runcp
    original_update = checkplotgen.update_checkplotdict_nbrlcs
    signature = inspect.signature(original_runcp)

    @functools.wraps(original_runcp)
    def runcp(*args, **kwargs):
        lcformatdir = signature.bind(*args, **kwargs).arguments.get(
            "lcformatdir")
        checkplotgen.update_checkplotdict_nbrlcs = functools.partial(
            original_update, lcformatdir=lcformatdir)
        try:
            return original_runcp(*args, **kwargs)
        finally:
            checkplotgen.update_checkplotdict_nbrlcs = original_update

    checkplotgen.runcp = runcp


def _keep_sys_path_unique():
    """Undo the duplicate ``sys.path`` entry astrobase adds per LC-format load.

    ``get_lcformat`` imports a reader given by file path after appending its
    directory to ``sys.path``, on every call; a server reading light curves
    would grow ``sys.path`` without bound.
    """
    import astrobase.lcproc as lcproc

    original = lcproc._check_extmodule

    @functools.wraps(original)
    def check_extmodule(module, formatkey):
        length = len(sys.path)
        result = original(module, formatkey)
        if len(sys.path) > length and sys.path[-1] in sys.path[:-1]:
            sys.path.pop()
        return result

    lcproc._check_extmodule = check_extmodule
