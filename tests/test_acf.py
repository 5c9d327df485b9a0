"""lcpanel.core.objects.acf against astrobase's ACF code as shipped: its gap filling
(``fill_magseries_gaps``, from a copy of ``lcmath`` loaded apart from the patched
module, with numpy 2.4's one needed change), bin by bin, on the real HATNet and TESS
CDIPS light curves and on made-up series that reach every branch (points on bin edges,
repeated and unsorted times, bins of 1, 2 and more points, each gap filler, fluxes); its
autocorrelation (``numpy.correlate`` of the grid with itself, as astrobase computes it)
to rounding; and the period search through astrobase with both."""

from __future__ import annotations

import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from lcpanel.core.objects.astrobase_compat import import_astrobase
from lcpanel.core.objects.acf import autocorrelation, fill_magseries_gaps
from test_formats_real import CDIPS, HAT

import_astrobase()


@pytest.fixture(scope="module")
def original():
    """astrobase's ``lcmath.fill_magseries_gaps``, from a copy of the module lcpanel does
    not patch, with the one change numpy >= 2.4 needs (a bin of one point is given the
    point's value, ``[0]``, not a one-element array, which numpy 2.4 refuses): the same
    answers on every numpy lcpanel runs on."""
    import astrobase.lcmath

    source = Path(astrobase.lcmath.__file__).read_text()
    for name in ("mags", "errs"):
        line = f"interpolated_{name}[ind] = s{name}[itimeind[0]]"
        assert source.count(line) == 1, line
        source = source.replace(line, line + "[0]")
    module = types.ModuleType("astrobase_lcmath_as_shipped")
    exec(compile(source, astrobase.lcmath.__file__, "exec"), module.__dict__)
    assert module.fill_magseries_gaps is not fill_magseries_gaps
    return module.fill_magseries_gaps


def _same(expected, got):
    assert (expected is None) == (got is None)
    if expected is None:
        return
    assert got["cadence"] == expected["cadence"]
    for key in ("itimes", "imags", "ierrs"):
        assert got[key].dtype == expected[key].dtype
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key, strict=True)


def _both(original, times, mags, errs, **kwargs):
    """Both answers, compared; or the same error from both."""
    outcomes = []
    for fn, mode in ((original, "ignore"), (fill_magseries_gaps, "error")):
        with warnings.catch_warnings():
            # astrobase's DeprecationWarning on every bin it fills; none from ours
            warnings.simplefilter(mode, DeprecationWarning)
            try:
                outcomes.append(fn(times, mags, errs, verbose=False, **kwargs))
            except ValueError as exc:
                outcomes.append(exc)
    expected, got = outcomes
    if isinstance(expected, Exception) or isinstance(got, Exception):
        assert type(got) is type(expected) and str(got) == str(expected)
        return got
    _same(expected, got)
    return got


def _hatnet():
    from astrobase.hatsurveys import hatlc

    return hatlc.read_csvlc(str(HAT))


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
@pytest.mark.parametrize("aperture", ["000", "001", "002"])
def test_real_hatnet_apertures(original, aperture):
    lc = _hatnet()
    got = _both(original, lc["rjd"], lc[f"aep_{aperture}"], lc[f"aie_{aperture}"], fillgaps=0.0, sigclip=3.0)
    filled = np.count_nonzero(got["imags"] != 0.0)
    assert len(got["itimes"]) > 100_000 and filled > 1_000  # a long grid, with many bins holding points


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
@pytest.mark.parametrize("fillgaps", [0.0, "nan", "noiselevel"])
def test_real_hatnet_gap_fillers_and_a_coarser_grid(original, fillgaps):
    lc = _hatnet()
    t, m, e = lc["rjd"], lc["atf_000"], lc["aie_000"]
    _both(original, t, m, e, fillgaps=fillgaps, sigclip=None)
    # a bin of 30 minutes holds up to ~9 points: every bin goes through np.median
    _both(original, t, m, e, fillgaps=fillgaps, sigclip=5.0, forcetimebin=30 / 1440)


@pytest.mark.skipif(not CDIPS, reason="no ../shared/realdata")
@pytest.mark.parametrize("path", CDIPS, ids=lambda p: p.name[:48])
def test_real_tess_cdips_fluxes_and_magnitudes(original, path):
    with fits.open(path) as hdul:
        data = hdul[1].data
        t = np.asarray(data["TMID_BJD"], dtype=np.float64)
        flux, ferr = np.asarray(data["IFL1"], np.float64), np.asarray(data["IFE1"], np.float64)
        mag, merr = np.asarray(data["IRM1"], np.float64), np.asarray(data["IRE1"], np.float64)
    _both(original, t, flux, ferr, magsarefluxes=True, fillgaps=0.0, sigclip=3.0)
    _both(original, t, mag, merr, fillgaps="noiselevel", sigclip=[10.0, 3.0])


def test_points_on_bin_edges_and_repeated_times(original):
    rng = np.random.default_rng(4)
    grid = np.arange(2000) * 0.01  # exact multiples of the cadence: points on bin edges
    t = np.sort(np.concatenate([grid[rng.random(grid.size) < 0.7], grid[:300:7], grid[5:900:3] + 0.004]))
    m = rng.normal(12.0, 0.05, t.size)
    e = rng.uniform(0.005, 0.02, t.size)
    e[::97] = 0.0  # zero errors are dropped
    m[::89] = np.nan  # as are non-finite points
    got = _both(original, t, m, e, fillgaps=0.0, sigclip=None)
    counts = np.diff(np.searchsorted(np.sort(t), got["itimes"]))
    assert {0, 1, 2} <= set(counts[:-1].tolist())  # empty bins, single points, pairs
    for step in (0.013, 0.05, 0.0999):  # overlapping and wide bins: 2 to ~10 points each
        _both(original, t, m, e, fillgaps="nan", sigclip=None, forcetimebin=step)
    # out of order, astrobase's commonest step is meaningless (here negative: an empty grid),
    # alike in both; with a step forced, both fill the grid from the same points
    shuffled = rng.permutation(t.size)
    _both(original, t[shuffled], m[shuffled], e[shuffled], fillgaps=0.0, sigclip=None)
    _both(original, t[shuffled], m[shuffled], e[shuffled], fillgaps=0.0, sigclip=None, forcetimebin=0.01)


def test_a_series_whose_commonest_step_is_zero_is_refused_alike(original):
    t = np.repeat(np.arange(50.0), 3)
    m = np.linspace(10, 11, t.size)
    assert _both(original, t, m, np.full(t.size, 0.01), fillgaps=0.0, sigclip=None) is None


def _direct_autocorrelation(mags, lag, maglen, magmed, magstd):
    """astrobase's ``_autocorr_func3`` as shipped."""
    result = np.correlate(mags, mags, mode="full")
    result = result / np.max(result)
    return result[int(result.size / 2):]


def _real_grids():
    lc = _hatnet()  # (the direct sum takes 2.6 s for it: one aperture)
    yield fill_magseries_gaps(lc["rjd"], lc["aep_001"], lc["aie_001"], verbose=False)["imags"]
    for path in CDIPS:
        with fits.open(path) as hdul:
            data = hdul[1].data
            yield fill_magseries_gaps(np.asarray(data["TMID_BJD"], np.float64), np.asarray(data["IFL1"], np.float64),
                                      np.asarray(data["IFE1"], np.float64), magsarefluxes=True, verbose=False)["imags"]


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
def test_autocorrelation_equals_the_direct_sum_to_rounding():
    grids = list(_real_grids())
    assert len(grids) == 1 + len(CDIPS) and max(g.size for g in grids) > 100_000
    for grid in grids + [np.random.default_rng(2).normal(size=999)]:
        expected = _direct_autocorrelation(grid, 0, grid.size, 0.0, 1.0)
        got = autocorrelation(grid, 0, grid.size, 0.0, 1.0)
        assert got.shape == expected.shape == (grid.size,)
        assert got[0] == pytest.approx(1.0, abs=1e-14)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-13)


def _macf(t, m, e, **kwargs):
    from astrobase.periodbase import macf

    return macf.macf_period_find(t, m, e, verbose=False, **kwargs)


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
def test_astrobase_uses_them_and_the_acf_finds_the_same_periods(original, monkeypatch):
    import astrobase.lcmath
    from astrobase.varbase import autocorr

    assert astrobase.lcmath.fill_magseries_gaps is fill_magseries_gaps
    assert autocorr.fill_magseries_gaps is fill_magseries_gaps
    assert autocorr._autocorr_func3 is autocorrelation
    assert autocorrelation in autocorr.autocorr_magseries.__defaults__
    rng = np.random.default_rng(9)
    t = np.sort(rng.choice(np.arange(6000) * (5 / 1440), 3500, replace=False))
    m = 12 + 0.05 * np.sin(2 * np.pi * t / 0.7) + rng.normal(0, 0.005, t.size)
    e = np.full(t.size, 0.005)
    lc = _hatnet()
    cases = [(t, m, e, {}), (lc["rjd"], lc["atf_001"], lc["aie_001"], {"smoothacf": 51, "maxacfpeaks": 20})]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        ours = [_macf(*case[:3], **case[3]) for case in cases]
    # astrobase as shipped: its gap filling and its direct autocorrelation, as the default
    defaults = tuple(_direct_autocorrelation if d is autocorrelation else d
                     for d in autocorr.autocorr_magseries.__defaults__)
    monkeypatch.setattr(autocorr, "fill_magseries_gaps", original)
    monkeypatch.setattr(autocorr, "_autocorr_func3", _direct_autocorrelation)
    monkeypatch.setattr(autocorr.autocorr_magseries, "__defaults__", defaults)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = [_macf(*case[:3], **case[3]) for case in cases]
    assert abs(ours[0]["bestperiod"] - 0.7) < 0.02
    for a, b in zip(ours, theirs):
        assert a["bestperiod"] == b["bestperiod"]
        np.testing.assert_array_equal(a["nbestperiods"], b["nbestperiods"])
        np.testing.assert_array_equal(a["periods"], b["periods"])
        np.testing.assert_allclose(a["lspvals"], b["lspvals"], rtol=0, atol=1e-13)
