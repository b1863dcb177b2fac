"""A gate's live scan, answered before the framework's routing.

At doors-open every gate scans a fan every second or two; with the scan itself down to two
statements (backend.door.quick), most of what was left of a scan's CPU was the framework's: route
matching over every route of the API, dependency solving, the response model's validation and
serialization. This pure ASGI layer takes ``POST /door/scans`` with a JSON body on PostgreSQL,
validates the body with the route's own model, and answers what ``quick_scan`` decides.
Everything else (SQLite, a body or credential the route would refuse, a scan quick_scan leaves
to the general path) goes on to the ordinary route with the body as it came, which documents the
request in the OpenAPI and answers it as before, problem+json included.

It sits inside the request guard, so the door's rate limit and the body checks hold here too.
"""

from __future__ import annotations

import asyncio

from anyio import CapacityLimiter, to_thread
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.auth.service import bearer_credential
from backend.db.base import utcnow
from backend.door import service as door
from backend.door.quick import DoorCache, quick_scan
from backend.door.router import _answer_out, _policy
from backend.door.schemas import ScanIn
from backend.observability.middleware import ROUTE_KEY
from backend.runtime import Runtime

PATH = "/door/scans"
SCAN_THREADS = 4
_HEADERS = [(b"content-type", b"application/json")]


class DoorFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cache = DoorCache()  # this process's devices and tickets (hints, see DoorCache)
        self._limiters: dict[int, CapacityLimiter] = {}

    def _limiter(self) -> CapacityLimiter:
        """A few threads for the scans, per event loop: each holds the GIL for well under a
        millisecond between round trips, and dozens of them taking turns at the GIL (the
        request pool's size) stretch the slowest answers rather than speed any up; the rest
        wait their turn in order."""
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.get(loop)
        if limiter is None:
            if len(self._limiters) >= 16:  # loops of apps started and stopped (tests)
                self._limiters.clear()
            limiter = self._limiters[loop] = CapacityLimiter(SCAN_THREADS)
        return limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        credential = _credential(scope)
        if runtime is None or credential is None or runtime.engine.dialect.name != "postgresql":
            await self.app(scope, receive, send)
            return
        body, complete = await _read(receive)
        payload = await self._answer(runtime, credential, body) if complete else None
        if payload is None:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        scope[ROUTE_KEY] = PATH
        headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, runtime: Runtime, credential: str, body: bytes) -> bytes | None:
        try:
            scan = ScanIn.model_validate_json(body)
        except ValidationError:
            return None  # the route answers 422 with the details
        request = door.ScanRequest(scan.code, scan.gate, scan.scan_id, scan.scanned_at)
        policy = _policy(runtime)
        now = utcnow()
        if not door.in_window(policy, request.scanned_at, now):
            return None
        answer = await to_thread.run_sync(
            quick_scan, runtime.engine, policy, credential, request, now, self.cache,
            limiter=self._limiter(),
        )  # fmt: skip
        if answer is None:
            return None
        return _answer_out(answer).model_dump_json().encode()


def _credential(scope: Scope) -> str | None:
    """The bearer credential of a JSON request, or None to leave the request to the route."""
    credential = json = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            credential = bearer_credential(value.decode("latin-1"))
            if credential is None:
                return None
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
    return credential if json else None


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The body (the guard has read it already and hands it over in one message); False if the
    client went away before it was whole."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """The route's receive: the body already read, then the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if complete:
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}
        return await receive()

    return replay
