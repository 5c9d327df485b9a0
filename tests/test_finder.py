"""Finder charts and stamps (lcpanel.core.objects.finder) drawn from field images: the demo
field written by examples/make_collection.py and small hand-made images with a rotated
TAN WCS in an extension HDU."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from lcpanel.core.objects import finder
from lcpanel.errors import NotFound, UserError

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MARKER_RGB = (0xD6, 0x27, 0x28)  # finder._MARKER


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory, generator):
    """The demo generator's field image for 300 catalogue objects (1350 x 1350 px at
    4 arcsec/px, about 0.65 s to draw) and its catalogue."""
    catalog = generator.simulate_catalog(300, seed=42)
    path = tmp_path_factory.mktemp("field") / "field.fits"
    generator.write_field_image(path, catalog, 42, 290.0, 45.0, 0.6)
    ids = [value.decode() for value in catalog["objectid"]]
    return {"path": path, "ra": catalog["ra"], "dec": catalog["decl"], "ids": ids}


@pytest.fixture(scope="module")
def field(demo):
    return finder.load_field(demo["path"])


def make_rotated_field(path, n=200, rotation_deg=30.0, scale_arcsec=1.5, seed=1):
    """A small image with Gaussian stars and a rotated TAN WCS, stored in the first
    extension (the primary HDU is empty). Returns the WCS and the star pixels."""
    rng = np.random.default_rng(seed)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 20.0]
    wcs.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    theta, scale = np.radians(rotation_deg), scale_arcsec / 3600.0
    wcs.wcs.cd = [[-scale * np.cos(theta), scale * np.sin(theta)],
                  [scale * np.sin(theta), scale * np.cos(theta)]]
    yy, xx = np.mgrid[:n, :n]
    image = 100.0 + rng.normal(0.0, 5.0, (n, n))
    xs, ys = rng.uniform(5, n - 5, 40), rng.uniform(5, n - 5, 40)
    for x, y, flux in zip(xs, ys, 10 ** rng.uniform(2, 4.5, 40)):
        image += flux * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image.astype(">f4"), wcs.to_header())]
                 ).writeto(path, overwrite=True)
    return wcs, xs, ys


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def marker_pixels(rgb: np.ndarray) -> int:
    """Pixels close to the circle colour (no such colour exists in a grey image)."""
    return int((np.abs(rgb.astype(int) - MARKER_RGB).sum(axis=2) < 60).sum())


def pixels(field, ra, dec):
    return field.wcs.world_to_pixel_values(np.asarray(ra), np.asarray(dec))


def nearest(demo, ra, dec, k):
    order = np.argsort(np.hypot((demo["ra"] - ra) * np.cos(np.radians(dec)), demo["dec"] - dec))
    return order[:k]


# ---------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------

def test_load_field_keeps_float32_data_and_celestial_wcs(field, demo):
    assert field.shape == (1350, 1350)
    assert field.data.dtype == np.float32 and not field.data.flags.writeable
    assert field.wcs.naxis == 2 and field.wcs.has_celestial
    assert field.pixscale_arcsec == pytest.approx(4.0)
    assert finder.load_field(demo["path"]) is field  # cached


def test_load_field_cache_follows_mtime_and_first_image_hdu(tmp_path):
    path = tmp_path / "rot.fits"
    make_rotated_field(path)
    first = finder.load_field(path)
    assert first.shape == (200, 200)  # found in the extension, not the empty primary
    assert finder.load_field(str(path)) is first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = finder.load_field(path)
    assert second is not first and second.mtime_ns == stat.st_mtime_ns + 10**9


def test_load_field_errors(tmp_path):
    with pytest.raises(NotFound, match="does not exist"):
        finder.load_field(tmp_path / "missing.fits")
    fits.PrimaryHDU(np.zeros((20, 20), np.float32)).writeto(tmp_path / "nowcs.fits")
    with pytest.raises(UserError, match="no celestial WCS"):
        finder.load_field(tmp_path / "nowcs.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(UserError, match="no 2-d image"):
        finder.load_field(tmp_path / "table.fits")
    (tmp_path / "junk.fits").write_text("not a FITS file")
    with pytest.raises(UserError):
        finder.load_field(tmp_path / "junk.fits")


# ---------------------------------------------------------------------------
# finder charts
# ---------------------------------------------------------------------------

def test_chart_draws_objects_on_a_non_blank_image(field, demo):
    sel = nearest(demo, 290.1, 45.1, 12)
    ra, dec = demo["ra"][sel], demo["dec"][sel]
    chart = finder.finder_chart(field, ra, dec, labels=[demo["ids"][i] for i in sel],
                                size_px=600, title="twelve objects")
    assert (chart.n_inside, chart.n_outside, chart.outside) == (12, 0, ())
    rgb = decode(chart.png)
    assert rgb.shape == (600, 600, 3)
    assert rgb.var() > 0
    empty = finder.finder_chart(field, [], [], size_px=600)
    assert empty.n_inside == 0 and empty.pixel_box == (0, 1350, 0, 1350)
    empty_rgb = decode(empty.png)
    assert empty_rgb.shape == (600, 600, 3) and empty_rgb.var() > 0
    assert not np.array_equal(rgb, empty_rgb)
    assert marker_pixels(rgb) > 12 * 20  # a red circle around each object
    assert marker_pixels(empty_rgb) == 0


def test_circles_are_the_difference_with_the_same_view(field, demo):
    """Same view with and without markers: highlighting every object drawns blue circles
    instead of red ones and the grey image underneath stays the same."""
    sel = nearest(demo, 289.9, 44.9, 6)
    plain = decode(finder.finder_chart(field, demo["ra"][sel], demo["dec"][sel]).png)
    blue = decode(finder.finder_chart(field, demo["ra"][sel], demo["dec"][sel],
                                      highlight=list(range(6))).png)
    assert marker_pixels(plain) > 0 and marker_pixels(blue) == 0
    assert not np.array_equal(plain, blue)


def test_zoom_contains_every_object_with_padding(field, demo):
    sel = nearest(demo, 290.2, 44.8, 30)
    ra, dec = demo["ra"][sel], demo["dec"][sel]
    chart = finder.finder_chart(field, ra, dec, pad_arcsec=30)
    x0, x1, y0, y1 = chart.pixel_box
    assert 0 <= x0 < x1 <= 1350 and 0 <= y0 < y1 <= 1350
    x, y = pixels(field, ra, dec)
    pad = 30 / field.pixscale_arcsec
    assert np.all(x - pad >= x0 - 1) and np.all(x + pad <= x1)
    assert np.all(y - pad >= y0 - 1) and np.all(y + pad <= y1)
    assert abs((x1 - x0) - (y1 - y0)) <= 1  # square
    # and not much larger than needed
    need = max(np.ptp(x), np.ptp(y)) + 2 * pad
    assert x1 - x0 <= need + 3
    assert chart.width_arcmin == pytest.approx((x1 - x0) * 4 / 60, abs=1e-3)
    cx, cy = pixels(field, *chart.center)
    assert cx == pytest.approx((x0 + x1 - 1) / 2, abs=0.01)
    assert cy == pytest.approx((y0 + y1 - 1) / 2, abs=0.01)


def test_zoom_near_the_edge_stays_on_the_image_and_single_objects_get_context(field):
    wcs = field.wcs
    ra, dec = wcs.pixel_to_world_values([3.0, 40.0], [1346.0, 1300.0])
    chart = finder.finder_chart(field, ra, dec)
    x0, x1, y0, y1 = chart.pixel_box
    assert x0 == 0 and y1 == 1350 and (x1 - x0) == (y1 - y0)
    x, y = pixels(field, ra, dec)
    assert np.all((x >= x0) & (x <= x1 - 1) & (y >= y0) & (y <= y1 - 1))
    single = finder.finder_chart(field, [ra[1]], [dec[1]])
    sx0, sx1, _, _ = single.pixel_box
    assert sx1 - sx0 >= finder.MIN_CHART_ARCSEC / field.pixscale_arcsec
    assert single.width_arcmin >= finder.MIN_CHART_ARCSEC / 60


def test_whole_field_chart_for_all_300_objects(field, demo):
    chart = finder.finder_chart(field, demo["ra"], demo["dec"], labels=demo["ids"],
                                highlight="LCP-000005")
    assert chart.n_inside == 300 and chart.n_outside == 0
    x0, x1, y0, y1 = chart.pixel_box
    x, y = pixels(field, demo["ra"], demo["dec"])
    assert np.all((x >= x0 - 0.5) & (x <= x1 - 0.5) & (y >= y0 - 0.5) & (y <= y1 - 0.5))
    assert decode(chart.png).shape == (800, 800, 3)


def test_objects_outside_the_image_are_counted(field, demo):
    ra = [demo["ra"][0], 10.0, np.nan, demo["ra"][1], 110.0, 290.0]
    dec = [demo["dec"][0], -5.0, 45.0, demo["dec"][1], -45.0, 46.5]
    # 10,-5: another part of the sky; NaN: no position; 110,-45: the far side of the
    # sky (TAN cannot place it); 290,+46.5: beyond the image's north edge
    chart = finder.finder_chart(field, ra, dec, labels=list("abcdef"))
    assert (chart.n_inside, chart.n_outside) == (2, 4)
    assert chart.outside == (1, 2, 4, 5)
    x, y = pixels(field, ra[:1] + ra[3:4], dec[:1] + dec[3:4])
    x0, x1, y0, y1 = chart.pixel_box
    assert np.all((x >= x0) & (x < x1) & (y >= y0) & (y < y1))
    none = finder.finder_chart(field, [10.0], [-5.0])
    assert (none.n_inside, none.n_outside, none.outside) == (0, 1, (0,))
    assert none.pixel_box == (0, 1350, 0, 1350)


def test_chart_argument_errors(field, demo):
    with pytest.raises(UserError, match="equally long"):
        finder.finder_chart(field, [290.0, 290.1], [45.0])
    with pytest.raises(UserError, match="labels"):
        finder.finder_chart(field, [290.0], [45.0], labels=["a", "b"])
    with pytest.raises(UserError, match="not one of the labels"):
        finder.finder_chart(field, [290.0], [45.0], labels=["a"], highlight="b")
    with pytest.raises(UserError, match="out of range"):
        finder.finder_chart(field, [290.0], [45.0], highlight=3)
    with pytest.raises(UserError, match="size_px"):
        finder.finder_chart(field, [290.0], [45.0], size_px=10)
    with pytest.raises(UserError, match="pad_arcsec"):
        finder.finder_chart(field, [290.0], [45.0], pad_arcsec=-1)


def test_rotated_wcs_in_an_extension(tmp_path):
    wcs, xs, ys = make_rotated_field(tmp_path / "rot.fits")
    rot = finder.load_field(tmp_path / "rot.fits")
    ra, dec = wcs.wcs_pix2world(xs[:5], ys[:5], 0)
    chart = finder.finder_chart(rot, ra, dec, labels=[f"s{i}" for i in range(5)], size_px=400)
    assert chart.n_inside == 5
    x0, x1, y0, y1 = chart.pixel_box
    assert np.all((xs[:5] >= x0) & (xs[:5] < x1) & (ys[:5] >= y0) & (ys[:5] < y1))
    assert decode(chart.png).shape == (400, 400, 3)


# ---------------------------------------------------------------------------
# stamps
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["middle", "edge"])
def test_stamp_is_centred_on_the_object(field, demo, where):
    if where == "middle":
        ra, dec = float(demo["ra"][5]), float(demo["dec"][5])
    else:  # 2 px from a corner: the cutout runs off the image and is filled
        ra, dec = (float(v) for v in field.wcs.pixel_to_world_values(2.0, 1347.0))
    cutout = finder.stamp_cutout(field, ra, dec, size_arcmin=2.0)
    ny, nx = cutout.data.shape
    assert (ny, nx) == (30, 30)  # 2 arcmin at 4 arcsec/px
    x, y = cutout.wcs.world_to_pixel_values(ra, dec)
    assert abs(x - (nx - 1) / 2) <= 1 and abs(y - (ny - 1) / 2) <= 1
    assert np.isnan(cutout.data).any() == (where == "edge")
    rgb = decode(finder.object_stamp(field, ra, dec))
    assert rgb.shape == (300, 300, 3) and rgb.var() > 0
    assert marker_pixels(rgb) > 100  # the crosshair
    # the crosshair's arms meet at the centre of the PNG
    rows, cols = np.nonzero(np.abs(rgb.astype(int) - MARKER_RGB).sum(axis=2) < 60)
    assert abs(np.median(cols) - 150) <= 3 and abs(np.median(rows) - 150) <= 3


def test_stamp_outside_the_image_is_a_user_error(field):
    with pytest.raises(UserError, match="outside the field image"):
        finder.object_stamp(field, 10.0, -5.0)
    with pytest.raises(UserError, match="outside the field image"):
        finder.object_stamp(field, 290.0, 46.5)
    with pytest.raises(UserError, match="not a valid position"):
        finder.object_stamp(field, float("nan"), 45.0)
    with pytest.raises(UserError, match="size"):
        finder.object_stamp(field, 290.0, 45.0, size_arcmin=0)


# ---------------------------------------------------------------------------
# determinism, threads, speed, screenshots
# ---------------------------------------------------------------------------

def test_same_inputs_same_bytes(field, demo):
    sel = nearest(demo, 290.0, 45.0, 20)
    args = (field, demo["ra"][sel], demo["dec"][sel])
    kwargs = {"labels": [demo["ids"][i] for i in sel], "highlight": 0, "title": "t"}
    first = finder.finder_chart(*args, **kwargs).png
    assert finder.finder_chart(*args, **kwargs).png == first
    stamp = finder.object_stamp(field, demo["ra"][3], demo["dec"][3])
    assert finder.object_stamp(field, demo["ra"][3], demo["dec"][3]) == stamp
    for png in (first, stamp):
        assert png.startswith(b"\x89PNG") and b"Matplotlib" not in png and b"tEXt" not in png


def test_threads_render_the_same_bytes(field, demo):
    sel = nearest(demo, 290.3, 45.2, 25)
    expected_chart = finder.finder_chart(field, demo["ra"][sel], demo["dec"][sel]).png
    expected_stamp = finder.object_stamp(field, demo["ra"][7], demo["dec"][7])
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(finder.finder_chart(field, demo["ra"][sel], demo["dec"][sel]).png)
                results.append(finder.object_stamp(field, demo["ra"][7], demo["dec"][7]))
        except Exception as exc:  # noqa: BLE001 - any failure in a thread is reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results.count(expected_chart) == 9 and results.count(expected_stamp) == 9


def test_save_screenshots(field, demo):
    """Writes artifacts/screenshots/finder-chart.png and finder-stamp.png to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sel = nearest(demo, 290.1, 45.1, 15)
    ra = np.append(demo["ra"][sel], 291.5)   # one object off the image
    dec = np.append(demo["dec"][sel], 45.0)
    labels = [demo["ids"][i] for i in sel] + ["LCP-OFFIMAGE"]
    chart = finder.finder_chart(field, ra, dec, labels=labels, highlight=labels[0],
                                title=f"lcpanel demo: {len(sel)} objects")
    assert (chart.n_inside, chart.n_outside) == (15, 1)
    (SCREENSHOTS / "finder-chart.png").write_bytes(chart.png)
    stamp = finder.object_stamp(field, ra[0], dec[0])
    (SCREENSHOTS / "finder-stamp.png").write_bytes(stamp)
    assert decode(stamp).shape == (300, 300, 3)
