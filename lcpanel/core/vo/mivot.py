"""MIVOT 1.0 annotation of the positions in TAP and cone-search results, on request.

A VOTable result whose columns hold a right ascension and a declination (UCDs
``pos.eq.ra`` / ``pos.eq.dec``, or cone search's ``POS_EQ_RA_MAIN`` / ``POS_EQ_DEC_MAIN``,
in degrees: a collection's ``ra``/``decl``, ObsCore's ``s_ra``/``s_dec``) can carry a mapping block saying "these two columns are the
longitude and latitude of a MANGO ``EpochPosition`` in ICRS". pyvo's
``pyvo.mivot.MivotViewer`` reads it and ``SkyCoordBuilder`` turns each row into an
astropy ``SkyCoord`` without the client knowing the column names.

It is written only when the client asks, with ``content=mivot`` in ``RESPONSEFORMAT``
(``application/x-votable+xml;content=mivot``, optionally with ``;serialization=...``),
the convention of CDS's SIMBAD cone search: clients that do not read MIVOT get the
answer they always got. Only the position is annotated: lcpanel knows that ``ra`` and
``decl`` are ICRS degrees for every collection, and nothing general about other columns
(epochs, proper motions and their errors differ per survey and are not declared).

The block is a ``<RESOURCE type="meta">`` inside the results resource, before the table,
as MIVOT 1.0 (section 4) places it; its ``ref`` attributes name the columns' XML IDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from ...errors import UserError

MIVOT_NS = "http://www.ivoa.net/xml/mivot"
#: the model URLs pyvo's MIVOT glossary (pyvo 1.10) names; MANGO is a working draft
MODELS = (("ivoa", "https://www.ivoa.net/xml/VODML/IVOA-v1.vo-dml.xml"),
          ("coords", "https://ivoa.net/xml/VODML/Coords-v1.vo-dml.xml"),
          ("mango", "https://raw.githubusercontent.com/ivoa-std/MANGO/refs/heads/wd-v1.0/vo-dml/mango.vo-dml.xml"))
SPACE_SYS_ID = "_lcpanel_icrs"


def split_content(raw: str | None) -> tuple[str | None, bool]:
    """``(RESPONSEFORMAT without its content=mivot parameter, whether it was there)``.
    ``content=mivot`` with a format other than VOTable is a UsageFault."""
    if raw is None or "content" not in raw.lower():
        return raw, False
    parts = [p.strip() for p in raw.split(";")]
    kept = [p for p in parts if "".join(p.split()).lower() != "content=mivot"]
    if len(kept) == len(parts):
        return raw, False
    head = kept[0].lower() if kept else ""
    if head not in ("application/x-votable+xml", "votable", "text/xml"):
        raise UserError(f"content=mivot annotates VOTables only; RESPONSEFORMAT={raw[:80]!r} asks for {kept[0][:40]!r}")
    return ";".join(kept), True


def _first_atom(ucd: str | None) -> str:
    return (ucd or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class PositionAnnotation:
    """The mapping block: columns ``ra`` and ``dec`` (names) as an ICRS EpochPosition."""

    ra: str
    dec: str

    def xml(self, field_ids: dict[str, str]) -> str:
        ra, dec = field_ids.get(self.ra), field_ids.get(self.dec)
        if ra is None or dec is None:
            return ""
        models = "".join(f"<MODEL name={quoteattr(n)} url={quoteattr(u)}/>\n" for n, u in MODELS)
        return ('<RESOURCE type="meta">\n'
                f'<VODML xmlns="{MIVOT_NS}">\n'
                '<REPORT status="OK">positions annotated by lcpanel</REPORT>\n'
                f"{models}"
                "<GLOBALS>\n"
                f'<INSTANCE dmtype="coords:SpaceSys" dmid="{SPACE_SYS_ID}">\n'
                '<INSTANCE dmtype="coords:SpaceFrame" dmrole="coords:PhysicalCoordSys.frame">\n'
                '<ATTRIBUTE dmtype="ivoa:string" dmrole="coords:SpaceFrame.spaceRefFrame" value="ICRS"/>\n'
                "</INSTANCE>\n</INSTANCE>\n</GLOBALS>\n"
                "<TEMPLATES>\n"
                '<INSTANCE dmtype="mango:EpochPosition">\n'
                '<ATTRIBUTE dmtype="ivoa:RealQuantity" dmrole="mango:EpochPosition.longitude" unit="deg" '
                f"ref={quoteattr(ra)}/>\n"
                '<ATTRIBUTE dmtype="ivoa:RealQuantity" dmrole="mango:EpochPosition.latitude" unit="deg" '
                f"ref={quoteattr(dec)}/>\n"
                f'<REFERENCE dmrole="mango:EpochPosition.spaceSys" dmref="{SPACE_SYS_ID}"/>\n'
                "</INSTANCE>\n</TEMPLATES>\n</VODML>\n</RESOURCE>\n")


def position_annotation(fields) -> PositionAnnotation | None:
    """The annotation of the first right ascension and declination columns (in degrees)
    of a result, or None when it has no such pair."""
    def pick(*atoms: str):
        found = [f for f in fields if _first_atom(f.ucd) in atoms and (f.unit or "deg") == "deg"]
        main = [f for f in found if "main" in (f.ucd or "").lower()]
        return (main or found or [None])[0]

    # UCD1+ as TAP writes them, and the UCD1 names Simple Cone Search 1.03 requires
    ra, dec = pick("pos.eq.ra", "pos_eq_ra_main"), pick("pos.eq.dec", "pos_eq_dec_main")
    return PositionAnnotation(ra.name, dec.name) if ra is not None and dec is not None else None
