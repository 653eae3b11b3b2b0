"""The studio web page and the one route it needs beyond the public API: a job's original audio.

``GET /`` and ``/static/*`` are served without a token: the page is public code, and it
asks the user for their token. Every call it then makes goes to the public API.

Why a signed link for the audio, not a Blob URL. ``<audio src>`` cannot send an
``Authorization`` header. A page could fetch the file with the token and play a Blob URL,
but it would download the whole file before the first note and hold it in the tab's
memory: fine for a 4 MB song, but a one-hour WAV is 600 MB of RAM and a minute of waiting,
and seeking waits for all of it. Instead an authenticated call
(``POST …/{id}/audio/link``) returns a short-lived URL whose query carries an expiry and an
HMAC of (job, user, expiry). ``<audio>`` streams it with ordinary Range requests, so it
starts at once and seeks anywhere in a file of any length. The link works for that one
job's audio only, for ``LINK_TTL_S``; it is not a token (it cannot list, create or delete),
and it stops working when the job is deleted or its retention ends. The signing key lives
in the data directory, so every ``tft serve`` process on the same data shares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import re
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import api, filenames, jobfiles, views
from .blobs import blob_store
from .errors import Gone, NotFound, Unauthorized
from .responses import HeldFileResponse
from .store import Job, JobStatus
from .validation import error

STATIC = Path(__file__).resolve().parent / "static"
LINK_TTL_S = 6 * 3600  # long enough to listen to a long recording end to end, seeking included
KEY_FILE = "audio-link.key"

# The page may talk to this origin only; it loads nothing from anywhere else. The browser
# enforces this, so even a mistake in the page cannot reach a CDN.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Uploaded bytes are served as media, never as a document this origin would run.
AUDIO_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
                 "Cache-Control": "private, max-age=300"}

# PyAV container names (first of the comma-separated list) -> what browsers expect.
CONTAINER_TYPES = {
    "wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "ogg": "audio/ogg", "mov": "audio/mp4",
    "matroska": "audio/webm", "aac": "audio/aac", "aiff": "audio/aiff", "caf": "audio/x-caf",
}


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


# -- signed audio links ---------------------------------------------------------------------


def signing_key(settings) -> bytes:
    """32 random bytes kept in the blob store (every API node signs and checks with the same
    key), created once: the first writer's key is the one every node reads back."""
    return blob_store(settings).create_once(KEY_FILE, secrets.token_bytes(32))


def sign(key: bytes, job_id: str, user_id: str, expires: int) -> str:
    mac = hmac.new(key, f"audio\n{job_id}\n{user_id}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _key(request: Request) -> bytes:
    state = request.app.state
    if getattr(state, "audio_link_key", None) is None:
        state.audio_link_key = signing_key(state.settings)
    return state.audio_link_key


def _check_retention(job: Job) -> None:
    """410 once the job's retention ran out (exports and original go together)."""
    if job.exports_expired or (job.exports_expire_at is not None and job.exports_expire_at <= time.time()):
        raise Gone("this transcription's audio expired after the retention period")
    if job.status in (JobStatus.ERROR, JobStatus.CANCELLED):
        raise Gone(f"the original audio is not kept for a job that ended in {job.status.value}")


async def audio_link(request: Request) -> Response:
    """Issue a signed, short-lived URL for ``<audio src>`` (see the module docstring)."""
    user = await api.authorized(request)
    job = await api._owned_job(request, user)
    _check_retention(job)
    expires = int(time.time()) + LINK_TTL_S
    if job.exports_expire_at is not None:
        expires = min(expires, int(job.exports_expire_at))
    signature = sign(await run_in_threadpool(_key, request), job.id, job.user_id, expires)
    path = f"{views.API}/transcriptions/{job.id}/audio"
    return JSONResponse({"url": f"{path}?expires={expires}&signature={signature}", "expires": expires,
                         "signature": signature, "expires_at": views.iso(expires)}, status_code=201,
                        headers={"Cache-Control": "no-store"})


async def _job_from_link(request: Request) -> Job:
    state = request.app.state
    client = api.client_address(request)
    state.limiter.check(client)
    job_id = api._job_id(request.path_params["job_id"])
    raw_expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not re.fullmatch(r"[0-9]{1,12}", raw_expires):
        raise error(["query", "expires"], "expires must be the whole number the audio link was issued with",
                    "int_parsing", raw_expires)
    expires = int(raw_expires)
    job = await run_in_threadpool(state.store.get_job, job_id)
    key = await run_in_threadpool(_key, request)
    if job is None or not hmac.compare_digest(sign(key, job_id, job.user_id, expires), signature):
        state.limiter.fail(client)
        raise Unauthorized("this audio link is not valid; ask for a new one with POST …/audio/link")
    if expires < time.time():
        raise Unauthorized("this audio link expired; ask for a new one with POST …/audio/link")
    if job.deleted:
        raise NotFound("no such transcription")
    return job


async def audio(request: Request) -> Response:
    """The job's original upload, with Range support, for a token or a signed link."""
    if request.headers.get("authorization") or "signature" not in request.query_params:
        user = await api.authorized(request)
        job = await api._owned_job(request, user)
    else:
        job = await _job_from_link(request)
    _check_retention(job)
    held = await run_in_threadpool(jobfiles.hold_upload, request.app.state.settings, job)
    if held is None:
        fresh = await run_in_threadpool(request.app.state.store.get_job, job.id)
        if fresh is None or fresh.deleted:  # deleted while we looked
            raise NotFound("no such transcription")
        raise Gone("the original audio of this transcription is no longer kept")
    try:
        media_type = await run_in_threadpool(_media_type, held.path, job.filename) or "application/octet-stream"
        if held.fetched:  # a copy for this answer alone: gone from disk once the descriptor closes
            held.path.unlink(missing_ok=True)
        return HeldFileResponse(held.fd, held.path, media_type=media_type, headers={
            **AUDIO_HEADERS, "Content-Disposition": filenames.content_disposition(
                filenames.stem(job.filename), Path(job.filename).suffix.lstrip(".") or "audio", disposition="inline")})
    except BaseException:
        os.close(held.fd)
        raise


def _media_type(path: Path, filename: str) -> str | None:
    """The container PyAV finds in the bytes (the name the user gave may be wrong); None when
    the file is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _container_type(str(path), stat.st_mtime_ns, filename)


@lru_cache(maxsize=256)
def _container_type(path: str, mtime_ns: int, filename: str) -> str:
    import av

    try:
        with av.open(path) as container:
            name = container.format.name.split(",")[0]
    except (av.FFmpegError, OSError):
        name = ""
    if name in CONTAINER_TYPES:
        return CONTAINER_TYPES[name]
    guessed, _ = mimetypes.guess_type(filename)
    return guessed if guessed and guessed.split("/")[0] in ("audio", "video") else "application/octet-stream"


ROUTES = [
    Route("/", index, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/api/v1/transcriptions/{job_id}/audio", audio, methods=["GET"]),
    Route("/api/v1/transcriptions/{job_id}/audio/link", audio_link, methods=["POST"]),
]
