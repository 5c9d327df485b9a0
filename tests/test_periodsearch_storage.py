"""How a period search's result is stored, and that it counts against its owner's disk
quota like a saved dataset or a built product.

A result is a small summary (``<id>.json``, what listings read) and its periodogram
(``<id>.npz``, float64 arrays: 16 bytes a trial period, against ~43 as JSON). Both are
charged their exact size before they are written (a periodogram of 500,000 trial
frequencies is 8 MB; anonymous visitors could otherwise fill the disk one search at a
time); one over the quota is not written and its job says why; deleting a result gives
its bytes back; ``lcpanel usage`` counts them and ``lcpanel gc`` forgets the rows of
results gone. Results stored with their arrays in the JSON (before) still list, load and
delete."""

from __future__ import annotations

import json
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


GLS = {"method": "gls", "startp": 1, "endp": 10, "stepsize": 1e-3}  # 900 frequencies: a 15 kB periodogram


@pytest.fixture
def service(tmp_path):
    found = ps.PeriodSearchService(tmp_path, replace(PeriodSearchSettings(), workers=1))
    yield found
    found.shutdown()


def _files(base: Path) -> list[Path]:
    """The stored summaries."""
    return sorted((base / ps.ROOT).glob("*/*/*/*.json"))


def _size(summary: Path) -> int:
    return summary.stat().st_size + summary.with_suffix(".npz").stat().st_size


def test_a_result_is_charged_its_exact_size_and_deleting_it_gives_it_back(service, tmp_path):
    who = Principal("anon:abc", "anonymous")
    job = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=10**6)
    assert _finish(service, job)["status"] == "done"
    [path] = _files(tmp_path)
    book = Ledger(tmp_path)
    assert book.used("ip:203.0.113.5") == _size(path) > 10_000
    assert [(r["kind"], r["item"]) for r in book.rows()] == [("periodsearch", job["id"])]
    service.cancel(job["id"], who, "c", "o")  # its owner deletes it
    assert [p for p in (tmp_path / ps.ROOT).rglob("*") if p.suffix in (".json", ".npz")] == []
    assert book.used("ip:203.0.113.5") == 0


def test_a_result_over_the_quota_is_not_written_and_the_job_says_why(service, tmp_path):
    who = Principal("anon:abc", "anonymous")
    first = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=10**6)
    assert _finish(service, first)["status"] == "done"
    quota = int(1.5 * _size(_files(tmp_path)[0]))  # room for one result, not two
    second = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:203.0.113.5", quota=quota)
    state = _finish(service, second)
    assert state["status"] == "failed"
    assert "disk quota" in state["error"] and "delete" in state["error"], state["error"]
    assert len(_files(tmp_path)) == 1
    assert Ledger(tmp_path).used("ip:203.0.113.5") == _size(_files(tmp_path)[0])
    assert len(list((tmp_path / ps.ROOT).rglob("*.npz"))) == 1
    # another address has its own quota
    other = service.submit("c", "o", ps.validate_options(GLS), _data(), who, "ip:198.51.100.7", quota=quota)
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
    sizes = [_size(p) for p in _files(base)]
    [row] = usage(app)
    assert (row["owner"], row["periodsearches"], row["products"], row["bytes"]) == ("user:ann", 2, 0, sum(sizes))
    _files(base)[0].unlink()  # removed by hand (its summary: the result is no longer listed)
    collect(app)
    [row] = usage(app)
    assert (row["periodsearches"], row["bytes"]) == (1, sum(sizes) - sizes[0])


def test_the_summary_lists_and_the_periodogram_loads_as_astrobase_found_it(service, tmp_path):
    from lcpanel.core.objects.astrobase_compat import import_astrobase

    import_astrobase()
    from astrobase.periodbase import zgls

    data = _data()
    who = Principal("user:ann", "user")
    job = service.submit("c", "o", ps.validate_options(GLS), data, who, "user:ann")
    assert _finish(service, job)["status"] == "done"
    [path] = _files(tmp_path)
    stored = json.loads(path.read_text())
    assert "periods" not in stored and "lspvals" not in stored and stored["nfrequencies"] == 900
    assert path.stat().st_size < 3_000
    [listed] = ps.list_results(tmp_path, "c", "o")
    assert listed == stored
    loaded = ps.load_result(tmp_path, "c", "o", job["id"])
    direct = zgls.pgen_lsp(data.times, data.mags, data.errs, startp=1, endp=10, stepsize=1e-3, autofreq=False,
                           sigclip=10.0, verbose=False)
    for key in ("periods", "lspvals"):
        assert loaded[key].dtype == np.float64
        np.testing.assert_array_equal(loaded[key], np.asarray(direct[key], dtype=np.float64))
    assert loaded["bestperiod"] == direct["bestperiod"]


def test_a_result_stored_with_its_arrays_in_the_json_still_lists_loads_and_deletes(service, tmp_path):
    who = Principal("user:ann", "user")
    folder = ps.result_dir(tmp_path, "c", "o") / "mag"
    folder.mkdir(parents=True)
    old = {"id": "0123456789abcdef", "collection": "c", "objectid": "o", "method": "gls", "who": "user:ann",
           "finished": "2026-11-01T00:00:00Z", "bestperiod": 2.0, "periods": [1.0, 2.0, 3.0],
           "lspvals": [0.1, None, 0.3]}
    (folder / "0123456789abcdef.json").write_text(json.dumps(old))
    [listed] = ps.list_results(tmp_path, "c", "o")
    assert listed["id"] == old["id"] and "periods" not in listed
    loaded = ps.load_result(tmp_path, "c", "o", old["id"])
    np.testing.assert_array_equal(loaded["periods"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(loaded["lspvals"], [0.1, np.nan, 0.3])
    assert service.cancel(old["id"], who, "c", "o")["status"] == "deleted"
    assert ps.list_results(tmp_path, "c", "o") == []
