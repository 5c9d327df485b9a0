"""What the light-curve plot says about its time axis (issue 14, finding 5): the time
column, the offset, and the time system where the format states it; which columns are
times (the real HATNet light curve has rjd and bjd)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcpanel.core.objects.lcformats import LightCurve
from lcpanel.core.objects.plotlabels import time_axis_label, time_columns, time_system

HAT_LC = (Path(__file__).resolve().parent / "realdata"
          / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz")


def test_label_names_column_offset_and_stated_system():
    info = {"bjd": {"timesys": "TDB", "timeref": "SOLARSYSTEM"}, "rjd": {"origin": 2400000, "scale": "UTC"}}
    assert time_axis_label("bjd", 2460473.0, info) == "bjd − 2460473 [d] (barycentric, TDB)"
    assert time_axis_label("rjd", 55000, info) == "rjd − 55000 [d] (UTC, JD − 2400000)"
    assert time_axis_label("rjd", 0, {}) == "rjd [d] (time system not stated)"
    # the light curve's own statement, when the column has none; UNKNOWN is not a statement
    assert time_system("time", {}, {"timesys": "TDB", "timeref": "BJD"}) == "BJD, TDB"
    assert time_system("time", {}, {"timesys": "UNKNOWN"}) == ""


def test_label_words_the_format_knowledge():
    from lcpanel.core.objects.formatinfo import HAT_EXTRA

    info = {"bjd": HAT_EXTRA["bjd"], "rjd": HAT_EXTRA["rjd"]}
    assert time_axis_label("bjd", 2455103, info) == "bjd − 2455103 [d] (BJD_TDB)"
    assert time_axis_label("rjd", 55103, info) == "rjd − 55103 [d] (JD - 2400000 (scale not stated))"


def test_time_columns_of_the_real_hat_light_curve():
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    lcd = hatlc.read_csvlc(str(HAT_LC))
    cols = {k: np.asarray(lcd[k]) for k in lcd["columns"]}
    lc = LightCurve(objectid=lcd["objectid"], columns=cols, time_columns=("rjd",),
                    mag_columns=("aep_000", "atf_000"))
    assert time_columns(lc) == ["rjd", "bjd"]  # declared first, then the other time column
    assert len(cols["rjd"]) == lcd["objectinfo"]["ndet"] == 10564


@pytest.mark.parametrize("name", ["BJD", "TMID_BJD", "time", "btjd"])
def test_time_column_names_across_formats(name):
    lc = LightCurve(objectid="x", columns={name: np.arange(3.0), "mag": np.ones(3), "flag": np.array(["a"] * 3)})
    assert time_columns(lc) == [name]
