"""Reader and writer for the ``lcpanel-demo-csv`` light-curve format.

A file (``<objectid>-lc.csv.gz``) is gzipped text: a metadata header of
``#``-prefixed lines holding one JSON document (objectid, objectinfo, the time
system and a description of every column), then a comma-separated table with a
header row. Times are Barycentric Julian Dates in the TDB scale (BJD_TDB, full
JD, days); magnitudes are AB, zero-pointed to SDSS r. Magnitudes come from two photometric apertures (``aep_000`` with
errors ``aie_000``, ``aep_001`` with ``aie_001``); ``qflag`` is a bit mask
(0 = good, 1 = bad frame, 2 = outlier in this star's measurement).

:func:`read_lightcurve` returns an astrobase lcdict and is what the astrobase
LC-format registration points at. The module depends only on numpy and the
standard library, so it can be copied next to a collection and imported from
there.
"""

import gzip
import io
import json

import numpy as np

FORMATKEY = "lcpanel-demo-csv"
FILEGLOB = "*-lc.csv.gz"
MAGIC = "lcpanel-demo-csv v1"

# how times and magnitudes are measured; also top-level keys of the lcdict
METADATA = {
    "timecol": "bjd",
    "timesys": "TDB",
    "timeref": "SOLARSYSTEM",
    "timeformat": "BJD",
    "timeunit": "d",
    "magsys": "AB (SDSS r zero point)",
}

# name, printf format, unit, description
COLUMNS = (
    ("bjd", "%.6f", "d", "BJD_TDB at mid-exposure"),
    ("aep_000", "%.5f", "mag", "magnitude in aperture 0 (radius 1.5 px)"),
    ("aie_000", "%.5f", "mag", "magnitude error in aperture 0"),
    ("aep_001", "%.5f", "mag", "magnitude in aperture 1 (radius 2.5 px)"),
    ("aie_001", "%.5f", "mag", "magnitude error in aperture 1"),
    ("qflag", "%d", "", "quality bits: 1 = bad frame, 2 = outlier"),
)
MAGCOLS = ("aep_000", "aep_001")
ERRCOLS = ("aie_000", "aie_001")


def write_lightcurve(path, objectinfo, columns):
    """Write one light curve; `columns` maps every name in COLUMNS to an array.

    Output bytes depend only on the inputs (the gzip timestamp is fixed).
    """
    meta = {
        "format": FORMATKEY,
        "objectid": objectinfo["objectid"],
        "objectinfo": objectinfo,
        **METADATA,
        "columns": {
            name: {"unit": unit, "description": text}
            for name, _, unit, text in COLUMNS
        },
    }
    text = io.StringIO()
    text.write("# %s\n" % MAGIC)
    for line in json.dumps(meta, indent=1).splitlines():
        text.write("# %s\n" % line)
    table = np.column_stack([columns[name] for name, *_ in COLUMNS])
    np.savetxt(
        text, table,
        fmt=[fmt for _, fmt, *_ in COLUMNS],
        delimiter=",",
        header=",".join(name for name, *_ in COLUMNS),
        comments="",
    )
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0
    ) as gz:
        gz.write(text.getvalue().encode("utf-8"))


def read_lightcurve(lcfile, mask_flagged=True):
    """Read a light curve into an astrobase lcdict.

    With `mask_flagged`, magnitudes and errors of points with a non-zero
    ``qflag`` are set to NaN (astrobase ignores non-finite points).
    """
    # decompressed and decoded whole, the table parsed from one string: gzip's
    # text mode and a list of lines cost more than the parse itself
    with open(lcfile, "rb") as fd:
        text = gzip.decompress(fd.read()).decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.startswith("# " + MAGIC + "\n"):
        raise ValueError("%s is not a %s file" % (lcfile, FORMATKEY))
    header, start = [], 0
    while text.startswith("#", start):
        end = text.index("\n", start)
        header.append(text[start + 2:end])
        start = end + 1
    end = text.find("\n", start)
    end = len(text) if end < 0 else end
    names = text[start:end].split(",")
    meta = json.loads("\n".join(header[1:]))
    body = text[end + 1:]
    if body.strip():
        # comments and quotes are looked for only where there could be any
        table = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, encoding=None,
                           comments="#" if "#" in body else None,
                           quotechar='"' if '"' in body else None)
    else:
        table = np.empty((0, len(names)))

    lcdict = {
        "objectid": meta["objectid"],
        "objectinfo": dict(meta["objectinfo"]),
        "lcformat": FORMATKEY,
        "columns": names,
        "column_info": meta["columns"],
        **{key: meta[key] for key in METADATA},
    }
    for index, name in enumerate(names):
        lcdict[name] = table[:, index]
    lcdict["qflag"] = lcdict["qflag"].astype(np.int16)
    if mask_flagged:
        flagged = lcdict["qflag"] != 0
        for name in MAGCOLS + ERRCOLS:
            lcdict[name][flagged] = np.nan
    lcdict["objectinfo"]["ndet"] = len(table)
    lcdict["objectinfo"]["objectid"] = meta["objectid"]
    return lcdict
