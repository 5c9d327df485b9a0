"""Benchmark the sky index (cone search, cross-match) against astropy and brute-force numpy.

Builds uniform all-sky catalogues, saves each index and queries the saved copy,
as a server process would (cones read it with ``pread``, a cross-match maps it for the
call), and prints how much of the index file the cones and the cross-matches left mapped
into the process (RssFile).  Prints one table per catalogue size with
p50/p95 latencies (after a warm-up pass that brings the pages a query reads into the
system's file cache) and
the speed-up of the index over each baseline: astropy ``search_around_sky`` /
``match_to_catalog_sky`` (kd-tree built once, not timed per query), brute-force
numpy dot products, and a scipy cKDTree on unit vectors (the alternative
cross-match design).

    python benchmarks/bench_skyindex.py                 # 1e6 and 1e7 rows
    python benchmarks/bench_skyindex.py --sizes 1e6     # quicker

Targets: cone p50 <= 0.5 ms (1e6 rows) and <= 2 ms (1e7 rows) at r = 1 deg;
cross-match of 1e5 positions against 1e7 rows <= 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from scipy.spatial import cKDTree

from common import add_smoke_option, parse_args, status_mb
from lcpanel.core.catalogs.skyindex import SkyIndex, radec_to_xyz

CONE_RADII_ARCMIN = (1.0, 10.0, 60.0)
CROSSMATCH_SIZES = (1_000, 100_000)
BRUTE_CHUNK_PAIRS = 20_000_000
BRUTE_MAX_PAIRS = 1e9


def main(argv=None) -> None:
    args = _parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (other processes make every column slower)")
    for size in args.sizes:
        _bench_catalogue(int(size), args, rng)


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7],
                        help="catalogue sizes (default: 1e6 1e7)")
    parser.add_argument("--cone-centres", type=int, default=200)
    parser.add_argument("--baseline-centres", type=int, default=20,
                        help="cone centres timed with the (slower) baselines")
    parser.add_argument("--match-radius-arcsec", type=float, default=2.0)
    parser.add_argument("--astropy-max-rows", type=float, default=1e7,
                        help="subsample the catalogue for astropy above this many rows")
    parser.add_argument("--seed", type=int, default=42)
    add_smoke_option(parser, sizes=[2e4], cone_centres=3, baseline_centres=2)
    return parse_args(parser, argv)


def _bench_catalogue(size: int, args, rng) -> None:
    print(f"\n=== catalogue of {size:,} uniform all-sky positions ===", flush=True)
    ra, dec = _uniform_sky(rng, size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "skyindex.npy"
        index, setup = _build_and_load(ra, dec, path)
        for name, seconds in setup.items():
            _print_setup(name, seconds)
        baselines = _Baselines(ra, dec, args.astropy_max_rows, rng)
        mapped_before = status_mb("RssFile")
        rows = _bench_cones(index, baselines, args, rng)
        print(f"  index pages left mapped into this process by the cones: {status_mb("RssFile") - mapped_before:.1f} MB "
              f"(RssFile growth; the index file is {os.path.getsize(path) / 2**20:.0f} MB)", flush=True)
        mapped_before = status_mb("RssFile")
        rows += _bench_crossmatches(index, baselines, args, rng)
        print(f"  index pages left mapped into this process by the cross-matches: "
              f"{status_mb("RssFile") - mapped_before:.1f} MB", flush=True)
        _print_table(rows)


# --------------------------------------------------------------------------
# Set-up


def _uniform_sky(rng, n):
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def _build_and_load(ra, dec, path):
    setup = {}
    t0 = time.perf_counter()
    built = SkyIndex.build(ra, dec)
    setup["SkyIndex.build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    built.save(path)
    setup["SkyIndex.save"] = time.perf_counter() - t0
    del built
    t0 = time.perf_counter()
    index = SkyIndex.load(path, mmap=True)
    setup["SkyIndex.load (mmap)"] = time.perf_counter() - t0
    return index, setup


class _Baselines:
    """Lazily built astropy and brute-force baselines for one catalogue."""

    def __init__(self, ra, dec, max_astropy_rows, rng):
        self.ra, self.dec = ra, dec
        self.xyz = radec_to_xyz(ra, dec)
        self.astropy_note = ""
        if len(ra) > max_astropy_rows:
            keep = rng.choice(len(ra), int(max_astropy_rows), replace=False)
            self.astropy_catalog = SkyCoord(ra[keep], dec[keep], unit=u.deg)
            self.astropy_scale = len(ra) / len(keep)
            self.astropy_note = f"astropy on a {len(keep):,}-row subsample"
        else:
            self.astropy_catalog = SkyCoord(ra, dec, unit=u.deg)
            self.astropy_scale = 1.0
        self.astropy_tree_s = None
        self.kdtree = None
        self.kdtree_build_s = None
        self.brute_seconds_per_input = None
        self.brute_sample_size = None

    def brute_crossmatch_times(self, n_inputs, radius_arcsec):
        """Chunked all-pairs dot products, timed once on a sample and scaled linearly."""
        if self.brute_seconds_per_input is None:
            sample_size = max(1, int(BRUTE_MAX_PAIRS // len(self.xyz)))
            rng = np.random.default_rng(0)
            sample = radec_to_xyz(*_uniform_sky(rng, sample_size))
            min_dot = np.cos(np.radians(radius_arcsec / 3600))
            chunk = max(1, BRUTE_CHUNK_PAIRS // len(self.xyz))

            def run():
                for start in range(0, len(sample), chunk):
                    np.nonzero(sample[start:start + chunk] @ self.xyz.T >= min_dot)

            self.brute_seconds_per_input = _repeat(run, 1) / sample_size
            self.brute_sample_size = sample_size
        note = ""
        if n_inputs != self.brute_sample_size:
            note = f"brute force timed on {self.brute_sample_size:,} inputs, scaled"
        return self.brute_seconds_per_input * n_inputs, note

    def ensure_astropy_tree(self):
        if self.astropy_tree_s is None:
            t0 = time.perf_counter()
            probe = SkyCoord([0.0], [0.0], unit=u.deg)
            probe.match_to_catalog_sky(self.astropy_catalog)
            self.astropy_catalog.search_around_sky(probe, 1 * u.arcsec)
            self.astropy_tree_s = time.perf_counter() - t0

    def ensure_kdtree(self):
        if self.kdtree is None:
            t0 = time.perf_counter()
            self.kdtree = cKDTree(self.xyz)
            self.kdtree_build_s = time.perf_counter() - t0


# --------------------------------------------------------------------------
# Cone search


def _bench_cones(index, baselines, args, rng):
    baselines.ensure_astropy_tree()
    _print_setup("astropy catalogue kd-tree build", baselines.astropy_tree_s, baselines.astropy_note)
    rows = []
    for radius_arcmin in CONE_RADII_ARCMIN:
        radius_deg = radius_arcmin / 60.0
        c_ra, c_dec = _uniform_sky(rng, args.cone_centres)
        cold = _latencies(lambda i: index.cone(c_ra[i], c_dec[i], radius_deg), len(c_ra))
        ours = _latencies(lambda i: index.cone(c_ra[i], c_dec[i], radius_deg), len(c_ra))
        found = np.mean([len(index.cone(c_ra[i], c_dec[i], radius_deg)[0]) for i in range(min(20, len(c_ra)))])
        nb = min(args.baseline_centres, len(c_ra))
        astropy_times = _latencies(
            lambda i: _astropy_cone(baselines, c_ra[i], c_dec[i], radius_deg), nb
        ) * baselines.astropy_scale
        brute_times = _latencies(lambda i: _brute_cone(baselines.xyz, c_ra[i], c_dec[i], radius_deg), nb)
        rows.append(_Row(
            f"cone r={_radius_label(radius_arcmin)} (~{found:.0f} rows)", ours,
            astropy=astropy_times, brute=brute_times,
            note=_note(baselines, f"first pass over the centres p50 "
                                  f"{_fmt(np.median(cold)).strip()}; baselines: {nb} centres"),
        ))
    return rows


def _astropy_cone(baselines, ra, dec, radius_deg):
    centre = SkyCoord([ra], [dec], unit=u.deg)
    return baselines.astropy_catalog.search_around_sky(centre, radius_deg * u.deg)


def _brute_cone(xyz, ra, dec, radius_deg):
    centre = radec_to_xyz(ra, dec)[0]
    dots = xyz @ centre
    rows = np.flatnonzero(dots >= np.cos(np.radians(radius_deg)))
    dist = np.degrees(np.arccos(np.clip(dots[rows], -1.0, 1.0)))
    order = np.argsort(dist)
    return rows[order], dist[order]


# --------------------------------------------------------------------------
# Cross-match


def _bench_crossmatches(index, baselines, args, rng):
    ra, dec = baselines.ra, baselines.dec
    radius = args.match_radius_arcsec
    rows = []
    for n_inputs in CROSSMATCH_SIZES:
        q_ra, q_dec = _uniform_sky(rng, n_inputs)
        # Half the inputs sit near catalogue rows so that there is something to match.
        near = rng.choice(len(ra), n_inputs // 2, replace=n_inputs // 2 > len(ra))
        q_ra[: len(near)] = np.mod(ra[near] + rng.normal(0, radius / 3600 / 3, len(near)), 360)
        q_dec[: len(near)] = np.clip(dec[near] + rng.normal(0, radius / 3600 / 3, len(near)), -90, 90)
        repeats = 5 if n_inputs <= 10_000 else 3
        brute_times, brute_note = baselines.brute_crossmatch_times(len(q_ra), radius)
        for nearest in (True, False):
            index.crossmatch(q_ra, q_dec, radius, nearest=nearest)  # warm-up: the rows it reads in the file cache
            ours = _repeat(lambda: index.crossmatch(q_ra, q_dec, radius, nearest=nearest), repeats)
            n_matched = len(index.crossmatch(q_ra, q_dec, radius, nearest=nearest)[0])
            astropy_times = _astropy_crossmatch_times(baselines, q_ra, q_dec, radius, nearest)
            kdtree_times = _kdtree_crossmatch_times(baselines, q_ra, q_dec, radius, nearest)
            mode = "nearest" if nearest else "all"
            rows.append(_Row(
                f"xmatch {n_inputs:,} pos r={radius:g}\" {mode} ({n_matched:,} pairs)", ours,
                astropy=astropy_times, brute=brute_times, kdtree=kdtree_times,
                note=_note(baselines, brute_note),
            ))
    if baselines.kdtree_build_s is not None:
        _print_setup("scipy cKDTree build (for comparison)", baselines.kdtree_build_s)
    return rows


def _astropy_crossmatch_times(baselines, q_ra, q_dec, radius_arcsec, nearest):
    baselines.ensure_astropy_tree()
    inputs = SkyCoord(q_ra, q_dec, unit=u.deg)
    if nearest:
        def run():
            idx, sep, _ = inputs.match_to_catalog_sky(baselines.astropy_catalog)
            return idx[sep <= radius_arcsec * u.arcsec]
    else:
        def run():
            return baselines.astropy_catalog.search_around_sky(inputs, radius_arcsec * u.arcsec)
    return _repeat(run, 1)


def _kdtree_crossmatch_times(baselines, q_ra, q_dec, radius_arcsec, nearest):
    baselines.ensure_kdtree()
    q = radec_to_xyz(q_ra, q_dec)
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    if nearest:
        def run():
            return baselines.kdtree.query(q, k=1, distance_upper_bound=chord, workers=-1)
    else:
        def run():
            return baselines.kdtree.query_ball_point(q, chord, workers=-1)
    return _repeat(run, 2)




# --------------------------------------------------------------------------
# Timing and reporting


class _Row:
    def __init__(self, label, ours, *, astropy=None, brute=None, kdtree=None, note=""):
        self.label, self.ours, self.note = label, ours, note
        self.astropy, self.brute, self.kdtree = astropy, brute, kdtree


def _latencies(call, n):
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        times[i] = time.perf_counter() - t0
    return times


def _repeat(call, n):
    return _latencies(lambda _: call(), n)


def _radius_label(radius_arcmin):
    return f"{radius_arcmin / 60:g} deg" if radius_arcmin >= 60 else f"{radius_arcmin:g}'"


def _note(baselines, extra):
    return "; ".join(x for x in (baselines.astropy_note, extra) if x)


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:7.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:7.2f} ms"
    return f"{seconds:7.2f} s "


def _print_setup(name, seconds, note=""):
    print(f"  {name:<38} {seconds:8.3f} s" + (f"  ({note})" if note else ""), flush=True)


def _ratio(value):
    return f"{value:.1f}x" if value < 10 else f"{value:.0f}x"


def _print_table(rows):
    header = (f"  {'operation':<44} {'index p50':>10} {'index p95':>10} | {'astropy p50':>11} {'x':>6}"
              f" | {'numpy brute':>11} {'x':>6} | {'cKDTree':>10} {'x':>6}")
    print()
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        p50 = np.median(row.ours)
        p95 = np.percentile(row.ours, 95)
        cells = [f"  {row.label:<44} {_fmt(p50):>10} {_fmt(p95):>10}"]
        for baseline, width in ((row.astropy, 11), (row.brute, 11), (row.kdtree, 10)):
            if baseline is None:
                cells.append(f"{'-':>{width}} {'':>6}")
            else:
                base = np.median(baseline)
                cells.append(f"{_fmt(base):>{width}} {_ratio(base / p50):>6}")
        print(" | ".join(cells))
        if row.note:
            print(f"      ({row.note})")
    print(flush=True)


if __name__ == "__main__":
    main()
