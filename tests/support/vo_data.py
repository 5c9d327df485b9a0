"""What the VO tests share: a basedir of small plain catalogs (one around a pole, one
across RA = 0) and brute-force answers computed with numpy from the input columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.data import random_catalog, write_table

# collection id -> (seed, n, centre, radius in degrees)
COLLECTIONS = {
    "field": (21, 3000, (290.0, 45.0), 1.0),
    "polar": (5, 800, (40.0, 88.5), 2.5),
    "wrap": (9, 800, (0.2, -30.0), 1.5),
}


def build_basedir(root: Path):
    """A basedir with the collections of :data:`COLLECTIONS`; returns (path, columns by id)."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_catalog_collection

    base = Basedir.init(root / "basedir")
    columns = {}
    for cid, (seed, n, centre, radius) in COLLECTIONS.items():
        cols = random_catalog(n, seed=seed, center=centre, radius_deg=radius)
        cols["ra"] = np.asarray(cols["ra"]) % 360.0
        add_catalog_collection(App(base.path), base, write_table(cols, root / f"{cid}.parquet"),
                               collection_id=cid, meta={"name": cid.title(), "description": f"test {cid}"},
                               show_progress=False)
        columns[cid] = {k: np.asarray(v) for k, v in cols.items()}
    return base.path, columns


def separation_deg(ra1, dec1, ra2, dec2):
    """Great-circle distance (haversine, float64) for brute-force checks."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def brute_cone(cols: dict, ra: float, dec: float, radius: float, *, strict: bool = False) -> set[str]:
    d = separation_deg(cols["ra"], cols["decl"], ra, dec)
    inside = d < radius if strict else d <= radius
    # stay clear of rows within rounding of the boundary, where two exact formulas may differ
    return set(cols["objectid"][inside].tolist())


def near_boundary(cols: dict, ra: float, dec: float, radius: float) -> set[str]:
    d = separation_deg(cols["ra"], cols["decl"], ra, dec)
    return set(cols["objectid"][np.abs(d - radius) < 1e-9].tolist())


#: the files a large dataset's objects have: (file kind, catalog column)
FILE_KINDS = (("lightcurve", "lcfname"), ("checkplot", "cpfname"), ("periodfinding", "pffname"))


def add_large_dataset(basedir, nrows: int) -> str:
    """A public dataset of ``nrows`` objects (copies of one object of ``field`` named
    ``big <i>/x``), each with a light curve, a checkplot and a period-finding file (names
    only: a manifest lists URLs, it opens no file); returns its id."""
    import dataclasses

    from lcpanel.app import App
    from lcpanel.core.catalogs.columns import ColumnInfo
    from lcpanel.core.search import run_search

    app = App(basedir)
    result = run_search(app, {"type": "cone", "params": {"coords": "290 45 10"}, "collections": ["field"],
                              "limit": 1})
    first = result.rows[0]
    files = [ColumnInfo(name=col, key=col, sqltype="TEXT") for _kind, col in FILE_KINDS]
    rows = [{**first, "objectid": f"big {i}/x", **{col: f"{col}-{i}" for _k, col in FILE_KINDS}} for i in range(nrows)]
    return app.datasets.create(dataclasses.replace(result, rows=rows, columns=[*result.columns, *files]),
                               owner="anon:test", visibility="public").dataset_id
