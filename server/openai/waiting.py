"""Holding a `/v1` request open while its job runs, without busy polling and without
blocking the event loop, and noticing when the client goes away.

The store's ``wait_for_change`` blocks a thread until the job changes (or a few seconds
pass). Those threads come from their own limiter, so a hundred waiting requests never take
the threads that status polls and uploads need. A request that waits also listens on its
connection: when the client disconnects, the job is cancelled (credits refunded; the
worker stops at its next checkpoint).
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Awaitable, Callable

import anyio
from anyio.to_thread import run_sync
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..store import JobStore, JobVersion

log = logging.getLogger("tft.openai")

WAIT_SLICE_SECONDS = 5.0  # one thread wait; the loop around it notices cancellation in between
WAITING_THREADS = 512


def _limiter(request_or_app) -> anyio.CapacityLimiter:
    state = request_or_app.state
    limiter = getattr(state, "openai_wait_limiter", None)
    if limiter is None:  # created inside the event loop, on first use
        limiter = state.openai_wait_limiter = anyio.CapacityLimiter(WAITING_THREADS)
    return limiter


async def next_version(store: JobStore, job_id: str, since: JobVersion | None,
                       limiter: anyio.CapacityLimiter) -> JobVersion | None:
    """The job's version once it differs from ``since`` (or after one wait slice)."""
    return await run_sync(store.wait_for_change, job_id, since, WAIT_SLICE_SECONDS, abandon_on_cancel=True,
                          limiter=limiter)


async def until_finished(store: JobStore, job_id: str, limiter: anyio.CapacityLimiter) -> JobVersion | None:
    """Wait until the job is done, failed or cancelled (a cancel request counts)."""
    version = None
    while True:
        version = await next_version(store, job_id, version, limiter)
        if version is None or version.finished or version.cancel_requested:
            return version


async def disconnected(receive: Receive) -> None:
    """Returns when the client closes the connection (the body has been read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def first_of(work: Awaitable, receive: Receive):
    """Run ``work`` unless the client disconnects first: (result, False) or (None, True)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected(receive))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (task, gone):
            if not t.done():
                t.cancel()
    if task.done() and not task.cancelled():
        return task.result(), False
    return None, True


class EventStream(Response):
    """``text/event-stream`` from an async iterator of ready-made events; if the client
    disconnects before the iterator ends, ``on_disconnect`` runs (it cancels the job)."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], on_disconnect: Callable[[], Awaitable[None]], *,
                 headers: dict[str, str] | None = None) -> None:
        self.events = events
        self.on_disconnect = on_disconnect
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})

    async def _pump(self, send: Send) -> None:
        async for chunk in self.events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            _, gone = await first_of(self._pump(send), receive)
        except OSError:  # ASGI 2.4 servers report a closed connection on send
            gone = True
        if gone:
            await asyncio.shield(self.on_disconnect())


def limiter_for(request: Request) -> anyio.CapacityLimiter:
    return _limiter(request.app)
