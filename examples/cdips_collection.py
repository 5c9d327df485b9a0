"""A collection of light curves astrobase has no reader for, described in collection.json:
TESS CDIPS light curves (Bouma et al. 2019; FITS tables with TMID_BJD, TMID_UTC, IRM/TFA/PCA
magnitudes in three apertures and IRQ quality flags).

    .venv/bin/python examples/cdips_collection.py OUTDIR ../shared/realdata/hlsp_cdips_*_llc.fits
    lcpanel add-collection BASEDIR OUTDIR

The light curves are copied into OUTDIR/lightcurves; ``lclist-catalog.pkl`` is a minimal
astrobase-style object list (id, ra, dec, file) read from the FITS headers; no checkplots.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

CDIPS_JSON = {
    "name": "CDIPS sector 6 (two stars)",
    "project": "TESS CDIPS",
    "citation": "Bouma et al. 2019, ApJS 245, 13",
    "lcformat": {"kind": "fits-table", "hdu": 1, "objectid_key": "OBJECT", "ra_key": "RA_OBJ", "dec_key": "DEC_OBJ",
                 "time_columns": ["TMID_BJD", "TMID_UTC"],
                 "mag_columns": ["IRM1", "IRM2", "IRM3", "TFA1", "TFA2", "TFA3", "PCA1", "PCA2", "PCA3"],
                 "err_columns": ["IRE1", "IRE2", "IRE3"]},
    "columns": {
        "TMID_UTC": {"role": "time", "timescale": "UTC", "refpos": "TOPOCENTER", "timeorigin": 0,
                     "description": "exposure mid-time, JD_UTC at the spacecraft"},
        "IRQ1": {"role": "flag", "flags": {"G": "good", "0": "good", "X": "bad"}},
        "IRQ2": {"role": "flag", "flags": {"G": "good", "0": "good", "X": "bad"}},
        "IRQ3": {"role": "flag", "flags": {"G": "good", "0": "good", "X": "bad"}},
    },
    "masks": {"irq1_good": {"column": "IRQ1", "good": ["G", "0"], "description": "IRQ1 is G or 0"}},
    "location": "TESS",
}


def make_cdips_collection(src: Path, files) -> Path:
    """OUTDIR with lightcurves/, lclist-catalog.pkl and collection.json for these CDIPS files."""
    src = Path(src)
    (src / "lightcurves").mkdir(parents=True)
    ids, ras, decs, names, ndets = [], [], [], [], []
    for path in map(Path, files):
        shutil.copy(path, src / "lightcurves" / path.name)
        with fits.open(path) as hdul:
            ids.append(str(hdul[0].header["OBJECT"]))
            ras.append(hdul[0].header["RA_OBJ"])
            decs.append(hdul[0].header["DEC_OBJ"])
            ndets.append(hdul[1].header["NAXIS2"])
        names.append(f"lightcurves/{path.name}")
    objects = {"objectid": np.array(ids), "ra": np.array(ras), "decl": np.array(decs), "lcfname": np.array(names),
               "ndet": np.array(ndets)}
    with open(src / "lclist-catalog.pkl", "wb") as fh:
        pickle.dump({"objects": objects, "columns": list(objects), "lcformat": "cdips"}, fh)
    (src / "collection.json").write_text(json.dumps(CDIPS_JSON, indent=2))
    return src


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(make_cdips_collection(Path(sys.argv[1]), sys.argv[2:]))
