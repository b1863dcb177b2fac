"""The wiring: ``install_metrics(app, settings)`` is the API's one call (backend.app);
``serve_worker_metrics(settings)`` is ``fairtix worker``'s."""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response

from backend.config import Settings
from backend.observability.collector import StateCollector
from backend.observability.exposition import Access, render, wsgi_app
from backend.observability.middleware import RequestMetricsMiddleware
from backend.problems import Problem

__all__ = ["install_metrics", "serve_worker_metrics"]

log = logging.getLogger("fairtix.metrics")
PATH = "/metrics"


def install_metrics(app: FastAPI, settings: Settings) -> None:
    """Request ids and metrics on every request, and ``GET /metrics``. Call it last in
    create_app: the middleware added last is the outermost, so it counts, times and ids what
    the other middleware answer too."""
    app.add_middleware(RequestMetricsMiddleware)
    access = Access(settings)
    if not access.enabled:
        log.warning("GET /metrics is off: in production it needs FAIRTIX_METRICS_TOKEN")
    collector = StateCollector(
        lambda: getattr(app.state, "runtime", None),
        settings.outbox_max_attempts,
        settings.metrics_cache_seconds,
    )
    # One thread of its own: a scrape neither waits for a request thread in a busy on-sale nor
    # takes one, and scrapes arriving together queue here instead of querying side by side.
    limiter = anyio.CapacityLimiter(1)

    async def metrics(request: Request) -> Response:
        client = request.client.host if request.client else None
        status = access.check(request.headers.get("authorization"), client)
        if status == 404:
            raise Problem(404, "not-found", "Not Found", "Not Found")
        if status == 401:
            raise Problem(
                401,
                "metrics-unauthorized",
                "Metrics need the token",
                "Send Authorization: Bearer <FAIRTIX_METRICS_TOKEN>.",
            )
        if status == 403:
            raise Problem(
                403,
                "metrics-loopback-only",
                "Metrics are for loopback only",
                "Without FAIRTIX_METRICS_TOKEN, /metrics answers only clients on this host.",
            )
        body, content_type = await anyio.to_thread.run_sync(render, [collector], limiter=limiter)
        return Response(body, media_type=content_type)

    app.add_api_route(PATH, metrics, methods=["GET"], include_in_schema=False)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds are not news."""


def serve_worker_metrics(settings: Settings) -> WSGIServer | None:
    """Serves the worker's metrics on FAIRTIX_WORKER_METRICS_HOST:PORT in a daemon thread, or
    nothing if no port is set; returns the server (``shutdown()`` stops it)."""
    if settings.worker_metrics_port is None:
        return None
    access = Access(settings)
    if not access.enabled:
        log.warning("worker metrics are off: in production they need FAIRTIX_METRICS_TOKEN")
        return None
    server = make_server(
        settings.worker_metrics_host,
        settings.worker_metrics_port,
        wsgi_app(access),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="fairtix-metrics", daemon=True).start()
    log.info(
        "worker metrics served",
        extra={"host": settings.worker_metrics_host, "port": server.server_port},
    )
    return server
