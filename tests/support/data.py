"""Test data: random catalogs (uniform on the sphere or in a cap), written as tables;
a basedir's configuration replaced; a snapshot of a basedir to prove that a failed
operation changed nothing; and example collections built once per test session."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np


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


def example_collection(tmp_path_factory, name: str, **options) -> Path:
    """The example generator's collection ``name`` (``make_collection(**options)``), built
    once per test session: fixtures of other test trees (the contrib plugins' conftests
    load lcpanel's as modules of their own, so pytest sees separate fixtures) and of
    several modules find the one already built. Tests read it and leave it as it was."""
    import shutil

    import make_collection  # examples/, installed (pip install -e examples)

    shared = tmp_path_factory.getbasetemp() / "example-collections"
    out, done = shared / name, shared / f"{name}.built"
    if not done.exists():
        shutil.rmtree(out, ignore_errors=True)  # a build interrupted by a failing fixture
        out.parent.mkdir(exist_ok=True)
        make_collection.make_collection(out, **options)
        done.write_text("")
    return out


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


def catalog_basedir(root: Path, n: int, seed: int, center=(290.0, 45.0), radius_deg: float = 1.0, **add):
    """A new basedir ``root/basedir`` holding one plain catalog of ``n`` random objects in a
    cap of ``radius_deg`` around ``center`` (collection id from the table's name, ``field``,
    unless ``add`` says; ``add`` goes to ``add_catalog_collection``). Returns (Basedir,
    the catalog's columns)."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    base = Basedir.init(root / "basedir")
    cols = random_catalog(n, seed=seed, center=center, radius_deg=radius_deg)
    table = write_table(cols, root / f"{add.get('collection_id', 'field')}.parquet")
    add_catalog_collection(App(base.path), base, table, show_progress=False, **add)
    return base, cols
