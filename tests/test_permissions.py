"""The permission matrix: every principal (anonymous sessions, users by login and by API
key, staff, admin) x every visibility x every dataset and product action x owner or not,
through ``lcpanel serve``. Private means private: a dataset nobody may see answers 404
everywhere, is never listed, and no answer carries its name."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from support.data import set_config
from test_accounts import Client
from support.servers import running_server

pytestmark = pytest.mark.slow

VISIBILITIES = ("public", "unlisted", "private")
OBJECTS = 2


@pytest.fixture(scope="module")
def matrix_server(csv_collection, tmp_path_factory):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.catalogs.ingest import add_astrobase_collection
    from lcpanel.core.access.users import UserStore

    base = Basedir.init(tmp_path_factory.mktemp("perm") / "basedir")
    add_astrobase_collection(App(base.path), base, csv_collection, collection_id="demo", show_progress=False)
    # this test is about who may do what, not about budgets
    set_config(base.path, "[limits]\nanonymous_requests_per_minute = 0\nuser_requests_per_minute = 0\n"
                          "staff_requests_per_minute = 0\n")
    store = UserStore(base.path)
    for name, role in (("alice", "user"), ("bob", "user"), ("sam", "staff"), ("root", "admin")):
        store.add_user(name, f"pw-of-{name}", role)
    keys = {"bob": store.issue_key("user:bob", "user")[0], "root": store.issue_key("user:root", "admin")[0],
            "anonkey": store.issue_key("anon:key-matrix", "anonymous")[0]}
    store.close()
    with running_server(base.path) as (url, _proc):
        yield url, base.path, keys


def principals(url, keys) -> dict[str, tuple[Client, str, bool]]:
    """name -> (client, identity, admin)."""
    out = {}
    for name in ("anonA", "anonB"):
        client = Client(url)
        out[name] = (client, client.json("/api/whoami")[1]["identity"], False)
    for name in ("alice", "sam"):
        client = Client(url)
        assert client.json("/api/login", {"username": name, "password": f"pw-of-{name}"})[0] == 200
        out[name] = (client, f"user:{name}", False)
    out["bob(key)"] = (Client(url, token=keys["bob"]), "user:bob", False)
    out["root(key)"] = (Client(url, token=keys["root"]), "user:root", True)
    out["anon(key)"] = (Client(url, token=keys["anonkey"]), "anon:key-matrix", False)
    for name, (client, identity, _) in out.items():
        assert client.json("/api/whoami")[1]["identity"] == identity, name
    return out


def make_dataset(client: Client, visibility: str, name: str) -> str:
    status, data = client.json(f"/api/search?visibility={visibility}&name={name}",
                               {"type": "filter", "params": {"where": "ndet > 0"}, "sort": "objectid",
                                "limit": OBJECTS})
    assert status == 200, data
    return data["dataset_id"]


def wait_product(client: Client, ds_id: str) -> dict:
    status, product = client.json(f"/api/datasets/{ds_id}/products", {"builder": "lightcurves"})
    assert status in (200, 202), product
    for _ in range(600):  # a hang guard, not a speed check
        if product["status"] == "done":
            return product
        assert product["status"] in ("queued", "running"), product
        time.sleep(0.2)
        product = client.json(product["url"])[1]
    pytest.fail(f"product build did not finish: {product}")


def test_permission_matrix(matrix_server):
    url, basedir, keys = matrix_server
    who = principals(url, keys)
    owners = ("anonA", "alice")
    datasets = {}  # (owner, visibility) -> (dataset id, name, product)
    for owner in owners:
        for vis in VISIBILITIES:
            name = f"secret-{owner}-{vis}-{os.urandom(4).hex()}"
            ds_id = make_dataset(who[owner][0], vis, name)
            datasets[owner, vis] = (ds_id, name, wait_product(who[owner][0], ds_id))

    cases, leaks = 0, []

    def check(label, status, expected, body=b"", hidden=()):
        nonlocal cases
        cases += 1
        if status != expected:
            leaks.append(f"{label}: HTTP {status}, expected {expected}: {body[:160]!r}")
        for secret in hidden:
            if secret.encode() in body:
                leaks.append(f"{label}: the answer names {secret!r}")

    for pname, (client, identity, admin) in who.items():
        listed_all = client.call("/api/datasets?limit=1000")
        listed_mine = client.call("/api/datasets?mine=1&limit=1000")
        for (owner, vis), (ds_id, name, product) in datasets.items():
            owner_identity = who[owner][1]
            is_owner = identity == owner_identity or admin
            can_see = vis != "private" or is_owner
            see = 200 if can_see else 404
            own = 200 if is_owner else 403 if can_see else 404
            hidden = () if can_see else (name,)
            label = f"{pname} on {owner}'s {vis}"
            # listings: public to all, the rest to the owner (and every dataset to an admin)
            in_all = ds_id.encode() in listed_all[2]
            check(f"{label}: list", 200 if in_all == (vis == "public" or is_owner) else 0, 200)
            in_mine = ds_id.encode() in listed_mine[2]
            check(f"{label}: list mine", 200 if in_mine == (identity == owner_identity) else 0, 200)
            for path in ("", "?start=0&stop=5", "/products", f"/products/{product['key']}", "/urls",
                         "/finder.png"):
                status, _, body = client.call(f"/api/datasets/{ds_id}{path}")
                check(f"{label}: GET {path or '/'}", status, see, body, hidden)
            status, _, body = client.call(f"/api/datasets/{ds_id}/products/{product['key']}/download")
            check(f"{label}: download", status, see, body if status != 200 else b"", hidden)
            if status == 200:
                check(f"{label}: download bytes", 200 if hashlib.sha256(body).hexdigest() == product["sha256"] else 0,
                      200)
            status, _, body = client.call(f"/api/datasets/{ds_id}/products", {"builder": "lightcurves"})
            check(f"{label}: request product", status, see, body, hidden)
            status, _, body = client.call(f"/api/datasets/{ds_id}", {"comment": f"hello from {pname}"})
            check(f"{label}: comment", status, see, body, hidden)
            status, _, body = client.call(f"/api/datasets/{ds_id}", {"description": f"by {pname}"})
            check(f"{label}: edit", status, own, body, hidden)
            status, _, body = client.call(f"/api/datasets/{ds_id}", {"visibility": "public"}) \
                if not is_owner else (own, None, b"")  # owners would really publish it: checked below
            check(f"{label}: publish", status, own, body, hidden)
            status, _, body = client.call(f"/api/datasets/{ds_id}/freeze", {})
            check(f"{label}: freeze", status, own, body, hidden)

        # deleting: on fresh datasets, one per owner and visibility
        for owner in owners:
            for vis in VISIBILITIES:
                ds_id = make_dataset(who[owner][0], vis, f"to-delete-{vis}")
                owner_identity = who[owner][1]
                is_owner = identity == owner_identity or admin
                can_see = vis != "private" or is_owner
                status, _, body = client.call(f"/api/datasets/{ds_id}", method="DELETE")
                check(f"{pname} deletes {owner}'s {vis}", status, 200 if is_owner else 403 if can_see else 404, body)
                still = who[owner][0].call(f"/api/datasets/{ds_id}")[0]
                check(f"{pname} deletes {owner}'s {vis}: still there", still, 404 if is_owner else 200)

    # the edits that were refused changed nothing: names and visibility as made
    for (owner, vis), (ds_id, name, _) in datasets.items():
        data = who[owner][0].json(f"/api/datasets/{ds_id}")[1]
        assert (data["name"], data["visibility"]) == (name, vis)
        assert data["description"].startswith("by ") and data["description"][3:] in \
            {p for p, (_, ident, adm) in who.items() if ident == who[owner][1] or adm}
    print(f"\n[permissions] {len(who)} principals x {len(datasets)} datasets: {cases} cases checked, "
          f"{len(leaks)} wrong")
    assert not leaks, "\n".join(leaks[:30])


def test_staff_may_review_objects_others_may_not(matrix_server):
    """Variability info is edited on the object page, as staff; the rule is one function."""
    from lcpanel.core.datasets import Principal
    from lcpanel.views.object_page import can_edit_varinfo

    assert [can_edit_varinfo(Principal("x", role), None) for role in ("anonymous", "user", "staff", "admin")] == \
        [False, False, True, True]


def test_object_files_never_leave_the_collection(matrix_server):
    """Path tricks in collection names, object ids, file kinds, dataset ids and product keys."""
    url, basedir, keys = matrix_server
    client = Client(url, token=keys["root"])  # even an admin
    secret = (basedir / ".secret").read_bytes()
    tricks = ["../../.secret", "..%2F..%2F.secret", "%2e%2e/%2e%2e/.secret", "/etc/passwd", "..", "demo/../..",
              "%00", "lightcurves/../../../.secret"]
    for t in tricks:
        for path in (f"/api/collections/{t}", f"/api/collections/demo/objects/{t}/lightcurve",
                     f"/api/collections/{t}/objects/x/checkplot", f"/api/collections/demo/objects/{t}/tiles",
                     f"/api/datasets/{t}", f"/api/datasets/{t}/products/{t}/download",
                     f"/api/collections/demo/objects/{t}/finder.png"):
            status, _, body = client.call(path)
            assert status in (400, 404), (path, status, body[:200])
            assert secret not in body and b"Traceback" not in body and str(basedir).encode() not in body
            if body:
                assert "error" in json.loads(body)


def test_review_permission_matrix(matrix_server, csv_collection):
    """Every principal x every review action on an object: everyone appends comments and
    deletes their own; only staff and admins set variability info; only admins change
    another person's comment. The survey's collection directory never changes."""
    from test_reviews import tree_digest

    url, _basedir, keys = matrix_server
    before = tree_digest(csv_collection)
    who = principals(url, keys)
    oid = "LCP-000001"
    api = f"/api/collections/demo/objects/{oid}/reviews"
    owner_client = who["alice"][0]
    status, first = owner_client.json(api, {"comment": "alice's comment"})
    assert status == 201, first
    wrong, cases = [], 0
    for name, (client, identity, admin) in who.items():
        staff = name in ("sam", "root(key)")
        status, mine = client.json(api, {"comment": f"comment by {name}"})
        expect = [(status, 201)]
        if status == 201:
            expect.append((mine["comment"]["author"] == identity, True))
        status, _ = client.json(api, {"varinfo": {"vartags": f"zz{name}"}})
        expect.append((status, 200 if staff else 403))
        if name != "alice":
            status, _ = client.json(f"{api}/comments/{first['comment']['comment_id']}", {"text": f"{name} was here"})
            expect.append((status, 200 if admin else 403))
        if status == 201 or mine:
            status, _ = client.json(f"{api}/comments/{mine['comment']['comment_id']}", method="DELETE")
            expect.append((status, 200))
        status, data = client.json(api)
        expect.append((status, 200))
        expect.append((data["may_edit_varinfo"], staff))
        for got, want in expect:
            cases += 1
            if got != want:
                wrong.append(f"{name}: got {got}, want {want}")
    status, data = owner_client.json(api)
    assert [c["author"] for c in data["comments"]] == ["user:alice"]
    assert data["comments"][0]["text"] == "root(key) was here"  # the admin's edit; the history keeps alice's
    assert any(h["old_value"] == "alice's comment" for h in data["history"])
    print(f"\n[permissions] {len(who)} principals x review actions: {cases} cases checked, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong)
    assert tree_digest(csv_collection) == before
