"""Retention: what expires, the garbage collection that removes it, and usage per identity.

Expired (settings of ``[quotas]``, :class:`lcpanel.config.QuotaSettings`):

- anonymous datasets that are not public (``unlisted`` or ``private``), not changed for
  ``anonymous_dataset_days``;
- products nobody requested or downloaded for ``product_unused_days`` (their zip, record
  and links);
- async TAP jobs past their ``DESTRUCTION`` time (and not running).

Never collected: frozen datasets, and every product a frozen dataset refers to.

:func:`collect` does one pass (``dry_run`` lists without changing anything);
:func:`collect_if_due` is what a server runs periodically: one process at a time (an
exclusive ``flock`` on ``BASEDIR/gc.lock``) and at most once per interval across all of
them (the time of the last pass is the mtime of ``BASEDIR/gc.stamp``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

from ..errors import NotFound
from .datasets import OPERATOR
from .access.quotas import ledger
from .vo.uws import ACTIVE, JOB_ID

log = logging.getLogger(__name__)

LOCK_FILE = "gc.lock"
STAMP_FILE = "gc.stamp"


def _timestamp(value: str | None) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return 0.0


def jobs_root(app) -> Path:
    return app.basedir / "vo" / "jobs"


def read_jobs(app) -> list[dict]:
    """Every stored async job's state (``job.json``) with its directory's size in bytes."""
    root = jobs_root(app)
    out = []
    if not root.is_dir():
        return out
    for entry in root.iterdir():
        if not JOB_ID.match(entry.name):
            continue
        try:
            job = json.loads((entry / "job.json").read_text())
        except (OSError, ValueError):
            continue
        job["bytes"] = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
        job["dir"] = entry
        out.append(job)
    return out


def frozen_dataset_ids(app) -> set[str]:
    with app.datasets._connect() as conn:
        return {r[0] for r in conn.execute("SELECT dataset_id FROM datasets WHERE frozen = 1")}


def expired(app, now: float | None = None) -> dict:
    """What a collection pass would remove: dataset ids, product keys and job ids."""
    now = time.time() if now is None else now
    q = app.config.quotas
    out = {"datasets": [], "products": [], "jobs": []}
    if q.anonymous_dataset_days > 0:
        cutoff = now - q.anonymous_dataset_days * 86400
        with app.datasets._connect() as conn:
            rows = conn.execute("SELECT dataset_id, updated FROM datasets WHERE owner LIKE 'anon:%' "
                                "AND visibility != 'public' AND frozen = 0").fetchall()
        out["datasets"] = sorted(r[0] for r in rows if _timestamp(r[1]) < cutoff)
    if q.product_unused_days > 0:
        cutoff = now - q.product_unused_days * 86400
        keep = frozen_dataset_ids(app)
        gone = set(out["datasets"])
        last_used = {}
        for row in ledger(app).rows("product"):
            last_used[row["item"]] = max(last_used.get(row["item"], 0.0), row["last_used"])
        with app.products.connect() as conn:
            products = conn.execute("SELECT key, status, updated FROM products").fetchall()
            links = conn.execute("SELECT key, dataset_id FROM dataset_products").fetchall()
        protected = {key for key, dataset_id in links if dataset_id in keep}
        for key, status, updated in products:
            if key in protected or status in ("queued", "running"):
                continue
            if max(last_used.get(key, 0.0), _timestamp(updated)) < cutoff:
                out["products"].append(key)
        # products left with no dataset once the expired datasets are gone go with them
        linked_elsewhere = {key for key, dataset_id in links if dataset_id not in gone}
        out["products"] = sorted(set(out["products"]) | {key for key, dataset_id in links
                                                         if dataset_id in gone and key not in linked_elsewhere
                                                         and key not in protected})
    for job in read_jobs(app):
        if job.get("destruction", now) < now and job.get("phase") not in ACTIVE:
            out["jobs"].append(job["job_id"])
    out["jobs"].sort()
    return out


def collect(app, *, dry_run: bool = False, now: float | None = None) -> dict:
    """Remove what has expired (or, with ``dry_run``, only say what would go). Returns
    ``{"datasets": [...], "products": [...], "jobs": [...], "dry_run": bool}``."""
    found = expired(app, now)
    found["dry_run"] = dry_run
    if dry_run:
        return found
    book = ledger(app)
    removed_datasets = []
    for dataset_id in found["datasets"]:
        try:
            app.datasets.delete(dataset_id, OPERATOR)
        except NotFound:
            pass
        else:  # the store tells plugins (dataset_deleted)
            removed_datasets.append(dataset_id)
        book.forget("dataset", dataset_id)
    found["datasets"] = removed_datasets
    if found["products"]:
        with app.products.connect() as conn:
            for key in found["products"]:
                conn.execute("DELETE FROM dataset_products WHERE key = ?", (key,))
        app.products.collect_garbage(set(found["products"]))
        for key in found["products"]:
            book.forget("product", key)
    root = jobs_root(app)
    for job_id in found["jobs"]:
        shutil.rmtree(root / job_id, ignore_errors=True)
    _sync_ledger(app)
    return found


def _sync_ledger(app) -> None:
    """Forget ledger rows of things that no longer exist; stale reservations go too."""
    from .objects import periodsearch

    book = ledger(app)
    book.drop_stale_reservations()
    with app.datasets._connect() as conn:
        datasets = {r[0] for r in conn.execute("SELECT dataset_id FROM datasets")}
    with app.products.connect() as conn:
        products = {r[0] for r in conn.execute("SELECT key FROM products")}
    existing = {"dataset": datasets, "product": products,
                periodsearch.LEDGER_KIND: periodsearch.stored_ids(app.basedir)}
    for row in book.rows():
        if row["kind"] in existing and row["item"] not in existing[row["kind"]]:
            book.forget(row["kind"], row["item"])


def collect_if_due(app, interval_s: float) -> dict | None:
    """One collection pass unless another process is running one or one ran less than
    ``interval_s`` ago (then None)."""
    lock_path = app.basedir / LOCK_FILE
    stamp = app.basedir / STAMP_FILE
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            if stamp.exists() and time.time() - stamp.stat().st_mtime < interval_s * 0.9:
                return None
            stamp.touch()
            report = collect(app)
            if any(report[k] for k in ("datasets", "products", "jobs")):
                log.info("gc removed %d datasets, %d products, %d jobs", len(report["datasets"]),
                         len(report["products"]), len(report["jobs"]))
            return report
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def usage(app) -> list[dict]:
    """Usage per quota owner: datasets, products, period-search results, bytes (of those),
    async jobs and their bytes, with the owner's quota when it is known from the identity."""
    from .objects.periodsearch import LEDGER_KIND

    table: dict[str, dict] = {}
    counts = {"dataset": "datasets", "product": "products", LEDGER_KIND: "periodsearches"}

    def row(owner: str) -> dict:
        return table.setdefault(owner, {"owner": owner, "datasets": 0, "products": 0, "periodsearches": 0,
                                        "bytes": 0, "jobs": 0, "job_bytes": 0})

    seen_datasets = set()
    for item in ledger(app).rows():
        r = row(item["owner"])
        r[counts.get(item["kind"], "products")] += 1
        r["bytes"] += item["bytes"]
        if item["kind"] == "dataset":
            seen_datasets.add(item["item"])
    with app.datasets._connect() as conn:
        rows = conn.execute("SELECT dataset_id, owner FROM datasets").fetchall()
    for dataset_id, owner in rows:  # made before quotas existed, or by a new version/freeze
        if dataset_id in seen_datasets:
            continue
        try:
            size = app.datasets.path(dataset_id).stat().st_size
        except OSError:
            continue
        r = row(owner)
        r["datasets"] += 1
        r["bytes"] += size
    for job in read_jobs(app):
        r = row(job.get("quota_owner") or job.get("owner") or "?")
        r["jobs"] += 1
        r["job_bytes"] += job["bytes"]
    return sorted(table.values(), key=lambda r: (-r["bytes"] - r["job_bytes"], r["owner"]))
