"""What each light-curve column means: role, unit, description, time scale and origin,
quality-flag meanings and named masks, written down once per format.

Everything here is plain data (dicts of strings and numbers) so that every exporter,
the object page and the API read the same facts. A column's entry::

    {"role": "time" | "mag" | "mag_err" | "flux" | "flux_err" | "flag" | "frame" | "aux",
     "unit": "d", "description": "...", "format": "%.7f",          # format: optional
     # time columns only:
     "timescale": "TDB" | "UTC" | ... | None,   # None: the format does not state it
     "refpos": "BARYCENTER" | "TOPOCENTER" | "GEOCENTER" | "HELIOCENTER" | None,
     "timeorigin": 2400000.0,                   # JD of the value 0; None: not stated
     # flag columns only:
     "flags": {"G": "good", "X": "bad"} or {"1": "attitude tweak", ...}, "bits": true}

Where the facts come from:

- astrobase's built-in formats (``hat-sql``, ``hat-csv``, ``hp-txt``, ``hp-pkl``,
  ``kep-fits``, ``kep-pkl``, ``tess-fits``, ``tess-pkl`` and the ``binned-*`` ones): the
  HAT descriptions are read from ``astrobase.hatsurveys.hatlc.COLUMNDEFS``; what astrobase
  does not say (units, roles, time scales, flag meanings) is in the tables below.
  The Kepler and TESS facts are those of the Kepler Archive Manual (KDMC-10008, sect.
  2.3) and the TESS Science Data Products Description (EXP-TESS-ARC-ICD-0014, table 28),
  whose columns astrobase's ``astrokep``/``astrotess`` read (``LCDATAKEYS``,
  ``LCSAPKEYS``, ``LCPDCKEYS``); ``astrokep`` itself does not import under numpy 2.
- ``collection.json`` may declare any column (``"columns": {name: entry}``), the
  quality masks (``"masks"``) and the observatory (``"location"``); declarations win.
- FITS light curves: TIMESYS, TIMEREF/TREFPOS, BJDREFI/F, MJDREF, JDREF, TUNITn and the
  TTYPEn comments (see :func:`fits_column_info`).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

ROLES = ("time", "mag", "mag_err", "flux", "flux_err", "flag", "frame", "aux")
# IVOA UCD1+ for the roles (VOTable FIELD ucd)
ROLE_UCD = {"time": "time.epoch", "mag": "phot.mag", "mag_err": "stat.error;phot.mag", "flux": "phot.flux",
            "flux_err": "stat.error;phot.flux", "flag": "meta.code.qual"}
TIME_SCALES = ("TDB", "TT", "TAI", "UTC", "UT1", "TCB", "TCG", "GPS", "LOCAL")
REFPOS_WORDS = {"SOLARSYSTEM": "BARYCENTER", "BARYCENTER": "BARYCENTER", "BARYCENTRIC": "BARYCENTER",
                "HELIOCENTER": "HELIOCENTER", "HELIOCENTRIC": "HELIOCENTER", "GEOCENTER": "GEOCENTER",
                "GEOCENTRIC": "GEOCENTER", "TOPOCENTER": "TOPOCENTER", "LOCAL": "TOPOCENTER"}
UNSTATED_SCALE = "the format does not state this column's time scale"

# --- HAT (HATNet / HATSouth) -------------------------------------------------------------
HAT_APERTURE_RE = re.compile(r"^(a[a-z]{2}|p[a-z]{2})_(\d{3})$")
# the values HAT/CDIPS photometry writes (CDIPS TTYPE comment: "0/G OK, X bad"); others are undocumented
HAT_FLAGS = {"G": "good", "0": "good", "X": "bad"}
HAT_EXTRA = {
    # role and unit for the COLUMNDEFS keys; descriptions come from astrobase
    "rjd": {"role": "time", "unit": "d", "timescale": None, "refpos": None, "timeorigin": 2400000.0},
    "bjd": {"role": "time", "unit": "d", "timescale": "TDB", "refpos": "BARYCENTER", "timeorigin": 0.0},
    "exp": {"role": "frame", "unit": "s"}, "ttt": {"role": "frame", "unit": "deg_C"},
    "iha": {"role": "frame", "unit": "h"}, "izd": {"role": "frame", "unit": "deg"},
    "xcc": {"role": "frame", "unit": "pix"}, "ycc": {"role": "frame", "unit": "pix"},
    "xic": {"role": "frame", "unit": "pix"}, "yic": {"role": "frame", "unit": "pix"},
    "bgv": {"role": "frame", "unit": "adu"}, "bge": {"role": "frame", "unit": "adu"},
    "aim": {"role": "mag", "unit": "mag"}, "arm": {"role": "mag", "unit": "mag"},
    "aep": {"role": "mag", "unit": "mag"}, "atf": {"role": "mag", "unit": "mag"},
    "aie": {"role": "mag_err", "unit": "mag"},
    "aiq": {"role": "flag", "flags": HAT_FLAGS},
    "psm": {"role": "mag", "unit": "mag"}, "pep": {"role": "mag", "unit": "mag"}, "ptf": {"role": "mag", "unit": "mag"},
    "pse": {"role": "mag_err", "unit": "mag"}, "psq": {"role": "flag", "flags": HAT_FLAGS},
}

# --- HATPI text light curves (astrobase.hatsurveys.hplc.COLDEFS comments) --------------------
HP_COLUMNS = {
    "rjd": {"role": "time", "unit": "d", "timescale": None, "refpos": None, "timeorigin": 2400000.0,
            "description": "reduced Julian date (JD = 2400000.0 + RJD)"},
    "frk": {"role": "frame", "description": "frame key: {stationid}-{framenum}{framesub}_{ccdnum}"},
    "hat": {"role": "aux", "description": "HAT id of the object"},
    "xcc": {"role": "frame", "unit": "pix", "description": "original x coordinate on the imagesub astromref"},
    "ycc": {"role": "frame", "unit": "pix", "description": "original y coordinate on the imagesub astromref"},
    "xic": {"role": "frame", "unit": "pix", "description": "shifted x coordinate on this frame"},
    "yic": {"role": "frame", "unit": "pix", "description": "shifted y coordinate on this frame"},
    "fsv": {"role": "frame", "description": "measured S value"},
    "fdv": {"role": "frame", "description": "measured D value"},
    "fkv": {"role": "frame", "description": "measured K value"},
    "bgv": {"role": "frame", "unit": "adu", "description": "background value"},
    "bge": {"role": "frame", "unit": "adu", "description": "background measurement error"},
}
HP_APERTURE = {
    "ifl": {"role": "flux", "unit": "adu", "description": "flux measurement in ADU, aperture %s"},
    "ife": {"role": "flux_err", "unit": "adu", "description": "flux error in ADU, aperture %s"},
    "irm": {"role": "mag", "unit": "mag", "description": "instrumental magnitude in aperture %s"},
    "ire": {"role": "mag_err", "unit": "mag", "description": "instrumental magnitude error for aperture %s"},
    "irq": {"role": "flag", "flags": HAT_FLAGS,
            "description": "instrumental magnitude quality flag for aperture %s"},
    "iep": {"role": "mag", "unit": "mag", "description": "EPD magnitude for aperture %s"},
    "itf": {"role": "mag", "unit": "mag", "description": "TFA magnitude for aperture %s"},
}

# --- Kepler / K2 and TESS SPOC (astrokep / astrotess lcdicts) ----------------------------------
KEPLER_QUALITY = {
    "1": "attitude tweak", "2": "safe mode", "4": "coarse point", "8": "Earth point", "16": "zero crossing",
    "32": "desaturation event", "64": "Argabrightening", "128": "cosmic ray in optimal aperture",
    "256": "manual exclude", "1024": "sudden sensitivity dropout", "2048": "impulsive outlier",
    "4096": "Argabrightening on CCD", "8192": "cosmic ray in collateral data", "16384": "detector anomaly",
    "32768": "no fine point", "65536": "no data", "131072": "rolling band in optimal aperture",
    "262144": "rolling band in full mask", "524288": "possible thruster firing", "1048576": "thruster firing",
}
TESS_QUALITY = {
    "1": "attitude tweak", "2": "safe mode", "4": "coarse point", "8": "Earth point", "16": "Argabrightening",
    "32": "reaction wheel desaturation event", "64": "cosmic ray in optimal aperture", "128": "manual exclude",
    "256": "discontinuity corrected", "512": "impulsive outlier", "1024": "cosmic ray in collateral data",
    "2048": "straylight", "4096": "scattered light (SPOC)", "8192": "planet search exclude",
    "16384": "bad calibration exclude", "32768": "insufficient targets for error correction",
}
# the archives' "default" masks: cadences that are certainly unusable
KEPLER_DEFAULT_BITS = 1 | 2 | 4 | 8 | 32 | 256 | 16384 | 65536 | 1048576
TESS_DEFAULT_BITS = 1 | 2 | 4 | 8 | 32 | 128


def _spacecraft_columns(origin: float, name: str, quality: dict, flux_unit: str) -> dict:
    time_desc = (f"{name} barycentric time: BJD_TDB - {origin:.1f} "
                 f"({'BKJD' if name == 'Kepler' else 'BTJD'}), mid-cadence")
    return {
        "time": {"role": "time", "unit": "d", "timescale": "TDB", "refpos": "BARYCENTER", "timeorigin": origin,
                 "description": time_desc},
        "timecorr": {"role": "frame", "unit": "d", "description": "barycentric correction applied to the times"},
        "cadenceno": {"role": "frame", "description": "cadence number"},
        "quality": {"role": "flag", "bits": True, "flags": quality, "description": "QUALITY bit flags"},
        "sap_quality": {"role": "flag", "bits": True, "flags": quality, "description": "SAP_QUALITY bit flags"},
        "sap_sap_flux": {"role": "flux", "unit": flux_unit, "description": "simple aperture photometry flux"},
        "sap_sap_flux_err": {"role": "flux_err", "unit": flux_unit, "description": "SAP flux error"},
        "sap_sap_bkg": {"role": "frame", "unit": flux_unit, "description": "SAP background flux"},
        "sap_sap_bkg_err": {"role": "frame", "unit": flux_unit, "description": "SAP background flux error"},
        "pdc_pdcsap_flux": {"role": "flux", "unit": flux_unit,
                            "description": "pre-search data conditioning SAP flux (systematics removed)"},
        "pdc_pdcsap_flux_err": {"role": "flux_err", "unit": flux_unit, "description": "PDCSAP flux error"},
        "psf_centr1": {"role": "frame", "unit": "pix", "description": "PSF-fitted column centroid"},
        "psf_centr2": {"role": "frame", "unit": "pix", "description": "PSF-fitted row centroid"},
        "mom_centr1": {"role": "frame", "unit": "pix", "description": "flux-weighted column centroid"},
        "mom_centr2": {"role": "frame", "unit": "pix", "description": "flux-weighted row centroid"},
        "pos_corr1": {"role": "frame", "unit": "pix", "description": "column position correction"},
        "pos_corr2": {"role": "frame", "unit": "pix", "description": "row position correction"},
    }


KEPLER_COLUMNS = _spacecraft_columns(2454833.0, "Kepler", KEPLER_QUALITY, "electron/s")
TESS_COLUMNS = _spacecraft_columns(2457000.0, "TESS", TESS_QUALITY, "electron/s")


@lru_cache(maxsize=1)
def hat_columndefs() -> dict:
    """``astrobase.hatsurveys.hatlc.COLUMNDEFS`` (description, text format, type), or {}."""
    try:
        from .astrobase_compat import import_astrobase

        import_astrobase()
        from astrobase.hatsurveys.hatlc import COLUMNDEFS
    except Exception:  # astrobase missing: the tables below still give roles and times
        return {}
    return dict(COLUMNDEFS)


def _hat_column(name: str) -> dict | None:
    defs = hat_columndefs()
    match = HAT_APERTURE_RE.match(name)
    base, ap = (match.group(1), match.group(2)) if match else (name, None)
    entry = dict(HAT_EXTRA.get(base, {}))
    if base in defs:
        desc, textform, _caster = defs[base]
        entry["description"] = (desc % ap if ap is not None and "%s" in desc else desc).strip()
        entry["format"] = textform
    if not entry:
        return None
    entry.setdefault("role", "frame")
    if entry.get("role") == "flag" and ap is not None:
        entry.setdefault("description", f"quality flag, aperture {ap}")
    return entry


def _hp_column(name: str) -> dict | None:
    if name in HP_COLUMNS:
        return dict(HP_COLUMNS[name])
    match = re.match(r"^([a-z]{3})(\d)$", name)
    if match and match.group(1) in HP_APERTURE:
        entry = dict(HP_APERTURE[match.group(1)])
        entry["description"] = entry["description"] % match.group(2)
        return entry
    return None


def _binned(base):
    """``binned_<magcol>_times`` etc. as astrobase's binned pickles name them (dots become _)."""
    def describe(name: str) -> dict | None:
        match = re.match(r"^binned_(.+)_(times|mags|errs)$", name)
        if not match:
            return None
        col, kind = match.groups()
        src = base(col) or {}
        if kind == "times":
            time_src = base("rjd") or base("time") or {}
            entry = {k: v for k, v in time_src.items() if k != "format"}
            entry["description"] = f"bin centre time of the binned {col} series ({time_src.get('description', '')})"
            return entry
        entry = {k: v for k, v in src.items() if k not in ("format",)}
        role = src.get("role", "mag")
        if kind == "errs":
            entry["role"] = role if role.endswith("_err") else role + "_err"
        entry["description"] = f"binned {col} ({kind[:-1]}): {src.get('description', col)}"
        return entry
    return describe


def _kepler(name):
    return dict(KEPLER_COLUMNS[name]) if name in KEPLER_COLUMNS else None


def _tess(name):
    return dict(TESS_COLUMNS[name]) if name in TESS_COLUMNS else None


#: astrobase format key -> column describer
ASTROBASE_FORMATS = {
    "hat-sql": _hat_column, "hat-csv": _hat_column, "binned-hat": _binned(_hat_column),
    "hp-txt": _hp_column, "hp-pkl": _hp_column, "binned-hp": _binned(_hp_column),
    "kep-fits": _kepler, "kep-pkl": _kepler, "binned-kep": _binned(_kepler),
    "tess-fits": _tess, "tess-pkl": _tess, "binned-tess": _binned(_tess),
}
FORMAT_TITLES = {
    "hat-sql": "HATNet/HATSouth sqlite light curve", "hat-csv": "HATNet/HATSouth CSV light curve",
    "hp-txt": "HATPI text light curve", "hp-pkl": "HATPI light-curve pickle",
    "kep-fits": "Kepler/K2 SPOC light-curve FITS", "kep-pkl": "Kepler light-curve pickle (astrokep)",
    "tess-fits": "TESS SPOC light-curve FITS", "tess-pkl": "TESS light-curve pickle (astrotess)",
    "binned-hat": "binned HAT light curve", "binned-hp": "binned HATPI light curve",
    "binned-kep": "binned Kepler light curve", "binned-tess": "binned TESS light curve",
}


#: astrobase reader modules named by lcc-server descriptions -> the format whose knowledge applies
READER_FORMATS = {"astrobase.hatsurveys.hatlc": "hat-csv", "astrobase.hatsurveys.hplc": "hp-txt",
                  "astrobase.astrokep": "kep-fits", "astrobase.astrotess": "tess-fits"}


def format_masks(formatkey: str | None, columns) -> dict:
    """Named masks a format offers for these columns: name -> {column, good | bits, description}."""
    masks = {}
    if formatkey in ("hat-sql", "hat-csv", "hp-txt", "hp-pkl"):
        for col in columns:
            if re.match(r"^(aiq_\d{3}|psq_\d{3}|irq\d)$", col):
                masks[f"{col}_good"] = {"column": col, "good": ["G", "0"],
                                        "description": f"keep points whose {col} flag is G (good)"}
    elif formatkey in ("kep-fits", "kep-pkl", "tess-fits", "tess-pkl"):
        bits = KEPLER_DEFAULT_BITS if formatkey.startswith("kep") else TESS_DEFAULT_BITS
        for col in ("quality", "sap_quality"):
            if col in columns:
                masks["default"] = {"column": col, "bits": bits,
                                    "description": f"drop cadences with any of the archive's default "
                                                   f"{col.upper()} bits ({bits}) set"}
                masks["hardest"] = {"column": col, "bits": -1, "description": f"drop cadences with any {col} bit set"}
                break
    return masks


# ---------------------------------------------------------------------------
# time descriptions
# ---------------------------------------------------------------------------

def time_label(info: dict) -> str:
    """A short name of a time column's system: 'BJD_TDB', 'BJD_TDB - 2457000', 'JD - 2400000 (scale not stated)'."""
    scale = info.get("timescale")
    refpos = info.get("refpos")
    origin = info.get("timeorigin")
    kind = {"BARYCENTER": "BJD", "HELIOCENTER": "HJD"}.get(refpos, "JD")
    name = f"{kind}_{scale}" if scale else kind
    if origin is None:
        return f"{name} (origin not stated)" + ("" if scale else " (scale not stated)")
    if origin == 2400000.5 and kind == "JD":
        name = f"MJD_{scale}" if scale else "MJD"
    elif origin:
        name = f"{name} - {origin:.10g}"
    return name if scale else f"{name} (scale not stated)"


def time_sentence(name: str, info: dict) -> str:
    """One sentence for a header: what the time column holds."""
    parts = [f"{name}: {time_label(info)}"]
    origin = info.get("timeorigin")
    if origin is not None:
        parts.append(f"JD = {name} + {origin:.10g}" if origin else "values are full Julian Dates")
    if not info.get("timescale"):
        parts.append(UNSTATED_SCALE)
    if info.get("refpos"):
        parts.append(f"reference position {info['refpos']}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
# building a light curve's column info
# ---------------------------------------------------------------------------

def _clean_declared(name: str, entry) -> dict:
    """A collection.json column declaration, checked (unknown keys dropped)."""
    if isinstance(entry, str):
        return {"description": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"column {name!r}: declaration must be an object, not {type(entry).__name__}")
    out = {}
    for key in ("description", "unit", "format"):
        if entry.get(key) is not None:
            out[key] = str(entry[key])
    if "role" in entry:
        if entry["role"] not in ROLES:
            raise ValueError(f"column {name!r}: role must be one of {', '.join(ROLES)}, not {entry['role']!r}")
        out["role"] = entry["role"]
    if "timescale" in entry:
        scale = str(entry["timescale"]).upper() if entry["timescale"] else None
        if scale and scale not in TIME_SCALES:
            raise ValueError(f"column {name!r}: timescale must be one of {', '.join(TIME_SCALES)}")
        out["timescale"] = scale
    if "refpos" in entry:
        ref = str(entry["refpos"]).upper() if entry["refpos"] else None
        if ref and ref not in REFPOS_WORDS:
            raise ValueError(f"column {name!r}: refpos must be one of {', '.join(sorted(set(REFPOS_WORDS.values())))}")
        out["refpos"] = REFPOS_WORDS.get(ref) if ref else None
    if "timeorigin" in entry:
        origin = entry["timeorigin"]
        if origin is not None and not (isinstance(origin, (int, float)) and math.isfinite(origin)):
            raise ValueError(f"column {name!r}: timeorigin must be a number (the JD of the value 0)")
        out["timeorigin"] = float(origin) if origin is not None else None
    if "flags" in entry:
        if not isinstance(entry["flags"], dict):
            raise ValueError(f"column {name!r}: flags must map flag values to meanings")
        out["flags"] = {str(k): str(v) for k, v in entry["flags"].items()}
        out["bits"] = bool(entry.get("bits", False))
    if out.get("timescale") or out.get("timeorigin") is not None or out.get("refpos"):
        out.setdefault("role", "time")
    return out


def check_collection_declarations(data: dict) -> dict:
    """The ``columns``, ``masks`` and ``location`` of a collection.json, checked; raises
    ValueError with the offending key."""
    out = {}
    columns = data.get("columns")
    if columns is not None:
        if not isinstance(columns, dict):
            raise ValueError("'columns' must map column names to declarations")
        out["columns"] = {str(k): _clean_declared(str(k), v) for k, v in columns.items()}
    masks = data.get("masks")
    if masks is not None:
        if not isinstance(masks, dict):
            raise ValueError("'masks' must map mask names to {column, good | bad | bits}")
        out["masks"] = {}
        for name, m in masks.items():
            if not isinstance(m, dict) or "column" not in m or not any(k in m for k in ("good", "bad", "bits")):
                raise ValueError(f"mask {name!r} needs a 'column' and one of 'good', 'bad', 'bits'")
            out["masks"][str(name)] = {k: m[k] for k in ("column", "good", "bad", "bits", "description") if k in m}
    if data.get("location") is not None:
        from .timeconv import check_location

        out["location"] = check_location(data["location"])
    return out


_TIME_KEYWORDS = ("TIMESYS", "TREFPOS", "TIMEREF", "BJDREFI", "BJDREFF", "JDREFI", "JDREFF", "JDREF", "MJDREF",
                  "MJDREFI", "MJDREFF")


def fits_time_keywords(header, table_header=None) -> dict:
    """The time keywords (TIMESYS, TIMEREF/TREFPOS, BJDREFI/F, JDREF, MJDREF...) either
    header holds, the table header's over the primary's. Only these keywords' values are
    read: astropy parses a card's value when it is asked for, at ~10 us a card (a TESS
    light curve's headers hold over 200)."""
    found = {}
    for key in _TIME_KEYWORDS:
        for hdr in (table_header, header):
            if hdr is not None and key in hdr:
                found[key] = hdr[key]
                break
    return found


def fits_column_info(header, table_header=None) -> tuple[dict, dict]:
    """(column info, global time info) from a FITS light curve's headers: units from TUNITn,
    descriptions from the TTYPEn comments, time facts from :func:`fits_time_keywords`."""
    merged = fits_time_keywords(header, table_header)
    scale = str(merged.get("TIMESYS", "")).strip().upper() or None
    refpos = REFPOS_WORDS.get(str(merged.get("TREFPOS", merged.get("TIMEREF", ""))).strip().upper())
    origin = None
    if "BJDREFI" in merged or "BJDREFF" in merged:
        origin = float(merged.get("BJDREFI", 0) or 0) + float(merged.get("BJDREFF", 0) or 0)
    elif "JDREFI" in merged or "JDREFF" in merged:
        origin = float(merged.get("JDREFI", 0) or 0) + float(merged.get("JDREFF", 0) or 0)
    elif "JDREF" in merged:
        origin = float(merged["JDREF"])
    elif "MJDREF" in merged or "MJDREFI" in merged:
        origin = 2400000.5 + float(merged.get("MJDREF", 0) or 0) + float(merged.get("MJDREFI", 0) or 0) \
            + float(merged.get("MJDREFF", 0) or 0)
    columns = {}
    hdr = table_header if table_header is not None else header
    for key in hdr:
        m = re.match(r"^TTYPE(\d+)$", key or "")
        if not m:
            continue
        n, name = m.group(1), str(hdr[key]).strip()
        entry = {}
        comment = hdr.comments[key]
        if comment:
            entry["description"] = comment
        unit = str(hdr.get(f"TUNIT{n}", "")).strip()
        if unit and unit.lower() not in ("unitless", "none", "-"):
            entry["unit"] = {"day": "d", "days": "d", "pixels": "pix", "degcelcius": "deg_C"}.get(unit, unit)
        columns[name] = entry
    return columns, {"timescale": scale if scale in TIME_SCALES else None, "refpos": refpos, "timeorigin": origin}


def describe_lightcurve(lc, spec: dict | None):
    """The light curve with every column's role, unit, description and time facts from
    its format's table, the collection's declarations (``spec['columns']``) and what the
    reader gave; masks from the format and ``spec['masks']``. Returns ``lc`` (changed)."""
    spec = spec or {}
    formatkey = spec.get("formatkey") or lc.meta.get("formatkey")
    if formatkey not in ASTROBASE_FORMATS:
        formatkey = READER_FORMATS.get(lc.meta.get("readermodule"), formatkey)
    describer = ASTROBASE_FORMATS.get(formatkey)
    declared = spec.get("columns") or {}
    info = {}
    for name in lc.columns:
        entry = {}
        if describer is not None:
            entry.update(describer(name) or {})
        for key, value in (lc.column_info.get(name) or {}).items():
            if value not in (None, "") and (key not in entry or key not in ("description", "unit")):
                entry[key] = value
        entry.update(declared.get(name, {}))
        if entry.get("role") == "time":
            entry.setdefault("unit", "d")
        if "role" not in entry:
            if name in lc.time_columns:
                entry["role"] = "time"
            elif name in lc.mag_columns:
                entry["role"] = "flux" if lc.meta.get("magsarefluxes") else "mag"
            elif name in lc.err_columns:
                entry["role"] = "flux_err" if lc.meta.get("magsarefluxes") else "mag_err"
        info[name] = entry
    lc.column_info = info
    times = [n for n in lc.time_columns if n in info] + [n for n, e in info.items()
                                                        if e.get("role") == "time" and n not in lc.time_columns]
    lc.time_columns = tuple(times)
    mags = [n for n, e in info.items() if e.get("role") in ("mag", "flux")]
    errs = [n for n, e in info.items() if e.get("role") in ("mag_err", "flux_err")]
    lc.mag_columns = tuple(dict.fromkeys(list(lc.mag_columns) + mags))
    lc.err_columns = tuple(dict.fromkeys(list(lc.err_columns) + errs))
    masks = format_masks(formatkey, lc.columns)
    masks.update(spec.get("masks") or {})
    lc.masks = {k: v for k, v in masks.items() if v.get("column") in lc.columns}
    if spec.get("location") is not None:
        lc.meta.setdefault("location", spec["location"])
    if formatkey in FORMAT_TITLES:
        lc.meta.setdefault("format", f"{formatkey}: {FORMAT_TITLES[formatkey]}")
    return lc


def time_columns(collection, lc=None) -> list[dict]:
    """The time columns of a collection's light curves: [{name, scale, origin, refpos, label}],
    stated scale first (the one a plot should default to). ``collection`` is a
    :class:`~lcpanel.core.catalogs.basedir.CollectionInfo` (or its ``lcformat`` spec dict). With
    ``lc`` (one of its light curves, read through :func:`describe_lightcurve`), what that
    file states counts too (FITS headers, lc.meta); without it, the format's tables and
    collection.json declarations only, and a column known by name only has scale None."""
    spec = collection if isinstance(collection, dict) else (getattr(collection, "lcformat", None) or {})
    known: dict[str, dict] = {}
    if lc is not None:
        from .timeconv import _sources

        known = {name: info for name, info in _sources(lc)}
    else:
        describer = ASTROBASE_FORMATS.get(spec.get("formatkey"))
        names = {"hat-sql": ("rjd", "bjd"), "hat-csv": ("rjd", "bjd"), "hp-txt": ("rjd",), "hp-pkl": ("rjd",),
                 "kep-fits": ("time",), "kep-pkl": ("time",), "tess-fits": ("time",), "tess-pkl": ("time",)}
        for name in names.get(spec.get("formatkey"), ()):
            known[name] = describer(name)
        for name in spec.get("time_columns") or ():
            known.setdefault(name, {"role": "time"})
        for name, entry in (spec.get("columns") or {}).items():
            if entry.get("role") == "time":
                known[name] = {**known.get(name, {}), **entry}
    out = []
    for name, e in known.items():
        stated = any(k in e for k in ("timescale", "timeorigin", "refpos"))
        out.append({"name": name, "scale": e.get("timescale"), "origin": e.get("timeorigin"),
                    "refpos": e.get("refpos"),
                    "label": f"{name} ({time_label(e)})" if stated else f"{name} (system stated in each file)"})
    return sorted(out, key=lambda d: d["scale"] is None)
