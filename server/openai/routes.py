"""`/v1/audio/transcriptions`, `/v1/audio/translations`, `/v1/models`: OpenAI's audio API
as a thin face over the v1 jobs.

A request becomes a job in the same store, for the same user, with the same credits and
limits as `POST /api/v1/transcriptions`; the same workers run it, and it is listed by
`GET /api/v1/transcriptions`. The request then waits for its job (woken by the store, not
by polling) and answers in the format asked; with ``stream=true`` it relays each segment
as the worker publishes it. A client that disconnects cancels its job.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import api, jobfiles, uploads
from ..errors import ServerError
from ..janitor import purge
from ..store import Job, JobStatus, User
from ..validation import error
from . import shape, waiting
from .catalog import Catalog, english_only
from .errors import ModelNotFound, openai_errors
from .form import AudioForm, parse_form

log = logging.getLogger("tft.openai")

JOB_HEADER = "X-TFT-Job-Id"


class JobFailed(ServerError):
    """The job ended in error; the status says whose fault it was."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def catalog(request: Request) -> Catalog:
    state = request.app.state
    found = getattr(state, "openai_catalog", None)
    if found is None:
        caps = state.capabilities
        found = state.openai_catalog = Catalog(state.settings.model, tuple(caps.models), int(time.time()))
    return found


# -- creating the job ------------------------------------------------------------------------


async def _create_job(request: Request, user: User, task: str) -> tuple[Job, AudioForm]:
    state = request.app.state
    settings = state.settings
    job_id = str(uuid.uuid4())
    dest, stored = jobfiles.incoming_path(settings, job_id), False
    try:
        upload = await uploads.receive(request, dest, max_bytes=settings.max_upload_bytes,
                                       idle_timeout=settings.upload_idle_timeout_seconds)
        form = parse_form(upload.fields, upload.repeated)
        model = catalog(request).resolve(form.model)
        if model is None:
            raise ModelNotFound(form.model)
        if form.language and form.language != "en" and english_only(model):
            raise error(["body", "language"], f"the model {model} is English-only and cannot transcribe "
                        f"'{form.language}'; ask for a multilingual model such as base", value=form.language)
        info = await api.check_audio(request, user, upload, dest)
        location = await run_in_threadpool(jobfiles.store_upload, settings, job_id, dest)
        stored = True
        job = await run_in_threadpool(
            lambda: state.store.create_job(job_id=job_id, user=user, filename=upload.filename or "upload",
                                           upload_path=location, options=form.job_options(model=model, task=task),
                                           price=settings.credits_per_job, audio_duration=info.duration,
                                           top_up_url=settings.top_up_url))
    except BaseException:
        await jobfiles.forget_upload(settings, job_id, dest, stored=stored)
        raise
    state.metrics.jobs_created.inc()
    log.info("/v1 %s job %s (%s, %s%s)", task, job.id, model, form.response_format, ", streamed" if form.stream else "")
    return job, form


async def _cancel(request: Request, job: Job) -> None:
    """The client went away: cancel its job for real and refund it."""
    before = await run_in_threadpool(request.app.state.store.cancel_job, job.id, job.user_id)
    if before is not None:
        log.info("/v1 job %s: client disconnected; cancelled and refunded", job.id)
        if before.status is JobStatus.PENDING:  # no worker has it: its files go now
            await run_in_threadpool(purge, request.app.state.store, request.app.state.settings, before)


async def _finished(request: Request, job: Job, formats: tuple[str, ...] = ()) -> shape.Finished:
    """The job's exports (the JSON one, and ``formats``), or the error that ended it."""
    current = await run_in_threadpool(request.app.state.store.get_job, job.id)
    if current is None or current.deleted or current.cancel_requested or current.status is JobStatus.CANCELLED:
        raise JobFailed("the transcription was cancelled before it finished", code="cancelled", status=400)
    if current.status is JobStatus.ERROR:
        internal = current.error_code in ("internal_error", "worker_crashed")
        raise JobFailed(current.error_message or "the transcription failed", code=current.error_code or "error",
                        status=500 if internal else 400)
    try:
        return await run_in_threadpool(shape.Finished.read, current, request.app.state.settings, formats)
    except (FileNotFoundError, ValueError):  # deleted, or expired, as we read it
        raise JobFailed("the transcription was deleted before its result could be read", code="gone",
                        status=400) from None


# -- endpoints -------------------------------------------------------------------------------


async def _audio(request: Request, task: str) -> Response:
    user = await api.authorized(request)
    job, form = await _create_job(request, user, task)
    store = request.app.state.store
    limiter = waiting.limiter_for(request)
    headers = {JOB_HEADER: job.id}  # the same job in /api/v1/transcriptions/{id}
    if form.stream:
        return waiting.EventStream(_events(request, job, limiter), on_disconnect=lambda: _cancel(request, job),
                                   headers=headers)
    _, gone = await waiting.first_of(waiting.until_finished(store, job.id, limiter), request.receive)
    if gone:
        await _cancel(request, job)
        return Response(status_code=499)  # nobody is listening; uvicorn drops it
    texts = (form.response_format,) if form.response_format in ("srt", "vtt") else ()
    response = shape.response(await _finished(request, job, texts), form, task)
    response.headers.update(headers)
    return response


async def _events(request: Request, job: Job, limiter) -> AsyncIterator[bytes]:
    """One delta per segment as the worker publishes it, then done (or an error event)."""
    store = request.app.state.store
    seen, version, first = -1, None, True
    try:
        while True:
            for seq, seg in await run_in_threadpool(store.job_segments, job.id, after=seen):
                seen = seq
                text = seg.get("text", "")
                if text:
                    yield shape.sse(shape.delta(text if first else " " + text))
                    first = False
            if version is not None and (version.finished or version.cancel_requested):
                break
            version = await waiting.next_version(store, job.id, version, limiter)
            if version is None:
                break
        yield shape.sse(shape.done_event(await _finished(request, job)))
    except ServerError as exc:
        yield shape.sse(shape.error_event(str(exc), "invalid_request_error" if exc.status < 500 else "server_error",
                                          exc.code))
    except Exception:
        log.exception("/v1 stream for job %s failed", job.id)
        yield shape.sse(shape.error_event("The server had an error while processing your request."))


@openai_errors
async def transcriptions(request: Request) -> Response:
    return await _audio(request, "transcribe")


@openai_errors
async def translations(request: Request) -> Response:
    return await _audio(request, "translate")


@openai_errors
async def list_models(request: Request) -> Response:
    await api.authorized(request)
    return JSONResponse(catalog(request).listing())


@openai_errors
async def get_model(request: Request) -> Response:
    await api.authorized(request)
    model_id = request.path_params["model_id"]
    cat = catalog(request)
    if model_id not in cat.ids():
        raise ModelNotFound(model_id)
    return JSONResponse(cat.model_object(model_id))
