"""Reader and writer for the ``lcpanel-demo-fits`` light-curve format.

A file (``<objectid>-lc.fits``) has an empty primary HDU whose header carries
the object (OBJECT, RA, DEC, magnitudes, catalogue ids, tags), the time system
(TIMESYS = 'TDB', TIMEREF = 'SOLARSYSTEM', TIMEUNIT = 'd', TIMEFMT = 'BJD')
and the magnitude system (MAGSYS), and a binary-table extension LIGHTCURVE
with the columns ``bjd`` (BJD_TDB, full JD), ``aep_000``/``aie_000`` and
``aep_001``/``aie_001`` (magnitudes and errors in two apertures) and ``qflag``
(bit mask: 0 = good, 1 = bad frame, 2 = outlier), each with TUNIT and a
description in TTYPE comments.

:func:`read_lightcurve` returns an astrobase lcdict and is what the astrobase
LC-format registration points at. The module depends only on numpy and
astropy, so it can be copied next to a collection and imported from there.
"""

import numpy as np
from astropy.io import fits

FORMATKEY = "lcpanel-demo-fits"
FILEGLOB = "*-lc.fits"

# objectinfo key -> (FITS keyword, comment)
HEADER_KEYS = {
    "objectid": ("OBJECT", "object identifier"),
    "ra": ("RA", "[deg] right ascension (ICRS)"),
    "decl": ("DEC", "[deg] declination (ICRS)"),
    "pmra": ("PMRA", "[mas/yr] proper motion in RA * cos(Dec)"),
    "pmdecl": ("PMDEC", "[mas/yr] proper motion in Dec"),
    "bmag": ("BMAG", "[mag] Johnson B"),
    "vmag": ("VMAG", "[mag] Johnson V"),
    "sdssg": ("SDSSG", "[mag] SDSS g"),
    "sdssr": ("SDSSR", "[mag] SDSS r"),
    "sdssi": ("SDSSI", "[mag] SDSS i"),
    "jmag": ("JMAG", "[mag] 2MASS J"),
    "hmag": ("HMAG", "[mag] 2MASS H"),
    "kmag": ("KMAG", "[mag] 2MASS Ks"),
    "twomassid": ("TWOMASS", "2MASS designation"),
    "ticid": ("TICID", "TESS Input Catalog id"),
    "gaiaid": ("GAIAID", "Gaia DR3 source_id"),
    "objecttags": ("OBJTAGS", "comma-separated object tags"),
}

# how times and magnitudes are measured: lcdict key -> (keyword, value, comment)
METADATA = {
    "timecol": ("TIMECOL", "bjd", "name of the time column"),
    "timesys": ("TIMESYS", "TDB", "time scale of the bjd column"),
    "timeref": ("TIMEREF", "SOLARSYSTEM", "times are barycentric"),
    "timeformat": ("TIMEFMT", "BJD", "times are full Julian dates"),
    "timeunit": ("TIMEUNIT", "d", "unit of the bjd column"),
    "magsys": ("MAGSYS", "AB (SDSS r zero point)", "magnitude system"),
}

# name, FITS format, unit, description
COLUMNS = (
    ("bjd", "D", "d", "BJD_TDB at mid-exposure"),
    ("aep_000", "E", "mag", "magnitude in aperture 0 (radius 1.5 px)"),
    ("aie_000", "E", "mag", "magnitude error in aperture 0"),
    ("aep_001", "E", "mag", "magnitude in aperture 1 (radius 2.5 px)"),
    ("aie_001", "E", "mag", "magnitude error in aperture 1"),
    ("qflag", "I", "", "quality bits: 1 = bad frame, 2 = outlier"),
)
MAGCOLS = ("aep_000", "aep_001")
ERRCOLS = ("aie_000", "aie_001")


def write_lightcurve(path, objectinfo, columns):
    """Write one light curve; `columns` maps every name in COLUMNS to an array."""
    primary = fits.PrimaryHDU()
    header = primary.header
    for key, (keyword, comment) in HEADER_KEYS.items():
        if objectinfo.get(key) is not None:
            header[keyword] = (objectinfo[key], comment)
    header["EQUINOX"] = (2000.0, "equinox of RA, DEC")
    header["RADESYS"] = ("ICRS", "reference frame of RA, DEC")
    for keyword, value, comment in METADATA.values():
        header[keyword] = (value, comment)
    header["LCFORMAT"] = (FORMATKEY, "light-curve format key")

    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=name, format=fmt, unit=unit or None,
                        array=np.asarray(columns[name]))
            for name, fmt, unit, _ in COLUMNS
        ],
        name="LIGHTCURVE",
    )
    for index, (_, _, _, text) in enumerate(COLUMNS, start=1):
        table.header.comments["TTYPE%d" % index] = text
    fits.HDUList([primary, table]).writeto(path, overwrite=True)


def read_lightcurve(lcfile, mask_flagged=True):
    """Read a light curve into an astrobase lcdict.

    With `mask_flagged`, magnitudes and errors of points with a non-zero
    ``qflag`` are set to NaN (astrobase ignores non-finite points).
    """
    with fits.open(lcfile, memmap=False) as hdulist:
        header = hdulist[0].header
        table = hdulist["LIGHTCURVE"].data
        lcheader = hdulist["LIGHTCURVE"].header
        names = [name for name, *_ in COLUMNS]
        data = {
            name: np.array(table[name], dtype=np.float64) for name in names
        }
        column_info = {
            name: {"unit": lcheader.get("TUNIT%d" % index, ""),
                   "description": lcheader.comments["TTYPE%d" % index]}
            for index, name in enumerate(names, start=1)
        }

    objectinfo = {
        key: header.get(keyword) for key, (keyword, _) in HEADER_KEYS.items()
    }
    metadata = {key: header.get(keyword)
                for key, (keyword, *_) in METADATA.items()}
    objectinfo["ndet"] = len(data["bjd"])

    data["qflag"] = data["qflag"].astype(np.int16)
    if mask_flagged:
        flagged = data["qflag"] != 0
        for name in MAGCOLS + ERRCOLS:
            data[name][flagged] = np.nan

    return {
        "objectid": objectinfo["objectid"],
        "objectinfo": objectinfo,
        "lcformat": FORMATKEY,
        "columns": names,
        "column_info": column_info,
        **metadata,
        **data,
    }
