"""Endpoint functions: parse -> call the store -> respond. No business logic lives here.

Every store call runs in a thread (``run_in_threadpool``): SQLite may wait on a lock, and
the event loop must never wait on the database or the model.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from pathlib import Path

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from engine.errors import AudioDecodeError, EngineError, InputError
from engine.writers import WRITERS

from . import auth, exports, filenames, jobfiles, uploads, views
from .errors import Conflict, Gone, InsufficientCredits, NotFound, PayloadTooLarge, StoreUnavailable
from .janitor import purge
from .store import JobStatus, User
from .validation import CreateForm, ExportQuery, ListQuery, RegisterWebhook, error, parse

log = logging.getLogger("tft.api")

EXPORT_FORMATS = ("txt", "srt", "lrc", "json", "vtt", "lrc_plain")


def _state(request: Request):
    return request.app.state


def client_address(request: Request) -> str:
    """The client, for rate limiting: the peer, or what a trusted proxy says it forwarded."""
    return auth.client_address(request.client.host if request.client else None,
                               request.headers.get("x-forwarded-for"), _state(request).settings.trusted_proxies)


async def authorized(request: Request) -> User:
    """The caller, from a Bearer token; bad tokens are counted per client address."""
    state = _state(request)
    header = request.headers.get("authorization")
    if not header:  # nothing was guessed: a plain 401, not counted against the address
        auth.bearer(header)
    client = client_address(request)
    state.limiter.check(client)  # before validating: a locked-out address learns nothing
    try:
        return await run_in_threadpool(auth.authenticate, state.store, header)
    except Exception:
        state.limiter.fail(client)
        raise


def _job_id(raw: str) -> str:
    """Job ids are the UUIDs this server minted; anything else (path traversal included) is a
    validation error on the path, and a well-formed id that is not yours is not found."""
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != raw.lower():
        raise error(["path", "job_id"], "job_id must be a transcription id (a UUID) returned by this server",
                    "uuid_parsing", raw)
    return str(parsed)


def _missing():
    raise NotFound("no such transcription")


async def _owned_job(request: Request, user: User):
    job_id = _job_id(request.path_params["job_id"])
    job = await run_in_threadpool(_state(request).store.get_job, job_id, user.id)
    if job is None:
        _missing()
    return job


def _body(job, request: Request) -> dict:
    return views.job_body(job, formats=EXPORT_FORMATS, now=time.time())


# -- transcriptions ------------------------------------------------------------------------


async def create_transcription(request: Request) -> Response:
    """Receive (streamed to disk), validate the fields, check the balance, then probe: the
    probe is the only step that decodes, and it runs last, bounded, and a few at a time."""
    user = await authorized(request)
    state = _state(request)
    settings = state.settings
    job_id = str(uuid.uuid4())
    dest, stored = jobfiles.incoming_path(settings, job_id), False
    try:
        upload = await uploads.receive(request, dest, max_bytes=settings.max_upload_bytes,
                                       idle_timeout=settings.upload_idle_timeout_seconds)
        form = parse(CreateForm, upload.fields, "body")
        if form.language and form.language not in state.capabilities.languages:
            raise error(["body", "language"], f"the server's model ({settings.model}) cannot transcribe "
                        f"'{form.language}'; it supports {', '.join(state.capabilities.languages[:10])}"
                        + ("…" if len(state.capabilities.languages) > 10 else ""), value=form.language)
        info = await check_audio(request, user, upload, dest)
        options = {"pinyin": form.pinyin, "vintage": form.vintage, "timestamps": form.timestamps,
                   "language": form.language, "audio_type": form.audio_type or "auto",
                   **({"separator": form.separator} if form.separator else {}),
                   **({"lyrics": form.lyrics} if form.lyrics else {})}
        location = await run_in_threadpool(jobfiles.store_upload, settings, job_id, dest)
        stored = True
        job = await run_in_threadpool(
            lambda: state.store.create_job(job_id=job_id, user=user, filename=upload.filename or "upload",
                                           upload_path=location, options=options, price=settings.credits_per_job,
                                           audio_duration=info.duration, top_up_url=settings.top_up_url))
    except BaseException:
        await jobfiles.forget_upload(settings, job_id, dest, stored=stored)
        raise
    state.metrics.jobs_created.inc()
    return JSONResponse(views.created_body(job), status_code=201,
                        headers={"Location": f"/api/v1/transcriptions/{job.id}"})


async def check_audio(request: Request, user: User, upload: uploads.Upload, dest: Path):
    """The upload is sound of an acceptable length, or a 4xx that says why. The balance is
    checked first (402): a user who cannot pay never costs the server a probe. The probe,
    the one step that decodes, is bounded and runs a few at a time."""
    state = _state(request)
    if upload.size == 0:
        raise error(["body", "file"], f"'{upload.filename}' is empty (0 bytes)", value=upload.filename)
    await _check_balance(state, user)
    return await anyio.to_thread.run_sync(_probe, dest, upload.filename, state.settings.max_audio_seconds,
                                          limiter=state.probe_limiter)


async def _check_balance(state, user: User) -> None:
    """402 before any decoding: a user who cannot pay never costs the server a probe. (The
    hold itself is taken atomically with the job row.)"""
    price = state.settings.credits_per_job
    fresh = await run_in_threadpool(state.store.get_user, user.id)
    balance = fresh.credits if fresh else user.credits
    if balance is not None and balance < price:
        raise InsufficientCredits(f"this job costs {price} credit(s) and your balance is {balance}",
                                  top_up_url=state.settings.top_up_url, balance=balance, price=price)


def _probe(path: Path, filename: str | None, max_seconds: float):
    """Probe the upload; every way that can fail is a 422 about the file (it is the only input)."""
    from engine.audio import probe

    name = f"'{filename}'"
    try:
        return probe(path, require_sound=True, max_seconds=max_seconds)
    except InputError as exc:
        # The probe names the stored file; the user knows it by the name they uploaded.
        raise error(["body", "file"], str(exc).replace(f"'{path.name}'", name), value=filename) from None
    except EngineError:
        raise
    except Exception as exc:  # a decoder library failing on a file it should have refused
        log.warning("probe of %s failed: %s: %s", path.name, type(exc).__name__, exc)
        message = str(AudioDecodeError(f"{name} could not be read as audio ({type(exc).__name__}); it may be "
                                       "damaged or use an unusual format"))
        raise error(["body", "file"], message, value=filename) from None


async def list_transcriptions(request: Request) -> Response:
    user = await authorized(request)
    query = parse(ListQuery, dict(request.query_params), "query")
    jobs, total = await run_in_threadpool(
        lambda: _state(request).store.list_jobs(user.id, status=query.status, limit=query.per_page,
                                                offset=(query.page - 1) * query.per_page))
    return JSONResponse({"items": [_body(j, request) for j in jobs], "page": query.page,
                         "per_page": query.per_page, "total": total})


async def get_transcription(request: Request) -> Response:
    user = await authorized(request)
    return JSONResponse(_body(await _owned_job(request, user), request))


async def delete_transcription(request: Request) -> Response:
    user = await authorized(request)
    state = _state(request)
    job_id = _job_id(request.path_params["job_id"])
    before = await run_in_threadpool(state.store.delete_job, job_id, user.id)
    if before is None:
        _missing()
    refunded = before.credits_quoted if before.status in (JobStatus.PENDING, JobStatus.PROCESSING) else 0
    status = "cancelled" if before.status in (JobStatus.PENDING, JobStatus.PROCESSING) else "deleted"
    # A processing job's worker removes its files when it stops at its next checkpoint (the
    # janitor does, if that worker died); everything else goes now.
    if before.status is not JobStatus.PROCESSING:  # gone when the client reads the answer, not just after
        await run_in_threadpool(purge, state.store, state.settings, before)
    return JSONResponse({"job_id": job_id, "status": status, "credits_refunded": refunded})


async def _finished_job(request: Request, user: User):
    job = await _owned_job(request, user)
    if job.status is not JobStatus.DONE:
        raise Conflict(f"the transcription is not done yet (status: {job.status.value})")
    if job.exports_expired or (job.exports_expire_at is not None and job.exports_expire_at <= time.time()):
        raise Gone("the exports of this transcription expired after the retention period")
    return job


async def _export_bytes(request: Request, user: User, job, extension: str) -> bytes:
    data = await run_in_threadpool(jobfiles.read_export, _state(request).settings, job, extension)
    if data is None:
        if await run_in_threadpool(_state(request).store.get_job, job.id, user.id) is None:
            _missing()  # deleted while we looked
        raise Gone("the exports of this transcription are no longer kept")
    return data


async def export_transcription(request: Request) -> Response:
    user = await authorized(request)
    query = parse(ExportQuery, dict(request.query_params), "query")
    job = await _finished_job(request, user)
    stem = filenames.stem(job.filename)
    if query.format in exports.DERIVED:  # rendered on request from the JSON export
        raw = await _export_bytes(request, user, job, "json")
        try:
            text, media_type, suffix = await run_in_threadpool(exports.render, query.format, raw)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise Gone("the JSON export of this transcription is damaged") from None
        return Response(text, media_type=media_type,
                        headers={"Content-Disposition": filenames.content_disposition(stem, suffix.lstrip("."))})
    data = await _export_bytes(request, user, job, query.format)
    return Response(data, media_type=WRITERS[query.format].media_type,
                    headers={"Content-Disposition": filenames.content_disposition(stem, query.format)})


async def transcription_segments(request: Request) -> Response:
    user = await authorized(request)
    job = await _finished_job(request, user)
    raw = await _export_bytes(request, user, job, "json")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise Gone("the JSON export of this transcription is damaged") from None
    return JSONResponse({"job_id": job.id, "language": data.get("language"), "duration": data.get("duration"),
                         "segments": data.get("segments", [])})


# -- account, capabilities -----------------------------------------------------------------


async def me(request: Request) -> Response:
    user = await authorized(request)
    state = _state(request)
    fresh = await run_in_threadpool(state.store.get_user, user.id)
    counts = await run_in_threadpool(state.store.job_counts, user.id)
    return JSONResponse(views.user_body(fresh or user, top_up_url=state.settings.top_up_url, counts=counts,
                                        price=state.settings.credits_per_job))


async def capabilities(request: Request) -> Response:
    await authorized(request)
    return JSONResponse(_state(request).capabilities.body())


# -- webhooks ------------------------------------------------------------------------------


async def list_webhooks(request: Request) -> Response:
    user = await authorized(request)
    hooks = await run_in_threadpool(_state(request).store.list_webhooks, user.id)
    return JSONResponse({"items": [views.webhook_body(h) for h in hooks]})


MAX_JSON_BYTES = 16 * 1024


async def _json_body(request: Request, *, limit: int = MAX_JSON_BYTES):
    """A small JSON request body: 413 past ``limit`` (counted while reading), 422 when it is
    not JSON (nesting too deep for the parser included)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {int(declared)} bytes; this endpoint accepts {limit} at most")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"the request body exceeds the {limit} bytes this endpoint accepts")
    except ClientDisconnect:
        raise error(["body"], "the client disconnected before the body arrived") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise error(["body"], "send a JSON object like {\"url\": \"https://...\", \"events\": [\"job.done\"]}",
                    "json_invalid") from None


async def register_webhook(request: Request) -> Response:
    from .webhook_registration import check_registration
    from .webhooks import UnsafeURL

    user = await authorized(request)
    state = _state(request)
    raw = await _json_body(request)
    if not isinstance(raw, dict):
        raise error(["body"], "Input should be a valid dictionary or object", "model_attributes_type", raw)
    body = parse(RegisterWebhook, raw, "body")
    try:
        await run_in_threadpool(check_registration, body.url, state.settings.webhook_allow_networks, state.resolver)
    except UnsafeURL as exc:
        raise error(["body", "url"], str(exc), value=body.url) from None
    import secrets

    hook = await run_in_threadpool(lambda: state.store.add_webhook(
        user_id=user.id, url=body.url, secret="whsec_" + secrets.token_urlsafe(32),
        events=list(dict.fromkeys(body.events)), limit=state.settings.max_webhooks_per_user))
    return JSONResponse(views.webhook_body(hook, include_secret=True), status_code=201)


async def delete_webhook(request: Request) -> Response:
    user = await authorized(request)
    hook_id = request.path_params["hook_id"]
    if not re.fullmatch(r"wh_[0-9a-f]{32}", hook_id):
        raise error(["path", "hook_id"], "hook_id must be a webhook id (wh_...) returned by this server",
                    "string_pattern_mismatch", hook_id)
    if not await run_in_threadpool(_state(request).store.delete_webhook, hook_id, user.id):
        raise NotFound("no such webhook")
    return Response(status_code=204)


# -- documents and health ------------------------------------------------------------------


async def openapi_json(request: Request) -> Response:
    return JSONResponse(_state(request).openapi)


async def health(request: Request) -> Response:
    """200 while every worker, the webhook dispatcher and the janitor are running; 503, naming
    the dead thread and what killed it, when one is not, or when the database cannot be reached."""
    state = _state(request)
    database = {"kind": getattr(state.store, "kind", "unknown"), "reachable": True}
    try:
        await run_in_threadpool(state.store.ping)
        depth = await run_in_threadpool(state.store.queue_depth)
    except StoreUnavailable as exc:
        depth, database["reachable"], database["error"] = {}, False, str(exc)
    healthy, threads = state.supervisor.health() if getattr(state, "supervisor", None) else (True, {})
    healthy = healthy and database["reachable"]
    return JSONResponse({"status": "ok" if healthy else "unhealthy", "queue": depth, "threads": threads,
                         "database": database}, status_code=200 if healthy else 503)
