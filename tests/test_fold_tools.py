"""The object page's fold tools outside the browser: astrobase's Fourier fit and
variability features as :mod:`lcpanel.core.objects.lcanalysis` gives them (compared with
astrobase called directly and with numpy), saved periods with a shared epoch
(:mod:`lcpanel.core.objects.savedperiods`: who may do what, caps, nothing written in the
survey's directory, through the JSON API with identity and same-origin checks), and the
object page's fold panel (×2 / ÷2, error bars, saving periods, the review form's empty
fields)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_api import running_server
from test_checkplots import reviewed_variable, unreviewed
from test_magcols_realdata import hat_app  # noqa: F401
from test_reviews import ANN, ANON, BOB, REV, ROOT, call, object_page, renv, tree_digest  # noqa: F401

from lcpanel.errors import Forbidden, NotFound, TooManyRequests, UserError

HAT_LC = (Path(__file__).resolve().parent / "realdata"
          / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz")


def hat_series(magcol: str = "aep_000"):
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.hatsurveys import hatlc

    lcd = hatlc.read_csvlc(str(HAT_LC))
    return (np.asarray(lcd["rjd"], float), np.asarray(lcd[magcol], float),
            np.asarray(lcd["aie_" + magcol.split("_")[1]], float))


def synthetic(n=600, period=1.37, seed=3):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 40, n))
    m = 12 + 0.2 * np.cos(2 * np.pi * t / period) + 0.05 * np.cos(4 * np.pi * t / period + 1) + rng.normal(0, .01, n)
    return t, m, np.full(n, 0.01)


# --- the Fourier fit and the variability features ----------------------------------------------


@pytest.mark.parametrize("source", ["synthetic", "hat"])
def test_fourier_fit_is_astrobase_s_and_its_parameters_rebuild_the_model(source):
    from lcpanel.core.objects.lcanalysis import fourier_fit

    t, m, e = synthetic() if source == "synthetic" else hat_series()
    period = 1.37 if source == "synthetic" else 0.4823
    fit = fourier_fit(t, m, e, period, order=3)
    from astrobase.lcfit.sinusoidal import fourier_fit_magseries

    direct = fourier_fit_magseries(t, m, e, period, fourierorder=3, sigclip=None, verbose=False)
    assert fit["chisq"] == pytest.approx(direct["fitchisq"], rel=1e-9)
    assert fit["redchisq"] == pytest.approx(direct["fitredchisq"], rel=1e-9)
    assert np.allclose(fit["model"], direct["fitinfo"]["fitmags"])
    # independently: the cosine series about the median, phase from the first time, and chi2 from it
    ok = np.isfinite(t) & np.isfinite(m) & np.isfinite(e) & (e != 0)
    t0, m0, e0 = t[ok], m[ok], e[ok]
    order = np.argsort(((fit["times"] - t0.min()) / period) % 1.0, kind="stable")
    ph = ((fit["times"] - t0.min()) / period) % 1.0
    # astrobase's series: term k = 0 .. order-1 is a_k cos(2 pi k phase + phi_k) (k = 0: a constant)
    model = np.median(m0) + sum(a * np.cos(2 * np.pi * i * ph + p)
                                for i, (a, p) in enumerate(zip(fit["amplitudes"], fit["phases"])))
    assert np.allclose(model, fit["model"], atol=1e-9)
    lookup = dict(zip(t0, zip(m0, e0)))
    obs = np.array([lookup[x][0] for x in fit["times"]])
    err = np.array([lookup[x][1] for x in fit["times"]])
    assert fit["chisq"] == pytest.approx(float(np.sum((obs - fit["model"]) ** 2 / err ** 2)), rel=1e-9)
    assert fit["npoints"] == ok.sum() and len(order) == ok.sum()
    if source == "synthetic":  # the true amplitudes come back
        assert [abs(a) for a in fit["amplitudes"][1:]] == pytest.approx([0.2, 0.05], abs=0.005)


def test_fourier_fit_refuses_bad_input_by_field():
    from lcpanel.core.objects.lcanalysis import fourier_fit

    t, m, e = synthetic()
    for kwargs, field in (({"order": 0}, "order"), ({"order": 9}, "order"), ({"order": 2.5}, "order")):
        with pytest.raises(UserError) as exc:
            fourier_fit(t, m, e, 1.37, **kwargs)
        assert exc.value.field == field
    for period in (0, -1, float("nan")):
        with pytest.raises(UserError) as exc:
            fourier_fit(t, m, e, period)
        assert exc.value.field == "period"
    with pytest.raises(UserError, match="at least 10"):
        fourier_fit(t[:5], m[:5], e[:5], 1.0)


def test_variability_features_are_astrobase_s_and_agree_with_numpy():
    from lcpanel.core.objects.lcanalysis import FEATURES, variability_features

    t, m, e = hat_series()
    feats = variability_features(t, m, e)
    from astrobase.varclass.varfeatures import all_nonperiodic_features

    ok = np.isfinite(t) & np.isfinite(m) & np.isfinite(e) & (e != 0)
    direct = all_nonperiodic_features(t[ok], m[ok], e[ok])
    assert set(feats) == {k for k, _, _ in FEATURES} and "linear_fit_slope" not in feats
    for key in feats:
        assert feats[key] == pytest.approx(float(direct[key]), rel=1e-12), key
    assert feats["ndet"] == ok.sum()
    assert feats["median"] == pytest.approx(np.median(m[ok]))
    mad = np.median(np.abs(m[ok] - np.median(m[ok])))
    assert feats["mad"] == pytest.approx(mad) and feats["stdev"] == pytest.approx(1.483 * mad)  # astrobase's robust σ
    w = 1 / e[ok] ** 2
    assert feats["wmean"] == pytest.approx(np.sum(m[ok] * w) / np.sum(w))
    assert feats["timelength"] == pytest.approx(t[ok].max() - t[ok].min())


# --- saved periods ------------------------------------------------------------------------------


@pytest.mark.slow
def test_saved_periods_share_an_epoch_keep_the_adopted_one_and_hold_their_rules(renv, monkeypatch):
    from lcpanel.core.objects import reviews, savedperiods as sp

    app, base, source = renv["app"], renv["base"], renv["source"]
    catalog = app.catalogs.get("demo")
    oid = reviewed_variable(renv["cps"])
    before = tree_digest(source)
    adopted = renv["cps"][oid]["varinfo"]["varperiod"]

    listed = sp.object_periods(base, catalog, oid)
    assert [p["period"] for p in listed["periods"]] == [pytest.approx(adopted)] and listed["periods"][0]["adopted"]
    a = sp.save_period(base, catalog, oid, ANN, 2 * adopted, label="twice <b>", epoch=100.25)
    b = sp.save_period(base, catalog, oid, ANON, "0.5", label=None, epoch=999.0)  # the epoch is set already
    again = sp.save_period(base, catalog, oid, BOB, 2 * adopted * (1 + 1e-12))
    assert again["period_id"] == a["period_id"] and again["author"] == "user:ann"
    listed = sp.object_periods(base, catalog, oid)
    assert [p["period"] for p in listed["periods"]] == [pytest.approx(adopted), 2 * adopted, 0.5]
    assert listed["periods"][1]["label"] == "twice <b>" and listed["periods"][2]["author"] == ANON.identity
    assert listed["epoch"]["epoch"] == 100.25 and listed["epoch"]["author"] == "user:ann"

    with pytest.raises(Forbidden):
        sp.set_epoch(base, catalog, oid, ANN, 5.0)  # users save periods; staff set the shared epoch
    assert sp.set_epoch(base, catalog, oid, REV, 2450000.5)["epoch"] == 2450000.5
    with pytest.raises(Forbidden):
        sp.delete_period(base, catalog, oid, BOB, a["period_id"])
    with pytest.raises(Forbidden):
        sp.delete_period(base, catalog, oid, REV, a["period_id"])  # staff is not admin
    sp.delete_period(base, catalog, oid, ANON, b["period_id"])
    sp.delete_period(base, catalog, oid, ROOT, a["period_id"])
    with pytest.raises(NotFound):
        sp.delete_period(base, catalog, oid, ROOT, a["period_id"])
    assert [p["period"] for p in sp.object_periods(base, catalog, oid)["periods"]] == [pytest.approx(adopted)]

    for bad, field in (({"period": 0}, "period"), ({"period": "x"}, "period"), ({"period": True}, "period"),
                       ({"period": 1, "label": "x" * 81}, "label"), ({"period": 1, "label": "a\x00b"}, "label"),
                       ({"period": 1, "epoch": float("inf")}, "epoch")):
        with pytest.raises(UserError) as exc:
            sp.save_period(base, catalog, oid, ANN, bad["period"], label=bad.get("label"), epoch=bad.get("epoch"))
        assert exc.value.field == field
    with pytest.raises(NotFound):
        sp.save_period(base, catalog, "no-such-object", ANN, 1.0)
    monkeypatch.setattr(sp, "MAX_PER_DAY", 2)
    other = unreviewed(renv["cps"])
    sp.save_period(base, catalog, other, BOB, 1.1)
    sp.save_period(base, catalog, other, BOB, 1.2)
    with pytest.raises(TooManyRequests):
        sp.save_period(base, catalog, other, BOB, 1.3)
    sp.save_period(base, catalog, other, ROOT, 1.3)  # admins are not capped
    assert not reviews.object_reviews(base, renv["info"], other)["history"]  # saved periods are not varinfo edits
    assert (Path(base.path) / sp.PERIODS_FILE).is_file()
    assert tree_digest(source) == before


@pytest.mark.slow
def test_saved_periods_api_needs_identity_and_same_origin_and_writes_nothing_in_the_collection(renv):
    import urllib.request

    base, source, keys = renv["base"], renv["source"], renv["keys"]
    oid = reviewed_variable(renv["cps"])
    before = tree_digest(source)
    with running_server(base.path) as (url, _proc):
        api = f"{url}/api/collections/demo/objects/{oid}/reviews/periods"
        status, data, _ = call(api)
        assert status == 200 and data["periods"][0]["adopted"] and data["periods"][0]["can_delete"] is False
        status, data, headers = call(api, "POST", {"period": 1.2345, "label": "from the API", "epoch": 55.5})
        assert status == 201, data
        assert data["period"]["author"].startswith("anon:")
        cookie = headers["Set-Cookie"].split(";")[0]
        status, data, _ = call(api, "POST", {"epoch": 1.0}, cookie=cookie)
        assert status == 403 and "staff" in data["error"]
        status, data, _ = call(api, "POST", {"epoch": 77.0}, key=keys["rev"])
        assert status == 200 and data["epoch"]["epoch"] == 77.0
        status, ann, _ = call(api, "POST", {"period": 2.5}, key=keys["ann"])
        assert status == 201
        status, data, _ = call(api, "POST", {"period": -2}, key=keys["ann"])
        assert status == 400 and "period" in data["error"]
        status, data, _ = call(api, "POST", {"colour": "red"}, key=keys["ann"])
        assert status == 400
        pid = ann["period"]["period_id"]
        status, data, _ = call(f"{api}/{pid}", "DELETE", key=keys["bob"])
        assert status == 403

        # a write from another site is refused before anything happens
        req = urllib.request.Request(api, data=b'{"period": 9.0}', method="POST",
                                     headers={"Content-Type": "application/json", "Origin": "https://evil.example"})
        try:
            urllib.request.urlopen(req, timeout=60)
            raise AssertionError("a cross-site write was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403

        status, data, _ = call(api, key=keys["ann"])
        periods = [(p["period"], p["can_delete"]) for p in data["periods"]]
        assert periods[1:] == [(1.2345, False), (2.5, True)] and data["epoch"]["epoch"] == 77.0
        status, data, _ = call(f"{api}/{pid}", "DELETE", key=keys["ann"])
        assert status == 200
        status, data, _ = call(f"{url}/api/collections/demo/objects/nope/reviews/periods")
        assert status == 404
    assert tree_digest(source) == before


# --- the fold panel in-process --------------------------------------------------------------


@pytest.mark.slow
def test_fold_panel_doubles_halves_saves_periods_and_fits(renv, monkeypatch):
    from lcpanel.core.objects import savedperiods as sp

    app, base, source = renv["app"], renv["base"], renv["source"]
    oid = reviewed_variable(renv["cps"])
    before = tree_digest(source)
    page = object_page(app, oid, ANN, monkeypatch)
    page.__panel__()
    fold = page.fold
    p0 = fold.period_in.value
    fold.double_btn.clicks += 1
    assert fold.period_in.value == pytest.approx(2 * p0) and fold.current_fold[0] == pytest.approx(2 * p0)
    fold.half_btn.clicks += 1
    fold.half_btn.clicks += 1
    assert fold.current_fold[0] == pytest.approx(p0 / 2)
    # error bars: one bar per drawn point, from the checkplot's errors
    assert not fold.err_renderer.visible
    fold.errbars.value = True
    assert fold.err_renderer.visible
    d = fold.fold_src.data
    assert np.allclose(np.asarray(d["upper"]) - np.asarray(d["mag"]), np.asarray(d["err"]))
    # save two periods; the list shows them with the adopted one
    page.saved.save_label.value = "half"
    page.saved.save_btn.clicks += 1
    fold.set_period(p0 * 3)
    page.saved.save_btn.clicks += 1
    saved = sp.object_periods(base, app.catalogs.get("demo"), oid)
    assert [p["period"] for p in saved["periods"][1:]] == [pytest.approx(p0 / 2), pytest.approx(3 * p0)]
    assert saved["periods"][1]["label"] == "half" and saved["periods"][1]["author"] == "user:ann"
    assert saved["epoch"] is not None
    shown = " ".join(page.saved.saved_box.labels)
    assert f"{p0 / 2:.8g}" in shown and f"{3 * p0:.8g}" in shown
    # the Fourier fit overlay at the fold's period, with its chi2 stated
    from support import aio

    fold.fit_order.value = 2
    aio.run(fold._fit)  # what the Fit button runs (a coroutine on the server's loop)
    assert len(fold.fit_src.data["phase"]) > 0 and "χ²" in fold.fit_status.object
    assert f"{3 * p0:.8g}"[:6] in fold.fit_status.object
    # variability features on demand (a coroutine too: computed on the worker threads)
    aio.run(page.features._compute)
    assert "Stetson J" in page.features.table.object and not page.features.button.disabled
    assert tree_digest(source) == before


@pytest.mark.slow
def test_clearing_a_review_field_shows_it_empty(renv, monkeypatch):
    app = renv["app"]
    oid = reviewed_variable(renv["cps"])
    staff = object_page(app, oid, REV, monkeypatch)
    staff.review.f_period.value = float("nan")  # what a cleared number box sends
    staff.review.f_epoch.value = None
    staff.review._save_form()
    assert staff.review.review_msg.alert_type == "success", staff.review.review_msg.object
    assert staff.ctx.values["varperiod"] is None
    assert staff.review.f_period.value is None and staff.review.f_epoch.value is None
    assert "NaN" not in staff.record.pane.object and ">nan<" not in staff.record.pane.object
    assert not any(isinstance(v, float) and math.isnan(v) for v in staff.ctx.values.values())


# --- the light curve as stored, with the format's quality masks (real HATNet data) -------------


def test_stored_light_curve_hides_or_greys_the_points_a_quality_mask_rejects(hat_app):
    from test_magcols_realdata import OID as HAT_OID

    from lcpanel.views.object_page import ObjectPage

    app, _coll = hat_app
    t, m, _e = hat_series("aep_000")
    from astrobase.hatsurveys import hatlc

    flags = np.asarray(hatlc.read_csvlc(str(HAT_LC))["aiq_000"]).astype(str)
    page = ObjectPage(app=app, collection="hat", objectid=HAT_OID, magcol="aep_000")
    page.__panel__()
    plot = page.lc_plot
    assert plot.mask.visible and "aiq_000_good" in plot.mask.options and plot.mask.disabled  # checkplot series
    plot.series.value = "as stored"
    ok = np.isfinite(t) & np.isfinite(m)
    assert len(plot.src.data["mag"]) == ok.sum() and len(plot.masked_src.data["mmag"]) == 0
    plot.mask.value = "aiq_000_good"
    good = ok & (flags == "G")
    rejected = ok & (flags != "G")
    assert rejected.sum() > 0 and len(plot.src.data["mag"]) == good.sum()
    assert np.allclose(np.sort(plot.src.data["t"]), np.sort(t[good]))
    assert f'lcp-lc-masked-count">{int(rejected.sum()):,}<' in plot.status.object and "hidden" in plot.status.object
    assert not plot.masked_points.visible
    plot.show_masked.value = True
    assert plot.masked_points.visible and len(plot.masked_src.data["mmag"]) == rejected.sum()
    assert "grey" in plot.status.object
    plot.timecol.value = "bjd"  # the mask holds in any time column; the axis names it
    assert plot.fig.xaxis.axis_label.startswith("bjd − ") and len(plot.src.data["mag"]) <= good.sum()
    plot.mask.value = "no mask (all points)"
    assert len(plot.masked_src.data["mmag"]) == 0
