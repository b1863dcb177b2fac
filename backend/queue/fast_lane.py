"""The waiting room's two hottest requests, answered before the framework's routing.

Every waiting fan polls ``GET /events/{id}/queue/me`` every few seconds, and an on-sale opens
with a wave of ``POST /events/{id}/queue``. When the answer is one or two Redis round trips
and no database (``WaitingRoom.status_on_lane`` / ``join_on_lane``), this pure ASGI layer
answers it directly: no route matching over every route of the API, no dependency solving, no
second validation of the body it built, and its Redis round trips awaited on the non-blocking
lane (backend/queue/redis_lane.py), so the process serves other requests while Redis answers.
Everything else (another path, the SQL store, a bearer to look up in the database, an admission
step due, any error) falls through to the ordinary routes in backend/queue/router.py, which
document these same requests in the OpenAPI and give the same answers, problem+json included.

It sits inside the request guard, so the rate limits and input checks hold here too.
"""

from __future__ import annotations

import re
from dataclasses import fields
from urllib.parse import parse_qs

from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.auth.errors import AuthError
from backend.auth.service import bearer_credential
from backend.catalog.errors import CatalogError
from backend.observability.middleware import ROUTE_KEY
from backend.queue.errors import QueueError
from backend.queue.redis_lane import LaneUnavailable
from backend.queue.schemas import QueueStatusOut
from backend.queue.service import Credentials, QueueStatus, WaitingRoom
from backend.schemas import MAX_ID

_STATUS = re.compile(r"/events/([1-9][0-9]{0,9})/queue/me")
_JOIN = re.compile(r"/events/([1-9][0-9]{0,9})/queue")
_HEADERS = [(b"content-type", b"application/json")]
# QueueStatus has QueueStatusOut's fields, names, types and order: serialized as it stands, the
# same bytes as the route's response model, without building and validating one.
_STATUS_JSON = TypeAdapter(QueueStatus)
assert list(QueueStatusOut.model_fields) == [f.name for f in fields(QueueStatus)]
# The routes' templates (backend/queue/router.py): metrics count these answers under them.
_TEMPLATES = {"GET": "/events/{event_id}/queue/me", "POST": "/events/{event_id}/queue"}


class QueueFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status = await self._inline(scope)
            if status is not None:
                payload = _STATUS_JSON.dump_json(status)
                scope[ROUTE_KEY] = _TEMPLATES[scope["method"]]
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*_HEADERS, (b"content-length", str(len(payload)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)

    async def _inline(self, scope: Scope) -> QueueStatus | None:
        """The answer, when it can be given here and now; None to take the ordinary route."""
        method = scope["method"]
        if method == "GET":
            match = _STATUS.fullmatch(scope["path"])
        elif method == "POST":
            match = _JOIN.fullmatch(scope["path"])
        else:
            return None
        if match is None:
            return None
        event_id = int(match.group(1))
        if event_id > MAX_ID:
            return None
        credentials = _credentials(scope)
        if credentials is None:
            return None
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is None:
            return None
        room: WaitingRoom = runtime.queue
        try:
            if method == "POST":
                return await room.join_on_lane(event_id, credentials)
            if credentials.bearer is not None:
                return None
            return await room.status_on_lane(event_id, credentials)
        except (QueueError, AuthError, CatalogError, LaneUnavailable):
            # The ordinary route asks again (on the blocking client, which also reloads a
            # script Redis lost) and answers errors as problem+json.
            return None


def _credentials(scope: Scope) -> Credentials | None:
    """The bearer and queue token, read as the ordinary route reads them; None if malformed."""
    bearer = queue_token = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            bearer = bearer_credential(value.decode("latin-1"))
            if bearer is None:
                return None
        elif name == b"x-queue-token":
            queue_token = value.decode("latin-1")
    if queue_token is None and scope.get("query_string"):
        values = parse_qs(scope["query_string"].decode("latin-1")).get("queue_token")
        if values:
            queue_token = values[0]
    if queue_token is not None and len(queue_token) > 300:
        return None
    if bearer is None and queue_token is None:
        return None
    return Credentials(bearer=bearer, queue_token=queue_token)
