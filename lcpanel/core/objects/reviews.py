"""Who may review objects, and how much: the one place of the rules for the object page,
the JSON API and the CLI, over the store in :mod:`lcpanel.core.objects.annotations`.

- Everyone, anonymous visitors included, may **append** comments to an object; each is
  kept with its author (the visitor's identity) and time. A comment's author may edit or
  delete it; nobody else may, except admins. Old texts stay in the history.
- Only staff and admins change the **variability info** (objectisvar, varperiod,
  varepoch, vartags), per magcol.
- Caps (``[reviews]`` in ``lcpanel.toml``, :class:`lcpanel.config.ReviewSettings`): a
  comment holds at most ``max_comment_chars`` characters, and one identity adds at most
  ``max_comments_per_object_per_day`` comments to one object in any 24 hours; admins
  are not capped. Request budgets (:mod:`lcpanel.core.access.ratelimit`) come on top.

Reviews live in the basedir. The survey's collection directory is read-only to lcpanel
while serving; :func:`export_reviews` (``lcpanel reviews export``) writes the reviews
into the collection's checkplot pickles on the operator's command: for each reviewed
object, the reviewed varinfo fields of its checkplot's magcol, and the standing
comments appended to the checkplot's own comment below a marker line (replacing what an
earlier export put there, so exporting twice changes nothing). Each pickle is replaced
atomically (temp file + ``os.replace``), keeping its gzip-ness, pickle protocol and mode.
"""

from __future__ import annotations

import gzip
import pickle
import stat
from pathlib import Path

from ...errors import Forbidden, NotFound, UserError
from . import annotations
from ..atomic import write_bytes
from ..catalogs.basedir import Basedir, CollectionInfo
from .checkplots import read_checkplot_bytes

#: the line an export puts between a checkplot's own comment and the reviewers' comments
EXPORT_MARKER = "--- comments from lcpanel reviews ---"
CHECKPLOT_GZIP_LEVEL = 6


def can_edit_varinfo(viewer) -> bool:
    """Whether ``viewer`` may change variability info: staff and admins."""
    return viewer.staff


def can_change_comment(viewer, comment: dict) -> bool:
    """Whether ``viewer`` may edit or delete ``comment``: its author, or an admin."""
    return viewer.admin or comment["author"] == viewer.identity


def _base(basedir) -> Basedir:
    return basedir if isinstance(basedir, Basedir) else Basedir(basedir)


def _info(base: Basedir, info) -> CollectionInfo:
    return info if isinstance(info, CollectionInfo) else base.collection(str(info))


def add_comment(basedir, info, objectid: str, viewer, text: str, *, settings) -> dict:
    """Append ``viewer``'s comment to an object, within the caps of ``settings``."""
    per_day = 0 if viewer.admin else settings.max_comments_per_object_per_day
    return annotations.add_comment(basedir, info, objectid, text, viewer.identity,
                                   max_chars=settings.max_comment_chars, max_per_day=per_day)


def _comment_must_exist(basedir, objectid: str, comment_id) -> None:
    """Before any comment is written the database does not exist: a 404 that creates nothing."""
    root = Path(getattr(basedir, "path", basedir))
    if not (root / annotations.ANNOTATIONS_FILE).is_file():
        raise NotFound(f"object {objectid!r} has no comment {comment_id}")


def edit_comment(basedir, info, objectid: str, comment_id: int, viewer, text: str, *, settings) -> dict:
    """Change the text of a comment: its author's own, or any for an admin."""
    _comment_must_exist(basedir, objectid, comment_id)
    return annotations.change_comment(basedir, info, objectid, comment_id, text, viewer.identity,
                                      may_change_others=viewer.admin, max_chars=settings.max_comment_chars)


def delete_comment(basedir, info, objectid: str, comment_id: int, viewer) -> None:
    """Delete a comment: its author's own, or any for an admin (the history keeps it)."""
    _comment_must_exist(basedir, objectid, comment_id)
    annotations.change_comment(basedir, info, objectid, comment_id, None, viewer.identity,
                               may_change_others=viewer.admin)


def set_varinfo(basedir, info, objectid: str, viewer, changes: dict, *, magcol: str | None = None,
                expect: dict | None = None) -> dict:
    """Set variability info (staff only); see :func:`lcpanel.core.objects.annotations.edit_object`."""
    if not can_edit_varinfo(viewer):
        raise Forbidden("only staff may change variability info (objectisvar, varperiod, varepoch, vartags); "
                        "everyone may comment")
    return annotations.edit_object(basedir, info, objectid, changes, viewer.identity, magcol=magcol, expect=expect)


comments = annotations.comments
history = annotations.history


def object_reviews(basedir, info, objectid: str, *, magcol: str | None = None, history_limit: int = 500) -> dict:
    """What is known of an object's review: ``values`` (variability info as shown:
    reviews merged over the survey's), ``survey`` (the survey's own values of the
    fields, and its comment), ``comments`` (standing, oldest first) and ``history``."""
    base = _base(basedir)
    info = _info(base, info)
    target, current = annotations.catalog_values(info, objectid, magcol)
    before = annotations.survey_values(base, info.collection_id, objectid)
    survey = {f: annotations._as_field(f, before[c]) if c in before else current[f]
              for f, c in target.columns.items()}
    values = {f: v for f, v in current.items() if f != "comments"}
    return {"collection_id": info.collection_id, "objectid": objectid, "magcol": target.magcol,
            "values": values, "survey": survey, "comments": comments(base, info.collection_id, objectid),
            "history": history(base, info.collection_id, objectid, limit=history_limit)}


# --- export into the checkplots ---------------------------------------------------------------


def _comment_block(items: list[dict]) -> str:
    lines = [EXPORT_MARKER]
    for c in items:
        when = c["time"][:16].replace("T", " ") + " UTC"
        lines.append(f"[{when}] {c['author']}: {c['text']}")
    return "\n".join(lines)


def _exported_comments(own, items: list[dict]):
    """The checkplot's comment after an export: its own text (without an earlier
    export's block) followed by the standing comments."""
    own = own if isinstance(own, str) else ("" if own is None else str(own))
    own = own.split(EXPORT_MARKER)[0].rstrip("\n")
    if not items:
        return own or None
    return (own + "\n" if own else "") + _comment_block(items)


def export_reviews(basedir, collection_id: str, *, dry_run: bool = False) -> list[dict]:
    """Write a collection's reviews into its checkplot pickles (see the module
    docstring). Returns one dict per checkplot that changes (or would, with
    ``dry_run``): objectid, path (relative to the collection directory), changes
    ({field: {old, new}}), and ``error`` when the file could not be replaced; objects
    without a readable checkplot come with ``skipped`` (why) instead. Nothing is written
    with ``dry_run``."""
    base = _base(basedir)
    info = base.collection(collection_id)
    out = []
    for objectid, reviewed in sorted(annotations.reviewed_objects(base, info.collection_id).items()):
        default, _ = annotations.catalog_values(info, objectid)
        groups: dict[str, set] = {}  # magcol -> fields reviewed; comments go to the default magcol's checkplot
        for magcol, field in reviewed:
            groups.setdefault(default.magcol if field == "comment" else magcol, set()).add(field)
        for magcol, fields in sorted(groups.items()):
            _export_one(base, info, objectid, magcol, fields, dry_run, out)
    return out


def _export_one(base: Basedir, info: CollectionInfo, objectid: str, magcol: str, fields: set, dry_run: bool,
                out: list) -> None:
    """One checkplot of one object: the reviewed ``fields`` of ``magcol``."""
    try:
        target, values = annotations.catalog_values(info, objectid, magcol or None)
    except UserError as exc:
        out.append({"objectid": objectid, "path": None, "changes": {}, "skipped": exc.message})
        return
    path = info.object_file(target.cpfname) if target.cpfname else None
    if path is None:
        out.append({"objectid": objectid, "path": target.cpfname, "changes": {},
                    "skipped": "no checkplot in the collection directory"})
        return
    raw = path.read_bytes()
    try:
        cp, gzipped, protocol = read_checkplot_bytes(raw, path.name)
    except UserError as exc:
        out.append({"objectid": objectid, "path": target.cpfname, "changes": {},
                    "skipped": f"the checkplot cannot be read: {exc.message}"})
        return
    varinfo = dict(cp.get("varinfo") or {})
    changes = {}
    for field in sorted(fields & set(annotations.VARINFO_FIELDS)):
        if field in values and varinfo.get(field) != values[field]:
            changes[field] = {"old": varinfo.get(field), "new": values[field]}
    if "comment" in fields:
        new_comments = _exported_comments(cp.get("comments"), comments(base, info.collection_id, objectid))
        if new_comments != cp.get("comments") and not (new_comments is None and cp.get("comments") in (None, "")):
            changes["comments"] = {"old": cp.get("comments"), "new": new_comments}
    if not changes:
        return
    item = {"objectid": objectid, "path": target.cpfname, "changes": changes}
    out.append(item)
    if dry_run:
        return
    for field, change in changes.items():
        if field == "comments":
            cp["comments"] = change["new"]
        else:
            varinfo[field] = change["new"]
    cp["varinfo"] = varinfo
    try:
        _replace_checkplot(path, cp, gzipped, protocol)
    except OSError as exc:  # e.g. a read-only directory: that file stays as it was
        item["error"] = f"could not be written: {exc.strerror or exc}"


def _replace_checkplot(path: Path, cp: dict, gzipped: bool, protocol: int) -> None:
    if not 2 <= protocol <= pickle.HIGHEST_PROTOCOL:
        protocol = pickle.HIGHEST_PROTOCOL
    data = pickle.dumps(cp, protocol=protocol)
    if gzipped:
        data = gzip.compress(data, compresslevel=CHECKPLOT_GZIP_LEVEL, mtime=0)
    write_bytes(path, data, mode=stat.S_IMODE(path.stat().st_mode))
