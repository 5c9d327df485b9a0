"""What the VO protocols share: settings, per-app state, TAP parameters, output rendering
and the base request handler."""


from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import ClassVar

from tornado.web import HTTPError, RequestHandler

from ...core.jobqueue import FairQueue
from ...core.vo import uws
from ...core.vo.datalink import result_services
from ...core.vo.mivot import position_annotation, split_content
from ...core.vo.obscore import obscore_file, served_collections
from ...core.vo.tap_query import TapEngine
from ...core.vo.tap_schema import obscore_table, tap_model
from ...core.vo.tap_upload import fetch_url, parse_upload_param
from ...core.vo.voformats import OutputFormat, find_format, iter_render, known_names
from ...core.vo.votable import VOTABLE_MIME, error_votable
from ...errors import TooLarge, UserError
from ...jsonapi import APIMixin
from ...stash import StashKey

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

    def shutdown(self) -> None:
        self.queue.shutdown()
        for job_id in list(self._running):
            self.interrupt(job_id)


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
    #: RESPONSEFORMAT asked for content=mivot: annotate the positions (lcpanel.core.vo.mivot)
    mivot: bool = False


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
    return TapRequest(query=query, fmt=fmt, maxrec=min(maxrec, cap), uploads=uploads, mivot=wants_mivot(params))


def wants_mivot(params: dict) -> bool:
    """Whether ``RESPONSEFORMAT`` asks for MIVOT annotations (``content=mivot``)."""
    return split_content(params.get("RESPONSEFORMAT") or params.get("FORMAT"))[1]


def annotations_for(fields, mivot: bool) -> list:
    """The MIVOT position annotation of a result when asked for and it has positions."""
    annotation = position_annotation(fields) if mivot else None
    return [annotation] if annotation is not None else []


def response_format(params: dict) -> OutputFormat:
    """The output format ``RESPONSEFORMAT`` (or TAP 1.0's ``FORMAT``) names (its
    ``content=mivot`` aside); a 400 naming the known ones otherwise."""
    raw, _mivot = split_content(params.get("RESPONSEFORMAT") or params.get("FORMAT"))
    fmt = find_format(raw)
    if fmt is None:
        raise UserError(f"RESPONSEFORMAT={raw[:60]!r} is not supported; use one of {known_names()} "
                        "(or their MIME types)")
    return fmt


def render(out, fmt: OutputFormat, base_url: str | None = None, *, mivot: bool = False) -> tuple[bytes, str, str]:
    """(body, MIME type, file extension) of a query result; with ``base_url``, VOTables
    carry the DataLink service descriptor of their object ids; with ``mivot``, the MIVOT
    annotation of their positions."""
    return b"".join(iter_answer(out, fmt, base_url, mivot=mivot)), fmt.mime, fmt.extension


def iter_answer(out, fmt: OutputFormat, base_url: str | None = None, *, mivot: bool = False):
    """A query result in ``fmt``, in pieces (see :func:`lcpanel.core.vo.voformats.iter_render`)."""
    services = result_services(base_url, [f.name for f in out.fields],
                               [t.collection_id for t in out.translation.tables]) if base_url else ()
    rows = absolute_urls(out.fields, out.rows, base_url) if base_url else out.rows
    return iter_render(fmt, out.fields, rows, overflow=overflow_note(out), services=services,
                       annotations=annotations_for(out.fields, mivot))


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

