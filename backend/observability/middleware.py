"""One pure ASGI middleware for every HTTP request: its id, and its count and latency.

Pure ASGI rather than BaseHTTPMiddleware, which runs the app in a task of its own and streams the
answer through a memory channel: too dear for the waiting room's polls. Per request this costs a
scan of the headers, an id, a header appended, two dictionary lookups and one counter and one
histogram update (see docs/operations-metrics.md for the figure measured).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.observability import instruments, requestid

UNMATCHED = "unmatched"  # every path no route knows: ids in raw paths never become labels
# Set by a layer that answers before routing (the waiting room's fast lane) to the template of
# the route it answers for, so its answers count under that route and not as unmatched.
ROUTE_KEY = "fairtix.route"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, route, status) -> the counter's and the histogram's children: labels() checks
        # and locks on every call, a dictionary hit does not.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        raw = None
        for name, value in scope["headers"]:
            if name == requestid.HEADER_KEY:
                raw = value
                break
        request_id = requestid.accept(raw)
        # In the scope for the problem handlers (the 500 one runs outside this middleware) and
        # in the context for logs and outbox rows. Not reset afterwards: each request runs in a
        # task of its own, and the 500 handler's log line, written after this returns, needs it.
        scope[requestid.SCOPE_KEY] = request_id
        requestid.use(request_id)
        id_header = (requestid.HEADER_KEY, request_id.encode("ascii"))
        status = 500  # what the client gets if the app raises before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get(ROUTE_KEY) or UNMATCHED
            method = scope["method"]
            key = (method if method in METHODS else "other", template, status)
            series = self._series.get(key)
            if series is None:
                labels = (key[0], key[1], str(status))
                series = (
                    instruments.HTTP_REQUESTS.labels(*labels),
                    instruments.HTTP_DURATION.labels(*labels),
                )
                self._series[key] = series
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
