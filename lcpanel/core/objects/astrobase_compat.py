"""Make astrobase 0.5.3 usable on lcpanel's stack, and keep it off the network.

astrobase is unmaintained since 2021 and breaks on numpy 2, Pillow >= 10 and
numpy >= 2.4 in a few known places; its checkplot code also contacts SkyView,
GAIA, SIMBAD, MAST and IRSA for every object. This module holds the small
patches that fix both, so the rest of lcpanel never patches astrobase itself:

- :func:`import_astrobase` must be called before anything in lcpanel imports
  astrobase. It restores the numpy names astrobase uses (removed in numpy 2.0 and 2.4), Pillow's
  ``Image.ANTIALIAS``, makes checkplot epochs plain floats (needed on numpy
  >= 2.4), lets ``runcp`` find neighbour light curves in a custom
  ``lcformatdir`` (it forgets to pass it on), stops ``get_lcformat`` from
  appending the reader's directory to ``sys.path`` on every call, and makes
  astrobase's own process pools re-apply these patches in their workers, so
  they also work with the forkserver/spawn start methods; the ACF period
  finder's gap filling and autocorrelation are replaced by
  :mod:`lcpanel.core.objects.acf`'s (the same answers, 3.5 s -> ~0.1 s on a
  HATNet light curve, without a numpy deprecation). Each module's patch
  is applied when that module is imported (:data:`_PATCHES`, through an import
  hook), or at once if it already is: reading light curves, which needs only
  ``astrobase.lcproc``, does not import the checkplot and batch modules
  (matplotlib, scipy.signal: seconds for every new process that reads one).
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
import importlib.abc
import inspect
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

def _in1d(ar1, ar2, assume_unique=False, invert=False, *, kind=None):
    """numpy's ``in1d`` (removed in 2.4): ``isin`` of ``ar1`` flattened."""
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert, kind=kind)


# numpy names removed in 2.0 (np.bool is back in 2.x) and 2.4 (in1d, which astrobase's Kepler
# module imports: the kep-fits and kep-pkl formats) that astrobase still uses
_NUMPY_ALIASES = {"unicode_": np.str_, "float_": np.float64, "bool": bool, "in1d": _in1d}

_imported = False
_offline_on = False
_finder_stamp = None


def import_astrobase():
    """Apply the compatibility patches and import ``astrobase.lcproc``.

    Idempotent. Call it before importing any astrobase module. The patches of
    modules not imported yet are applied when they are (:data:`_PATCHES`).
    """
    global _imported
    if _imported:
        return
    _add_numpy_aliases()
    _add_pillow_antialias()
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    for name in _PATCHES:
        if name in sys.modules:
            _patch(sys.modules[name])
    importlib.import_module("astrobase.lcproc")
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


def _patch_pool(module):
    """astrobase's own process pools re-apply these patches in their workers."""
    module.ProcessPoolExecutor = _PatchedPoolExecutor


def _scalar_epoch_plot():
    """``pkl_utils._pkl_phased_magseries_plot``, made to resolve ``varepoch='min'``
    to a float before astrobase plots a phased LC (wrapped once).

    astrobase's own resolution leaves a one-element array, which numpy >= 2.4
    refuses to format as a scalar. Doing it here gives the same epoch as a
    float on every numpy version.
    """
    import astrobase.checkplot.pkl_utils as pkl_utils

    original = pkl_utils._pkl_phased_magseries_plot
    if hasattr(original, "__wrapped__"):
        return original

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

    pkl_utils._pkl_phased_magseries_plot = phased_plot
    return phased_plot


def _make_checkplot_epochs_scalar(module):
    """Point ``module``'s phased-plot function (pkl_utils' own, or the name
    ``checkplot.pkl`` and ``lcproc.checkplotgen`` import from it) at
    :func:`_scalar_epoch_plot`'s wrapper."""
    wrapper = _scalar_epoch_plot()
    if getattr(module, "_pkl_phased_magseries_plot", None) is wrapper.__wrapped__:
        module._pkl_phased_magseries_plot = wrapper


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


def _forward_lcformatdir_to_neighbours(checkplotgen):
    """Make runcp pass its ``lcformatdir`` to the neighbour-LC update.

    astrobase's runcp calls ``update_checkplotdict_nbrlcs`` without it, so
    for a format registered outside ``~/.astrobase`` the neighbour light
    curves are silently left out of every checkplot.
    """
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


def _keep_sys_path_unique(lcproc):
    """Undo the duplicate ``sys.path`` entry astrobase adds per LC-format load.

    ``get_lcformat`` imports a reader given by file path after appending its
    directory to ``sys.path``, on every call; a server reading light curves
    would grow ``sys.path`` without bound.
    """
    original = lcproc._check_extmodule

    @functools.wraps(original)
    def check_extmodule(module, formatkey):
        length = len(sys.path)
        result = original(module, formatkey)
        if len(sys.path) > length and sys.path[-1] in sys.path[:-1]:
            sys.path.pop()
        return result

    lcproc._check_extmodule = check_extmodule


def _fast_gap_fill(module):
    """``lcmath.fill_magseries_gaps``, the ACF period finder's gap filling, by
    :mod:`lcpanel.core.objects.acf`'s: the same grid, without astrobase's bin-by-bin loop
    and its numpy deprecation."""
    from .acf import fill_magseries_gaps

    module.fill_magseries_gaps = fill_magseries_gaps


def _fast_acf(module):
    """``varbase.autocorr``'s gap filling (the name it imports from ``lcmath``) and
    autocorrelation by :mod:`lcpanel.core.objects.acf`'s. ``autocorr_magseries`` takes
    the autocorrelation as a default argument and runs any other function once per lag:
    its default is pointed at the new one too."""
    from .acf import autocorrelation, fill_magseries_gaps

    original = module._autocorr_func3
    module.fill_magseries_gaps = fill_magseries_gaps
    module._autocorr_func3 = autocorrelation
    run = module.autocorr_magseries
    run.__defaults__ = tuple(autocorrelation if d is original else d for d in run.__defaults__)


#: the patches of each astrobase module, applied once per module object
_PATCHES = {
    "astrobase.lcmath": (_fast_gap_fill,),
    "astrobase.varbase.autocorr": (_fast_acf,),
    "astrobase.lcproc": (_keep_sys_path_unique,),
    "astrobase.lcproc.catalogs": (_patch_pool,),
    "astrobase.lcproc.periodsearch": (_patch_pool,),
    "astrobase.lcproc.checkplotgen": (_patch_pool, _forward_lcformatdir_to_neighbours,
                                      _make_checkplot_epochs_scalar),
    "astrobase.checkplot.pkl_utils": (_make_checkplot_epochs_scalar,),
    "astrobase.checkplot.pkl": (_make_checkplot_epochs_scalar,),
}


def _patch(module):
    if module.__dict__.get("_lcpanel_patched"):
        return
    module._lcpanel_patched = True
    for patch in _PATCHES[module.__name__]:
        patch(module)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Applies :data:`_PATCHES` to a module right after it is first executed: finds
    it through the other finders and wraps its own loader's ``exec_module``."""

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            run = loader.exec_module

            def exec_module(module, run=run):
                run(module)
                _patch(module)

            loader.exec_module = exec_module
        return spec
