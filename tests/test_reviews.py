"""Reviews (object comments and variability info) live in the basedir: the survey's
collection directory never changes while serving; comments are appended with author and
time; only staff change variability info; only admins touch other people's comments;
caps on comment size and count; ``lcpanel reviews export`` writes reviews into the
checkplots on the operator's command, with a dry run."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from support.clients import send
from support.servers import running_server
from test_checkplots import all_checkplots, catalog_row, fts_find, reviewed_variable, unreviewed

from lcpanel.errors import Forbidden, TooManyRequests, UserError


def tree_digest(path: Path) -> dict:
    """Every file and directory under ``path`` (hidden ones too) with its bytes' SHA256,
    mode and size: any write, new file, rename or chmod changes it."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(root) / name
            st = full.lstat()
            rel = str(full.relative_to(path))
            if full.is_file() and not full.is_symlink():
                out[rel] = (hashlib.sha256(full.read_bytes()).hexdigest(), st.st_mode, st.st_size, st.st_mtime_ns)
            else:
                out[rel] = ("dir", st.st_mode)
    return out


@pytest.fixture
def renv(csv_collection, tmp_path):
    """A private copy of the example collection ingested as ``demo`` into a fresh basedir,
    with accounts of every role and an API key each."""
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    source = tmp_path / "survey" / "demo_csv"
    shutil.copytree(csv_collection, source)
    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    info = add_astrobase_collection(app, base, source, collection_id="demo", show_progress=False)
    keys = {}
    for name, role in (("ann", "user"), ("bob", "user"), ("rev", "staff"), ("root", "admin")):
        user = app.users.add_user(name, f"pw-{name}-123456", role)
        keys[name] = app.users.issue_key(user.identity, role, label="test")[0]
    return {"app": app, "base": base, "info": info, "source": source, "cps": all_checkplots(source),
            "keys": keys}


def viewer(identity: str, role: str):
    from lcpanel.core.datasets import Principal

    return Principal(identity, role)


ANN, BOB = viewer("user:ann", "user"), viewer("user:bob", "user")
REV, ROOT = viewer("user:rev", "staff"), viewer("user:root", "admin")
ANON = viewer("anon:" + "a" * 24, "anonymous")


def call(url: str, method: str = "GET", body=None, key: str | None = None, cookie: str | None = None):
    headers = {"Content-Type": "application/json", "Origin": url.split("/api/")[0]}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if cookie:
        headers["Cookie"] = cookie
    data = json.dumps(body).encode() if body is not None else None
    status, answer_headers, answer = send(urllib.request.Request(url, data=data, headers=headers, method=method),
                                          timeout=60)
    return status, json.loads(answer), answer_headers


# --- the store ------------------------------------------------------------------------------


@pytest.mark.slow
def test_comments_are_appended_with_author_and_time_and_permissions_hold(renv):
    from lcpanel.core.objects import reviews

    base, info = renv["base"], renv["info"]
    oid = reviewed_variable(renv["cps"])
    survey_comment = renv["cps"][oid].get("comments")
    before = tree_digest(renv["source"])
    settings = renv["app"].config.reviews

    a = reviews.add_comment(base, info, oid, ANN, "looks like an EB", settings=settings)
    b = reviews.add_comment(base, info, oid, BOB, "agree, secondary visible", settings=settings)
    c = reviews.add_comment(base, info, oid, ANON, "zzanonymous remark", settings=settings)
    listed = reviews.comments(base, "demo", oid)
    assert [(x["author"], x["text"]) for x in listed] == [
        ("user:ann", "looks like an EB"), ("user:bob", "agree, secondary visible"), (ANON.identity, "zzanonymous remark")]
    assert all(x["time"].endswith("+00:00") for x in listed) and listed[0]["time"] <= listed[2]["time"]
    assert [x["comment_id"] for x in listed] == [a["comment_id"], b["comment_id"], c["comment_id"]]

    # nobody edits or deletes another person's comment, except admins; one's own, yes
    with pytest.raises(Forbidden):
        reviews.edit_comment(base, info, oid, a["comment_id"], BOB, "EB? no, RR Lyr", settings=settings)
    with pytest.raises(Forbidden):
        reviews.delete_comment(base, info, oid, a["comment_id"], REV)  # staff is not admin
    with pytest.raises(Forbidden):
        reviews.delete_comment(base, info, oid, a["comment_id"], ANON)
    reviews.edit_comment(base, info, oid, a["comment_id"], ANN, "looks like an EB (P ~ 2 d)", settings=settings)
    reviews.delete_comment(base, info, oid, b["comment_id"], ROOT)
    listed = reviews.comments(base, "demo", oid)
    assert [x["text"] for x in listed] == ["looks like an EB (P ~ 2 d)", "zzanonymous remark"]
    assert listed[0]["edited"] is not None
    # the history keeps who did what, when, including the deleted and the old text
    hist = reviews.history(base, "demo", oid)
    actions = [(h["author"], h["field"], h["old_value"], h["new_value"]) for h in hist]
    assert ("user:ann", "comment", None, "looks like an EB") in actions
    assert ("user:ann", "comment", "looks like an EB", "looks like an EB (P ~ 2 d)") in actions
    assert ("user:root", "comment", "agree, secondary visible", None) in actions

    # only staff change variability info
    for who in (ANON, ANN):
        with pytest.raises(Forbidden):
            reviews.set_varinfo(base, info, oid, who, {"vartags": "zzhacked"})
    with pytest.raises(UserError, match="append"):
        reviews.set_varinfo(base, info, oid, REV, {"comments": "replace them all"})
    out = reviews.set_varinfo(base, info, oid, REV, {"vartags": "zzreviewed, EB", "varperiod": 2.5})
    assert out["changed"]["varperiod"]["new"] == 2.5

    # the page's merged view: reviewed varinfo over the checkplot's; survey comment kept
    merged = reviews.object_reviews(base, info, oid)
    assert merged["values"]["vartags"] == "zzreviewed, EB" and merged["values"]["varperiod"] == 2.5
    assert merged["survey"]["comments"] == (survey_comment or None)
    # searches see the reviews (the derived catalog is the basedir's), the survey's comment stays
    assert fts_find(info, "zzreviewed") == {oid} and fts_find(info, "zzanonymous") == {oid}
    assert catalog_row(info, oid)["aep_000_vartags"] == "zzreviewed, EB"
    # and the survey's directory did not change at all
    assert tree_digest(renv["source"]) == before


@pytest.mark.slow
def test_comment_caps_are_settings_with_clear_errors(renv):
    from lcpanel.config import Config
    from lcpanel.core.objects import reviews

    base, info = renv["base"], renv["info"]
    oid = unreviewed(renv["cps"])
    settings = Config.from_dict({"reviews": {"max_comment_chars": 40, "max_comments_per_object_per_day": 2}}).reviews
    with pytest.raises(UserError, match="at most 40 characters"):
        reviews.add_comment(base, info, oid, ANN, "x" * 41, settings=settings)
    reviews.add_comment(base, info, oid, ANN, "one", settings=settings)
    reviews.add_comment(base, info, oid, ANN, "two", settings=settings)
    with pytest.raises(TooManyRequests, match="2 comments per object per day"):
        reviews.add_comment(base, info, oid, ANN, "three", settings=settings)
    reviews.add_comment(base, info, oid, BOB, "bob's first", settings=settings)  # per identity
    reviews.add_comment(base, info, unreviewed(dict(list(renv["cps"].items())[::-1])), ANN, "other object",
                        settings=settings)  # per object
    reviews.add_comment(base, info, oid, ROOT, "admins are not capped", settings=settings)
    with pytest.raises(UserError, match="empty"):
        reviews.add_comment(base, info, oid, BOB, "   ", settings=settings)
    assert [c["text"] for c in reviews.comments(base, "demo", oid)] == ["one", "two", "bob's first",
                                                                        "admins are not capped"]
    with pytest.raises(UserError, match="unknown setting reviews.max_comment_size"):
        Config.from_dict({"reviews": {"max_comment_size": 3}})


# --- the JSON API ---------------------------------------------------------------------------


@pytest.mark.slow
def test_reviews_api_session_leaves_the_collection_directory_untouched(renv):
    base, source, keys = renv["base"], renv["source"], renv["keys"]
    oid = reviewed_variable(renv["cps"])
    before = tree_digest(source)
    with running_server(base.path) as (url, _proc):
        api = f"{url}/api/collections/demo/objects/{oid}/reviews"
        status, data, _ = call(api)
        assert status == 200 and data["comments"] == [] and data["values"]["objectisvar"] == 1
        assert data["may_edit_varinfo"] is False

        status, data, headers = call(api, "POST", {"comment": "anonymous note"})
        assert status == 201, data
        cookie = headers["Set-Cookie"].split(";")[0]
        assert data["comment"]["author"].startswith("anon:")
        status, data, _ = call(api, "POST", {"varinfo": {"objectisvar": 2}}, cookie=cookie)
        assert status == 403 and "staff" in data["error"]
        status, ann, _ = call(api, "POST", {"comment": "ann's note"}, key=keys["ann"])
        assert status == 201
        status, data, _ = call(api, "POST", {"varinfo": {"vartags": "zzapi"}}, key=keys["ann"])
        assert status == 403
        status, bob, _ = call(api, "POST", {"comment": "bob's note"}, key=keys["bob"])
        cid = ann["comment"]["comment_id"]
        status, data, _ = call(f"{api}/comments/{cid}", "POST", {"text": "bob rewrote it"}, key=keys["bob"])
        assert status == 403 and "your own" in data["error"]
        status, data, _ = call(f"{api}/comments/{cid}", "DELETE", key=keys["bob"])
        assert status == 403
        status, data, _ = call(f"{api}/comments/{cid}", "POST", {"text": "ann's note, edited"}, key=keys["ann"])
        assert status == 200 and data["comment"]["text"] == "ann's note, edited"
        status, data, _ = call(f"{api}/comments/{bob['comment']['comment_id']}", "DELETE", key=keys["root"])
        assert status == 200
        status, data, _ = call(api, "POST", {"varinfo": {"vartags": "zzapitag", "varperiod": 1.75}},
                               key=keys["rev"])
        assert status == 200, data
        status, data, _ = call(api, "POST", {"comment": "y" * 6000}, key=keys["ann"])
        assert status == 400 and "at most 5000 characters" in data["error"]
        status, data, _ = call(api, "POST", {"colour": "red"}, key=keys["ann"])
        assert status == 400

        status, data, _ = call(api, key=keys["rev"])
        assert data["may_edit_varinfo"] is True
        assert [c["text"] for c in data["comments"]] == ["anonymous note", "ann's note, edited"]
        assert data["values"]["vartags"] == "zzapitag" and data["values"]["varperiod"] == 1.75
        assert {h["author"] for h in data["history"]} >= {"user:ann", "user:bob", "user:root", "user:rev"}
        status, found, _ = call(f"{url}/api/search", "POST",
                                {"type": "fulltext", "params": {"query": "zzapitag"}, "collections": ["demo"]},
                                key=keys["ann"])
        assert [r["objectid"] for r in found["rows"]] == [oid]
    assert tree_digest(source) == before


# --- export -----------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str]:
    from lcpanel.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.mark.slow
def test_export_dry_run_changes_nothing_then_export_writes_the_pickles(renv):
    from lcpanel.core.objects import reviews
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.checkplot.pkl_io import _read_checkplot_picklefile

    base, info, source = renv["base"], renv["info"], renv["source"]
    settings = renv["app"].config.reviews
    star, quiet = reviewed_variable(renv["cps"]), unreviewed(renv["cps"])
    reviews.add_comment(base, info, star, ANN, "primary eclipse is flat-bottomed", settings=settings)
    reviews.add_comment(base, info, star, REV, "confirmed", settings=settings)
    reviews.set_varinfo(base, info, star, REV, {"vartags": "zzexport, EA", "varperiod": 3.25})
    reviews.set_varinfo(base, info, quiet, REV, {"objectisvar": 2})
    star_path = source / catalog_row(info, star)["cpfname"]
    quiet_path = source / catalog_row(info, quiet)["cpfname"]
    original_star = _read_checkplot_picklefile(str(star_path))
    before = tree_digest(source)

    code, out = run_cli("reviews", "export", str(base.path), "demo", "--dry-run")
    assert code == 0
    assert tree_digest(source) == before
    assert star in out and quiet in out and "vartags" in out and "3.25" in out and "dry run" in out
    assert "2 checkplots would change" in out

    code, out = run_cli("reviews", "export", str(base.path), "demo")
    assert code == 0 and "2 checkplots updated" in out
    cp = _read_checkplot_picklefile(str(star_path))
    assert cp["varinfo"]["vartags"] == "zzexport, EA" and cp["varinfo"]["varperiod"] == 3.25
    assert cp["varinfo"]["objectisvar"] == original_star["varinfo"]["objectisvar"]
    assert cp["varinfo"]["varepoch"] == original_star["varinfo"]["varepoch"]
    assert "user:ann" in cp["comments"] and "primary eclipse is flat-bottomed" in cp["comments"]
    assert "user:rev" in cp["comments"] and "confirmed" in cp["comments"]
    if original_star.get("comments"):
        assert cp["comments"].startswith(original_star["comments"])
    assert cp["magseries"]["times"].size == original_star["magseries"]["times"].size
    assert _read_checkplot_picklefile(str(quiet_path))["varinfo"]["objectisvar"] == 2
    changed = {k for k in before if before[k] != tree_digest(source).get(k)}
    assert changed == {str(star_path.relative_to(source)), str(quiet_path.relative_to(source))}
    assert not [p for p in star_path.parent.iterdir() if p.name.startswith(".tmp-")]

    # idempotent: a second export has nothing to do
    after = tree_digest(source)
    code, out = run_cli("reviews", "export", str(base.path), "demo")
    assert code == 0 and "nothing to export" in out
    assert tree_digest(source) == after


# --- the object page's review form, built in-process ----------------------------------------


def object_page(app, oid: str, who, monkeypatch):
    """The object page as ``who`` sees it (the page resolves its visitor from the session)."""
    from lcpanel.views import object_page as op

    monkeypatch.setattr(op, "session_viewer", lambda _app: who)
    return op.ObjectPage(app=app, collection="demo", objectid=oid)


@pytest.mark.slow
def test_object_page_appends_comments_and_spends_the_request_budget(renv, monkeypatch):
    from lcpanel.app import App
    from lcpanel.config import Config
    from lcpanel.core.objects import reviews

    base, info, source = renv["base"], renv["info"], renv["source"]
    oid = reviewed_variable(renv["cps"])
    before = tree_digest(source)
    burst = 3
    app = App(base.path, config=Config.from_dict({"limits": {"user_requests_per_minute": 1, "burst": burst}}))
    page = object_page(app, oid, ANN, monkeypatch)
    assert page.review.f_isvar.disabled and page.review.f_comments.value == ""  # a user: comments only, no varinfo
    saved = 0
    for i in range(burst + 2):
        page.review.f_comments.value = f"comment number {i}"
        page.review._save_form()
        if page.review.review_msg.alert_type == "success":
            saved += 1
            continue
        break
    assert saved == burst  # each save spent one request of the same budget as HTTP
    assert page.review.review_msg.visible and page.review.review_msg.alert_type == "danger"
    assert "too many requests" in page.review.review_msg.object and "1 per minute" in page.review.review_msg.object
    assert [c["text"] for c in reviews.comments(base, "demo", oid)] == [f"comment number {i}" for i in range(burst)]
    # the failed save wrote nothing and kept the visitor's text
    assert page.review.f_comments.value == f"comment number {burst}"

    # a user cannot slip varinfo through the form; staff can, and the comment list shows authors
    page.review.f_tags.value = "zzsneaky"
    page.review._save_form()
    assert "zzsneaky" not in str(reviews.object_reviews(base, info, oid)["values"])
    staff = object_page(App(base.path), oid, REV, monkeypatch)
    assert not staff.review.f_isvar.disabled
    staff.review.f_tags.value = "zzstaffpage"
    staff.review.f_comments.value = "staff comment"
    staff.review._save_form()
    assert staff.review.review_msg.alert_type == "success", staff.review.review_msg.object
    assert reviews.object_reviews(base, info, oid)["values"]["vartags"] == "zzstaffpage"
    listed = " ".join(o.object for row in staff.review.comment_list.objects for o in row.objects if hasattr(o, "object"))
    assert "user:ann" in listed and "staff comment" in listed
    assert tree_digest(source) == before


@pytest.mark.slow
def test_dataset_comments_build_and_search_spend_the_budget_and_never_touch_the_collection(renv, monkeypatch):
    """Tile comments on the dataset page are appended (author, time) to the dataset in the
    basedir; those, product builds and searches from the form spend the request budget."""
    from lcpanel.app import App
    from lcpanel.config import Config
    from lcpanel.core.datasets import object_key
    from lcpanel.core.search import run_search
    from lcpanel.views import dataset_page as dp
    from lcpanel.views import search_form as sf

    base, source = renv["base"], renv["source"]
    before = tree_digest(source)
    app = App(base.path, config=Config.from_dict({"limits": {"user_requests_per_minute": 1, "burst": 2}}))
    result = run_search(app, {"type": "filter", "params": {"where": "ndet > 0"}, "collections": ["demo"], "limit": 3})
    ds = app.datasets.create(result, BOB.identity, visibility="public")
    monkeypatch.setattr(dp, "session_viewer", lambda _app: ANN)
    page = dp.DatasetPage(app=app, dataset_id=ds.dataset_id)
    key = object_key("demo", ds.data["objectid"][0])
    page._comment(key, "first look")
    page._comment(key, "second look")
    stored = app.datasets.get(ds.dataset_id, ANN).object_comments[key]
    assert [(c["author"], c["text"]) for c in stored] == [("user:ann", "first look"), ("user:ann", "second look")]
    assert all(c["time"] for c in stored)
    page._comment(key, "third look")  # the budget (burst 2, 1 per minute) is spent
    assert page.message.visible and page.message.alert_type == "danger"
    assert "too many requests" in page.message.object
    assert len(app.datasets.get(ds.dataset_id, ANN).object_comments[key]) == 2
    page._start_build()
    assert "too many requests" in page.status.object
    assert app.products.for_dataset(ds.dataset_id) == []

    monkeypatch.setattr(sf, "session_viewer", lambda _app: ANN)
    backend = next(b for b in app.search_backends if b.name == "objectid")
    form = sf.SearchForm(app=app, backend=backend, collections=[renv["info"]])
    n_before = len(app.datasets.list(ANN, mine=True))
    from support import aio

    assert aio.run(form.search) is None
    assert "too many requests" in form.message.object
    assert len(app.datasets.list(ANN, mine=True)) == n_before
    app.products.shutdown()
    assert tree_digest(source) == before


def test_reviews_on_real_tess_cdips_light_curves(tmp_path):
    """Real data (../shared/realdata, two TESS CDIPS light curves, no checkplots): comments
    are kept, variability info is refused with a clear message (the catalog has no
    astrobase variability columns), the survey's directory is unchanged and the export
    has nothing to write."""
    from test_formats_real import CDIPS, make_cdips_collection

    from lcpanel.app import App
    from lcpanel.core.objects import reviews
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection

    if len(CDIPS) < 2:
        pytest.skip("no ../shared/realdata CDIPS files")
    source = make_cdips_collection(tmp_path)
    base = Basedir.init(tmp_path / "basedir")
    app = App(base.path)
    info = add_astrobase_collection(app, base, source, collection_id="cdips", show_progress=False)
    before = tree_digest(source)
    with closing(sqlite3.connect(f"file:{info.catalog_sqlite}?mode=ro", uri=True)) as conn:
        oid = conn.execute("SELECT objectid FROM object_catalog ORDER BY objectid LIMIT 1").fetchone()[0]
    reviews.add_comment(base, info, oid, ANN, "dip at TMID_BJD 2458478.9, one transit only",
                        settings=app.config.reviews)
    with pytest.raises(UserError, match="no catalog column for objectisvar"):
        reviews.set_varinfo(base, info, oid, REV, {"objectisvar": 1})
    out = reviews.object_reviews(base, info, oid)
    assert [(c["author"], c["text"]) for c in out["comments"]] == [
        ("user:ann", "dip at TMID_BJD 2458478.9, one transit only")]
    code, text = run_cli("reviews", "export", str(base.path), "cdips", "--dry-run")
    assert code == 0 and "no checkplot" in text
    assert tree_digest(source) == before


@pytest.mark.slow
def test_export_into_an_unwritable_directory_says_so_and_leaves_it(renv, monkeypatch):
    from lcpanel.core.objects import reviews

    base, info, source = renv["base"], renv["info"], renv["source"]
    star = reviewed_variable(renv["cps"])
    reviews.set_varinfo(base, info, star, REV, {"vartags": "zzreadonly"})
    before = tree_digest(source)

    def refuse(path, *args):  # what a read-only survey directory answers (root writes anywhere)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(reviews, "_replace_checkplot", refuse)
    code, out = run_cli("reviews", "export", str(base.path), "demo")
    assert code == 1 and "NOT UPDATED: could not be written: Permission denied" in out
    assert "0 checkplots updated; 1 could not be written" in out
    assert tree_digest(source) == before
