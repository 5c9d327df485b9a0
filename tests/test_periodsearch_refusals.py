"""Period-search requests astrobase cannot carry out are refused before they start (a 400
naming the option) or, when only the search itself can tell, fail with a message a user
can act on, not astrobase's IndexError. Found by sending random option sets to the demo's
period search: one request was a 500, three jobs failed with astrobase's exceptions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lcpanel.config import PeriodSearchSettings
from lcpanel.core.objects.periodsearch import METHODS, run_method, select_input, validate_options
from lcpanel.errors import UserError

GRIDDED = sorted(code for code, m in METHODS.items() if m.grid != "none")


@pytest.mark.parametrize("method", GRIDDED)
def test_autofreq_false_without_a_stepsize_names_stepsize(method):
    """It reached astrobase with no step: a TypeError, a 500 for the frequency-counted
    methods and a failed job for BLS."""
    with pytest.raises(UserError) as err:
        validate_options({"method": method, "autofreq": False})
    assert err.value.field == "stepsize" and "autofreq" in str(err.value)
    assert validate_options({"method": method, "autofreq": False, "stepsize": 1e-3})["stepsize"] == 1e-3


def test_the_acf_compares_at_least_two_peaks():
    """astrobase's ACF compares its first two peaks: with maxacfpeaks 1 it raised IndexError."""
    with pytest.raises(UserError) as err:
        validate_options({"method": "acf", "maxacfpeaks": 1})
    assert err.value.field == "maxacfpeaks"
    assert validate_options({"method": "acf", "maxacfpeaks": 2})["maxacfpeaks"] == 2


def _series(n: int, span: float, seed: int):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, span, n))
    return t, 12 + 0.1 * np.sin(2 * np.pi * t / 1.7) + rng.normal(0, 0.05, n), np.full(n, 0.01)


def test_a_smoothing_window_longer_than_the_acf_is_refused_before_the_search():
    """A window of 1,001 lags on an ACF of 417: astrobase's Savitzky-Golay filter raised
    ValueError inside the job."""
    t, m, e = _series(29, 38.13, 67)
    lc = SimpleNamespace(columns={"rjd": t, "mag": m, "err": e}, mag_columns=("mag",), err_columns=("err",),
                         time_columns=("rjd",))
    with pytest.raises(UserError) as err:
        select_input(lc, None, validate_options({"method": "acf", "smoothacf": 1001}), PeriodSearchSettings())
    assert err.value.field == "smoothacf" and "lags" in str(err.value)
    data = select_input(lc, None, validate_options({"method": "acf", "smoothacf": 21}), PeriodSearchSettings())
    assert data.nfrequencies == 417


@pytest.mark.parametrize("n,span,seed,smooth", [(55, 3.62, 13, 401), (44, 37.34, 79, 401), (41, 8.35, 51, 401),
                                                 (29, 38.13, 67, 401)])
def test_an_acf_with_too_few_peaks_fails_with_a_message_not_astrobases_exception(n, span, seed, smooth):
    """Few points, strong smoothing: astrobase's ACF has too few peaks for its fit of the
    peak lags (an IndexError or numpy's polyfit ValueError); a few points more, it runs."""
    t, m, e = _series(n, span, seed)
    opts = validate_options({"method": "acf", "smoothacf": smooth})
    with pytest.raises(UserError, match="too few peaks") as err:
        run_method(opts, t, m, e)
    assert "smoothacf" in str(err.value)
    t, m, e = _series(2000, span, seed)
    assert np.isfinite(run_method(validate_options({"method": "acf", "smoothacf": 21}), t, m, e)["bestperiod"])
