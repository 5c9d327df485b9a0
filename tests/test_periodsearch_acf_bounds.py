"""The ACF's grid is bounded before the search runs: astrobase autocorrelates the light
curve on a regular grid of its commonest time step over its whole span, so its memory, its
time and its stored result grow with span / step, not with the number of points. A
request whose grid would pass ``max_frequencies`` is refused at once (400, naming tmin),
like a frequency grid; the count is the grid astrobase then makes."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from lcpanel.config import PeriodSearchSettings
from lcpanel.core.objects.acf import fill_magseries_gaps, grid_size
from lcpanel.core.objects.periodsearch import select_input, validate_options
from lcpanel.errors import UserError
from test_formats_real import HAT


def _lc(times, mags, errs):
    return SimpleNamespace(columns={"rjd": times, "mag": mags, "err": errs}, mag_columns=("mag",),
                           err_columns=("err",), time_columns=("rjd",))


def _hat_lc():
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    lc = hatlc.read_csvlc(str(HAT))
    return _lc(lc["rjd"], lc["aep_000"], lc["aie_000"])


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
@pytest.mark.parametrize("sigclip", [3.0, 10.0, [10.0, 3.0]])
def test_the_count_is_the_grid_astrobase_makes(sigclip):
    lc = _hat_lc()
    t, m, e = (lc.columns[c] for c in ("rjd", "mag", "err"))
    steps, step = grid_size(t, m, e, sigclip=sigclip)
    grid = fill_magseries_gaps(t, m, e, sigclip=sigclip, verbose=False)
    assert steps == len(grid["itimes"]) > 100_000
    assert step == grid["cadence"]


@pytest.mark.skipif(not HAT.exists(), reason="no ../shared/realdata")
def test_a_grid_over_the_limit_is_refused_and_a_narrower_span_runs():
    lc = _hat_lc()
    settings = replace(PeriodSearchSettings(), max_frequencies=150_000)
    with pytest.raises(UserError, match=r"grid of 199,136 time steps .* the limit is 150,000") as refused:
        select_input(lc, None, validate_options({"method": "acf", "sigclip": 3.0}), settings)
    assert refused.value.field == "tmin"
    t = lc.columns["rjd"][np.isfinite(lc.columns["rjd"])]
    half = validate_options({"method": "acf", "sigclip": 3.0, "tmax": float(t.min() + np.ptp(t) / 2)})
    data = select_input(lc, None, half, settings)
    assert 0 < data.nfrequencies <= 150_000
    assert data.nfrequencies == grid_size(data.times, data.mags, data.errs, sigclip=3.0)[0]


def test_a_few_points_picked_far_apart_cannot_ask_for_a_huge_grid():
    """Groups of three points 1.3 s apart, the groups 1,024 days apart (a magnitude range
    can pick such points out of a real light curve): the commonest step is 1.3 s and the
    grid would hold 201 million steps (three arrays of 1.6 GB each before the FFT). Refused."""
    step = 2.0 ** -16  # days, exact in binary: every small gap is the same number
    t = np.array([0.0, step, 2 * step] * 4) + np.repeat(np.arange(4) * 1024.0, 3)
    m = np.full(t.size, 12.0) + np.arange(t.size) * 1e-3
    lc = _lc(t, m, np.full(t.size, 0.01))
    assert grid_size(t, m, np.full(t.size, 0.01), sigclip=None) == (int(3 * 1024 / step) + 3, step)
    with pytest.raises(UserError, match="time steps") as refused:
        select_input(lc, None, validate_options({"method": "acf", "sigclip": None}), PeriodSearchSettings())
    assert refused.value.field == "tmin"
