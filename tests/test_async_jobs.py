"""Async TAP jobs under hostile and competing clients (issue 15, finding 3): ABORT stops
the running query, one owner's long jobs do not hold up another's, only the owner changes
or deletes a job (readable by link), limits on stored and active jobs and on parameter
size, and DESTRUCTION honoured."""

from __future__ import annotations

import os
import time

import pytest
from support.servers import running_server, server_log
from test_vo_server import unlimited_requests
from support.vo_data import build_basedir

pyvo = pytest.importorskip("pyvo")
requests = pytest.importorskip("requests")

#: 3000^3 rows: hours of work unless interrupted
SLOW = "SELECT COUNT(*) AS n FROM lcpanel.field AS a, lcpanel.field AS b, lcpanel.field AS c"
QUICK = "SELECT TOP 2 objectid FROM lcpanel.wrap"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from lcpanel.core.access.users import UserStore

    path, _cols = build_basedir(tmp_path_factory.mktemp("jobs"))
    unlimited_requests(path / "lcpanel.toml")
    users = UserStore(path)
    for name in ("alice", "bob", "carol"):
        users.add_user(name, None, "user")
    tokens = {name: users.issue_key(f"user:{name}", "user", days=1)[0] for name in ("alice", "bob", "carol")}
    users.close()
    with running_server(path) as (url, proc):
        yield url, path, tokens, proc


def session(token: str | None = None) -> requests.Session:
    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def tap(url: str, s: requests.Session):
    return pyvo.dal.TAPService(f"{url}/tap", session=s)


def wait_phase(job, phases, timeout=60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = job.phase
        if phase in phases:
            return phase
        time.sleep(0.1)
    raise TimeoutError(f"job {job.job_id} stayed {job.phase}, not {phases}")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_abort_interrupts_the_running_query(server):
    url, path, tokens, proc = server
    service = tap(url, session(tokens["alice"]))
    slow = service.submit_job(SLOW)
    slow.execution_duration = 300
    slow.run()
    wait_phase(slow, {"EXECUTING"})
    # alice may run one job at a time: this one waits until the slow one has stopped
    quick = service.submit_job(QUICK)
    quick.run()
    slow.abort()
    assert slow.phase == "ABORTED"
    # unaborted, the slow query would hold alice's turn for 300 s, past wait_phase's wait
    assert wait_phase(quick, {"COMPLETED", "ERROR"}) == "COMPLETED"
    assert quick.job.starttime >= slow.job.endtime  # it waited for the turn the abort freed
    assert len(quick.fetch_result()) == 2
    # the aborted query no longer burns a core of the server (a cross join left running would)
    before = cpu_seconds(proc.pid)
    time.sleep(3.0)
    assert cpu_seconds(proc.pid) - before < 0.75
    assert slow.phase == "ABORTED"
    slow.delete()
    quick.delete()
    assert "Traceback" not in server_log(proc)


def test_one_owners_long_jobs_do_not_hold_up_another_owner(server):
    url, path, tokens, proc = server
    alice = tap(url, session(tokens["alice"]))
    slow = [alice.submit_job(SLOW) for _ in range(2)]
    for job in slow:
        job.execution_duration = 300
        job.run()
    wait_phase(slow[0], {"EXECUTING"})
    bob = tap(url, session(tokens["bob"]))
    job = bob.submit_job(QUICK)
    job.run()
    assert wait_phase(job, {"COMPLETED", "ERROR"}) == "COMPLETED"
    # done while alice's first job still runs and her second still waits: not after them
    assert slow[0].phase == "EXECUTING" and slow[1].phase == "QUEUED"
    for j in slow:
        j.abort()
        j.delete()
    job.delete()


def test_only_the_owner_changes_or_deletes_a_job(server):
    url, path, tokens, proc = server
    alice = session(tokens["alice"])
    job = tap(url, alice).submit_job(QUICK)
    job_url = job.url
    bob = session(tokens["bob"])
    attempts = [
        ("post", job_url + "/parameters", {"QUERY": "SELECT TOP 1 * FROM lcpanel.field"}),
        ("post", job_url, {"QUERY": "SELECT TOP 1 * FROM lcpanel.field"}),
        ("post", job_url + "/phase", {"PHASE": "RUN"}),
        ("post", job_url + "/destruction", {"DESTRUCTION": "2000-01-01T00:00:00Z"}),
        ("post", job_url + "/executionduration", {"EXECUTIONDURATION": "600"}),
        ("post", job_url, {"ACTION": "DELETE"}),
        ("delete", job_url, None),
    ]
    anonymous = session()
    for hostile in (bob, anonymous):
        for method, target, data in attempts:
            r = getattr(hostile, method)(target, data=data, allow_redirects=False)
            assert r.status_code == 403, (method, target, r.status_code, r.text[:200])
    # readable by link, by anyone (TOPCAT keeps no cookies)
    r = requests.get(job_url)
    assert r.status_code == 200 and "<uws:phase>PENDING</uws:phase>" in r.text
    assert QUICK.replace("<", "&lt;") in requests.get(job_url + "/parameters").text
    assert requests.get(job_url + "/executionduration").text == "60"
    # the owner can
    assert alice.post(job_url + "/phase", data={"PHASE": "RUN"}).status_code == 200
    assert wait_phase(job, {"COMPLETED"}) == "COMPLETED"
    assert alice.delete(job_url).status_code == 200
    assert requests.get(job_url).status_code == 404


def test_anonymous_jobs_belong_to_their_session_cookie(server):
    url, path, tokens, proc = server
    mine, other = session(), session()
    for s in (mine, other):
        s.get(f"{url}/tap/async")  # get a session cookie first
        assert s.cookies.get("lcpanel_session")
    r = mine.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": QUICK}, allow_redirects=False)
    job_url = r.headers["Location"]
    # same address, another session: refused; a cookie-less client: refused too
    assert other.post(job_url + "/phase", data={"PHASE": "RUN"}).status_code == 403
    assert requests.post(job_url + "/phase", data={"PHASE": "RUN"}).status_code == 403
    assert requests.get(job_url + "/phase").text == "PENDING"
    assert mine.post(job_url + "/phase", data={"PHASE": "RUN"}).status_code == 200
    assert mine.delete(job_url).status_code == 200
    # a cookie-less client (TOPCAT, STILTS) is bound to its address alone: it can run its jobs
    r = requests.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": QUICK, "PHASE": "RUN"},
                      allow_redirects=False)
    assert r.status_code == 303
    assert requests.delete(r.headers["Location"]).status_code == 200


def job_dirs(path):
    root = path / "vo" / "jobs"
    return [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []


def test_many_jobs_with_big_parameters_are_refused(server):
    url, path, tokens, proc = server
    before = len(job_dirs(path))
    carol = session(tokens["carol"])
    over = carol.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": QUICK + " " * 60_000},
                      allow_redirects=False)
    assert over.status_code == 413 and b"50000" in over.content
    big = QUICK + " " * 49_000
    statuses = [requests.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": big},
                              allow_redirects=False).status_code for _ in range(50)]
    assert statuses.count(303) == 10 and set(statuses[10:]) == {429}  # 10 per anonymous address
    created = [p for p in job_dirs(path)]
    assert len(created) - before == 10
    assert sum(f.stat().st_size for d in created for f in d.iterdir()) < 10 * 60_000 + before * 60_000
    # a parameter change past the cap is refused and changes nothing
    r = carol.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": QUICK}, allow_redirects=False)
    job_url = r.headers["Location"]
    assert carol.post(job_url + "/parameters", data={"QUERY": big, "EXTRA": big}).status_code == 413
    assert "EXTRA" not in requests.get(job_url + "/parameters").text.upper()
    # active jobs per owner: 4 queued or running at most
    slow = []
    for _ in range(4):
        r = carol.post(f"{url}/tap/async", data={"LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"},
                       allow_redirects=False)
        assert r.status_code == 303
        slow.append(r.headers["Location"])
    refused = carol.post(job_url + "/phase", data={"PHASE": "RUN"})
    assert refused.status_code == 429 and "queued or running" in refused.text
    assert requests.get(job_url + "/phase").text == "PENDING"
    for s in slow:
        assert carol.delete(s).status_code == 200
    for d in job_dirs(path):
        requests.delete(f"{url}/tap/async/{d.name}")  # the anonymous ones (same address)


def test_destruction_is_honoured(server):
    url, path, tokens, proc = server
    s = session(tokens["alice"])
    job = tap(url, s).submit_job(QUICK)
    job.run()
    wait_phase(job, {"COMPLETED"})
    job_id = job.job_id
    assert (path / "vo" / "jobs" / job_id).is_dir()
    s.post(job.url + "/destruction", data={"DESTRUCTION": "2001-01-01T00:00:00Z"})
    assert requests.get(job.url).status_code == 404
    assert requests.get(job.url + "/results/result").status_code == 404
    assert not (path / "vo" / "jobs" / job_id).exists()
