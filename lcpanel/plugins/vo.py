"""Built-in Virtual Observatory access: TAP 1.1 (ADQL 2.1) and Simple Cone Search 1.03.

Routes, on the same server as the web app and the JSON API:

- ``/tap``: a short page naming the endpoints; ``/tap/sync`` (GET, POST): run one query;
  ``/tap/async``: UWS 1.1 jobs (``/tap/async/<id>``, ``.../phase``, ``.../parameters``,
  ``.../executionduration``, ``.../destruction``, ``.../quote``, ``.../owner``,
  ``.../error``, ``.../results``, ``.../results/result``); ``/tap/capabilities``,
  ``/tap/availability``, ``/tap/tables[?detail=min]`` and ``/tap/tables/<table>`` (VOSI 1.1).
- ``/scs`` (all collections) and ``/scs/<collection>``: Simple Cone Search 1.03.

Parameter names are case-insensitive; unknown parameters are ignored. Errors are
VOTables with ``QUERY_STATUS=ERROR`` and the message (SCS adds its ``<INFO
name="Error">``), never a stack trace or a file path. Queries run in a thread pool, off
the server's event loop; async jobs in another pool, their state under
``BASEDIR/vo/jobs`` (:mod:`lcpanel.core.uws`).

Also an ``adql`` search type, so ADQL selects objects (and makes datasets) through
``/api/search``, the CLI and the web forms like every other search.

Settings (``[plugin.vo]`` in ``lcpanel.toml``, all optional): ``sync_timeout_s``
(default: ``[search] query_timeout_s``), ``async_timeout_s`` (60), ``async_max_timeout_s``
(600), ``default_maxrec`` (10000), ``max_maxrec`` (``[search] max_limit``),
``scs_max_sr_deg`` (``[search] cone_max_radius_arcmin`` / 60), ``job_lifetime_days`` (7),
``async_workers`` (2: async jobs running at once per process), ``max_running_jobs_per_owner``
(1), ``max_active_jobs_per_owner`` (4: queued + running), ``max_jobs_per_owner`` (50 stored
jobs), ``max_jobs_anonymous`` (10 per client address), ``max_job_parameter_chars`` (50000).

Who may change a job: reading a job (its state, result, error) needs only its URL, as
TOPCAT and STILTS keep no cookies. Changing it (parameters, PHASE=RUN/ABORT, DESTRUCTION,
EXECUTIONDURATION) or deleting it is for its owner only: the account that made it (or an
admin). An anonymous job belongs to the client address that made it and, when that client
held lcpanel's session cookie, to that cookie too; a cookie-less client (TOPCAT) is bound
to its address alone. Anyone else gets a 403. Jobs run in a small fair pool: an owner runs
at most ``max_running_jobs_per_owner`` at a time while other owners' jobs go ahead. ABORT
(and DELETE, and a passed DESTRUCTION) interrupts the running SQLite query.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import param
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from ..core import uws
from ..core.atomic import write_bytes
from ..core.datalink import result_services
from ..core.identity import COOKIE_NAME
from ..core.jobqueue import FairQueue
from ..core.obscore import DATA_MODEL as OBSCORE_MODEL
from ..core.obscore import obscore_file, served_collections
from ..core.offload import offloader
from ..core.scs import cone_search, parse_request
from ..core.search import Hits, SearchBackend
from ..core.tap_query import TapEngine
from ..core.tap_schema import obscore_table, table_xml, tableset_xml, tap_model
from ..core.tap_upload import Uploads, fetch_url, parse_upload_param
from ..core.voformats import OutputFormat, find_format, iter_render, known_names
from ..core.voformats import capabilities_xml as output_formats_xml
from ..core.voformats import render as render_format
from ..core.votable import VOTABLE_MIME, error_votable
from ..errors import Forbidden, NotFound, TooLarge, TooManyRequests, UserError
from ..extension import Route
from ..hookspecs import hookimpl
from ..jsonapi import APIMixin
from ..stash import StashKey

log = logging.getLogger(__name__)

LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")
WAIT_MAX_S = 30.0
#: how often running jobs are checked for an ABORT made by another process
WATCH_S = 0.5


# --- settings and per-app state ---------------------------------------------------------------


@dataclass(frozen=True)
class VOSettings:
    sync_timeout_s: float
    async_timeout_s: int
    async_max_timeout_s: int
    default_maxrec: int
    max_maxrec: int
    scs_max_sr_deg: float
    job_lifetime_days: float
    #: TAP_UPLOAD: the largest table accepted, in bytes and rows
    upload_max_bytes: int = 8_000_000
    upload_max_rows: int = 100_000
    #: TAP_UPLOAD by URL from hosts on private or loopback networks (off: no SSRF)
    upload_allow_private_hosts: bool = False
    async_workers: int = 2
    max_running_jobs_per_owner: int = 1
    max_active_jobs_per_owner: int = 4
    max_jobs_per_owner: int = 50
    max_jobs_anonymous: int = 10
    max_job_parameter_chars: int = uws.MAX_PARAMETER_CHARS

    @classmethod
    def from_app(cls, app) -> "VOSettings":
        search = app.config.search
        raw = dict(app.config.plugin.get("vo", {}) or {})
        defaults = dict(sync_timeout_s=search.query_timeout_s, async_timeout_s=60, async_max_timeout_s=600,
                        default_maxrec=10_000, max_maxrec=search.max_limit,
                        scs_max_sr_deg=search.cone_max_radius_arcmin / 60.0, job_lifetime_days=7,
                        upload_max_bytes=8_000_000, upload_max_rows=100_000, upload_allow_private_hosts=False,
                        async_workers=2, max_running_jobs_per_owner=1, max_active_jobs_per_owner=4,
                        max_jobs_per_owner=50, max_jobs_anonymous=10,
                        max_job_parameter_chars=uws.MAX_PARAMETER_CHARS)
        unknown = set(raw) - set(defaults)
        if unknown:
            raise UserError(f"lcpanel.toml: unknown setting plugin.vo.{sorted(unknown)[0]}; known: "
                            + ", ".join(defaults))
        values = {k: type(v)(raw.get(k, v)) for k, v in defaults.items()}
        values["default_maxrec"] = min(values["default_maxrec"], values["max_maxrec"])
        return cls(**values)


class VOService:
    """What the VO routes share in one process: settings, the ADQL engine, the job
    store and the thread pools (created lazily, so never before a fork)."""

    def __init__(self, app):
        self.app = app
        self.settings = VOSettings.from_app(app)
        self.engine = TapEngine(app.catalogs, lambda: tap_model(app.catalogs, self.extra_tables))
        self.jobs = uws.JobStore(app.basedir / "vo" / "jobs",
                                 default_duration_s=int(self.settings.async_timeout_s),
                                 max_duration_s=int(self.settings.async_max_timeout_s),
                                 lifetime_s=int(self.settings.job_lifetime_days * 86400),
                                 max_parameter_chars=self.settings.max_job_parameter_chars)
        self._pools: dict = {}
        self._lock = threading.Lock()
        self.queue = FairQueue(self.settings.async_workers, self.settings.max_running_jobs_per_owner,
                               "lcpanel-vo-async")
        #: job id -> the SQLite connection running its query (in this process)
        self._running: dict[str, object] = {}
        self._watcher: threading.Thread | None = None

    def running(self, job_id: str, conn) -> None:
        """Register (``conn``) or forget (None) the connection running a job's query."""
        with self._lock:
            if conn is None:
                self._running.pop(job_id, None)
                return
            self._running[job_id] = conn
            if self._watcher is None or not self._watcher.is_alive():
                self._watcher = threading.Thread(target=self._watch, name="lcpanel-vo-abort", daemon=True)
                self._watcher.start()

    def interrupt(self, job_id: str) -> bool:
        # under the lock: a connection is only interrupted while it still runs this job's query
        with self._lock:
            conn = self._running.get(job_id)
            if conn is None:
                return False
            conn.interrupt()
            return True

    def _watch(self) -> None:
        """Interrupt queries of jobs aborted, deleted or destroyed by any process."""
        while True:
            time.sleep(WATCH_S)
            with self._lock:
                ids = list(self._running)
                if not ids:
                    self._watcher = None
                    return
            for job_id in ids:
                try:
                    job = self.jobs._read(job_id)
                    stop = job.phase not in uws.ACTIVE or job.destruction < time.time()
                except Exception:
                    stop = True  # deleted
                if stop:
                    self.interrupt(job_id)

    def extra_tables(self) -> list:
        """``ivoa.obscore`` when some collection has light curves."""
        path = obscore_file(self.app.basedir, served_collections(self.app.catalogs, self.app.lc_formats))
        return [obscore_table(path)] if path else []

    def pool(self, kind: str) -> ThreadPoolExecutor:
        with self._lock:
            key = (kind, os.getpid())
            pool = self._pools.get(key)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"lcpanel-vo-{kind}")
                self._pools[key] = pool
            return pool

    def shutdown(self) -> None:
        self.queue.shutdown()
        for job_id in list(self._running):
            self.interrupt(job_id)
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()


SERVICE = StashKey[VOService]()


def service(app) -> VOService:
    """The app's VO service, made on first use."""
    return app.stash.setdefault_with(SERVICE, lambda: VOService(app))


# --- TAP parameters and rendering ---------------------------------------------------------------


@dataclass(frozen=True)
class TapRequest:
    query: str
    fmt: OutputFormat
    maxrec: int
    #: [(TAP_UPLOAD table name, multipart part name)]
    uploads: tuple = ()


def tap_request(params: dict, settings: VOSettings, row_cap: int | None = None) -> TapRequest:
    """Validate TAP parameters (upper-case names -> strings); others are ignored. MAXREC
    is cut to ``row_cap`` (default: the service's hard limit)."""
    request = params.get("REQUEST")
    if request is not None and request.strip().lower() != "doquery":
        raise UserError(f"REQUEST={request[:40]!r} is not supported; use REQUEST=doQuery (or leave it out)")
    lang = (params.get("LANG") or "ADQL").strip()
    if lang.upper() not in LANGS:
        raise UserError(f"LANG={lang[:40]!r} is not supported; this service speaks " + ", ".join(LANGS))
    query = params.get("QUERY")
    if query is None or not query.strip():
        raise UserError("the QUERY parameter is required (an ADQL SELECT)")
    fmt = response_format(params)
    maxrec = settings.default_maxrec
    if params.get("MAXREC") not in (None, ""):
        try:
            maxrec = int(params["MAXREC"])
        except ValueError:
            raise UserError(f"MAXREC must be a non-negative integer, not {params['MAXREC'][:40]!r}") from None
        if maxrec < 0:
            raise UserError("MAXREC must be a non-negative integer")
    cap = settings.max_maxrec if row_cap is None else min(row_cap, settings.max_maxrec)
    uploads = tuple(parse_upload_param(params["UPLOAD"])) if params.get("UPLOAD") else ()
    return TapRequest(query=query, fmt=fmt, maxrec=min(maxrec, cap), uploads=uploads)


def response_format(params: dict) -> OutputFormat:
    """The output format ``RESPONSEFORMAT`` (or TAP 1.0's ``FORMAT``) names; a 400 naming
    the known ones otherwise."""
    raw = params.get("RESPONSEFORMAT") or params.get("FORMAT")
    fmt = find_format(raw)
    if fmt is None:
        raise UserError(f"RESPONSEFORMAT={raw[:60]!r} is not supported; use one of {known_names()} "
                        "(or their MIME types)")
    return fmt


def render(out, fmt: OutputFormat, base_url: str | None = None) -> tuple[bytes, str, str]:
    """(body, MIME type, file extension) of a query result; with ``base_url``, VOTables
    carry the DataLink service descriptor of their object ids."""
    return b"".join(iter_answer(out, fmt, base_url)), fmt.mime, fmt.extension


def iter_answer(out, fmt: OutputFormat, base_url: str | None = None):
    """A query result in ``fmt``, in pieces (see :func:`lcpanel.core.voformats.iter_render`)."""
    services = result_services(base_url, [f.name for f in out.fields],
                               [t.collection_id for t in out.translation.tables]) if base_url else ()
    rows = absolute_urls(out.fields, out.rows, base_url) if base_url else out.rows
    return iter_render(fmt, out.fields, rows, overflow=overflow_note(out), services=services)


def overflow_note(out) -> bool | str:
    """The OVERFLOW of an answer: saying so when the size limit (not MAXREC) cut it."""
    if out.byte_capped:
        return (f"the answer was cut after {len(out.rows)} rows at this service's size limit per answer; "
                "select fewer columns or rows")
    return out.overflow


def absolute_urls(fields, rows, base_url: str):
    """URLs stored relative to the service root (``/datalink?...``, in columns whose UCD
    is ``meta.ref.url``) made absolute with the request's base URL."""
    which = [i for i, f in enumerate(fields) if f.ucd == "meta.ref.url"]
    if not which:
        return rows
    out = []
    for row in rows:
        row = list(row)
        for i in which:
            if isinstance(row[i], str) and row[i].startswith("/") and not row[i].startswith("//"):
                row[i] = base_url + row[i]
        out.append(tuple(row))
    return out


# --- handlers -----------------------------------------------------------------------------------


def _drop_multipart_preamble(request) -> None:
    """Remove what comes before the first boundary of a multipart body (RFC 2046 allows a
    preamble; STILTS sends a line break there, which Tornado's parser refuses)."""
    ctype = request.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/form-data") or not request.body:
        return
    for field in ctype.split(";")[1:]:
        key, _, value = field.strip().partition("=")
        if key.lower() == "boundary" and value:
            marker = b"--" + value.strip('"').encode("latin-1", "replace")
            start = request.body.find(marker)
            if start > 0:
                request.body = request.body[start:]
            return


class VOHandler(APIMixin, RequestHandler):
    """Case-insensitive parameters, XML answers, and errors as VOTable documents."""

    #: Simple Cone Search answers errors with status 200 and <INFO name="Error">
    scs: ClassVar[bool] = False
    #: UWS clients (pyvo, TOPCAT) post forms and keep the session cookie without browser headers
    headerless_cookie_writes = True

    def initialize(self, app):
        super().initialize(app)
        _drop_multipart_preamble(self.request)

    def set_default_headers(self):
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    @property
    def vo(self) -> VOService:
        return service(self.app)

    def params(self) -> dict:
        out = {}
        for name, values in self.request.arguments.items():
            if values:
                out[name.upper()] = values[-1].decode("utf-8", "replace")
        return out

    def all_params(self, name: str) -> list[str]:
        return [v.decode("utf-8", "replace") for k, vs in self.request.arguments.items() if k.upper() == name
                for v in vs]

    def base_url(self) -> str:
        return f"{self.request.protocol}://{self.request.host}"

    def send_body(self, body: bytes, mime: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", mime if "charset" in mime or not mime.endswith("xml")
                        else mime + "; charset=utf-8")
        self.finish(body)

    def send_text(self, value: str) -> None:
        self.send_body(value.encode("utf-8"), "text/plain; charset=utf-8")

    def send_error_votable(self, message: str, status: int) -> None:
        self.clear_header("Content-Disposition")
        self.send_body(error_votable(message, scs=self.scs), VOTABLE_MIME, 200 if self.scs else status)

    def _handle_request_exception(self, e: BaseException) -> None:
        if self._finished:
            return
        if isinstance(e, UserError):
            if getattr(e, "retry_after", None):
                self.set_header("Retry-After", str(max(1, int(e.retry_after + 0.999))))
            self.send_error_votable(e.message, e.status)
            return
        if isinstance(e, HTTPError):
            self.send_error_votable(e.log_message or self._reason, e.status_code)
            return
        log.exception("internal error on %s %s", self.request.method, self.request.path)
        self.send_error_votable("internal server error; the details are in the server's log", 500)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.send_body(error_votable(self._reason, scs=self.scs), VOTABLE_MIME, status_code)

    def row_cap(self) -> int:
        """The most rows one answer may hold for this viewer (the service's hard limit,
        lowered by the basedir's per-role ``[limits] *_max_rows``)."""
        cap = self.vo.settings.max_maxrec
        limits = getattr(self.app.config, "limits", None)
        if limits is not None and hasattr(limits, "max_rows"):
            cap = min(cap, limits.max_rows(self.viewer().role))
        return cap

    def upload_parts(self, request) -> dict[str, bytes]:
        """The bytes of each uploaded table, from the request's multipart parts."""
        out = {}
        cap = self.vo.settings.upload_max_bytes
        for name, ref in request.uploads:
            if not ref.startswith("param:"):
                out[name] = fetch_url(name, ref, max_bytes=cap, timeout_s=10.0,
                                      allow_private=self.vo.settings.upload_allow_private_hosts)
                continue
            part = ref[len("param:"):]
            files = self.request.files.get(part) or []
            data = files[0]["body"] if files else (self.request.body_arguments.get(part) or [None])[0]
            if data is None:
                raise UserError(f"UPLOAD {name}: the request has no part named {part!r}")
            if len(data) > cap:
                raise TooLarge(f"UPLOAD {name} is {len(data)} bytes; the limit is {cap}")
            out[name] = data
        return out

    async def in_pool(self, kind: str, fn, *args):
        return await IOLoop.current().run_in_executor(self.vo.pool(kind), fn, *args)


class TapRootHandler(VOHandler):
    def get(self):
        base = self.base_url() + "/tap"
        links = "".join(f'<li><a href="{base}/{p}">{base}/{p}</a></li>'
                        for p in ("capabilities", "availability", "tables", "sync", "async"))
        self.send_body((f"<!DOCTYPE html><html><head><title>lcpanel TAP</title></head><body><h1>TAP service</h1>"
                        f"<p>TAP 1.1 with ADQL 2.1 over the collections of this lcpanel server. Give "
                        f"<code>{base}</code> to TOPCAT or pyvo.</p><ul>{links}</ul></body></html>").encode(),
                       "text/html; charset=utf-8")


class TapSyncHandler(VOHandler):
    async def get(self):
        await self._query()

    async def post(self):
        await self._query()

    async def _query(self):
        vo = self.vo
        request = tap_request(self.params(), vo.settings, self.row_cap())
        base = self.base_url()
        tables = self.upload_parts(request)

        max_bytes = self.app.config.requests.max_result_bytes(self.viewer().role)

        def run():
            with Uploads(tables, max_rows=vo.settings.upload_max_rows) as uploads:
                return vo.engine.run(request.query, maxrec=request.maxrec, timeout_s=vo.settings.sync_timeout_s,
                                     max_bytes=max_bytes, uploads=uploads.tables)

        work = offloader(self.app)
        async with work.slot():
            out = await work.call(run)
            # streamed: written and sent in pieces (off the loop), never held whole
            self.set_header("Content-Type", request.fmt.mime if not request.fmt.mime.endswith("xml")
                            else request.fmt.mime + "; charset=utf-8")
            pieces = iter_answer(out, request.fmt, base)
            while (piece := await work.call(next, pieces, None)) is not None:
                self.write(piece)
                await self.flush()
            self.finish()


class TapAsyncHandler(VOHandler):
    """``/tap/async`` (list, create) and ``/tap/async/<id>[/<part>]``."""

    def job_url(self, job_id: str) -> str:
        return f"{self.base_url()}/tap/async/{job_id}"

    def result_url(self, job) -> str:
        return self.job_url(job.job_id) + "/results/result"

    def redirect_to(self, url: str) -> None:
        self.set_status(303)
        self.set_header("Location", url)
        self.finish()

    # GET -------------------------------------------------------------------------------------
    async def get(self, job_id=None, part=None):
        store = self.vo.jobs
        if job_id is None:
            phases = uws.parse_phases(self.all_params("PHASE"))
            after = uws.parse_iso(self.params()["AFTER"]) if self.params().get("AFTER") else None
            last = self.params().get("LAST")
            try:
                last = int(last) if last else None
            except ValueError:
                raise UserError("LAST must be a positive integer") from None
            if last is not None and last < 1:
                raise UserError("LAST must be a positive integer")
            jobs = store.list(self.viewer().identity, phases=phases, after=after, last=last)
            self.send_body(uws.jobs_xml(jobs, self.job_url), "text/xml")
            return
        part = (part or "").strip("/")
        job = store.get(job_id)
        if part == "":
            job = await self._wait(job)
            self.send_body(uws.job_xml(job, self.result_url(job)), "text/xml")
        elif part == "phase":
            self.send_text(job.phase)
        elif part == "executionduration":
            self.send_text(str(job.execution_duration))
        elif part == "destruction":
            self.send_text(uws.iso(job.destruction))
        elif part == "quote":
            self.send_text("")
        elif part == "owner":
            self.send_text("")
        elif part == "parameters":
            self.send_body(('<?xml version="1.0" encoding="UTF-8"?>\n' + uws.parameters_xml(job, root=True))
                           .encode(), "text/xml")
        elif part == "results":
            self.send_body(('<?xml version="1.0" encoding="UTF-8"?>\n'
                            + uws.results_xml(job, self.result_url(job), root=True)).encode(), "text/xml")
        elif part == "results/result":
            if job.phase != "COMPLETED" or not job.result_file:
                raise NotFound(f"the job is {job.phase}; it has no result")
            path = store.file(job_id, job.result_file)
            self.send_body(path.read_bytes(), job.result_mime or VOTABLE_MIME)
        elif part == "error":
            if job.phase != "ERROR":
                raise NotFound(f"the job is {job.phase}; it has no error")
            path = store.file(job_id, "error.vot")
            body = path.read_bytes() if path.is_file() else error_votable(job.error or "the job failed")
            self.send_body(body, VOTABLE_MIME)
        else:
            raise NotFound(f"no such job resource {part[:40]!r}")

    async def _wait(self, job):
        """UWS 1.1 blocking: with WAIT=n, answer when the phase changes (or after n s)."""
        params = self.params()
        if "WAIT" not in params:
            return job
        try:
            wait = float(params["WAIT"])
        except ValueError:
            raise UserError("WAIT must be a number of seconds (-1: as long as the server allows)") from None
        wait = WAIT_MAX_S if wait < 0 else min(wait, WAIT_MAX_S)
        wanted = params.get("PHASE", "").strip().upper()
        if job.phase not in ("PENDING", "QUEUED", "EXECUTING") or (wanted and wanted != job.phase):
            return job
        start_phase, deadline, delay = job.phase, time.monotonic() + wait, 0.01
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)
            job = self.vo.jobs.get(job.job_id)
            if job.phase != start_phase:
                break
        return job

    # owners ----------------------------------------------------------------------------------
    def quota_owner(self) -> str:
        viewer = self.viewer()
        return f"ip:{self.request.remote_ip}" if viewer.role == "anonymous" else viewer.identity

    def has_session_cookie(self) -> bool:
        return self.app.signer.token(self.get_cookie(COOKIE_NAME)) is not None

    def owned_job(self, job_id: str):
        """The job, if this request may change or delete it (else 403; see the module doc)."""
        job = self.vo.jobs.get(job_id)
        viewer = self.viewer()
        if viewer.admin or (job.owner == viewer.identity and not viewer.identity.startswith("anon:")):
            return job
        anonymous_job = job.owner.startswith("anon:")
        if anonymous_job and viewer.role == "anonymous" and job.address == self.request.remote_ip \
                and (not job.cookie_bound or job.owner == viewer.identity):
            return job
        raise Forbidden("only the owner of this job may change or delete it (anyone with its URL may read it)"
                        + ("; log in as the account that made it" if not anonymous_job else ""))

    def check_job_limits(self, *, creating: bool) -> None:
        s, store, owner = self.vo.settings, self.vo.jobs, self.quota_owner()
        if creating:
            cap = s.max_jobs_anonymous if self.viewer().role == "anonymous" else s.max_jobs_per_owner
            held = store.count(owner)
            if cap and held >= cap:
                raise TooManyRequests(f"you already have {held} async jobs, the most one may keep is {cap}; "
                                      "delete finished ones (DELETE /tap/async/<job id>) or wait until they are "
                                      "destroyed", retry_after=60)
            return
        active = store.count(owner, uws.ACTIVE)
        if s.max_active_jobs_per_owner and active >= s.max_active_jobs_per_owner:
            raise TooManyRequests(f"you already have {active} async jobs queued or running, the most one may have "
                                  f"is {s.max_active_jobs_per_owner}; run this one when one of them has finished",
                                  retry_after=10)

    # POST ------------------------------------------------------------------------------------
    async def post(self, job_id=None, part=None):
        store = self.vo.jobs
        params = self.params()
        if job_id is None:
            phase = params.pop("PHASE", "").strip().upper()
            request = tap_request(params, self.vo.settings, self.row_cap()) if params.get("UPLOAD") else None
            parts = self.upload_parts(request) if request else {}
            self.check_job_limits(creating=True)
            if phase == "RUN":
                self.check_job_limits(creating=False)
            viewer = self.viewer()
            anonymous = viewer.role == "anonymous"
            job = store.create(viewer.identity, {k.lower(): v for k, v in params.items()},
                               run_id=params.get("RUNID"), row_cap=self.row_cap(), quota_owner=self.quota_owner(),
                               address=self.request.remote_ip if anonymous else None,
                               cookie_bound=not anonymous or self.has_session_cookie())
            for name, data in parts.items():  # kept with the job until it is destroyed
                write_bytes(store.file(job.job_id, f"upload-{name.lower()}.bin"), data)
            if phase == "RUN":
                self._start(job.job_id)
            self.redirect_to(self.job_url(job.job_id))
            return
        part = (part or "").strip("/")
        self.owned_job(job_id)
        if part == "":
            if params.get("ACTION", "").upper() == "DELETE":
                self._delete(job_id)
                self.redirect_to(self.base_url() + "/tap/async")
                return
            if "PHASE" in params:
                self._phase(job_id, params["PHASE"])
            elif params:
                store.set_parameters(job_id, {k.lower(): v for k, v in params.items() if k != "ACTION"})
        elif part == "phase":
            self._phase(job_id, params.get("PHASE", ""))
        elif part == "parameters":
            store.set_parameters(job_id, {k.lower(): v for k, v in params.items()})
        elif part == "executionduration":
            store.set_duration(job_id, params.get("EXECUTIONDURATION", ""))
        elif part == "destruction":
            store.set_destruction(job_id, params.get("DESTRUCTION", ""))
        else:
            raise HTTPError(405, f"cannot POST to {part[:40]!r}")
        self.redirect_to(self.job_url(job_id))

    def delete(self, job_id=None, part=None):
        if job_id is None or (part or "").strip("/"):
            raise HTTPError(405, "DELETE a job at /tap/async/<job id>")
        self.owned_job(job_id)
        self._delete(job_id)
        self.redirect_to(self.base_url() + "/tap/async")

    def _delete(self, job_id: str) -> None:
        self.vo.jobs.delete(job_id)
        self.vo.interrupt(job_id)

    def _phase(self, job_id: str, phase: str) -> None:
        phase = phase.strip().upper()
        if phase == "RUN":
            if self.vo.jobs.get(job_id).phase in ("PENDING", "HELD"):
                self.check_job_limits(creating=False)
            self._start(job_id)
        elif phase == "ABORT":
            self.vo.jobs.abort(job_id)
            self.vo.interrupt(job_id)
        else:
            raise UserError(f"PHASE must be RUN or ABORT, not {phase[:20]!r}")

    def _start(self, job_id: str) -> None:
        job = self.vo.jobs.start(job_id)
        if job.phase == "QUEUED" and job.pid == os.getpid():
            self.vo.queue.submit(job.quota_owner or job.owner, run_job, self.vo, job_id)


def run_job(vo: VOService, job_id: str) -> None:
    """Run one queued job to COMPLETED or ERROR (in a worker thread)."""
    store = vo.jobs
    try:
        job = store.begin(job_id)
        if job is None:
            return
        params = {k.upper(): v for k, v in job.parameters.items()}
        request = tap_request(params, vo.settings, job.row_cap)
        timeout = min(job.execution_duration or vo.settings.async_max_timeout_s, vo.settings.async_max_timeout_s)
        tables = {}
        for name, _part in request.uploads:
            path = store.file(job_id, f"upload-{name.lower()}.bin")
            if not path.is_file():
                raise UserError(f"UPLOAD {name}: the table was not sent when the job was created")
            tables[name] = path.read_bytes()
        with Uploads(tables, max_rows=vo.settings.upload_max_rows) as uploads:
            try:
                out = vo.engine.run(request.query, maxrec=request.maxrec, timeout_s=timeout, uploads=uploads.tables,
                                    on_connection=lambda conn: vo.running(job_id, conn))
            finally:
                vo.running(job_id, None)
        body, mime, ext = render(out, request.fmt)
        if not store.file(job_id, "job.json").is_file():
            return
        write_bytes(store.file(job_id, f"result.{ext}"), body)
        store.finish(job_id, phase="COMPLETED", result_file=f"result.{ext}", result_mime=mime)
    except NotFound:
        return
    except UserError as exc:
        _job_failed(store, job_id, exc.message)
    except Exception:
        log.exception("async TAP job %s failed", job_id)
        _job_failed(store, job_id, "internal server error; the details are in the server's log")


def _job_failed(store, job_id: str, message: str) -> None:
    if store.file(job_id, "job.json").is_file():
        write_bytes(store.file(job_id, "error.vot"), error_votable(message))
        store.finish(job_id, phase="ERROR", error=message)


class TapCapabilitiesHandler(VOHandler):
    def get(self):
        model = self.vo.engine.model()
        models = [OBSCORE_MODEL] if model.table("ivoa", "obscore") else []
        self.send_body(capabilities_xml(self.base_url() + "/tap", self.vo.settings, models), "text/xml")


class TapAvailabilityHandler(VOHandler):
    def get(self):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
                "<vosi:available>true</vosi:available>"
                "<vosi:note>lcpanel TAP service is accepting queries</vosi:note></vosi:availability>\n")
        self.send_body(body.encode(), "text/xml")


class TapExamplesHandler(VOHandler):
    def get(self):
        from ..core.tap_examples import examples_xhtml

        self.send_body(examples_xhtml(self.vo.engine.model(), self.app.catalogs), "application/xhtml+xml")


class TapTablesHandler(VOHandler):
    def get(self, name=None):
        model = tap_model(self.app.catalogs)
        if name:
            table = model.find(name)
            if table is None:
                raise NotFound(f"no table {name[:80]!r}")
            self.send_body(table_xml(table), "text/xml")
            return
        detail = self.params().get("DETAIL", "max").lower() != "min"
        self.send_body(tableset_xml(model, detail=detail), "text/xml")


class SCSHandler(VOHandler):
    scs = True

    async def get(self, collection_id=None):
        vo = self.vo
        s = vo.settings
        request = parse_request(self.params(), max_sr_deg=s.scs_max_sr_deg, default_maxrec=s.default_maxrec,
                                max_maxrec=self.row_cap())
        fmt = response_format(self.params())
        catalogs = self.app.catalogs
        ids = [collection_id] if collection_id else catalogs.ids()
        if collection_id:
            catalogs.get(collection_id)  # NotFound with a suggestion
        if not ids:
            raise NotFound("there are no collections in this service")
        base = self.base_url()

        def run():
            fields, rows, overflow = cone_search(catalogs, ids, request)
            title = f"collection {collection_id}" if collection_id else "all collections"
            services = result_services(base, [f.name for f in fields], ids)
            return render_format(fmt, fields, rows, overflow=overflow, services=services,
                                 description=f"Simple Cone Search over {title}")

        body = await offloader(self.app).run(run)
        self.send_body(body, fmt.mime)

    post = get


# --- capabilities ------------------------------------------------------------------------------

_FEATURES = {
    "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo": ("POINT", "CIRCLE", "CONTAINS", "INTERSECTS", "DISTANCE",
                                                     "COORD1", "COORD2", "COORDSYS"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-string": ("LOWER", "UPPER", "ILIKE"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-offset": ("OFFSET",),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-sets": ("UNION", "EXCEPT", "INTERSECT"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-common-table": ("WITH",),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-type": ("CAST",),
}


def capabilities_xml(tap_url: str, settings: VOSettings, data_models=()) -> bytes:
    """VOSI capabilities with the TAPRegExt description of the TAP service."""
    from xml.sax.saxutils import escape

    url = escape(tap_url)
    features = "".join(
        f'<languageFeatures type="{t}">' + "".join(f"<feature><form>{f}</form></feature>" for f in forms)
        + "</languageFeatures>" for t, forms in _FEATURES.items())

    def vosi(standard: str, path: str) -> str:
        return (f'<capability standardID="{standard}"><interface xsi:type="vs:ParamHTTP">'
                f'<accessURL use="full">{url}/{path}</accessURL></interface></capability>\n')

    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
        'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
        'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        f'<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">{url}</accessURL>'
        "</interface>"
        + "".join(f'<dataModel ivo-id="{ivo}">{name}</dataModel>' for ivo, name in data_models) +
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL 2.1 translated to SQLite; cones (CONTAINS, INTERSECTS, DISTANCE) use the sky index"
        f"</description>{features}</language>"
        + output_formats_xml() +
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>'
        f"<retentionPeriod><default>{int(settings.job_lifetime_days * 86400)}</default></retentionPeriod>"
        f"<executionDuration><default>{settings.async_timeout_s}</default>"
        f"<hard>{settings.async_max_timeout_s}</hard></executionDuration>"
        f'<outputLimit><default unit="row">{settings.default_maxrec}</default>'
        f'<hard unit="row">{settings.max_maxrec}</hard></outputLimit>'
        f'<uploadLimit><hard unit="byte">{settings.upload_max_bytes}</hard></uploadLimit>'
        "</capability>\n"
        + vosi("ivo://ivoa.net/std/VOSI#capabilities", "capabilities")
        + vosi("ivo://ivoa.net/std/VOSI#availability", "availability")
        + vosi("ivo://ivoa.net/std/VOSI#tables-1.1", "tables")
        + (f'<capability standardID="ivo://ivoa.net/std/DALI#examples"><interface xsi:type="vr:WebBrowser">'
           f'<accessURL use="full">{url}/examples</accessURL></interface></capability>\n')
        + "</vosi:capabilities>\n")
    return body.encode("utf-8")


# --- the adql search type ------------------------------------------------------------------------


class AdqlSearch(SearchBackend):
    """Objects chosen by an ADQL query over one collection table."""

    name = param.String(default="adql", constant=True)
    title = "ADQL"
    description = ("An ADQL query over one collection table, e.g. SELECT TOP 100 * FROM lcpanel.demo WHERE "
                   "1=CONTAINS(POINT('ICRS', ra, decl), CIRCLE('ICRS', 290, 45, 0.1)) AND vmag < 12 ORDER BY "
                   "vmag. Its WHERE, ORDER BY and TOP choose the objects; the result holds the usual columns. "
                   "Use /tap for any other query.")
    query = param.String(default="", doc="an ADQL SELECT over lcpanel.<collection>")
    text_params = ("query",)
    example = {"query": "SELECT TOP 100 * FROM lcpanel.demo WHERE vmag < 12 ORDER BY vmag"}

    def prepare(self, settings):
        if not self.query.strip():
            raise UserError("give an ADQL query, e.g. SELECT * FROM lcpanel.demo WHERE vmag < 12", field="query")
        self._translation = self._engine().translate(self.query, objects_only=True)

    def _engine(self) -> TapEngine:
        return service(self.context.app).engine

    def search_collection(self, catalog, flt, sort, limit):
        translation = self._translation
        if translation.collection_id != catalog.collection_id:
            return Hits(row_ids=[], nmatched=0)
        engine = self._engine()
        out = engine.execute(translation, maxrec=limit, timeout_s=catalog.settings.query_timeout_s)
        ids = np.array([r[0] for r in out.rows], dtype=np.int64)
        if flt is not None:
            ids = ids[catalog.passing(ids, flt)]
        return Hits(row_ids=ids.tolist(), nmatched=len(ids), nmatched_is_lower_bound=out.overflow)


# --- hooks --------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def register_routes(app):
    kwargs = {"app": app}
    return [
        Route("vo-tap", r"/tap/?", TapRootHandler, kwargs),
        Route("vo-tap-sync", r"/tap/sync/?", TapSyncHandler, kwargs),
        Route("vo-tap-async", r"/tap/async/?", TapAsyncHandler, kwargs),
        Route("vo-tap-job", r"/tap/async/([^/]+)(/.*)?", TapAsyncHandler, kwargs),
        Route("vo-tap-capabilities", r"/tap/capabilities/?", TapCapabilitiesHandler, kwargs),
        Route("vo-tap-availability", r"/tap/availability/?", TapAvailabilityHandler, kwargs),
        Route("vo-tap-tables", r"/tap/tables/?", TapTablesHandler, kwargs),
        Route("vo-tap-examples", r"/tap/examples/?", TapExamplesHandler, kwargs),
        Route("vo-tap-table", r"/tap/tables/([^/]+)", TapTablesHandler, kwargs),
        Route("vo-scs-all", r"/scs/?", SCSHandler, kwargs),
        Route("vo-scs", r"/scs/([^/]+)/?", SCSHandler, kwargs),
    ]


@hookimpl(trylast=True)
def register_search_backends(app):
    return [AdqlSearch]


@hookimpl
def shutdown(app):
    svc = app.stash.get(SERVICE)
    if svc is not None:
        svc.shutdown()
