"""A period search's stored result counts against its owner's disk quota, like a saved
dataset or a built product: a periodogram is kept on the server (up to ~20 MB of JSON for
500,000 trial frequencies), and anonymous visitors could otherwise fill the disk one
search at a time. The result is charged its file's exact size before it is written; one
over the quota is not written and its job says why; deleting a result gives its bytes
back; ``lcpanel usage`` counts them and ``lcpanel gc`` forgets the rows of results gone."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lcpanel.config import PeriodSearchSettings
from lcpanel.core.access.quotas import Ledger
from lcpanel.core.datasets import Principal
from lcpanel.core.objects import periodsearch as ps


def _data():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 100, 400))
    return ps.SearchInput(t, 12 + 0.1 * np.sin(t), np.full(t.size, 0.01), "mag", "time", None, t.size, 0)


def _finish(service, job: dict, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while (state := service.status(job["id"]))["status"] in ps.ACTIVE:
        if time.monotonic() > deadline:
            raise TimeoutError(state)
        time.sleep(0.1)
    return state


GLS = {"method": "gls", "startp": 1, "endp": 10, "stepsize": 1e-3}  # 900 frequencies: ~40 kB of JSON


@pytest.fixture
def service(tmp_path):
    found = ps.PeriodSearchService(tmp_path, replace(PeriodSearchSettings(), workers=1))
    yield found
    found.shutdown()


def _files(base: Path) -> list[Path]:
    return sorted((base / ps.ROOT).glob("*/*/*/*.json"))


def test_a_result_is_charged_its_exact_size_and_deleting_it_gives_it_back(service, tmp_path):
    who = Principal("anon:abc", "anonymous")
    job = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=10**6)
    assert _finish(service, job)["status"] == "done"
    [path] = _files(tmp_path)
    book = Ledger(tmp_path)
    assert book.used("ip:203.0.113.5") == path.stat().st_size > 10_000
    assert [(r["kind"], r["item"]) for r in book.rows()] == [("periodsearch", job["id"])]
    service.cancel(job["id"], who, "c", "o")  # its owner deletes it
    assert _files(tmp_path) == [] and book.used("ip:203.0.113.5") == 0


def test_a_result_over_the_quota_is_not_written_and_the_job_says_why(service, tmp_path):
    who = Principal("anon:abc", "anonymous")
    first = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=60_000)
    assert _finish(service, first)["status"] == "done"
    second = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=60_000)
    state = _finish(service, second)
    assert state["status"] == "failed"
    assert "disk quota" in state["error"] and "delete" in state["error"], state["error"]
    assert len(_files(tmp_path)) == 1
    assert Ledger(tmp_path).used("ip:203.0.113.5") == _files(tmp_path)[0].stat().st_size
    # another address has its own quota
    other = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:198.51.100.7", quota=60_000)
    assert _finish(service, other)["status"] == "done"


def test_usage_counts_results_and_gc_forgets_the_rows_of_results_gone(tmp_path):
    from lcpanel.app import App
    from lcpanel.core.catalogs.basedir import Basedir
    from lcpanel.core.retention import collect, usage

    base = Basedir.init(tmp_path / "basedir").path
    service = ps.PeriodSearchService(base, replace(PeriodSearchSettings(), workers=1))
    try:
        who = Principal("user:ann", "user")
        jobs = [service.submit("c", "o", ps.validate_options(GLS), _data(), who, "user:ann", quota=0)
                for _ in range(2)]
        for job in jobs:
            assert _finish(service, job)["status"] == "done"
    finally:
        service.shutdown()
    app = App(base)
    sizes = [p.stat().st_size for p in _files(base)]
    [row] = usage(app)
    assert (row["owner"], row["periodsearches"], row["products"], row["bytes"]) == ("user:ann", 2, 0, sum(sizes))
    _files(base)[0].unlink()  # removed by hand
    collect(app)
    [row] = usage(app)
    assert (row["periodsearches"], row["bytes"]) == (1, sum(sizes) - sizes[0])
