"""TAP 1.1: the service root, synchronous queries and UWS asynchronous jobs."""


from __future__ import annotations

import asyncio
import logging
import os
import time

from tornado.web import HTTPError

from ...core.access.identity import COOKIE_NAME
from ...core.atomic import write_bytes
from ...core.offload import offloader
from ...core.vo import uws
from ...core.vo.tap_upload import Uploads
from ...core.vo.votable import VOTABLE_MIME, error_votable
from ...errors import Forbidden, NotFound, TooManyRequests, UserError
from .base import WAIT_MAX_S, VOHandler, VOService, iter_answer, render, tap_request

log = logging.getLogger(__name__)


class TapRootHandler(VOHandler):
    def get(self):
        base = self.base_url() + "/tap"
        links = "".join(f'<li><a href="{base}/{p}">{base}/{p}</a></li>'
                        for p in ("capabilities", "availability", "tables", "sync", "async"))
        self.send_body(("<!DOCTYPE html><html><head>"
                        '<meta name="viewport" content="width=device-width, initial-scale=1">'
                        "<title>lcpanel TAP</title></head><body><h1>TAP service</h1>"
                        f"<p>TAP 1.1 with ADQL 2.1 over the collections of this lcpanel server. Give "
                        f"<code>{base}</code> to TOPCAT or pyvo.</p><ul>{links}</ul></body></html>").encode(),
                       "text/html; charset=utf-8")


#: a synchronous answer's pieces are joined up to this many bytes before they are sent (a
#: small answer goes out whole, with its Content-Length; a large one in pieces as made)
SEND_BYTES = 64 * 1024


def take_pieces(pieces, limit: int) -> tuple[bytes, bool]:
    """The next pieces of an answer, joined, until they reach ``limit`` bytes or the
    answer ends (empty once it has ended), and whether more may follow. Run off the loop:
    each call is one hand-off."""
    out, size = [], 0
    for piece in pieces:
        out.append(piece)
        size += len(piece)
        if size >= limit:
            return b"".join(out), True
    return b"".join(out), False


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
            pieces = iter_answer(out, request.fmt, base, mivot=request.mivot)
            while True:
                data, more = await work.call(take_pieces, pieces, SEND_BYTES)
                self.write(data)
                if not more:
                    break
                await self.flush()
            self.finish()  # an answer taken in one go is sent with its Content-Length


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
                               cookie_bound=not anonymous or self.has_session_cookie(),
                               base_url=self.base_url())
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
        body, mime, ext = render(out, request.fmt, job.base_url, mivot=request.mivot)
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
