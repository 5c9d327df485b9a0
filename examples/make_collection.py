"""Generate a deterministic, realistic astrobase light-curve collection.

Two modes:

``python examples/make_collection.py OUTDIR [--nobjects 300] [--seed 42]
[--lcformat lcpanel-demo-csv|lcpanel-demo-fits] [--workers 2]
[--center-ra 290.0 --center-dec 45.0 --field-radius-deg 0.6]``
    simulates a field of stars with light curves (about a quarter of them
    variable), runs astrobase period finding and checkplot generation on them
    fully offline, adds reviewer-style variability info, and builds the
    astrobase light-curve catalog. The layout of OUTDIR is described in
    examples/README.md; ingest code relies on it.

``python examples/make_collection.py --catalog-only N OUTFILE [--seed 42]
[--center-ra/--center-dec/--field-radius-deg | --allsky]``
    writes a plain object catalog of N rows (Parquet, or CSV/FITS by the file
    extension) with fully vectorised numpy: 1e6 rows in a few seconds.

The same seed always gives the same catalog values and light-curve files.
Everything is also importable: :func:`make_collection` and
:func:`make_plain_catalog`.
"""

import argparse
import concurrent.futures
import contextlib
import csv
import importlib.util
import json
import logging
import multiprocessing
import pickle
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a clean clone without installing
    sys.path.insert(0, str(REPO))

from lcpanel.plugin_api import astrobase_offline as offline, import_astrobase  # noqa: E402

LCFORMATS_DIR = Path(__file__).resolve().parent / "lcformats"
FORMAT_MODULES = {
    "lcpanel-demo-csv": "lcpanel_demo_csv",
    "lcpanel-demo-fits": "lcpanel_demo_fits",
}
PROJECT = "LCP"
TIMECOL = "bjd"
MAGCOLS = ("aep_000", "aep_001")
ERRCOLS = ("aie_000", "aie_001")
# period finding and checkplots use the first (smaller, less noisy) aperture
# only: checkplots are mostly matplotlib time (~55 ms a PNG), and the second
# aperture would double the build time of the default demo
PROCESSED_MAGCOLS = MAGCOLS[:1]
PROCESSED_ERRCOLS = ERRCOLS[:1]
MAGKEYS = ("bmag", "vmag", "jmag", "hmag", "kmag", "sdssg", "sdssr", "sdssi")
IDKEYS = ("twomassid", "ticid", "gaia_id")
# objectinfo key of each catalogue id: astrobase's checkplot catalogue
# columns already use 'gaia_id' (filled from its own GAIA cross-match), so the
# light curves carry the GAIA id as 'gaiaid', astrobase's objectinfo name
OBJECTINFO_IDKEYS = {"twomassid": "twomassid", "ticid": "ticid",
                     "gaia_id": "gaiaid"}
CATALOG_COLUMNS = ("objectid", "ra", "decl", "ndet", *MAGKEYS, *IDKEYS,
                   "objecttags")

# fraction of variables, and their kinds with relative frequencies
VARIABLE_FRACTION = 0.25
VARTYPE_WEIGHTS = {
    "rrab": 0.20,
    "rotator": 0.25,
    "eb_detached": 0.25,
    "eb_wuma": 0.15,
    "flare": 0.15,
}
VARTAGS = {
    "rrab": "RR Lyrae, RRab",
    "rotator": "rotational variable, spotted star",
    "eb_detached": "eclipsing binary, detached",
    "eb_wuma": "eclipsing binary, W UMa",
    "flare": "flare star",
}

# the observing season: 60 nights from 2024-06-12 at a site at longitude
# -111 deg; the field transits at local midnight in mid-season (as RA 19h20m
# does in mid-July)
SEASON_START_BJD = 2460473.5   # 0h UT
SEASON_NIGHTS = 60
LOCAL_MIDNIGHT_UT_DAYS = 7.4 / 24
FRAME_CADENCE_DAYS = 20.0 / 1440.0
CLEAR_NIGHT_FRACTION = 0.7

# period finding: GLS for smooth variables, BLS for eclipses, on grids sized
# for the time budget (see pf_settings). Each best period becomes a phased-LC
# PNG in the checkplot (~55 ms each): GLS keeps the usual 3, BLS only its best
PF_METHODS = ("gls", "bls")
PF_NBESTPEAKS = (3, 1)
GLS_PERIOD_RANGE = (0.14, 30.0)
BLS_PERIOD_RANGE = (0.2, 15.0)
GLS_SAMPLES_PER_PEAK = 2
BLS_TRANSIT_DURATION = (0.03, 0.25)   # in phase
BLS_STEP_PER_MIN_DURATION = 0.75
# no sigma clipping: deep eclipses and flares are many sigma from the median;
# bad frames and most outliers are masked by the readers' quality flags
PF_SIGCLIP = None
MIN_OBSERVATIONS = 99

# field image: pixel scale, PSF, photometric zero point, sky
FIELD_PIXSCALE_ARCSEC = 4.0
FIELD_MAX_PIXELS = 4096
FIELD_MARGIN_DEG = 0.15
FIELD_PSF_SIGMA_PIX = 1.1
FIELD_ZEROPOINT = 26.5
FIELD_BACKGROUND_STARS = 10   # per catalogue object, r = 13 to 19.5
FIELD_SKY = 300.0
FIELD_SATURATION = 65535.0
FINDER_SIZE_PIX = 300   # astrobase assumes 300 x 300 finder stamps

NEIGHBOR_RADIUS_ARCSEC = 60.0
BLEND_RADIUS_ARCSEC = 30.0
RNG_STREAMS = {"catalog": 1, "variability": 2, "schedule": 3, "field": 4,
               "lightcurve": 5, "review": 6, "motion": 7}


# ---------------------------------------------------------------------------
# random streams and small helpers
# ---------------------------------------------------------------------------

def _rng(seed, stream, index=None):
    """Independent, reproducible random stream for one purpose (and object)."""
    key = [seed, RNG_STREAMS[stream]]
    if index is not None:
        key.append(index)
    return np.random.default_rng(key)


def _ascii_digits(values, width):
    """Zero-padded decimal digits of non-negative ints as an (n, width) uint8
    matrix of ASCII codes."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _ascii_join(nrows, *parts):
    """Concatenate ASCII matrices and literal byte strings into an 'S' array."""
    blocks = [
        np.broadcast_to(np.frombuffer(part, np.uint8), (nrows, len(part)))
        if isinstance(part, bytes) else part
        for part in parts
    ]
    matrix = np.ascontiguousarray(np.concatenate(blocks, axis=1))
    return matrix.view("S%d" % matrix.shape[1]).ravel()


def _load_format_module(formatkey):
    name = FORMAT_MODULES[formatkey]
    spec = importlib.util.spec_from_file_location(name,
                                                  LCFORMATS_DIR / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _quiet_astrobase(level=logging.WARNING):
    """astrobase logs every step at INFO; keep stderr for progress bars."""
    logger = logging.getLogger("astrobase")
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


# ---------------------------------------------------------------------------
# the object catalogue (vectorised; shared with --catalog-only)
# ---------------------------------------------------------------------------

def _positions_in_cap(rng, n, center_ra, center_dec, radius_deg):
    """Positions uniform on the sphere within radius_deg of the center."""
    cos_theta = rng.uniform(np.cos(np.radians(radius_deg)), 1.0, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    dec0 = np.radians(center_dec)
    sin_dec = np.sin(dec0) * cos_theta + np.cos(dec0) * sin_theta * np.cos(phi)
    dra = np.arctan2(np.sin(phi) * sin_theta * np.cos(dec0),
                     cos_theta - np.sin(dec0) * sin_dec)
    ra = np.mod(center_ra + np.degrees(dra), 360.0)
    return ra, np.degrees(np.arcsin(np.clip(sin_dec, -1.0, 1.0)))


def _positions_allsky(rng, n):
    ra = rng.uniform(0.0, 360.0, n)
    return ra, np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def _vmag_from_counts(rng, n, vmin=8.5, vmax=16.5, slope=0.3):
    """V magnitudes from star counts rising as 10**(slope * V)."""
    lo, hi = 10 ** (slope * vmin), 10 ** (slope * vmax)
    return np.log10(rng.uniform(lo, hi, n)) / slope


def _magnitudes(rng, n):
    """Johnson, SDSS and 2MASS magnitudes with main-sequence-like colours."""
    vmag = _vmag_from_counts(rng, n)
    bv = np.clip(rng.normal(0.75, 0.3, n), -0.1, 1.7)
    scatter = rng.normal(0.0, 0.02, (7, n))
    kmag = vmag - 2.4 * bv - 0.05 + scatter[0]
    mags = {
        "bmag": vmag + bv + scatter[1],
        "vmag": vmag,
        "sdssg": vmag + 0.60 * bv - 0.12 + scatter[2],
        "sdssr": vmag - 0.42 * bv + 0.11 + scatter[3],
        "jmag": kmag + 0.55 * bv + scatter[4],
        "hmag": kmag + 0.10 * bv + scatter[5],
        "kmag": kmag,
    }
    mags["sdssi"] = mags["sdssr"] - (0.45 * bv - 0.12) + scatter[6]
    return {key: np.round(mags[key], 3) for key in MAGKEYS}, bv


def _twomass_ids(ra, decl):
    """2MASS-style designations, e.g. J19200000+4500000 (truncated digits)."""
    n = len(ra)
    time_cs = np.floor(ra / 15.0 * 360000.0).astype(np.int64)
    dec_ds = np.floor(np.abs(decl) * 36000.0).astype(np.int64)
    sign = np.where(decl < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
    return _ascii_join(
        n, b"J",
        _ascii_digits(time_cs // 360000, 2),
        _ascii_digits(time_cs // 6000 % 60, 2),
        _ascii_digits(time_cs % 6000, 4),
        sign,
        _ascii_digits(dec_ds // 36000, 2),
        _ascii_digits(dec_ds // 600 % 60, 2),
        _ascii_digits(dec_ds % 600, 3),
    )


def _gaia_ids(rng, ra, decl):
    """Gaia-DR3-like source ids: HEALPix level-12 index * 2**35 + a serial."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import lonlat_to_healpix

    ipix = lonlat_to_healpix(Longitude(ra, u.deg), Latitude(decl, u.deg), 12)
    serial = rng.integers(0, 2**35, len(ra))
    return (ipix.astype(np.int64) * 2**35 + serial).astype("S19")


def _object_tags(vmag, bv):
    """Comma-separated tags from brightness and colour."""
    brightness = np.select([vmag < 10.0, vmag > 15.5], [1, 2], 0)
    colour = np.select([bv < 0.3, bv > 1.3], [1, 2], 0)
    table = np.array([
        ", ".join(tag for tag in (b, c) if tag)
        for b in ("", "bright", "faint") for c in ("", "blue", "red")
    ], dtype="S")
    return table[brightness * 3 + colour]


def simulate_catalog(nobjects, seed=42, center_ra=290.0, center_dec=45.0,
                     field_radius_deg=0.6, allsky=False):
    """The object catalogue as a dict of equal-length numpy arrays.

    String columns are bytes ('S') arrays; keys are CATALOG_COLUMNS.
    """
    rng = _rng(seed, "catalog")
    n = int(nobjects)
    if allsky:
        ra, decl = _positions_allsky(rng, n)
    else:
        ra, decl = _positions_in_cap(rng, n, center_ra, center_dec,
                                     field_radius_deg)
    mags, bv = _magnitudes(rng, n)
    width = max(6, len(str(n - 1)))
    ticid = 100000000 + np.cumsum(rng.integers(1, 60, n))[rng.permutation(n)]
    catalog = {
        "objectid": _ascii_join(n, PROJECT.encode() + b"-",
                                _ascii_digits(np.arange(n), width)),
        "ra": np.round(ra, 7),
        "decl": np.round(decl, 7),
        "ndet": rng.integers(500, 1000, n).astype(np.int32),
        **mags,
        "twomassid": _twomass_ids(ra, decl),
        "ticid": ticid.astype("S10"),
        "gaia_id": _gaia_ids(rng, ra, decl),
        "objecttags": _object_tags(mags["vmag"], bv),
    }
    return catalog


def make_plain_catalog(path, nobjects, seed=42, center_ra=290.0,
                       center_dec=45.0, field_radius_deg=0.6, allsky=False):
    """Write simulate_catalog() to Parquet, or CSV/FITS (by extension).

    Returns the number of rows written.
    """
    path = Path(path)
    catalog = simulate_catalog(nobjects, seed, center_ra, center_dec,
                               field_radius_deg, allsky)
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {
            key: (pa.array(value).cast(pa.string())
                  if value.dtype.kind == "S" else pa.array(value))
            for key, value in catalog.items()
        }
        pq.write_table(pa.table(columns), path)
    else:
        from astropy.table import Table

        table = Table({
            key: (np.char.decode(value, "ascii") if value.dtype.kind == "S"
                  else value)
            for key, value in catalog.items()
        })
        table.write(path, overwrite=True)
    return len(catalog["objectid"])


# ---------------------------------------------------------------------------
# injected variability (the truth)
# ---------------------------------------------------------------------------

def _allocate_vartypes(rng, n):
    """Vartype per object: about VARIABLE_FRACTION variables, every kind
    present in proportion (largest remainders), in random positions."""
    nvar = max(1, int(round(VARIABLE_FRACTION * n)))
    weights = np.array(list(VARTYPE_WEIGHTS.values()))
    exact = weights / weights.sum() * nvar
    counts = np.floor(exact).astype(int)
    for index in np.argsort(counts - exact)[: nvar - counts.sum()]:
        counts[index] += 1
    kinds = np.repeat(list(VARTYPE_WEIGHTS), counts)
    vartype = np.full(n, "none", dtype=object)
    vartype[rng.permutation(n)[:nvar]] = kinds
    return vartype


def simulate_variability(n, seed, frame_times):
    """Per-object truth: vartype, period, amplitude (peak to peak, mag), epoch
    (BJD_TDB of minimum light) and the model shape parameters."""
    rng = _rng(seed, "variability")
    t_start = frame_times.min()
    vartype = _allocate_vartypes(rng, n)
    truth = []
    for kind in vartype:
        draw = rng.uniform(size=4)
        shape = {}
        if kind == "rrab":
            period, amplitude = 0.45 + 0.3 * draw[0], 0.4 + 0.6 * draw[1]
        elif kind == "rotator":
            period = 10 ** (0.0 + 1.1 * draw[0])
            amplitude = 0.01 + 0.07 * draw[1]
        elif kind == "eb_detached":
            period = 10 ** (-0.1 + 1.0 * draw[0])
            amplitude = 0.1 + 0.5 * draw[1]
            shape = {"secondary": 0.6 * draw[2], "width": 0.02 + 0.04 * draw[3]}
        elif kind == "eb_wuma":
            period, amplitude = 0.3 + 0.15 * draw[0], 0.15 + 0.35 * draw[1]
            shape = {"asymmetry": 0.05 + 0.15 * draw[2]}
        elif kind == "flare":
            shape = _flare_events(rng, frame_times, 0.05 + 0.1 * draw[0])
            period = np.nan
            amplitude = 2.5 * np.log10(1.0 + max(shape["heights"]))
        else:
            period, amplitude = np.nan, 0.0
        epoch = t_start + period * draw[3] if np.isfinite(period) else np.nan
        truth.append({
            "vartype": str(kind),
            "period": round(float(period), 7),
            "amplitude": round(float(amplitude), 4),
            "epoch": round(float(epoch), 6),
            "shape": shape,
        })
    return truth


def _sawtooth(phase):
    """Four-harmonic sawtooth: slow fading, then a fast rise."""
    harmonics = np.arange(1, 5)[:, None]
    return -(np.sin(2 * np.pi * harmonics * phase) / harmonics).sum(axis=0)


def _rrab_profile_table():
    """RRab-like profile on a phase grid, unit peak-to-peak, faintest at 0."""
    grid = np.linspace(0.0, 1.0, 4001)
    shift = grid[np.argmax(_sawtooth(grid))]
    profile = _sawtooth(np.mod(grid + shift, 1.0))
    return grid, (profile - profile.min()) / np.ptp(profile)


_RRAB_GRID, _RRAB_PROFILE = _rrab_profile_table()


def variability_signal(truth, times):
    """Magnitude offsets (positive = fainter) of one object at `times`."""
    kind, amplitude, shape = truth["vartype"], truth["amplitude"], truth["shape"]
    if kind == "none":
        return np.zeros_like(times)
    if kind == "flare":
        return _flare_signal(shape, times)
    phase = np.mod((times - truth["epoch"]) / truth["period"], 1.0)
    if kind == "rrab":
        return amplitude * (np.interp(phase, _RRAB_GRID, _RRAB_PROFILE) - 0.5)
    if kind == "rotator":
        return 0.5 * amplitude * np.cos(2 * np.pi * phase)
    if kind == "eb_wuma":
        q = shape["asymmetry"]
        return amplitude * ((1 - q) * 0.5 * (1 + np.cos(4 * np.pi * phase))
                            + q * 0.5 * (1 + np.cos(2 * np.pi * phase)))
    centred = np.mod(phase + 0.5, 1.0) - 0.5
    secondary = np.mod(phase, 1.0) - 0.5
    width = shape["width"]
    return amplitude * (np.exp(-((centred / width) ** 4))
                        + shape["secondary"] * np.exp(-((secondary / width) ** 4)))


def _flare_events(rng, frame_times, rate_per_day):
    """Flare peak times, heights (flux ratio) and decay times (days).

    Peaks fall while the field is observed, so the flares are in the data.
    """
    nflares = max(2, rng.poisson(rate_per_day * np.ptp(frame_times)))
    peaks = rng.choice(frame_times, nflares) + rng.uniform(-0.01, 0.0, nflares)
    return {
        "peaks": np.round(peaks, 6).tolist(),
        "heights": np.round(10 ** rng.uniform(-1.3, 0.3, nflares), 4).tolist(),
        "decays": np.round(rng.uniform(0.01, 0.05, nflares), 4).tolist(),
    }


def _flare_signal(shape, times):
    """Sum of fast-rise, exponential-decay flares, in magnitudes."""
    dt = times[:, None] - np.array(shape["peaks"])[None, :]
    profile = np.where(dt < 0, np.exp(np.minimum(dt, 0) / 0.003),
                       np.exp(-np.maximum(dt, 0) / np.array(shape["decays"])))
    flux = (np.array(shape["heights"]) * profile).sum(axis=1)
    return -2.5 * np.log10(1.0 + flux)


# ---------------------------------------------------------------------------
# observing schedule and light curves
# ---------------------------------------------------------------------------

def simulate_schedule(seed):
    """Frame times (BJD_TDB) and per-frame conditions for one season.

    The field transits at local midnight in mid-season and is observed every
    FRAME_CADENCE_DAYS while it is up and the night is dark; 30% of nights are
    lost to weather, some nights partly. 2% of frames are flagged bad (thin
    cloud).
    """
    rng = _rng(seed, "schedule")
    times = []
    for night in range(SEASON_NIGHTS):
        if rng.uniform() > CLEAR_NIGHT_FRACTION:
            continue
        midnight = SEASON_START_BJD + night + LOCAL_MIDNIGHT_UT_DAYS
        transit = midnight - (night - SEASON_NIGHTS / 2) * 3.94 / 1440.0
        start = max(midnight - 4.5 / 24, transit - 3.5 / 24)
        end = min(midnight + 4.5 / 24, transit + 3.5 / 24)
        if rng.uniform() < 0.2:  # clouds end the night early
            end = start + (end - start) * rng.uniform(0.2, 0.8)
        night_times = np.arange(start, end, FRAME_CADENCE_DAYS)
        times.append(night_times + rng.normal(0.0, 0.0007, night_times.size))
    times = np.concatenate(times)
    nframes = times.size
    bad = rng.uniform(size=nframes) < 0.02
    return {
        "times": times,
        "zeropoints": rng.normal(0.0, [[0.004], [0.003]], (2, nframes)),
        "seeing": rng.lognormal(0.0, 0.2, nframes),
        "bad": bad,
        "cloud": np.where(bad, rng.uniform(0.1, 0.8, nframes), 0.0),
    }


def _noise_sigma(rmag, aperture_area):
    """Photometric error for a star of magnitude rmag: scintillation floor,
    photon noise and sky noise growing with the aperture area."""
    flux_ratio = 10 ** (0.4 * (rmag - 12.0))
    return np.sqrt(0.0025**2 + 0.0045**2 * flux_ratio
                   + 0.0012**2 * aperture_area * flux_ratio**2)


def simulate_lightcurve(index, objectinfo, truth, schedule, seed, field_edge):
    """Columns of one object's light curve (all frames it falls on)."""
    rng = _rng(seed, "lightcurve", index)
    coverage = rng.uniform(0.6, 0.9) if field_edge else 0.99
    keep = rng.uniform(size=schedule["times"].size) < coverage
    times = schedule["times"][keep]
    signal = variability_signal(truth, times)
    flags = np.where(schedule["bad"][keep], 1, 0).astype(np.int16)
    outliers = rng.uniform(size=times.size) < 0.005
    flags[outliers & (rng.uniform(size=times.size) < 0.8)] |= 2

    columns = {"bjd": np.round(times, 6), "qflag": flags}
    dilution = rng.uniform(0.0, 0.08)
    for aperture, (magcol, errcol, area, offset) in enumerate(
        zip(MAGCOLS, ERRCOLS, (1.0, 2.78), (0.02, -0.01))
    ):
        sigma = (_noise_sigma(objectinfo["sdssr"], area)
                 * np.sqrt(schedule["seeing"][keep]))
        scale = 1.0 - dilution * aperture
        mags = (objectinfo["sdssr"] + offset + scale * signal
                + schedule["zeropoints"][aperture][keep]
                + schedule["cloud"][keep]
                + rng.normal(0.0, sigma))
        mags[outliers] += (rng.choice([-1.0, 1.0], outliers.sum())
                           * rng.uniform(0.3, 1.5, outliers.sum()))
        errs = sigma * rng.uniform(0.9, 1.1, times.size) * (
            1.0 + 3.0 * schedule["cloud"][keep])
        columns[magcol] = np.round(mags, 5)
        columns[errcol] = np.round(errs, 5)
    # the larger aperture sometimes touches a masked pixel: no measurement
    lost = rng.uniform(size=times.size) < 0.01
    columns[MAGCOLS[1]][lost] = np.nan
    columns[ERRCOLS[1]][lost] = np.nan
    return columns


def _objectinfos(catalog, seed):
    """astrobase objectinfo dicts (plain Python types) from the catalogue."""
    rng = _rng(seed, "motion")
    n = len(catalog["objectid"])
    pmra = rng.normal(-2.0, 6.0, n)
    pmdecl = rng.normal(-4.0, 6.0, n)
    infos = []
    for i in range(n):
        info = {
            "objectid": catalog["objectid"][i].decode(),
            "ra": float(catalog["ra"][i]),
            "decl": float(catalog["decl"][i]),
            **{key: float(catalog[key][i]) for key in MAGKEYS},
            **{OBJECTINFO_IDKEYS[key]: catalog[key][i].decode()
               for key in IDKEYS},
            "pmra": round(float(pmra[i]), 2),
            "pmdecl": round(float(pmdecl[i]), 2),
            "objecttags": catalog["objecttags"][i].decode() or None,
        }
        infos.append(info)
    return infos


def _angular_offsets_deg(ra, decl, center_ra, center_dec):
    ra, decl = np.radians(ra), np.radians(decl)
    ra0, dec0 = np.radians(center_ra), np.radians(center_dec)
    cos_d = (np.sin(decl) * np.sin(dec0)
             + np.cos(decl) * np.cos(dec0) * np.cos(ra - ra0))
    return np.degrees(np.arccos(np.clip(cos_d, -1.0, 1.0)))


# ---------------------------------------------------------------------------
# the field image and finder stamps
# ---------------------------------------------------------------------------

def _field_wcs(center_ra, center_dec, radius_deg):
    from astropy.wcs import WCS

    half_deg = radius_deg + FIELD_MARGIN_DEG
    scale = max(FIELD_PIXSCALE_ARCSEC, 2 * half_deg * 3600 / FIELD_MAX_PIXELS)
    npix = int(np.ceil(2 * half_deg * 3600 / scale))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [center_ra, center_dec]
    wcs.wcs.crpix = [(npix + 1) / 2, (npix + 1) / 2]
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs, npix


def write_field_image(path, catalog, seed, center_ra, center_dec, radius_deg):
    """A simulated CCD image of the field with a celestial TAN WCS.

    Catalogue stars plus FIELD_BACKGROUND_STARS times as many mostly fainter
    background stars are drawn as Gaussian PSFs with counts from their r
    magnitude, on a sky background with Poisson-like noise, clipped at
    saturation.
    """
    from astropy.io import fits

    rng = _rng(seed, "field")
    wcs, npix = _field_wcs(center_ra, center_dec, radius_deg)
    nbackground = FIELD_BACKGROUND_STARS * len(catalog["ra"])
    bg_ra, bg_decl = _positions_in_cap(rng, nbackground, center_ra, center_dec,
                                       radius_deg + FIELD_MARGIN_DEG * 1.5)
    ra = np.concatenate([catalog["ra"], bg_ra])
    decl = np.concatenate([catalog["decl"], bg_decl])
    rmag = np.concatenate([catalog["sdssr"],
                           _vmag_from_counts(rng, nbackground, 13.0, 19.5)])
    x, y = wcs.all_world2pix(ra, decl, 0)

    image = np.zeros((npix, npix))
    half = int(np.ceil(5 * FIELD_PSF_SIGMA_PIX))
    offsets = np.arange(-half, half + 1)
    for xc, yc, mag in zip(x, y, rmag):
        ix, iy = int(round(xc)), int(round(yc))
        if not (-half <= ix < npix + half and -half <= iy < npix + half):
            continue
        gx = np.exp(-0.5 * ((ix + offsets - xc) / FIELD_PSF_SIGMA_PIX) ** 2)
        gy = np.exp(-0.5 * ((iy + offsets - yc) / FIELD_PSF_SIGMA_PIX) ** 2)
        stamp = np.outer(gy, gx) * 10 ** (-0.4 * (mag - FIELD_ZEROPOINT)) / (
            2 * np.pi * FIELD_PSF_SIGMA_PIX**2)
        y0, x0 = iy - half, ix - half
        ys = slice(max(y0, 0), min(y0 + stamp.shape[0], npix))
        xs = slice(max(x0, 0), min(x0 + stamp.shape[1], npix))
        image[ys, xs] += stamp[ys.start - y0: ys.stop - y0,
                               xs.start - x0: xs.stop - x0]
    image += FIELD_SKY
    image += rng.normal(0.0, 1.0, image.shape) * np.sqrt(image + 25.0)
    image = np.clip(image, 0.0, FIELD_SATURATION).astype(np.float32)

    header = wcs.to_header()
    header["BUNIT"] = ("adu", "pixel values")
    header["SKYLEVEL"] = (FIELD_SKY, "[adu] mean sky level")
    header["MAGZERO"] = (FIELD_ZEROPOINT, "r magnitude giving 1 adu in total")
    header["OBJECT"] = ("lcpanel demo field", "")
    fits.PrimaryHDU(image, header).writeto(path, overwrite=True)


class FieldStamps:
    """Finder stamps for astrobase checkplots, cut from the field image.

    Called as ``stamps(ra, decl, **kwargs)`` it returns a FINDER_SIZE_PIX
    square (image, header) pair like astrobase's SkyView stamps: an asinh
    stretch of the sky-subtracted image (stars dark on light with
    ``gray_r``), padded with sky where the stamp leaves the field.
    Picklable: the image is loaded lazily in each process.
    """

    def __init__(self, fits_path):
        self.fits_path = str(fits_path)
        self._image = None
        self._wcs = None

    def __getstate__(self):
        return {"fits_path": self.fits_path}

    def __setstate__(self, state):
        self.__init__(state["fits_path"])

    def _load(self):
        from astropy.io import fits
        from astropy.wcs import WCS

        with fits.open(self.fits_path) as hdulist:
            data = hdulist[0].data.astype(np.float64)
            self._wcs = WCS(hdulist[0].header)
        sky = np.median(data)
        noise = 1.4826 * np.median(np.abs(data - sky))
        self._image = np.arcsinh(np.clip(data - sky, -noise, None)
                                 / (3.0 * noise))

    def __call__(self, ra, decl, convolvewith=None, **kwargs):
        from astropy.nddata import Cutout2D

        if self._image is None:
            self._load()
        x, y = self._wcs.all_world2pix(ra, decl, 0)
        cutout = Cutout2D(self._image, (float(x), float(y)),
                          (FINDER_SIZE_PIX, FINDER_SIZE_PIX), wcs=self._wcs,
                          mode="partial", fill_value=0.0)
        data = cutout.data
        if convolvewith is not None:
            from astropy.convolution import convolve

            data = convolve(data, convolvewith)
        return data, cutout.wcs.to_header()


# ---------------------------------------------------------------------------
# astrobase processing: formats, period finding, checkplots, catalogs
# ---------------------------------------------------------------------------

def register_lcformat(outdir, formatkey):
    """Copy the reader module into OUTDIR/lcformat and register it there.

    The JSON names the copy by absolute path: the collection carries its own
    reader (numpy/astropy only), so it is self-contained and works from any
    working directory; a moved collection needs only that path rewritten.
    """
    from astrobase.lcproc import register_lcformat as ab_register

    module = _load_format_module(formatkey)
    lcformat_dir = outdir / "lcformat"
    lcformat_dir.mkdir(exist_ok=True)
    reader = lcformat_dir / (FORMAT_MODULES[formatkey] + ".py")
    shutil.copyfile(Path(module.__file__), reader)
    jsonpath = ab_register(
        formatkey,
        module.FILEGLOB,
        [TIMECOL] * len(MAGCOLS),
        list(MAGCOLS),
        list(ERRCOLS),
        str(reader),
        "read_lightcurve",
        magsarefluxes=False,
        overwrite_existing=True,
        lcformat_dir=str(lcformat_dir),
    )
    if jsonpath is None:
        raise RuntimeError("astrobase could not register %s" % formatkey)
    return lcformat_dir


def pf_settings(schedule, nmagcols=1):
    """runpf methods and kwargs, with grids sized from the season baseline.

    GLS (about 1000 frequencies, 2 samples per peak width 1/baseline) costs
    ~0.1 s per light curve, BLS (about 12000 frequencies, step 3/4 of the
    shortest eclipse's phase width over the baseline) ~0.05 s; the checkplot
    afterwards ~0.7 s, nearly all of it matplotlib.
    """
    baseline = np.ptp(schedule["times"])
    gls_step = 1.0 / (GLS_SAMPLES_PER_PEAK * baseline)
    bls_step = BLS_STEP_PER_MIN_DURATION * BLS_TRANSIT_DURATION[0] / baseline
    return {
        "timecols": [TIMECOL] * nmagcols,
        "magcols": list(MAGCOLS[:nmagcols]),
        "errcols": list(ERRCOLS[:nmagcols]),
        "pfmethods": PF_METHODS,
        "pfkwargs": (
            {"startp": GLS_PERIOD_RANGE[0], "endp": GLS_PERIOD_RANGE[1],
             "autofreq": False, "stepsize": float(gls_step),
             "nbestpeaks": PF_NBESTPEAKS[0]},
            {"startp": BLS_PERIOD_RANGE[0], "endp": BLS_PERIOD_RANGE[1],
             "autofreq": False, "stepsize": float(bls_step),
             "mintransitduration": BLS_TRANSIT_DURATION[0],
             "maxtransitduration": BLS_TRANSIT_DURATION[1],
             "nphasebins": int(np.ceil(2.0 / BLS_TRANSIT_DURATION[0])),
             "nbestpeaks": PF_NBESTPEAKS[1], "get_stats": False},
        ),
        "sigclip": PF_SIGCLIP,
        "minobservations": MIN_OBSERVATIONS,
    }


# per-worker state, set by _init_worker
_WORKER = {}


def _init_worker(field_fits, lclist_path, lcformat_dir):
    """Worker setup: patches, offline look-ups with local finder stamps, the
    neighbour catalogue loaded once, and fork for astrobase's inner pools
    (each period finder starts a multiprocessing.Pool; with forkserver or
    spawn every one would re-import astrobase)."""
    if "fork" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("fork", force=True)
    logging.getLogger("astrobase").setLevel(logging.CRITICAL)
    import_astrobase()
    offline(FieldStamps(field_fits))
    with open(lclist_path, "rb") as infd:
        _WORKER["lclist"] = pickle.load(infd)
    _WORKER["lcformat_dir"] = str(lcformat_dir)


def _check_pfresult(pfpickle, lcfile, magcols):
    if pfpickle is None:
        raise RuntimeError("runpf failed for %s" % lcfile)
    with open(pfpickle, "rb") as infd:
        result = pickle.load(infd)
    for magcol in magcols:
        methods = result.get(magcol, {}).get("pfmethods", [])
        if len(methods) != len(PF_METHODS):
            raise RuntimeError("runpf gave no %s result for %s (too few "
                               "points?)" % (magcol, lcfile))


def process_object(task):
    """Period finding, checkplots and review info for one light curve.

    Returns the checkplot paths. Raises on any astrobase failure.
    """
    from astrobase.lcproc.checkplotgen import runcp
    from astrobase.lcproc.periodsearch import runpf

    settings = task["pf"]
    columns = {key: settings[key] for key in ("timecols", "magcols", "errcols")}
    pfpickle = runpf(
        task["lcfile"], task["pfdir"], **columns,
        lcformat=task["formatkey"], lcformatdir=_WORKER["lcformat_dir"],
        pfmethods=settings["pfmethods"],
        pfkwargs=[dict(kw) for kw in settings["pfkwargs"]],
        sigclip=settings["sigclip"], minobservations=settings["minobservations"],
        nworkers=1, raiseonfail=True,
    )
    _check_pfresult(pfpickle, task["lcfile"], settings["magcols"])

    cpfiles = runcp(
        pfpickle, task["cpdir"], task["lcdir"], **columns,
        lclistpkl=_WORKER["lclist"], nbrradiusarcsec=NEIGHBOR_RADIUS_ARCSEC,
        makeneighborlcs=True, sigclip=settings["sigclip"],
        minobservations=settings["minobservations"],
        lcformat=task["formatkey"], lcformatdir=_WORKER["lcformat_dir"],
    )
    if not cpfiles or len(cpfiles) != len(settings["magcols"]):
        raise RuntimeError("runcp failed for %s" % task["lcfile"])
    for cpfile in cpfiles:
        apply_review(cpfile, task["review"], task["restore"])
    return cpfiles


def apply_review(cpfile, review, restore):
    """Write reviewer info into a checkplot pickle the way astrobase does.

    astrobase sets objectinfo['objecttags'] to None when it builds a
    checkplot, and 'gaiaid' too when its GAIA look-up fails (always, offline);
    `restore` puts the light curve's values back.
    """
    from astrobase.checkplot.pkl_io import (
        _read_checkplot_picklefile,
        _write_checkplot_picklefile,
    )

    cpd = _read_checkplot_picklefile(cpfile)
    if cpd["finderchart"] is None:
        raise RuntimeError("astrobase made no finder chart for %s" % cpfile)
    cpd["objectinfo"].update(restore)
    cpd["varinfo"].update(review["varinfo"])
    if review["comments"] is not None:
        cpd["comments"] = review["comments"]
    _write_checkplot_picklefile(cpd, outfile=cpfile,
                                protocol=pickle.HIGHEST_PROTOCOL,
                                outgzip=False)


def plan_reviews(truth, catalog, seed):
    """Reviewer decisions per object, as a checkplot varinfo update + comment.

    80% of variables are reviewed: periodic ones get objectisvar=1 with the
    true period and epoch (low-amplitude rotators are marked 3, 'maybe'),
    flare stars objectisvar=1 and not periodic; 10% of constant stars are
    marked 2 ('not variable'); the rest stay unreviewed. Objects with another
    catalogued star within BLEND_RADIUS_ARCSEC get a 'possible blend'
    comment, reviewed W UMa stars a note on the GLS half-period alias.
    """
    rng = _rng(seed, "review")
    n = len(truth)
    close = _has_close_neighbor(catalog["ra"], catalog["decl"])
    variables = [i for i, t in enumerate(truth) if t["vartype"] != "none"]
    unreviewed = set(rng.permutation(variables)[: len(variables) // 5].tolist())
    constant_checked = rng.uniform(size=n) < 0.1
    reviews = []
    for i, t in enumerate(truth):
        varinfo = {}
        if t["vartype"] == "none":
            if constant_checked[i]:
                varinfo = {"objectisvar": 2, "varisperiodic": 0,
                           "vartags": None}
        elif i not in unreviewed:
            periodic = t["vartype"] != "flare"
            varinfo = {
                "objectisvar": 3 if (t["vartype"] == "rotator"
                                     and t["amplitude"] < 0.02) else 1,
                "varisperiodic": int(periodic),
                "varperiod": t["period"] if periodic else None,
                "varepoch": t["epoch"] if periodic else None,
                "vartags": VARTAGS[t["vartype"]],
            }
        comment = None
        if close[i]:
            comment = "possible blend: neighbour within %d arcsec" % (
                BLEND_RADIUS_ARCSEC)
        elif t["vartype"] == "eb_wuma" and varinfo:
            comment = "GLS peaks at half the period; BLS gives the true one"
        reviews.append({"varinfo": varinfo, "comments": comment})
    return reviews


def _has_close_neighbor(ra, decl):
    from scipy.spatial import cKDTree

    ra, decl = np.radians(ra), np.radians(decl)
    xyz = np.column_stack([np.cos(ra) * np.cos(decl),
                           np.sin(ra) * np.cos(decl), np.sin(decl)])
    radius = 2 * np.sin(np.radians(BLEND_RADIUS_ARCSEC / 3600) / 2)
    counts = cKDTree(xyz).query_ball_point(xyz, radius, return_length=True)
    return counts > 1


def run_make_lclist(outdir, lcdir, lcfiles, formatkey, lcformat_dir, workers):
    from astrobase.lcproc.catalogs import make_lclist

    columns = ["objectid", "objectinfo.ra", "objectinfo.decl",
               "objectinfo.ndet",
               *("objectinfo.%s" % key
                 for key in MAGKEYS + tuple(OBJECTINFO_IDKEYS.values()))]
    lclist = make_lclist(
        str(lcdir), str(outdir / "lclist-catalog.pkl"),
        use_list_of_filenames=[str(f) for f in lcfiles],
        lcformat=formatkey, lcformatdir=str(lcformat_dir),
        columns=columns, nworkers=workers,
    )
    if lclist is None:
        raise RuntimeError("astrobase make_lclist failed")
    return Path(lclist)


def run_add_cpinfo(lclist, cpdir, workers):
    """Enrich the catalogue from the first magcol's checkplots (in place)."""
    from astrobase.lcproc.catalogs import add_cpinfo_to_lclist

    result = add_cpinfo_to_lclist(
        str(cpdir), str(lclist), PROCESSED_MAGCOLS[0], str(lclist),
        checkplotglob="checkplot-*-%s.pkl" % PROCESSED_MAGCOLS[0],
        nworkers=workers,
    )
    if result is None:
        raise RuntimeError("astrobase add_cpinfo_to_lclist failed")


def run_processing(tasks, field_fits, lclist, lcformat_dir, workers, progress):
    """process_object over all tasks in a process pool; fails on any error."""
    cpfiles = []
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker,
        initargs=(str(field_fits), str(lclist), str(lcformat_dir)),
    ) as pool:
        futures = [pool.submit(process_object, task) for task in tasks]
        for future in tqdm(concurrent.futures.as_completed(futures),
                           total=len(futures), desc="period finding + "
                           "checkplots", disable=not progress, file=sys.stderr):
            cpfiles.extend(future.result())
    return cpfiles


# ---------------------------------------------------------------------------
# the whole collection
# ---------------------------------------------------------------------------

def write_truth(path, objectinfos, truth):
    with open(path, "w", newline="") as outfd:
        writer = csv.writer(outfd)
        writer.writerow(["objectid", "ra", "decl", "vartype", "period",
                         "amplitude", "epoch"])
        for info, t in zip(objectinfos, truth):
            writer.writerow([info["objectid"], info["ra"], info["decl"],
                             t["vartype"], t["period"], t["amplitude"],
                             t["epoch"]])


def write_collection_json(path, formatkey, nobjects, center_ra, center_dec):
    meta = {
        "name": "lcpanel-demo",
        "description": (
            "Simulated light curves of %d stars in a field at RA %.2f, "
            "Dec %+.2f: one observing season, two photometric apertures, "
            "about a quarter variable (RR Lyrae, spotted stars, eclipsing "
            "binaries, flare stars). Period finding and checkplots by "
            "astrobase." % (nobjects, center_ra, center_dec)),
        "project": "lcpanel demo survey (%s)" % PROJECT,
        "datarelease": 1,
        "citation": "Simulated data generated by lcpanel "
                    "examples/make_collection.py; not real observations.",
        "lcformat": {"kind": "astrobase", "formatkey": formatkey,
                     "lcformat_dir": "lcformat"},
        "field_fits": "field.fits",
    }
    with open(path, "w") as outfd:
        json.dump(meta, outfd, indent=2)


def make_collection(outdir, nobjects=300, seed=42,
                    lcformat="lcpanel-demo-csv", workers=2, center_ra=290.0,
                    center_dec=45.0, field_radius_deg=0.6, progress=True,
                    nmagcols=1):
    """Build the demo collection in `outdir`; returns a summary dict with the
    counts, the period-finding settings and the seconds each stage took.

    `nmagcols` (1 or 2): how many apertures get period finding and a
    checkplot each; the catalogue gets checkplot info for the first only,
    as a survey running add_cpinfo_to_lclist once would have."""
    if nmagcols not in (1, 2):
        raise ValueError("nmagcols must be 1 or 2")
    if lcformat not in FORMAT_MODULES:
        raise ValueError("unknown lcformat %r; choose from %s"
                         % (lcformat, ", ".join(FORMAT_MODULES)))
    field = (center_ra, center_dec, field_radius_deg)
    outdir = Path(outdir).resolve()
    dirs = {name: outdir / name
            for name in ("lightcurves", "periodfinding", "checkplots")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    timings = {}
    clock = [time.perf_counter()]

    def lap(stage):
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 1)
        clock[0] = now

    with _quiet_astrobase():
        import_astrobase()
        offline()
        catalog = simulate_catalog(nobjects, seed, *field)
        objectinfos = _objectinfos(catalog, seed)
        schedule = simulate_schedule(seed)
        truth = simulate_variability(nobjects, seed, schedule["times"])
        write_truth(outdir / "truth.csv", objectinfos, truth)
        write_field_image(outdir / "field.fits", catalog, seed, *field)
        lap("simulate")

        lcfiles = write_lightcurves(dirs["lightcurves"], lcformat, objectinfos,
                                    truth, schedule, seed, catalog, field,
                                    progress)
        lcformat_dir = register_lcformat(outdir, lcformat)
        lclist = run_make_lclist(outdir, dirs["lightcurves"], lcfiles,
                                 lcformat, lcformat_dir, workers)
        lap("lightcurves_lclist")

        settings = pf_settings(schedule, nmagcols)
        tasks = [
            {"lcfile": str(lcfile), "formatkey": lcformat,
             "lcdir": str(dirs["lightcurves"]),
             "pfdir": str(dirs["periodfinding"]),
             "cpdir": str(dirs["checkplots"]), "pf": settings,
             "review": review,
             "restore": {key: info[key] for key in ("objecttags", "gaiaid")}}
            for lcfile, review, info in zip(
                lcfiles, plan_reviews(truth, catalog, seed), objectinfos)
        ]
        cpfiles = run_processing(tasks, outdir / "field.fits", lclist,
                                 lcformat_dir, workers, progress)
        lap("periodfinding_checkplots")

        run_add_cpinfo(lclist, dirs["checkplots"], workers)
        write_collection_json(outdir / "collection.json", lcformat, nobjects,
                              center_ra, center_dec)
        lap("cpinfo")
    timings["total"] = round(sum(timings.values()), 1)
    return {
        "outdir": str(outdir),
        "nobjects": nobjects,
        "nvariables": sum(t["vartype"] != "none" for t in truth),
        "lcformat": lcformat,
        "nlightcurves": len(lcfiles),
        "ncheckplots": len(cpfiles),
        "lclist": str(lclist),
        "pf_settings": settings,
        "timings_s": timings,
    }


def write_lightcurves(lcdir, formatkey, objectinfos, truth, schedule, seed,
                      catalog, field, progress):
    """Simulate and write every light curve; returns the paths in order."""
    module = _load_format_module(formatkey)
    center_ra, center_dec, radius = field
    edge = _angular_offsets_deg(catalog["ra"], catalog["decl"], center_ra,
                                center_dec) > 0.8 * radius
    paths = []
    for index, (info, t) in enumerate(tqdm(
        list(zip(objectinfos, truth)), desc="light curves",
        disable=not progress, file=sys.stderr,
    )):
        columns = simulate_lightcurve(index, info, t, schedule, seed,
                                      edge[index])
        path = lcdir / module.FILEGLOB.replace("*", info["objectid"])
        module.write_lightcurve(path, dict(info, ndet=len(columns["bjd"])),
                                columns)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:4]),
    )
    parser.add_argument("outdir", nargs="?", help="collection directory")
    parser.add_argument("--catalog-only", nargs=2, metavar=("N", "OUTFILE"),
                        help="write a plain N-row catalog and exit")
    parser.add_argument("--nobjects", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lcformat", choices=sorted(FORMAT_MODULES),
                        default="lcpanel-demo-csv")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nmagcols", type=int, choices=(1, 2), default=1,
                        help="apertures with period finding and checkplots")
    parser.add_argument("--center-ra", type=float, default=290.0)
    parser.add_argument("--center-dec", type=float, default=45.0)
    parser.add_argument("--field-radius-deg", type=float, default=0.6)
    parser.add_argument("--allsky", action="store_true",
                        help="catalog-only: positions over the whole sky")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    field = dict(center_ra=args.center_ra, center_dec=args.center_dec,
                 field_radius_deg=args.field_radius_deg)
    started = time.perf_counter()
    if args.catalog_only:
        count, outfile = args.catalog_only
        nrows = make_plain_catalog(outfile, int(float(count)), seed=args.seed,
                                   allsky=args.allsky, **field)
        print("wrote %d objects to %s in %.1f s"
              % (nrows, outfile, time.perf_counter() - started),
              file=sys.stderr)
        return 0
    if not args.outdir:
        _parser().error("OUTDIR is required unless --catalog-only is given")
    summary = make_collection(args.outdir, nobjects=args.nobjects,
                              seed=args.seed, lcformat=args.lcformat,
                              workers=args.workers, nmagcols=args.nmagcols,
                              **field)
    json.dump({k: v for k, v in summary.items() if k != "pf_settings"},
              sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
