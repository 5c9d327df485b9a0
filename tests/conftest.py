"""Shared fixtures: small astrobase collections made by the example generator (built once
per test session), plain catalogs, fresh basedirs, and a way to snapshot a basedir to
prove that a failed operation changed nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_generator():
    """examples/make_collection.py, installed as the module ``make_collection`` (``pip
    install -e examples``; its worker functions are pickled by name)."""
    import make_collection

    return make_collection


@pytest.fixture(scope="session")
def generator():
    return _load_generator()


@pytest.fixture(scope="session")
def csv_collection(tmp_path_factory, generator) -> Path:
    """An astrobase collection (gzipped-text light curves) of 24 objects."""
    out = tmp_path_factory.mktemp("coll") / "demo_csv"
    generator.make_collection(out, nobjects=24, seed=7, lcformat="lcpanel-demo-csv", workers=2)
    return out


@pytest.fixture(scope="session")
def fits_collection(tmp_path_factory, generator) -> Path:
    """An astrobase collection whose light curves use another registered format (FITS)."""
    out = tmp_path_factory.mktemp("coll") / "demo_fits"
    generator.make_collection(out, nobjects=12, seed=11, lcformat="lcpanel-demo-fits", workers=2,
                              center_ra=2.0, center_dec=-30.0)
    return out


@pytest.fixture
def app_factory():
    from lcpanel.app import App

    return App


@pytest.fixture
def basedir(tmp_path):
    from lcpanel.core.catalogs.basedir import Basedir

    return Basedir.init(tmp_path / "basedir")


def random_catalog(n: int, seed: int = 0, *, center=None, radius_deg=None, allsky=False) -> dict:
    """Columns of a random catalog: uniform on the sphere or in a cap around ``center``."""
    rng = np.random.default_rng(seed)
    if allsky:
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    else:
        from astropy.coordinates import SkyCoord
        import astropy.units as u

        c = SkyCoord(center[0] * u.deg, center[1] * u.deg)
        sep = np.degrees(np.arccos(1 - rng.uniform(0, 1, n) * (1 - np.cos(np.radians(radius_deg)))))
        pos = c.directional_offset_by(rng.uniform(0, 360, n) * u.deg, sep * u.deg)
        ra, dec = pos.ra.deg, pos.dec.deg
    return {
        "objectid": np.array([f"R{seed}-{i:07d}" for i in range(n)]),
        "ra": ra,
        "decl": dec,
        "vmag": np.round(rng.uniform(8, 17, n), 3),
        "ndet": rng.integers(10, 5000, n),
        "objecttags": np.where(rng.random(n) < 0.05, "flare star", np.where(rng.random(n) < 0.1, "blend", "")),
    }


def write_table(columns: dict, path: Path) -> Path:
    from astropy.table import Table

    Table(columns).write(path, overwrite=True)
    return path


def set_config(basedir, text: str) -> None:
    """Replace the basedir's lcpanel.toml (its default text declares every section)."""
    (Path(basedir) / "lcpanel.toml").write_text(text)


def snapshot(path: Path) -> dict:
    """Every file under ``path`` with its SHA256, and the rows of every SQLite database.

    SQLite's -wal/-shm side files are skipped: their bytes change on reads."""
    state = {}
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            rel = str(full.relative_to(path))
            if name.endswith(("-wal", "-shm")):
                continue
            if name.endswith(".sqlite"):
                with closing(sqlite3.connect(f"file:{full}?mode=ro", uri=True)) as conn:
                    state[rel] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
            else:
                state[rel] = hashlib.sha256(full.read_bytes()).hexdigest()
        state.update({str((Path(root) / d).relative_to(path)) + "/": "dir" for d in dirs})
    return state


@pytest.fixture(scope="module")
def demo_app(csv_collection, tmp_path_factory):
    """An app on a fresh basedir holding the example collection as ``demo`` (one per module)."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    base = Basedir.init(tmp_path_factory.mktemp("demo") / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    app = App(base.path)
    yield app
    app.products.shutdown()


@pytest.fixture(scope="module")
def demo_server(demo_app):
    """``lcpanel serve`` on ``demo_app``'s basedir, as users run it; yields its URL."""
    from test_api import running_server

    with running_server(demo_app.basedir) as (url, _proc):
        yield url
