"""Bring an lcc-server installation over: every collection registered in its
``lcc-index.sqlite`` becomes an lcpanel collection reading the same directory in place
(nothing is copied), with its name, description, project, data release, citation, its
``lcformat-description.json`` and the columns lcc-server indexed.

lcc-server's ``lcc_index`` table (lccserver/backend/abcat.py ``SQLITE_LCC_CREATE``, v0.2)
holds per collection: collection_id, lcformat_key, lcformat_desc_path, lcformat_magcols,
object_catalog_path, kdtree_pkl_path, lightcurves_dir_path, periodfinding_dir_path,
checkplots_dir_path, ra/decl bounds, nobjects, catalog_columninfo_json, columnlist,
indexedcols, ftsindexedcols, name, description, project, citation, datarelease,
last_updated, last_indexed, collection_owner, collection_visibility ('public', 'shared',
'private'), collection_sharedwith.

What cannot come over is returned as sentences (``not_carried``), and collections that
are not public are skipped unless asked for: lcpanel shows every collection to every
visitor.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from ...errors import UserError
from .ingest import add_astrobase_collection, collection_slug

INDEX = "lcc-index.sqlite"
NOT_CARRIED = (
    "lcc-server users, sessions and API keys (authdb): lcpanel has its own accounts",
    "lcc-server datasets and their products (lcc-datasets.sqlite, datasets/, products/): search again in lcpanel",
    "collection owners and 'shared with' lists: lcpanel collections are visible to every visitor",
    "lcc-server's catalog column titles (catalog_columninfo_json): lcpanel describes catalog columns itself",
    "the light-curve normalisation function: checked when adding, as lcc-server does, but not applied to "
    "served light curves",
    "converted CSV light curves (csvlcs/) and footprint SVGs: lcpanel exports on request",
)


def read_lcc_index(lcc_basedir: str | Path) -> list[dict]:
    """The rows of an lcc-server basedir's ``lcc-index.sqlite`` (opened read-only)."""
    path = Path(lcc_basedir) / INDEX
    if not path.is_file():
        raise UserError(f"{lcc_basedir} is not an lcc-server basedir: it has no {INDEX}")
    # lcc-server keeps it in WAL mode: even a read-only open writes -shm/-wal files next to
    # it, so read a copy (with its WAL) and leave the lcc-server directory untouched
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / INDEX
        shutil.copyfile(path, copy)
        if Path(f"{path}-wal").is_file():
            shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        try:
            with closing(sqlite3.connect(copy)) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute("SELECT * FROM lcc_index ORDER BY collection_id")]
        except sqlite3.Error as exc:
            raise UserError(f"cannot read {path} as lcc-server's collection index: {exc}") from None


def _outside_links(source: Path) -> list[str]:
    out = []
    for sub in ("lightcurves", "checkplots", "periodfinding"):
        p = source / sub
        if p.is_symlink() and not p.resolve().is_relative_to(source.resolve()):
            out.append(f"{sub}/ links to {p.resolve()} outside the collection directory; lcpanel serves only "
                       f"files inside it: replace the link by the directory (or bind-mount it) and re-import")
    return out


def import_lccserver(app, basedir, lcc_basedir: str | Path, *, include_private: bool = False,
                     show_progress: bool = False) -> dict:
    """Register every collection of an lcc-server basedir. Returns ``{"imported": [ids],
    "skipped": [(lcc collection_id, reason)], "notes": [per-collection sentences],
    "not_carried": [sentences]}``; one collection failing does not stop the others."""
    lcc_basedir = Path(lcc_basedir).resolve()
    rows = read_lcc_index(lcc_basedir)
    report = {"imported": [], "skipped": [], "notes": [], "not_carried": list(NOT_CARRIED)}
    for row in rows:
        cid = str(row["collection_id"])
        visibility = str(row.get("collection_visibility") or "public")
        if visibility not in ("public", "2") and not include_private:
            report["skipped"].append((cid, f"visibility {visibility!r}: lcpanel would show it to everyone "
                                           f"(use --include-private to import it anyway)"))
            continue
        source = lcc_basedir / cid
        if not source.is_dir():
            report["skipped"].append((cid, f"its directory {source} does not exist"))
            continue
        desc = Path(row.get("lcformat_desc_path") or source / "lcformat-description.json")
        if not desc.is_absolute():
            desc = source / desc
        lcformat = {"kind": "lcc-description", "path": str(desc)} if desc.is_file() else None
        meta = {"name": row.get("name") or cid, "description": row.get("description") or "",
                "project": row.get("project") or "", "citation": row.get("citation") or "",
                "datarelease": row.get("datarelease") or 0}
        indexed = tuple(c for c in str(row.get("indexedcols") or "").split(",") if c)
        try:
            info = add_astrobase_collection(app, basedir, source, collection_id=collection_slug(cid), meta=meta,
                                            lcformat=lcformat, index_columns=indexed, show_progress=show_progress)
        except Exception as exc:  # report and go on with the next collection
            report["skipped"].append((cid, f"{type(exc).__name__}: {exc}"))
            continue
        report["imported"].append(info.collection_id)
        for note in _outside_links(source):
            report["notes"].append(f"{info.collection_id}: {note}")
        if info.collection_id != cid:
            report["notes"].append(f"{cid} is lcpanel collection {info.collection_id!r} (ids are lower-case "
                                   f"letters, digits and _)")
    return report


def print_report(report: dict, out=None) -> None:
    import sys

    out = out or sys.stdout
    print(f"imported {len(report['imported'])} collection(s): {', '.join(report['imported']) or 'none'}", file=out)
    for cid, reason in report["skipped"]:
        print(f"not imported: {cid}: {reason}", file=out)
    for note in report["notes"]:
        print(f"note: {note}", file=out)
    print("not brought over:", file=out)
    for line in report["not_carried"]:
        print(f"  - {line}", file=out)
