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

from anyio import to_thread
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.db.base import utcnow
from backend.door import service as door
from backend.door.quick import DoorCache, quick_scan
from backend.door.router import _answer_out, _policy
from backend.door.schemas import ScanIn
from backend.lanes.asgi import JSON_HEADERS, LoopLimiters, json_bearer, read_body, replay
from backend.observability.middleware import ROUTE_KEY
from backend.runtime import Runtime

PATH = "/door/scans"
SCAN_THREADS = 4


class DoorFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cache = DoorCache()  # this process's devices and tickets (hints, see DoorCache)
        self._threads = LoopLimiters(SCAN_THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        credential = json_bearer(scope)
        if runtime is None or credential is None or runtime.engine.dialect.name != "postgresql":
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive)
        payload = await self._answer(runtime, credential, body) if complete else None
        if payload is None:
            await self.app(scope, replay(body, complete, receive), send)
            return
        scope[ROUTE_KEY] = PATH
        headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
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
            limiter=self._threads.get(),
        )  # fmt: skip
        if answer is None:
            return None
        return _answer_out(answer).model_dump_json().encode()
