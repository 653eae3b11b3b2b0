"""Errors on `/v1` in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``,
with the statuses OpenAI's clients map to their exceptions (400, 401, 404, 413, 429).

The exceptions are the server's own (``server.errors``, ``RequestInvalid``); only their
rendering differs from `/api/v1`, which keeps the contract's shapes.
"""

from __future__ import annotations

import functools
import logging
from typing import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.errors import EngineError

from ..errors import (InsufficientCredits, NotFound, PayloadTooLarge, RateLimited, RequestTimeout, ServerError,
                      Unauthorized)
from ..validation import RequestInvalid

log = logging.getLogger("tft.openai")


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(f"The model '{model}' does not exist on this server; GET /v1/models lists the models it has")
        self.model = model


def body(message: str, type_: str = "invalid_request_error", param: str | None = None,
         code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _param(loc: list) -> str | None:
    """``["body", "file"]`` -> ``file``."""
    rest = [str(p) for p in loc if p not in ("body", "query", "path")]
    return rest[0] if rest else None


def error_response(exc: Exception) -> Response:
    """Any exception a `/v1` endpoint raises, as OpenAI would answer it."""
    if isinstance(exc, RequestInvalid):
        first = exc.detail[0] if exc.detail else {"msg": "invalid request", "loc": []}
        message = "; ".join(f"{_param(d.get('loc', [])) or 'request'}: {d['msg']}" for d in exc.detail) or first["msg"]
        return JSONResponse(body(message, param=_param(first.get("loc", []))), status_code=400)
    if isinstance(exc, Unauthorized):
        return JSONResponse(body(str(exc), code="invalid_api_key"), status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="textfromtrack"'})
    if isinstance(exc, RateLimited):
        return JSONResponse(body(str(exc), "requests", code="rate_limit_exceeded"), status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, InsufficientCredits):
        # OpenAI answers an exhausted quota with 429 insufficient_quota; retrying cannot help.
        message = str(exc) + (f"; top up at {exc.top_up_url}" if exc.top_up_url else "")
        return JSONResponse(body(message, "insufficient_quota", code="insufficient_quota"), status_code=429,
                            headers={"x-should-retry": "false"})
    if isinstance(exc, ModelNotFound):
        return JSONResponse(body(str(exc), param="model", code="model_not_found"), status_code=404)
    if isinstance(exc, PayloadTooLarge):
        return JSONResponse(body(str(exc), param="file", code="file_too_large"), status_code=413,
                            headers={"Connection": "close"})
    if isinstance(exc, RequestTimeout):
        return JSONResponse(body(str(exc), code="request_timeout"), status_code=408, headers={"Connection": "close"})
    if isinstance(exc, ServerError):
        return JSONResponse(body(str(exc), code=exc.code), status_code=exc.status)
    if isinstance(exc, EngineError):
        return JSONResponse(body(str(exc), code=exc.code), status_code=400)
    if isinstance(exc, HTTPException):
        return http_error(exc)
    log.error("unhandled error on /v1", exc_info=exc)
    return JSONResponse(body("The server had an error while processing your request.", "server_error",
                             code="internal_error"), status_code=500)


def http_error(exc: HTTPException) -> Response:
    """Router-level errors (unknown path, wrong method) under `/v1`."""
    return JSONResponse(body(str(exc.detail), code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)),
                        status_code=exc.status_code, headers=exc.headers)


def openai_errors(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a `/v1` endpoint so whatever it raises is answered in OpenAI's shape."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            return error_response(exc)

    return wrapped
