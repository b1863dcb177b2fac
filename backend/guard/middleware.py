"""The request guard: a pure ASGI middleware in front of every route.

For each HTTP request, before routing or parsing: refuse NUL characters in the path and query,
count the request against its client's rate limits, and, when the request has a body, read it
within the route's byte limit and check its nesting and text before the route's parser sees
it. A request without a body (every poll of the waiting room) costs one dictionary lookup more
than it would without the guard, plus the client's rate-limit count.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.guard.body import (
    NUL_EXEMPT,
    check_depth,
    check_no_nul,
    check_path_and_query,
    limit_for,
)
from backend.guard.errors import BodyTooLarge, GuardError, RateLimited
from backend.guard.limits import RateLimits
from backend.problems import instance_of, problem_response


def guard_problem(exc: GuardError, instance: str) -> Response:
    """The problem+json answer for a refused request (and Retry-After for a limit)."""
    if isinstance(exc, RateLimited):
        response = problem_response(429, "rate-limited", "Too many requests", str(exc), instance)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, BodyTooLarge):
        return problem_response(413, "body-too-large", "Request body too large", str(exc), instance)
    return problem_response(400, "body-refused", "Request body refused", str(exc), instance)


class RequestGuard:
    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        try:
            check_path_and_query(path, scope.get("query_string", b""))
            client = scope.get("client")
            self.limits.check_client(client[0] if client else None, path)
            declared = _declared_length(scope)
            if declared is None:
                await self.app(scope, receive, send)
                return
            limit = limit_for(path)
            if declared > limit.max_bytes:
                raise BodyTooLarge(limit.max_bytes)
            body = await _read_body(receive, limit.max_bytes)
            if body:
                check_depth(body, limit.max_depth)
                if path not in NUL_EXEMPT:
                    check_no_nul(body)
        except GuardError as exc:
            await guard_problem(exc, instance_of(scope))(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def _declared_length(scope: Scope) -> int | None:
    """The body's declared length; -1 for a chunked body of unknown length; None for none."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value)  # the server has already refused a malformed one
            return length if length > 0 else None
        if name == b"transfer-encoding":
            return -1
    return None


async def _read_body(receive: Receive, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the route will see an empty body and the disconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the route the body already read, then the real channel (which
    still reports the client's disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
