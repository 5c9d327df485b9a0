"""What a new lcpanel process pays before it does anything: every CLI command builds the
app (every plugin's registries, routes included), so the app must not import the web UI's
or the sky index's heavy libraries until a command uses them.

Each case runs in a fresh interpreter: which modules a process imports cannot be seen from
one that ran other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

#: Panel and Bokeh (the web UI), astropy's coordinates and cdshealpix (the sky index),
#: matplotlib (plots): each takes a second or more to import on a 2-core machine
HEAVY = ("panel", "bokeh", "holoviews", "astropy.coordinates", "cdshealpix", "matplotlib")


def _modules_after(code: str) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["collections", "--help"], ["users", "list", "--help"]])
def test_a_cli_command_starts_without_the_web_ui_or_sky_libraries(argv):
    code = ("import contextlib, io\nfrom lcpanel.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit as exit:\n        assert not exit.code, exit.code")
    assert _modules_after(code) == []


def test_the_app_with_every_plugin_loaded_imports_none_of_them(tmp_path):
    code = ("from lcpanel.app import App\nfrom lcpanel.core.catalogs.basedir import Basedir\n"
            f"app = App(Basedir.init({str(tmp_path / 'basedir')!r}).path)\n"
            "assert app.search_backends and app.routes")
    assert _modules_after(code) == []


def test_the_sky_index_imports_cdshealpix_when_it_first_covers_a_cone():
    code = ("from lcpanel.core.catalogs import skyindex\nbefore = 'cdshealpix' in sys.modules\n"
            "ranges = skyindex.cone_hpx29_ranges(10.0, 20.0, 0.1)\nassert not before and len(ranges)")
    assert _modules_after(code) == ["astropy.coordinates", "cdshealpix"]
