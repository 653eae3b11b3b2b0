"""Endpoint functions: parse -> call the store -> respond. No business logic lives here.

Every store call runs in a thread (``run_in_threadpool``): SQLite may wait on a lock, and
the event loop must never wait on the database or the model.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from engine.errors import AudioDecodeError, InputError, SilentAudioError
from engine.writers import WRITERS

from . import auth, exports, uploads, views
from .errors import Conflict, Gone, NotFound
from .store import JobStatus, User
from .validation import CreateForm, ExportQuery, ListQuery, RegisterWebhook, error, parse

EXPORT_FORMATS = ("txt", "srt", "lrc", "json", "vtt", "lrc_plain")


def _state(request: Request):
    return request.app.state


async def authorized(request: Request) -> User:
    """The caller, from a Bearer token; bad tokens are counted per client address."""
    state = _state(request)
    header = request.headers.get("authorization")
    if not header:  # nothing was guessed: a plain 401, not counted against the address
        auth.bearer(header)
    client = request.client.host if request.client else "unknown"
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
    user = await authorized(request)
    state = _state(request)
    settings = state.settings
    job_id = str(uuid.uuid4())
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    dest = settings.uploads_dir / f"{job_id}.upload"
    try:
        upload = await uploads.receive(request, dest, max_bytes=settings.max_upload_bytes,
                                       idle_timeout=settings.upload_idle_timeout_seconds)
        form = parse(CreateForm, upload.fields, "body")
        if form.language and form.language not in state.capabilities.languages:
            raise error(["body", "language"], f"the server's model ({settings.model}) cannot transcribe "
                        f"'{form.language}'; it supports {', '.join(state.capabilities.languages[:10])}"
                        + ("…" if len(state.capabilities.languages) > 10 else ""), value=form.language)
        info = await check_audio(upload, dest, settings.max_audio_seconds)
        options = {"pinyin": form.pinyin, "vintage": form.vintage, "timestamps": form.timestamps,
                   "language": form.language, "audio_type": form.audio_type or "auto",
                   **({"separator": form.separator} if form.separator else {}),
                   **({"lyrics": form.lyrics} if form.lyrics else {})}
        job = await run_in_threadpool(
            lambda: state.store.create_job(job_id=job_id, user=user, filename=upload.filename or "upload",
                                           upload_path=str(dest), options=options, price=settings.credits_per_job,
                                           audio_duration=info.duration, top_up_url=settings.top_up_url))
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    state.metrics.jobs_created.inc()
    return JSONResponse(views.created_body(job), status_code=201,
                        headers={"Location": f"/api/v1/transcriptions/{job.id}"})


async def check_audio(upload: uploads.Upload, dest: Path, max_seconds: float):
    """The upload is sound of an acceptable length (probed with PyAV), or a 422 that says why."""
    if upload.size == 0:
        raise error(["body", "file"], f"'{upload.filename}' is empty (0 bytes)", value=upload.filename)
    try:
        info = await run_in_threadpool(_probe, dest, upload.filename)
    except (AudioDecodeError, SilentAudioError, InputError) as exc:
        raise error(["body", "file"], str(exc), value=upload.filename) from None
    if info.duration > max_seconds:
        raise error(["body", "file"], f"'{upload.filename}' is {info.duration / 60:.1f} minutes long; this server "
                    f"accepts at most {max_seconds / 60:.0f} minutes", value=upload.filename)
    return info


def _probe(path: Path, filename: str | None):
    from engine.audio import probe

    try:
        return probe(path, require_sound=True)
    except InputError as exc:
        # The probe names the stored file; the user knows it by the name they uploaded.
        message = str(exc).replace(f"'{path.name}'", f"'{filename}'")
        raise type(exc)(message) from None


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
    if before.status is JobStatus.PENDING:
        status = "cancelled"
        cleanup = [Path(before.upload_path)]
    elif before.status is JobStatus.PROCESSING:
        status = "cancelled"  # the worker stops at its next checkpoint and removes the upload
        cleanup = []
    else:
        status = "deleted"
        cleanup = [Path(before.upload_path)] + ([Path(before.exports_dir)] if before.exports_dir else [])
    await run_in_threadpool(_remove, cleanup)  # gone when the client reads the answer, not just after
    return JSONResponse({"job_id": job_id, "status": status, "credits_refunded": refunded})


def _remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


async def _finished_job(request: Request, user: User):
    job = await _owned_job(request, user)
    if job.status is not JobStatus.DONE:
        raise Conflict(f"the transcription is not done yet (status: {job.status.value})")
    if job.exports_expired or (job.exports_expire_at is not None and job.exports_expire_at <= time.time()):
        raise Gone("the exports of this transcription expired after the retention period")
    return job


async def export_transcription(request: Request) -> Response:
    user = await authorized(request)
    query = parse(ExportQuery, dict(request.query_params), "query")
    job = await _finished_job(request, user)
    stem = Path(job.filename).stem or "transcript"
    if query.format in exports.DERIVED:
        try:
            text, media_type, suffix = await run_in_threadpool(
                exports.render, query.format, Path(job.exports_dir or "") / f"{stem}.json")
        except FileNotFoundError:
            raise Gone("the exports of this transcription are no longer on disk") from None
        return Response(text, media_type=media_type,
                        headers={"Content-Disposition": _attachment(f"{stem}{suffix}")})
    path = Path(job.exports_dir or "") / f"{stem}.{query.format}"
    if not await run_in_threadpool(path.is_file):
        raise Gone("the exports of this transcription are no longer on disk")
    writer = WRITERS[query.format]
    return FileResponse(path, media_type=writer.media_type, filename=f"{stem}.{query.format}",
                        content_disposition_type="attachment")


def _attachment(filename: str) -> str:
    """The Content-Disposition FileResponse writes, for responses built from memory."""
    from urllib.parse import quote

    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


async def transcription_segments(request: Request) -> Response:
    user = await authorized(request)
    job = await _finished_job(request, user)
    stem = Path(job.filename).stem or "transcript"
    path = Path(job.exports_dir or "") / f"{stem}.json"
    try:
        data = await run_in_threadpool(lambda: json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise Gone("the exports of this transcription are no longer on disk") from None
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


async def register_webhook(request: Request) -> Response:
    from .webhook_registration import check_registration
    from .webhooks import UnsafeURL

    user = await authorized(request)
    state = _state(request)
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise error(["body"], "send a JSON object like {\"url\": \"https://...\", \"events\": [\"job.done\"]}",
                    "json_invalid") from None
    if not isinstance(raw, dict):
        raise error(["body"], "Input should be a valid dictionary or object", "model_attributes_type", raw)
    body = parse(RegisterWebhook, raw, "body")
    try:
        await run_in_threadpool(check_registration, body.url, state.settings.webhook_allow_networks, state.resolver)
    except UnsafeURL as exc:
        raise error(["body", "url"], str(exc), value=body.url) from None
    import secrets

    hook = await run_in_threadpool(lambda: state.store.add_webhook(
        user_id=user.id, url=body.url, secret="whsec_" + secrets.token_urlsafe(32), events=list(dict.fromkeys(body.events))))
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
    depth = await run_in_threadpool(_state(request).store.queue_depth)
    return JSONResponse({"status": "ok", "queue": depth})

