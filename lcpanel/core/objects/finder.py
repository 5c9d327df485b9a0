"""Finder charts and per-object finder stamps drawn from a collection's field image.

A collection may come with a field image (``CollectionInfo.field_fits``): a FITS image
with a celestial WCS. This module draws two kinds of PNG from it:

- :func:`finder_chart`: every object of a dataset circled on the field image, zoomed to
  the smallest square-ish box that holds them all (plus padding), with RA/Dec axes, a
  N/E compass and a scale bar, like a DSS finder chart (dark stars on a light sky).
  It returns a :class:`FinderChart`: the PNG plus how many objects were drawn, which
  ones fell outside the image and the pixel box that was shown.
- :func:`object_stamp`: a small cutout centred on one object, with a crosshair, a
  compass, a scale bar and the position written in a corner. A position outside the
  image raises :class:`~lcpanel.errors.UserError`.

Open images with :func:`load_field`. It reads the FITS file once (the first 2-d image
HDU), and keeps the pixels (float32, read-only) and the celestial WCS in a small LRU
cache keyed by path and modification time, so a server that renders many charts reads
each image once and picks up a replaced file.

Rendering is thread-safe: it uses a private :class:`matplotlib.figure.Figure` on a
``FigureCanvasAgg`` (never pyplot, never global matplotlib state), and every render
works on its own copy of the WCS. Output is deterministic: the same inputs give the
same PNG bytes (no software version or date is embedded), because products built from
these charts are content-addressed.
"""

from __future__ import annotations

import functools
import io
import math
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import NotFound, UserError

#: charts label every object up to this many objects inside the image; above it only
#: the highlighted objects are labelled
MAX_LABELS = 40
#: a finder chart never shows less sky than this (so a single object gets context)
MIN_CHART_ARCSEC = 120.0
#: limits on the requested PNG size, in pixels
MIN_SIZE_PX, MAX_SIZE_PX = 128, 4096
#: limits on a stamp's size on the sky
MIN_STAMP_ARCMIN, MAX_STAMP_ARCMIN = 0.1, 60.0
#: image scaling: ZScale contrast (lower shows more range) and asinh softening
ZSCALE_CONTRAST, ASINH_A = 0.05, 0.3
#: field images kept open at once
FIELD_CACHE_SIZE = 4

_MARKER = "#d62728"        # object circles
_HIGHLIGHT = "#1f77b4"     # highlighted objects
_ANNOTATION = "#08306b"    # compass and scale bar
_OFF_IMAGE = "#dfe4ea"     # stamp area beyond the edge of the field image
_PNG_COMPRESS_LEVEL = 3
# scale bar lengths to choose from, in arcsec
_NICE_ARCSEC = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800,
                3600, 7200, 18000, 36000)


# ---------------------------------------------------------------------------
# field images
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Field:
    """A field image: pixels and celestial WCS, shared read-only between renders.

    ``data`` is float32 with shape ``(ny, nx)`` (numpy order) and is not writeable;
    ``wcs`` is the image's celestial :class:`astropy.wcs.WCS`. Do not transform with
    ``wcs`` directly from several threads: use :meth:`wcs_copy`.
    """

    path: str
    mtime_ns: int
    data: np.ndarray
    wcs: object
    pixscale_arcsec: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape

    def wcs_copy(self):
        """A private copy of the WCS for one render."""
        with self._lock:
            return self.wcs.deepcopy()


def load_field(path: str | os.PathLike) -> Field:
    """Open a field image; the same file (path and mtime) is only read once.

    Raises NotFound when the file does not exist and UserError when it has no 2-d
    image with a celestial WCS.
    """
    path = Path(path).resolve()
    try:
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise NotFound(f"field image {path.name!r} does not exist") from None
    return _load_field_cached(str(path), mtime_ns)


@functools.lru_cache(maxsize=FIELD_CACHE_SIZE)
def _load_field_cached(path: str, mtime_ns: int) -> Field:
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    name = Path(path).name
    try:
        with fits.open(path, memmap=False) as hdulist:
            for hdu in hdulist:
                if not hdu.is_image:
                    continue
                header = hdu.header
                naxes = [header.get(f"NAXIS{i}", 0) for i in range(1, header.get("NAXIS", 0) + 1)]
                if len(naxes) < 2 or any(n != 1 for n in naxes[2:]) or min(naxes[:2]) < 2:
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FITSFixedWarning)
                    full = WCS(header, hdulist)
                if not full.has_celestial or {full.wcs.lng, full.wcs.lat} != {0, 1}:
                    raise UserError(f"field image {name!r}: its image has no celestial WCS "
                                    "(CTYPE1/CTYPE2 such as RA---TAN/DEC--TAN)")
                wcs = full.celestial
                data = np.asarray(hdu.data, dtype=np.float32).reshape(naxes[1], naxes[0])
                break
            else:
                raise UserError(f"field image {name!r} has no 2-d image HDU")
    except OSError as exc:
        raise UserError(f"field image {name!r} is not a readable FITS file: {exc}") from None
    data = np.where(np.isfinite(data), data, np.float32(np.nan))
    data.setflags(write=False)
    wcs.wcs.set()
    from astropy.wcs.utils import proj_plane_pixel_scales

    pixscale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    return Field(path=path, mtime_ns=mtime_ns, data=data, wcs=wcs, pixscale_arcsec=pixscale)


def _world_to_pixel(wcs, ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel positions; NaN for missing positions and for positions that the
    projection cannot place (e.g. the far side of the sky for TAN)."""
    ra = np.asarray(ra, dtype=float)
    dec = np.asarray(dec, dtype=float)
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    x = np.full(ra.shape, np.nan)
    y = np.full(ra.shape, np.nan)
    if not ok.any():
        return x, y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        px, py = wcs.world_to_pixel_values(ra[ok], dec[ok])
        # keep only positions that map back to themselves
        bra, bdec = wcs.pixel_to_world_values(px, py)
    sep = _separation_deg(ra[ok], dec[ok], np.asarray(bra), np.asarray(bdec))
    good = np.isfinite(px) & np.isfinite(py) & (sep < 1.0 / 3600.0)
    x[np.flatnonzero(ok)[good]] = np.asarray(px)[good]
    y[np.flatnonzero(ok)[good]] = np.asarray(py)[good]
    return x, y


def _separation_deg(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    with np.errstate(invalid="ignore"):
        hav = (np.sin((dec2 - dec1) / 2) ** 2
               + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
        return np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0))))


def _on_image(shape, x, y) -> np.ndarray:
    ny, nx = shape
    with np.errstate(invalid="ignore"):
        return (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)


# ---------------------------------------------------------------------------
# finder charts
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FinderChart:
    """A rendered finder chart.

    ``pixel_box`` is the part of the field image shown, as 0-based numpy slice bounds
    ``(x0, x1, y0, y1)``: columns x0..x1-1 and rows y0..y1-1; every drawn object's
    pixel lies inside it. ``outside`` holds the indices (into the ra/dec given) of the
    objects that are not on the image, including those without a finite position.
    ``center`` is the (ra, dec) of the box centre and ``width_arcmin``/``height_arcmin``
    its size on the sky.
    """

    png: bytes = field(repr=False)
    n_inside: int
    n_outside: int
    outside: tuple[int, ...]
    pixel_box: tuple[int, int, int, int]
    center: tuple[float, float]
    width_arcmin: float
    height_arcmin: float


def finder_chart(field: Field, ra, dec, *, labels: Sequence[str] | None = None,
                 highlight=None, size_px: int = 800, pad_arcsec: float = 30.0,
                 title: str | None = None) -> FinderChart:
    """Draw objects at (ra, dec) (degrees, ICRS) circled on the field image.

    The view is the bounding box of the objects on the image plus ``pad_arcsec`` on each
    side, made square (and at least MIN_CHART_ARCSEC wide) and kept within the image.
    ``labels`` (one per object, e.g. object ids) are written next to the circles when at
    most MAX_LABELS objects are on the image. ``highlight`` is an index or label, or a
    collection of them: those objects get a blue, larger circle and always a label.
    With no object on the image the whole image is shown. The PNG is
    ``size_px`` x ``size_px``.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    if ra.ndim != 1 or ra.shape != dec.shape:
        raise UserError(f"ra and dec must be equally long lists (got {ra.size} and {dec.size} values)")
    n = ra.size
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != n:
            raise UserError(f"{len(labels)} labels given for {n} objects")
    size_px = _check_size(size_px)
    pad_arcsec = float(pad_arcsec)
    if not math.isfinite(pad_arcsec) or pad_arcsec < 0:
        raise UserError(f"pad_arcsec must be a non-negative number, not {pad_arcsec!r}")
    highlighted = _resolve_highlight(highlight, n, labels)

    wcs = field.wcs_copy()
    x, y = _world_to_pixel(wcs, ra, dec)
    inside = _on_image(field.shape, x, y)
    outside = tuple(int(i) for i in np.flatnonzero(~inside))
    x0, x1, y0, y1 = _chart_box(field, x[inside], y[inside], pad_arcsec)

    sub = field.data[y0:y1, x0:x1]
    subwcs = wcs[y0:y1, x0:x1]
    cx, cy = (x1 - x0 - 1) / 2.0, (y1 - y0 - 1) / 2.0
    cra, cdec = (float(v) for v in subwcs.pixel_to_world_values(cx, cy))

    fig, ax = _figure_with_image(sub, subwcs, size_px, wcsaxes=True, title=title)
    px, py = x[inside] - x0, y[inside] - y0
    idx = np.flatnonzero(inside)
    is_hl = np.isin(idx, list(highlighted))
    axes_pt = _axes_size_pt(ax)
    radius_pt = float(np.clip(axes_pt * 0.022 * (1.0 if idx.size <= 60 else 0.7), 3.5, 14.0))
    lw = max(0.8, radius_pt / 8.0)
    if (~is_hl).any():
        ax.scatter(px[~is_hl], py[~is_hl], s=(2 * radius_pt) ** 2, marker="o",
                   facecolors="none", edgecolors=_MARKER, linewidths=lw, zorder=3)
    if is_hl.any():
        ax.scatter(px[is_hl], py[is_hl], s=(2.6 * radius_pt) ** 2, marker="o",
                   facecolors="none", edgecolors=_HIGHLIGHT, linewidths=lw * 1.8, zorder=4)
    if labels is not None:
        fontsize = _font(size_px, 0.85)
        label_all = idx.size <= MAX_LABELS
        x_lo, width, y_lo, height = _view(ax)
        for k, i in enumerate(idx):
            if label_all or is_hl[k]:
                # up and to the right of the circle, or mirrored near the right/top edge
                # so the label stays inside the chart
                sx = -1 if px[k] > x_lo + 0.75 * width else 1
                sy = -1 if py[k] > y_lo + 0.93 * height else 1
                off = radius_pt * (1.3 if is_hl[k] else 1.0) * 0.75 + 1
                ax.annotate(labels[i], (px[k], py[k]), xytext=(sx * off, sy * off),
                            textcoords="offset points", fontsize=fontsize,
                            ha="left" if sx > 0 else "right", va="bottom" if sy > 0 else "top",
                            color=_HIGHLIGHT if is_hl[k] else _MARKER, zorder=5,
                            path_effects=_halo(), annotation_clip=True)
    _compass(ax, subwcs, size_px)
    _scale_bar(ax, field.pixscale_arcsec, size_px)
    notes = []
    if idx.size == 0:
        notes.append("no object on this image")
    elif labels is not None and idx.size > MAX_LABELS:
        notes.append(f"{idx.size} objects: labels omitted")
    if outside:
        notes.append(f"{len(outside)} of {n} outside the image, not shown")
    if notes:
        fig.text(0.99, 0.005, "; ".join(notes), ha="right", va="bottom",
                 fontsize=_font(size_px, 0.8), color="#444444")
    png = _png(fig)
    height_px, width_px = sub.shape
    return FinderChart(
        png=png, n_inside=int(idx.size), n_outside=len(outside), outside=outside,
        pixel_box=(x0, x1, y0, y1), center=(cra % 360.0, cdec),
        width_arcmin=round(width_px * field.pixscale_arcsec / 60.0, 4),
        height_arcmin=round(height_px * field.pixscale_arcsec / 60.0, 4),
    )


def _resolve_highlight(highlight, n: int, labels) -> set[int]:
    if highlight is None:
        return set()
    if isinstance(highlight, (str, int, np.integer)):
        highlight = [highlight]
    out = set()
    positions = {label: i for i, label in reversed(list(enumerate(labels)))} if labels else {}
    for item in highlight:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= item < n:
                raise UserError(f"highlight index {item} is out of range for {n} objects")
            out.add(int(item))
        elif isinstance(item, str):
            if item not in positions:
                raise UserError(f"highlight {item!r} is not one of the labels")
            out.add(positions[item])
        else:
            raise UserError(f"highlight must be object indices or labels, not {item!r}")
    return out


def _chart_box(field: Field, x: np.ndarray, y: np.ndarray, pad_arcsec: float):
    """Integer slice bounds (x0, x1, y0, y1) of the view: a square around the objects,
    shifted to stay on the image and clipped only where the image is too small."""
    ny, nx = field.shape
    if x.size == 0:
        return 0, nx, 0, ny
    pad = pad_arcsec / field.pixscale_arcsec
    lo_x, hi_x = float(x.min()) - pad, float(x.max()) + pad
    lo_y, hi_y = float(y.min()) - pad, float(y.max()) + pad
    side = max(hi_x - lo_x, hi_y - lo_y, MIN_CHART_ARCSEC / field.pixscale_arcsec)
    # pixel i covers [i - 0.5, i + 0.5): `width` pixels from `a` cover [lo, hi]
    width = math.ceil(side) + 2
    box = []
    for lo, hi, npix in ((lo_x, hi_x, nx), (lo_y, hi_y, ny)):
        mid = (lo + hi) / 2.0
        a = math.floor(mid + 0.5 - width / 2.0)
        b = a + width
        if b - a >= npix:
            a, b = 0, npix
        elif a < 0:
            a, b = 0, b - a
        elif b > npix:
            a, b = a - (b - npix), npix
        box += [a, b]
    return tuple(box)


# ---------------------------------------------------------------------------
# per-object stamps
# ---------------------------------------------------------------------------

def stamp_cutout(field: Field, ra: float, dec: float, *, size_arcmin: float = 2.0,
                 margin_px: int = 0):
    """The :class:`astropy.nddata.Cutout2D` of ``size_arcmin`` (plus ``margin_px`` on
    each side) centred on (ra, dec): the object is within a pixel of the middle.

    Where the cutout leaves the image it is filled with NaN, so the object stays in
    the centre. Raises UserError when the position is not on the image.
    """
    from astropy.nddata import Cutout2D

    try:
        ra, dec = float(ra), float(dec)
        size_arcmin = float(size_arcmin)
    except (TypeError, ValueError):
        raise UserError("ra, dec and size_arcmin must be numbers") from None
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise UserError(f"({ra}, {dec}) is not a valid position in degrees")
    if not (MIN_STAMP_ARCMIN <= size_arcmin <= MAX_STAMP_ARCMIN):
        raise UserError(f"a stamp's size must be {MIN_STAMP_ARCMIN} to {MAX_STAMP_ARCMIN} "
                        f"arcmin, not {size_arcmin:g}")
    wcs = field.wcs_copy()
    x, y = _world_to_pixel(wcs, [ra], [dec])
    if not _on_image(field.shape, x, y)[0]:
        raise UserError(f"position RA {ra:.6f}, Dec {dec:+.6f} is outside the field image "
                        f"{Path(field.path).name!r}")
    npix = max(5, round(size_arcmin * 60.0 / field.pixscale_arcsec))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        size = npix + 2 * int(margin_px)
        return Cutout2D(field.data, (float(x[0]), float(y[0])), (size, size), wcs=wcs,
                        mode="partial", fill_value=np.nan, copy=True)


def object_stamp(field: Field, ra: float, dec: float, *, size_arcmin: float = 2.0,
                 size_px: int = 300) -> bytes:
    """A ``size_px`` square PNG of the sky around (ra, dec): crosshair on the object,
    N/E compass, scale bar and the position in sexagesimal. Raises UserError when the
    position is outside the field image."""
    size_px = _check_size(size_px)
    cutout = stamp_cutout(field, ra, dec, size_arcmin=size_arcmin, margin_px=1)
    fig, ax = _figure_with_image(cutout.data, cutout.wcs, size_px, wcsaxes=False)
    # the view is exactly size_arcmin, centred on the object (not on the pixel grid)
    cx, cy = (float(v) for v in cutout.wcs.world_to_pixel_values(float(ra), float(dec)))
    nx = ny = cutout.data.shape[0] - 2
    ax.set_xlim(cx - nx / 2.0, cx + nx / 2.0)
    ax.set_ylim(cy - ny / 2.0, cy + ny / 2.0)
    gap, arm = 0.1 * nx, 0.2 * nx  # crosshair: open centre, four arms
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        xs = [cx + dx * gap, cx + dx * (gap + arm)]
        ys = [cy + dy * gap, cy + dy * (gap + arm)]
        ax.plot(xs, ys, color=_MARKER, lw=max(1.2, size_px / 200), solid_capstyle="butt",
                zorder=4)
    _compass(ax, cutout.wcs, size_px)
    _scale_bar(ax, field.pixscale_arcsec, size_px)
    ax.text(0.03, 0.97, _sexagesimal(float(ra), float(dec)), transform=ax.transAxes,
            ha="left", va="top", fontsize=_font(size_px, 0.9), color="black",
            path_effects=_halo(), zorder=6)
    return _png(fig)


# ---------------------------------------------------------------------------
# drawing helpers
# ---------------------------------------------------------------------------

def _check_size(size_px) -> int:
    try:
        size = int(size_px)
    except (TypeError, ValueError):
        raise UserError(f"size_px must be a whole number, not {size_px!r}") from None
    if not MIN_SIZE_PX <= size <= MAX_SIZE_PX:
        raise UserError(f"size_px must be {MIN_SIZE_PX} to {MAX_SIZE_PX}, not {size}")
    return size


def _font(size_px: int, factor: float = 1.0) -> float:
    """Font size in points for a square figure of size_px at 100 dpi."""
    return round(float(np.clip(size_px / 80.0, 6.5, 14.0)) * factor, 2)


def _halo():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.5, foreground="white")]


def _norm(data: np.ndarray):
    """ZScale limits (low contrast, so the sky sits light grey and only stars go dark)
    with a gentle asinh stretch; robust to NaN and flat data."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    finite = data[np.isfinite(data)]
    if finite.size == 0:
        vmin, vmax = 0.0, 1.0
    else:
        vmin, vmax = ZScaleInterval(contrast=ZSCALE_CONTRAST).get_limits(finite)
        if not vmax > vmin:
            vmin, vmax = float(finite.min()), float(finite.max())
            if not vmax > vmin:
                vmax = vmin + 1.0
    # clip=False: astropy's clipping would turn NaN (off the image) into black; unclipped,
    # NaN stays NaN and is drawn in the colormap's "bad" colour
    return ImageNormalize(vmin=float(vmin), vmax=float(vmax), stretch=AsinhStretch(ASINH_A),
                          clip=False)


def _figure_with_image(data, wcs, size_px: int, *, wcsaxes: bool, title: str | None = None):
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi, facecolor="white")
    cmap = colormaps["gray_r"].with_extremes(bad=_OFF_IMAGE)
    if wcsaxes:
        font = _font(size_px)
        left = min(0.2, max(0.12, 100.0 / size_px))
        bottom = left * 0.85
        top = 0.07 if title else 0.03
        ax = fig.add_axes([left, bottom, 1 - left - 0.03, 1 - bottom - top], projection=wcs)
        ax.imshow(np.ma.masked_invalid(data), origin="lower", cmap=cmap, norm=_norm(data),
                  interpolation="nearest" if max(data.shape) <= size_px else "antialiased")
        lon, lat = ax.coords[0], ax.coords[1]
        lon.set_axislabel("RA (ICRS)", fontsize=font)
        lat.set_axislabel("Dec (ICRS)", fontsize=font)
        for coord in (lon, lat):
            coord.set_ticklabel(size=font * 0.85, exclude_overlapping=True)
            coord.set_ticks(number=5, color="#333333", direction="out")
            coord.display_minor_ticks(True)
        if title:
            ax.set_title(title, fontsize=font * 1.05, pad=4)
    else:
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_axis_off()
        ax.imshow(np.ma.masked_invalid(data), origin="lower", cmap=cmap, norm=_norm(data),
                  interpolation="bicubic")
    ny, nx = data.shape
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    return fig, ax


def _axes_size_pt(ax) -> float:
    fig = ax.figure
    bbox = ax.get_position()
    return float(min(bbox.width * fig.get_figwidth(), bbox.height * fig.get_figheight()) * 72)


def _view(ax) -> tuple[float, float, float, float]:
    """The shown pixel range (x_lo, width, y_lo, height) of an image axes."""
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    return x_lo, x_hi - x_lo, y_lo, y_hi - y_lo


def _compass(ax, wcs, size_px: int) -> None:
    """N and E arrows in the upper right corner, directions taken from the WCS."""
    x_lo, width, y_lo, height = _view(ax)
    ox, oy = x_lo + 0.84 * width, y_lo + 0.84 * height
    ra0, dec0 = (float(v) for v in wcs.pixel_to_world_values(ox, oy))
    step = 1.0 / 60.0  # one arcmin
    length_pt = _axes_size_pt(ax) * (0.09 if size_px >= 500 else 0.11)
    fontsize = _font(size_px, 0.9)
    for name, (dra, ddec) in (("N", (0.0, step)),
                              ("E", (step / max(math.cos(math.radians(dec0)), 1e-6), 0.0))):
        tx, ty = (float(v) for v in wcs.world_to_pixel_values(ra0 + dra, dec0 + ddec))
        vx, vy = tx - ox, ty - oy
        norm = math.hypot(vx, vy)
        if not math.isfinite(norm) or norm == 0:
            continue
        ax.annotate(name, (ox, oy), xytext=(vx / norm * length_pt, vy / norm * length_pt),
                    textcoords="offset points", ha="center", va="center",
                    fontsize=fontsize, fontweight="bold", color=_ANNOTATION, zorder=6,
                    path_effects=_halo(),
                    arrowprops={"arrowstyle": "<|-", "color": _ANNOTATION, "lw": 1.4,
                                "shrinkA": fontsize * 0.7, "shrinkB": 0,
                                "mutation_scale": fontsize * 0.9})


def _scale_bar(ax, pixscale_arcsec: float, size_px: int) -> None:
    """A bar of a round length (about a fifth of the width) in the lower left corner."""
    x_lo, width, y_lo, height = _view(ax)
    target = 0.2 * width * pixscale_arcsec
    length = max([v for v in _NICE_ARCSEC if v <= target] or [_NICE_ARCSEC[0]])
    length_px = length / pixscale_arcsec
    x0, y0 = x_lo + 0.06 * width, y_lo + 0.06 * height
    ax.plot([x0, x0 + length_px], [y0, y0], color=_ANNOTATION, lw=max(2.0, size_px / 200),
            solid_capstyle="butt", zorder=6, path_effects=_halo())
    ax.text(x0 + length_px / 2, y0 + 0.015 * height, _arc_label(length), ha="center", va="bottom",
            fontsize=_font(size_px, 0.9), color=_ANNOTATION, zorder=6, path_effects=_halo())


def _arc_label(arcsec: float) -> str:
    if arcsec >= 3600 and arcsec % 3600 == 0:
        return f"{arcsec // 3600:g}\u00b0"
    if arcsec >= 60 and arcsec % 60 == 0:
        return f"{arcsec // 60:g}\u2032"
    return f"{arcsec:g}\u2033"


def _sexagesimal(ra: float, dec: float) -> str:
    ra = ra % 360.0
    total = round(ra / 15.0 * 3600.0, 2)
    h, rem = divmod(total, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "-" if dec < 0 else "+"
    dtotal = round(abs(dec) * 3600.0, 1)
    d, drem = divmod(dtotal, 3600.0)
    dm, ds = divmod(drem, 60.0)
    return (f"{int(h) % 24:02d}:{int(m):02d}:{s:05.2f} "
            f"{sign}{int(d):02d}:{int(dm):02d}:{ds:04.1f}")


def _png(fig) -> bytes:
    """Render with Agg and encode as an RGB PNG without text chunks (no software
    version or date), at a zlib level that is ~2x faster than the default for noisy sky
    images and gives smaller files (no alpha channel)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=_PNG_COMPRESS_LEVEL)
    return buf.getvalue()


__all__ = [
    "MAX_LABELS",
    "MIN_CHART_ARCSEC",
    "Field",
    "FinderChart",
    "finder_chart",
    "load_field",
    "object_stamp",
    "stamp_cutout",
]
