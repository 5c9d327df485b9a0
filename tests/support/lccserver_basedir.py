"""Build an lcc-server basedir with lcc-server's own code (lccserver 0.2.7, installed with
``pip install --no-deps --target DIR``), the way its ``lccserver.cli`` does it step by step:
``new_collection_directories``, ``generate_catalog_kdtree``, ``generate_catalog_database``,
``new_lcc_index_db``, ``add_collection_to_lcc_index``.

Run as ``PYTHONPATH=DIR python lccserver_basedir.py BASEDIR HAT_LC_FILE``. lccserver's
cli imports its authentication server (sqlalchemy, cryptography), which building a basedir
does not use: those two modules are stubbed here. numpy 2 lost ``np.float_`` and
``np.unicode_``, which lccserver's abcat still names: aliased.
"""

import json
import os
import pickle
import shutil
import sys
import types

import numpy as np

np.float_ = np.float64
np.unicode_ = np.str_
fernet = types.ModuleType("cryptography.fernet")
fernet.Fernet = object
sys.modules.setdefault("cryptography", types.ModuleType("cryptography"))
sys.modules["cryptography.fernet"] = fernet
sys.modules["lccserver.authnzerver.authdb"] = types.ModuleType("lccserver.authnzerver.authdb")

from lccserver import cli  # noqa: E402

DESCRIPTION = {
    "lc_formatkey": "hat-csv-lcc",
    "lc_fileglob": "*-hatlc.csv.gz",
    "lc_readermodule": "astrobase.hatsurveys.hatlc",
    "lc_readerfunc": "read_csvlc",
    "lc_readerfunc_kwargs": None,
    "lc_normalizemodule": None,
    "lc_normalizefunc": None,
    "lc_normalizefunc_kwargs": None,
    "lc_measurements_flux_or_mag": "mag",
    "unaffiliated_cols": ["rjd", "bjd", "stf"],
    "mag_apertures": ["000", "001", "002"],
    "aperture_joiner": "_",
    "per_aperture_cols": ["aim", "aie", "aiq", "aep", "atf"],
    "metadata_keys": {"objectid": ["object ID", "%s", "str"], "objectinfo.ra": ["RA [deg]", "%.7f", "float"],
                      "objectinfo.decl": ["Dec [deg]", "%.7f", "float"]},
    "column_keys": {
        "rjd": ["time of observation in Reduced Julian date (JD = 2400000.0 + RJD)", "%.7f", "f8"],
        "bjd": ["time of observation in Baryocentric Julian date (note: this is BJD_TDB)", "%.7f", "f8"],
        "stf": ["station ID of the telescope observing this target", "%i", "i8"],
        "aim": ["aperture photometry raw instrumental magnitude in aperture %s", "%.5f", "f8"],
        "aie": ["aperture photometry raw instrumental mag error in aperture %s", "%.5f", "f8"],
        "aiq": ["aperture photometry raw instrumental mag quality flag, aperture %s", "%s", "U1"],
        "aep": ["aperture photometry EPD magnitude in aperture %s", "%.5f", "f8"],
        "atf": ["aperture photometry TFA magnitude in aperture %s", "%.5f", "f8"],
    },
}


def make_collection(basedir, cid, lcfile, info, visibility):
    cli.new_collection_directories(basedir, cid)
    coll = os.path.join(basedir, cid)
    shutil.copy(lcfile, os.path.join(coll, "lightcurves"))
    with open(os.path.join(coll, "lcformat-description.json"), "w") as fh:
        json.dump(DESCRIPTION, fh)
    from scipy.spatial import cKDTree

    ra, decl = np.array([294.941746]), np.array([-25.748318])
    xyz = np.column_stack([np.cos(np.radians(decl)) * np.cos(np.radians(ra)),
                           np.cos(np.radians(decl)) * np.sin(np.radians(ra)), np.sin(np.radians(decl))])
    objects = {"objectid": np.array(["HAT-579-0051858"]), "ra": ra, "decl": decl,
               "lcfname": np.array([os.path.join(coll, "lightcurves", os.path.basename(lcfile))]),
               "ndet": np.array([10564]), "jmag": np.array([13.098]),
               "aep_000.varperiod": np.array([np.nan])}
    with open(os.path.join(coll, "lclist-catalog.pkl"), "wb") as fh:
        pickle.dump({"basedir": coll, "lcformat": "hat-csv", "fileglob": "*-hatlc.csv.gz", "recursive": False,
                     "columns": list(objects), "makecoordindex": True, "nfiles": 1, "objects": objects,
                     "kdtree": cKDTree(xyz), "magcols": ["aep_000"]}, fh)
    cli.generate_catalog_kdtree(basedir, cid)
    cli.generate_catalog_database(basedir, cid, collection_visibility=visibility, collection_info=info)
    assert cli.add_collection_to_lcc_index(basedir, cid, raiseonfail=True)


def main(basedir, lcfile):
    for sub in ("csvlcs", "lccjsons", "datasets", "products"):
        os.makedirs(os.path.join(basedir, sub), exist_ok=True)
    cli.new_lcc_index_db(basedir)
    make_collection(basedir, "hatnet-real", lcfile,
                    {"name": "HATSouth field G579", "desc": "one real HATSouth light curve", "project": "HATSouth",
                     "datarelease": 3, "citation": "Bakos et al. 2013, PASP 125, 154"}, "public")
    make_collection(basedir, "hatnet-private", lcfile,
                    {"name": "private one", "desc": "not for everyone", "project": "HATSouth",
                     "datarelease": 1, "citation": "-"}, "private")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
