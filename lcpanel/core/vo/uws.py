"""UWS 1.1 jobs for TAP's ``/async``: a store on disk, phases, and the XML documents.

A job is a directory ``BASEDIR/vo/jobs/<job id>/`` holding ``job.json`` (its state) and,
once finished, ``result.<ext>`` or ``error.vot``. Every write is atomic (temp file +
``os.replace``), so server processes sharing the basedir read whole states; within a
process a lock serialises read-modify-write. Job ids are 128-bit random hex: a job is
reachable by whoever has its URL (clients such as TOPCAT and STILTS keep no cookies),
and the job list shows the viewer's own jobs only. Finished jobs are removed after their
destruction time; a job left QUEUED or EXECUTING by a process that no longer exists is
reported as ERROR.

This module knows nothing of TAP or HTTP: the plugin runs jobs with a callable of its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from ...errors import Conflict, NotFound, TooLarge, UserError
from ..atomic import write_text
from ..clock import now
from .votable import text

PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD", "SUSPENDED",
          "ARCHIVED")
ACTIVE = ("QUEUED", "EXECUTING")
FINAL = ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_PARAMETER_CHARS = 50_000


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(value: str) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) as a POSIX timestamp."""
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{value[:40]!r} is not an ISO 8601 time such as 2030-01-01T00:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


@dataclass
class Job:
    job_id: str
    owner: str
    phase: str
    parameters: dict
    creation_time: float
    destruction: float
    execution_duration: int
    run_id: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    error: str | None = None
    #: the result's file name and MIME type once COMPLETED
    result_file: str | None = None
    result_mime: str | None = None
    pid: int | None = None
    host: str | None = None
    #: the most rows its result may hold (the owner's limit when the job was created)
    row_cap: int | None = None
    #: whose job limits it counts against: the account, or ``ip:<address>`` when anonymous
    quota_owner: str | None = None
    #: the client address that made it, and whether that client held a session cookie
    address: str | None = None
    cookie_bound: bool = True
    #: the service root the job was created at (as sync queries take it from their request):
    #: its result's DataLink service descriptor and ObsCore access URLs point there
    base_url: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class JobStore:
    """Jobs of one basedir (``root`` is ``BASEDIR/vo/jobs``)."""

    root: Path
    default_duration_s: int = 60
    max_duration_s: int = 600
    lifetime_s: int = 7 * 86400
    max_parameter_chars: int = MAX_PARAMETER_CHARS
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.root = Path(self.root)

    def _dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise NotFound(f"no job {str(job_id)[:40]!r}")
        return self.root / job_id

    def _read(self, job_id: str) -> Job:
        try:
            data = json.loads((self._dir(job_id) / "job.json").read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no job {job_id!r} (it may have been deleted or destroyed)") from None
        return Job(**data)

    def _write(self, job: Job) -> None:
        write_text(self._dir(job.job_id) / "job.json", job.to_json())

    def _check_size(self, parameters: dict) -> None:
        size = sum(len(k) + len(v) for k, v in parameters.items())
        if size > self.max_parameter_chars:
            raise TooLarge(f"the job parameters are {size} characters long; the limit is {self.max_parameter_chars}")

    def create(self, owner: str, parameters: dict, run_id: str | None = None, row_cap: int | None = None,
               **fields) -> Job:
        """A new PENDING job; ``fields``: quota_owner, address, cookie_bound, base_url."""
        self._check_size(parameters)
        t = time.time()
        job = Job(job_id=secrets.token_hex(16), owner=owner, phase="PENDING", parameters=dict(parameters),
                  creation_time=t, destruction=t + self.lifetime_s, execution_duration=self.default_duration_s,
                  run_id=run_id, row_cap=row_cap, **fields)
        self._dir(job.job_id).mkdir(parents=True)
        self._write(job)
        return job

    def get(self, job_id: str) -> Job:
        """The job; a job past its destruction time is removed (unless running) and not found."""
        job = self._read(job_id)
        if job.destruction < time.time() and job.phase not in ACTIVE:
            shutil.rmtree(self._dir(job_id), ignore_errors=True)
            raise NotFound(f"no job {job_id!r} (it was destroyed at {iso(job.destruction)})")
        if job.phase in ACTIVE and not _alive(job):
            job = self.update(job_id, phase="ERROR", end_time=time.time(),
                              error="the server stopped while the job was running; run it again")
        return job

    def update(self, job_id: str, **changes) -> Job:
        with self._lock:
            job = self._read(job_id)
            for key, value in changes.items():
                setattr(job, key, value)
            self._write(job)
            return job

    def set_parameters(self, job_id: str, parameters: dict) -> Job:
        with self._lock:
            job = self._read(job_id)
            if job.phase != "PENDING":
                raise Conflict(f"the job is {job.phase}; parameters can only change while it is PENDING")
            self._check_size({**job.parameters, **parameters})
            job.parameters.update(parameters)
            self._write(job)
            return job

    def set_duration(self, job_id: str, seconds: str) -> Job:
        try:
            value = int(float(seconds))
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"EXECUTIONDURATION must be a number of seconds, not {str(seconds)[:40]!r}") from None
        if value < 0:
            raise UserError("EXECUTIONDURATION must not be negative")
        value = self.max_duration_s if value == 0 else min(value, self.max_duration_s)
        with self._lock:
            job = self._read(job_id)
            if job.phase != "PENDING":
                raise Conflict(f"the job is {job.phase}; its duration can only change while it is PENDING")
            job.execution_duration = value
            self._write(job)
            return job

    def set_destruction(self, job_id: str, value: str) -> Job:
        t = min(parse_iso(value), time.time() + self.lifetime_s)
        return self.update(job_id, destruction=t)

    def start(self, job_id: str) -> Job:
        """PENDING (or HELD) -> QUEUED, owned by this process; other phases are left alone."""
        with self._lock:
            job = self._read(job_id)
            if job.phase in ("PENDING", "HELD"):
                job.phase, job.pid, job.host = "QUEUED", os.getpid(), os.uname().nodename
                self._write(job)
                return job
            if job.phase in FINAL or job.phase in ACTIVE:
                return job
            raise Conflict(f"a job in phase {job.phase} cannot be run")

    def begin(self, job_id: str) -> Job | None:
        """QUEUED -> EXECUTING; None if the job is no longer queued (aborted, deleted)."""
        with self._lock:
            try:
                job = self._read(job_id)
            except NotFound:
                return None
            if job.phase != "QUEUED":
                return None
            job.phase, job.start_time = "EXECUTING", time.time()
            self._write(job)
            return job

    def abort(self, job_id: str) -> Job:
        with self._lock:
            job = self._read(job_id)
            if job.phase not in FINAL:
                job.phase, job.end_time = "ABORTED", time.time()
                self._write(job)
            return job

    def finish(self, job_id: str, **changes) -> Job | None:
        """Record the end of a run unless the job was aborted or deleted meanwhile."""
        with self._lock:
            try:
                job = self._read(job_id)
            except NotFound:
                return None
            if job.phase not in ACTIVE:
                return None
            for key, value in changes.items():
                setattr(job, key, value)
            job.end_time = time.time()
            self._write(job)
            return job

    def delete(self, job_id: str) -> None:
        path = self._dir(job_id)
        if not (path / "job.json").is_file():
            raise NotFound(f"no job {job_id!r}")
        with self._lock:
            shutil.rmtree(path, ignore_errors=True)

    def file(self, job_id: str, name: str) -> Path:
        return self._dir(job_id) / name

    def count(self, quota_owner: str, phases=()) -> int:
        """How many stored jobs (in ``phases``, if given) count against ``quota_owner``."""
        if not self.root.is_dir():
            return 0
        n = 0
        for entry in self.root.iterdir():
            if not JOB_ID.match(entry.name):
                continue
            try:
                job = self._read(entry.name)
            except (NotFound, ValueError, TypeError):
                continue
            if job.destruction < time.time() and job.phase not in ACTIVE:
                continue
            if (job.quota_owner or job.owner) == quota_owner and (not phases or job.phase in phases):
                n += 1
        return n

    def list(self, owner: str, *, phases=(), after: float | None = None, last: int | None = None) -> list[Job]:
        """The owner's jobs, newest first; ARCHIVED only when asked for. Removes destroyed jobs."""
        if not self.root.is_dir():
            return []
        out = []
        t = time.time()
        for entry in self.root.iterdir():
            if not JOB_ID.match(entry.name):
                continue
            try:
                job = self.get(entry.name)
            except (NotFound, ValueError, TypeError):
                continue
            if job.destruction < t and job.phase not in ACTIVE:
                shutil.rmtree(entry, ignore_errors=True)
                continue
            if job.owner != owner:
                continue
            if phases and job.phase not in phases:
                continue
            if not phases and job.phase == "ARCHIVED":
                continue
            if after is not None and job.creation_time <= after:
                continue
            out.append(job)
        out.sort(key=lambda j: j.creation_time, reverse=True)
        return out[:last] if last is not None else out


def _alive(job: Job) -> bool:
    if job.pid is None or job.host != os.uname().nodename:
        return True  # another machine's job: trust its state
    try:
        os.kill(job.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- XML --------------------------------------------------------------------------------------


def _el(name: str, value) -> str:
    if value is None:
        return f'<uws:{name} xsi:nil="true"/>'
    return f"<uws:{name}>{escape(text(value))}</uws:{name}>"


def parameters_xml(job: Job, *, root: bool = False) -> str:
    ns = f' xmlns:uws="{UWS_NS}" xmlns:xsi="{XSI_NS}"' if root else ""
    items = "".join(f"<uws:parameter id={quoteattr(text(k))}>{escape(text(v))}</uws:parameter>"
                    for k, v in sorted(job.parameters.items()))
    return f"<uws:parameters{ns}>{items}</uws:parameters>"


def results_xml(job: Job, result_url: str | None, *, root: bool = False) -> str:
    ns = f' xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}"' if root else ""
    inner = ""
    if job.phase == "COMPLETED" and result_url:
        mime = f" mime-type={quoteattr(job.result_mime)}" if job.result_mime else ""
        inner = f'<uws:result id="result" xlink:type="simple" xlink:href={quoteattr(result_url)}{mime}/>'
    return f"<uws:results{ns}>{inner}</uws:results>"


def job_xml(job: Job, result_url: str | None) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<uws:job xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">',
        _el("jobId", job.job_id),
        _el("runId", job.run_id) if job.run_id else "",
        _el("ownerId", None),
        _el("phase", job.phase),
        _el("quote", None),
        _el("creationTime", iso(job.creation_time)),
        _el("startTime", iso(job.start_time)),
        _el("endTime", iso(job.end_time)),
        _el("executionDuration", job.execution_duration),
        _el("destruction", iso(job.destruction)),
        parameters_xml(job),
        results_xml(job, result_url),
    ]
    if job.phase == "ERROR" and job.error:
        parts.append(f'<uws:errorSummary type="fatal" hasDetail="true"><uws:message>{escape(text(job.error))}'
                     "</uws:message></uws:errorSummary>")
    parts.append("</uws:job>\n")
    return "".join(parts).encode("utf-8")


def jobs_xml(jobs: list[Job], job_url) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
             f'<uws:jobs xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" xmlns:xsi="{XSI_NS}" version="1.1">']
    for job in jobs:
        parts.append(f'<uws:jobref id={quoteattr(job.job_id)} xlink:type="simple" '
                     f'xlink:href={quoteattr(job_url(job.job_id))}>'
                     + _el("phase", job.phase) + (_el("runId", job.run_id) if job.run_id else "")
                     + _el("creationTime", iso(job.creation_time)) + "</uws:jobref>")
    parts.append("</uws:jobs>\n")
    return "".join(parts).encode("utf-8")


def parse_phases(values: list[str]) -> tuple[str, ...]:
    out = []
    for v in values:
        v = v.strip().upper()
        if v not in PHASES:
            raise UserError(f"unknown PHASE {v!r}; phases are {', '.join(PHASES)}")
        out.append(v)
    return tuple(out)


def default_destruction(lifetime_s: int) -> datetime:
    return now() + timedelta(seconds=lifetime_s)
