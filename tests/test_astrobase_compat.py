"""lcpanel.core.objects.astrobase_compat: its patches reach every astrobase module they
fix, whenever that module is imported, and reading a light curve does not pay for the
plotting and period-finding modules it never uses.

Each case runs in a fresh interpreter: what matters is which modules a process imports
and in which order, which an interpreter that ran other tests cannot show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from test_formats_real import HAT

#: astrobase's plotting, checkplot and batch modules, and what they pull in
HEAVY = ("matplotlib", "scipy.signal", "astrobase.plotbase", "astrobase.checkplot",
         "astrobase.lcproc.catalogs", "astrobase.lcproc.checkplotgen", "astrobase.lcproc.periodsearch")


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _demo_light_curve(tmp_path):
    """One example light curve (the demo CSV format) and its format spec."""
    import make_collection as mc

    catalog = mc.simulate_catalog(1, seed=3)
    infos = mc._objectinfos(catalog, 3)
    schedule = mc.simulate_schedule(3)
    truth = mc.simulate_variability(1, 3, schedule["times"])
    paths = mc.write_lightcurves(tmp_path, "lcpanel-demo-csv", infos, truth, schedule, 3, catalog,
                                 (290.0, 45.0, 0.6), False)
    lcformat_dir = mc.register_lcformat(tmp_path, "lcpanel-demo-csv")
    return paths[0], {"kind": "astrobase", "formatkey": "lcpanel-demo-csv", "lcformat_dir": str(lcformat_dir)}


@pytest.mark.parametrize("which", ["demo", "HATNet"])
def test_reading_a_light_curve_imports_no_plotting_or_batch_module(which, tmp_path):
    """A product worker, a CLI command or a server process reading its first light curve
    used to import matplotlib, scipy.signal and astrobase's checkplot and batch modules
    (seconds) to apply patches that only those modules need."""
    if which == "HATNet":
        if not HAT.exists():
            pytest.skip("no realdata")
        path, spec = HAT, {"kind": "astrobase", "formatkey": "hat-csv", "lcformat_dir": None}
    else:
        path, spec = _demo_light_curve(tmp_path)
    found = _run(f"""
        import json, sys
        from lcpanel.plugins.lcformats import AstrobaseFormat
        fmt = AstrobaseFormat.from_spec({spec!r}, None)
        lc = fmt.read({str(path)!r})
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps({{"heavy": heavy, "n": len(next(iter(lc.columns.values())))}}))
    """)
    assert found["n"] > 400
    assert found["heavy"] == []


@pytest.mark.parametrize("order", ["patch first", "modules first"])
def test_patches_reach_the_modules_whether_imported_before_or_after(order):
    """The pools of astrobase's batch modules re-apply the patches in their workers, the
    phased-plot epoch fix is what checkplot code calls, runcp forwards its lcformatdir, and
    numpy 2 has the aliases astrobase uses: whether those modules were imported before
    ``import_astrobase()`` or after it."""
    before = "import astrobase.lcproc.checkplotgen, astrobase.checkplot.pkl" if order == "modules first" else ""
    found = _run(f"""
        import json
        import numpy as np
        from lcpanel.core.objects import astrobase_compat as compat
        {'compat._add_numpy_aliases()' if before else ''}
        {before}
        compat.import_astrobase()
        import astrobase.checkplot.pkl as cp_pkl
        import astrobase.checkplot.pkl_utils as pkl_utils
        import astrobase.lcproc as lcproc
        import astrobase.lcproc.catalogs as catalogs
        import astrobase.lcproc.checkplotgen as checkplotgen
        import astrobase.lcproc.periodsearch as periodsearch
        from PIL import Image
        phased = pkl_utils._pkl_phased_magseries_plot
        print(json.dumps({{
            "pools": [m.ProcessPoolExecutor is compat._PatchedPoolExecutor
                      for m in (catalogs, checkplotgen, periodsearch)],
            "phased": [hasattr(phased, "__wrapped__"), cp_pkl._pkl_phased_magseries_plot is phased,
                       checkplotgen._pkl_phased_magseries_plot is phased],
            "runcp": hasattr(checkplotgen.runcp, "__wrapped__"),
            "extmodule": hasattr(lcproc._check_extmodule, "__wrapped__"),
            "aliases": [np.float_ is np.float64, np.unicode_ is np.str_],
            "antialias": Image.ANTIALIAS == Image.Resampling.LANCZOS,
        }}))
    """)
    assert found == {"pools": [True] * 3, "phased": [True] * 3, "runcp": True, "extmodule": True,
                     "aliases": [True, True], "antialias": True}


def test_patches_are_applied_once():
    """import_astrobase() twice, and a module imported after it: no wrapper wraps a wrapper."""
    found = _run("""
        import json
        from lcpanel.core.objects import astrobase_compat as compat
        compat.import_astrobase()
        import astrobase.lcproc.checkplotgen as checkplotgen
        compat.import_astrobase()
        import astrobase.checkplot.pkl_utils as pkl_utils
        runcp, phased = checkplotgen.runcp, pkl_utils._pkl_phased_magseries_plot
        print(json.dumps([hasattr(runcp.__wrapped__, "__wrapped__"), hasattr(phased.__wrapped__, "__wrapped__")]))
    """)
    assert found == [False, False]


def test_in1d_as_numpy_had_it():
    """numpy 2.4 removed ``in1d``, which astrobase's Kepler module imports (the kep-fits
    and kep-pkl formats); lcpanel's stand-in answers as numpy's did (compared with numpy's
    own where it still has it, else with its documented meaning: ``isin`` flattened)."""
    import numpy as np

    from lcpanel.core.objects.astrobase_compat import _in1d

    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 50, (6, 7)), rng.integers(0, 50, 30)
    own = getattr(np, "in1d", None)
    for kwargs in ({}, {"invert": True}, {"kind": "sort"}, {"kind": "table"}):
        got = _in1d(a, b, **kwargs)
        assert got.shape == (42,)
        if own is not None and own is not _in1d:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                np.testing.assert_array_equal(got, own(a, b, **kwargs))
        inside = np.array([x in set(b.tolist()) for x in a.ravel()])
        np.testing.assert_array_equal(got, ~inside if kwargs.get("invert") else inside)
