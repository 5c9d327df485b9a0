"""Benchmark: the ACF period search's two costly steps (lcpanel.core.objects.acf)
against astrobase's own (the baselines): its gap filling ``lcmath.fill_magseries_gaps``
(loaded apart from the module lcpanel patches) and its autocorrelation
(``numpy.correlate`` of the grid with itself), and ``macf_period_find`` end to end, as
astrobase ships it and as lcpanel runs it, on the real HATNet light curve of
tests/realdata (10,564 points; its aperture 000 magnitudes).

    .venv/bin/python benchmarks/bench_acf.py [--repeat 5]

Both fills give the same grid (checked here too; tests/test_acf.py compares them on
every real light curve). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import time
import types
from pathlib import Path
import warnings

import numpy as np

from common import ROOT, add_smoke_option, parse_args

HAT = ROOT / "tests" / "realdata" / "HAT-579-0051858-V0-DR0-e867e20a15f25116548f6cdf8d5105f2-hatlc.csv.gz"


def timed(fn, repeat: int) -> np.ndarray:
    out = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    add_smoke_option(parser, repeat=1)
    args = parse_args(parser)
    print("# ACF period search benchmark" + (" (smoke mode: figures mean nothing)" if args.smoke else ""))
    if not HAT.exists():
        print(f"no {HAT.relative_to(ROOT)}: nothing to measure")
        return

    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    import astrobase.lcmath
    from astrobase.hatsurveys import hatlc
    from astrobase.periodbase import macf
    from astrobase.varbase import autocorr

    from lcpanel.core.objects.acf import autocorrelation, fill_magseries_gaps as ours

    # astrobase's module as shipped, loaded apart from the one lcpanel patches, with the one
    # change numpy >= 2.4 needs (a bin of one point takes its value, not a one-element array)
    source = Path(astrobase.lcmath.__file__).read_text()
    for name in ("mags", "errs"):
        line = f"interpolated_{name}[ind] = s{name}[itimeind[0]]"
        source = source.replace(line, line + "[0]")
    shipped = types.ModuleType("astrobase_lcmath_as_shipped")
    exec(compile(source, astrobase.lcmath.__file__, "exec"), shipped.__dict__)
    theirs = shipped.fill_magseries_gaps
    for name in ("astrobase", "astrobase_lcmath_as_shipped"):
        import logging

        logging.getLogger(name).setLevel(logging.WARNING)

    lc = hatlc.read_csvlc(str(HAT))
    t, m, e = lc["rjd"], lc["aep_000"], lc["aie_000"]
    if args.smoke:  # its last 100 days: a grid of ~28,000 steps
        first = t >= np.nanmax(t) - 100
        t, m, e = t[first], m[first], e[first]
    warnings.simplefilter("ignore", DeprecationWarning)  # astrobase's, once per bin it fills
    a, b = theirs(t, m, e, verbose=False), ours(t, m, e, verbose=False)
    same = all(np.array_equal(a[k], b[k], equal_nan=True) for k in ("itimes", "imags", "ierrs"))
    span = " (its last 100 days)" if args.smoke else ""
    print(f"HATNet HAT-579-0051858, aep_000{span}: {np.isfinite(m).sum():,} points, a grid of "
          f"{len(a['itimes']):,} bins of {a['cadence'] * 1440:.2f} min; the two grids are "
          f"{'identical' if same else 'DIFFERENT'}")
    base = timed(lambda: theirs(t, m, e, verbose=False), args.repeat)
    mine = timed(lambda: ours(t, m, e, verbose=False), max(args.repeat, 5))
    print(f"  {'fill_magseries_gaps, astrobase (baseline)':<46} p50 {np.median(base):9.1f} ms")
    print(f"  {'fill_magseries_gaps, lcpanel':<46} p50 {np.median(mine):9.1f} ms  "
          f"{np.median(base) / np.median(mine):7.1f}x")
    grid = b["imags"]
    direct = lambda: np.correlate(grid, grid, mode="full")  # noqa: E731 -- astrobase's _autocorr_func3
    base = timed(direct, args.repeat)
    mine = timed(lambda: autocorrelation(grid, 0, grid.size, 0.0, 1.0), max(args.repeat, 5))
    print(f"  {'autocorrelation, numpy.correlate (baseline)':<46} p50 {np.median(base):9.1f} ms")
    print(f"  {'autocorrelation, lcpanel (FFT)':<46} p50 {np.median(mine):9.1f} ms  "
          f"{np.median(base) / np.median(mine):7.1f}x")

    def shipped_func3(mags, lag, maglen, magmed, magstd):
        result = np.correlate(mags, mags, mode="full")
        result = result / np.max(result)
        return result[int(result.size / 2):]

    end_ours = timed(lambda: macf.macf_period_find(t, m, e, sigclip=3.0, verbose=False), max(args.repeat, 5))
    defaults = autocorr.autocorr_magseries.__defaults__
    autocorr.fill_magseries_gaps, autocorr._autocorr_func3 = theirs, shipped_func3
    autocorr.autocorr_magseries.__defaults__ = tuple(shipped_func3 if d is autocorrelation else d for d in defaults)
    try:
        end_theirs = timed(lambda: macf.macf_period_find(t, m, e, sigclip=3.0, verbose=False), args.repeat)
    finally:
        autocorr.fill_magseries_gaps, autocorr._autocorr_func3 = ours, autocorrelation
        autocorr.autocorr_magseries.__defaults__ = defaults
    print(f"  {'macf_period_find, astrobase as shipped (baseline)':<46} p50 {np.median(end_theirs):9.1f} ms")
    print(f"  {'macf_period_find, lcpanel':<46} p50 {np.median(end_ours):9.1f} ms  "
          f"{np.median(end_theirs) / np.median(end_ours):7.1f}x")

if __name__ == "__main__":
    main()
