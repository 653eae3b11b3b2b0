"""The Starlette application: declared routes, a lifespan that owns the supervised threads
(workers, the webhook dispatcher, the janitor), and one place that turns errors into
responses."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.errors import EngineError

from . import api, openai, web
from .auth import FailureLimiter
from .datadir import prepare_data_dir
from .dispatcher import Dispatcher
from .errors import InsufficientCredits, PayloadTooLarge, RateLimited, RequestTimeout, ServerError, Unauthorized
from .janitor import Janitor
from .metrics import Metrics, MetricsMiddleware
from .settings import Settings
from .store import JobStore, open_store
from .supervisor import Supervisor
from .validation import RequestInvalid
from .webhooks import system_resolver

PROBES_AT_ONCE = 4  # uploads probed concurrently; the rest wait (each probe is bounded)

log = logging.getLogger("tft.server")


@dataclass
class Capabilities:
    """What this box can really do, worked out once at start-up (no model is loaded)."""

    settings: Settings
    languages: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    separation: bool = False
    separators: list[str] = field(default_factory=list)
    separator: str | None = None
    device: str = "cpu"
    compute_type: str = "int8"

    @classmethod
    def probe(cls, settings: Settings) -> "Capabilities":
        from engine.separation import torch_available
        from engine.transcription import choose_device, known_language_codes
        from models import ModelStore, default_store_dir, list_models, resolve_separator
        from models.registry import ALL_MODELS

        store = ModelStore(settings.models_dir or default_store_dir())
        present = [m.name for m in list_models(store) if m.present and m.kind == "whisper"]
        spec = ALL_MODELS.get(settings.model)
        english_only = (spec is not None and not spec.multilingual) or settings.model.endswith(".en")
        languages = ["en"] if english_only else sorted(known_language_codes())
        separators: list[str] = []
        chosen = None
        if torch_available():
            for choice in ("spleeter", "htdemucs"):
                try:
                    if resolve_separator(choice, store, demucs_model=settings.demucs_model).model is not None:
                        separators.append(choice)
                except EngineError:  # corrupt weights: not available
                    pass
            try:
                found = resolve_separator(settings.separator, store, demucs_model=settings.demucs_model).model
                chosen = found.name if found else None
            except EngineError:
                chosen = None
        device, compute_type = choose_device(settings.device, settings.compute_type)
        return cls(settings, languages, present, chosen is not None, separators, chosen, device, compute_type)

    def body(self) -> dict:
        s = self.settings
        return {
            "api_version": "1.0",
            "server": "textfromtrack-local",
            "models": {"default": s.model, "available": self.models},
            "languages": self.languages,
            "formats": list(api.EXPORT_FORMATS),
            "timestamps": ["auto", "required", "none"],
            "timestamps_auto_means": s.default_timestamps,
            "audio_types": ["auto", "speech", "music"],
            "separation": {"available": self.separation, "model": self.separator, "default": s.separator,
                           "separators": self.separators, "forced": s.force_vocal_separation},
            "device": {"transcription": self.device, "compute_type": self.compute_type},
            "max_upload_bytes": s.max_upload_bytes,
            "max_audio_seconds": s.max_audio_seconds,
            "retention_seconds": s.retention_seconds,
            "credits_per_job": s.credits_per_job,
            "workers": s.workers,
            "features": {"webhooks": True, "pinyin": True, "vintage": True, "word_timestamps": True,
                         "cancellation": True, "vocal_separation": self.separation, "language_detection": True},
        }


def _error_response(exc: Exception) -> Response:
    if isinstance(exc, RequestInvalid):
        return JSONResponse({"detail": exc.detail}, status_code=422)
    if isinstance(exc, ServerError):
        body = {"detail": str(exc), "code": exc.code}
        headers = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="textfromtrack"'
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, (PayloadTooLarge, RequestTimeout)):
            headers["Connection"] = "close"  # the rest of that body is not worth reading
        if isinstance(exc, InsufficientCredits):
            body.update(top_up_url=exc.top_up_url, balance=exc.balance, price=exc.price)
        return JSONResponse(body, status_code=exc.status, headers=headers)
    if isinstance(exc, EngineError):
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=422)
    log.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal server error", "code": "internal_error"}, status_code=500)


async def _handle(request: Request, exc: Exception) -> Response:
    return _error_response(exc)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if request.url.path.startswith("/v1/"):
        return openai.http_error(exc)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def by_method(**handlers):
    """One endpoint per path that dispatches on the method, so a 405 lists every allowed method."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return endpoint


ROUTES = [
    Route("/api/v1/transcriptions", by_method(POST=api.create_transcription, GET=api.list_transcriptions),
          methods=["GET", "POST"]),
    Route("/api/v1/transcriptions/{job_id}", by_method(GET=api.get_transcription, DELETE=api.delete_transcription),
          methods=["GET", "DELETE"]),
    Route("/api/v1/transcriptions/{job_id}/export", api.export_transcription, methods=["GET"]),
    Route("/api/v1/transcriptions/{job_id}/segments", api.transcription_segments, methods=["GET"]),
    Route("/api/v1/me", api.me, methods=["GET"]),
    Route("/api/v1/capabilities", api.capabilities, methods=["GET"]),
    Route("/api/v1/webhooks", by_method(GET=api.list_webhooks, POST=api.register_webhook), methods=["GET", "POST"]),
    Route("/api/v1/webhooks/{hook_id}", api.delete_webhook, methods=["DELETE"]),
    Route("/api/v1/openapi.json", api.openapi_json, methods=["GET"]),
    Route("/healthz", api.health, methods=["GET"]),
    *openai.ROUTES,
    *web.ROUTES,
]


def create_app(settings: Settings, store: JobStore | None = None, *, workers: int | None = None,
               resolver=system_resolver) -> Starlette:
    """The ASGI app. ``workers`` overrides settings.workers (0: API only, for `tft worker` setups)."""
    from .openapi import document
    from .worker import EngineContext, WorkerPool

    prepare_data_dir(settings)
    store = store or open_store(settings)
    count = settings.workers if workers is None else workers
    metrics = Metrics(store)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        engine = EngineContext(settings)
        supervisor = Supervisor(restart_limit=settings.thread_restart_limit)
        pool = WorkerPool(supervisor, store, settings, engine, count)
        app.state.engine = engine
        app.state.supervisor = supervisor
        app.state.probe_limiter = anyio.CapacityLimiter(PROBES_AT_ONCE)
        pool.start()
        supervisor.watch(lambda: Dispatcher(store, settings, payload_for=lambda d: _event_payload(store, d),
                                            resolver=resolver))
        supervisor.watch(lambda: Janitor(store, settings))
        supervisor.start()
        log.info("serving with %d in-process worker(s); data in %s", count, settings.data_dir)
        try:
            yield
        finally:
            await run_in_threadpool(pool.stop)
            await run_in_threadpool(supervisor.stop_all, 5.0)
            await asyncio.sleep(0)

    app = Starlette(
        routes=ROUTES + ([Route("/metrics", metrics.endpoint, methods=["GET"])] if settings.metrics else []),
        lifespan=lifespan,
        exception_handlers={RequestInvalid: _handle, ServerError: _handle, EngineError: _handle,
                            HTTPException: _http_error, Exception: _handle},
    )
    app.state.settings = settings
    app.state.store = store
    app.state.limiter = FailureLimiter(settings.auth_failures_per_minute)
    app.state.capabilities = Capabilities.probe(settings)
    app.state.openapi = document(server_url=settings.public_url)
    app.state.metrics = metrics
    app.state.resolver = resolver
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _event_payload(store: JobStore, delivery) -> dict:
    from . import views

    job = store.get_job(delivery.job_id)
    return {
        "id": delivery.id,
        "event": delivery.event,
        "created_at": views.iso(delivery.created_at),
        "data": views.job_body(job, formats=api.EXPORT_FORMATS, now=time.time()) if job else {"job_id": delivery.job_id},
    }
