"""Prometheus metrics at /metrics: request latency by route, jobs, the queue, and this node's
claims (latency, queue wait, lease expiries). `tft worker` serves the same registry on
``TFT_METRICS_PORT``."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _QueueCollector:
    def __init__(self, store) -> None:
        self.store = store

    def collect(self):
        family = GaugeMetricFamily("tft_jobs", "Jobs by status", labels=["status"])
        try:
            depth = self.store.queue_depth()
        except Exception:
            depth = {}
        for status in ("pending", "processing", "done", "error"):
            family.add_metric([status], depth.get(status, 0))
        yield family
        stats = getattr(self.store, "stats", None)
        if stats is None:
            return
        s = stats.snapshot()
        yield SummaryMetricFamily("tft_claim_seconds", "Time one claim takes on this node (empty claims too)",
                                  count_value=s["claims"] + s["empty_claims"], sum_value=s["claim_seconds"])
        yield SummaryMetricFamily("tft_queue_wait_seconds", "Queued to claimed, first attempts claimed on this node",
                                  count_value=s["queue_waits"], sum_value=s["queue_wait_seconds"])
        yield CounterMetricFamily("tft_claims", "Jobs claimed on this node", value=s["claims"])
        yield CounterMetricFamily("tft_lease_expiries", "Jobs this node took over after their worker's lease ran out",
                                  value=s["lease_expiries"])


class Metrics:
    def __init__(self, store) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("tft_http_request_seconds", "HTTP request latency", ["method", "route", "status"],
                                  registry=self.registry,
                                  buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.jobs_created = Counter("tft_jobs_created_total", "Transcription jobs accepted", registry=self.registry)
        self.registry.register(_QueueCollector(store))

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): times each request under its route template."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = "unmatched"
            for candidate in scope.get("app").routes if scope.get("app") else ():
                if candidate.matches(scope)[0] == Match.FULL:
                    route = candidate.path
                    break
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).observe(time.perf_counter() - started)
