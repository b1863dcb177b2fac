"""Body, bearer and thread helpers of the fast lanes (backend/door/fast_lane.py,
backend/resale/fast_lane.py)."""

from __future__ import annotations

import asyncio

from anyio import CapacityLimiter
from starlette.types import Message, Receive, Scope

from backend.auth.service import bearer_credential

# A lane's answer to the client, as the routes answer: JSON with its length.
JSON_HEADERS = [(b"content-type", b"application/json")]


def json_bearer(scope: Scope) -> str | None:
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


async def read_body(receive: Receive) -> tuple[bytes, bool]:
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


def replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """The route's receive: the body already read, then the real channel."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if complete:
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}
        return await receive()

    return replayed


class LoopLimiters:
    """A few threads for a lane's synchronous work, per event loop: each request holds the GIL
    for well under a millisecond between round trips, and dozens of them taking turns at the
    GIL (the request pool's size) stretch the slowest answers rather than speed any up; the
    rest wait their turn in order."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._limiters: dict[int, CapacityLimiter] = {}

    def get(self) -> CapacityLimiter:
        loop = id(asyncio.get_running_loop())
        limiter = self._limiters.get(loop)
        if limiter is None:
            if len(self._limiters) >= 16:  # loops of apps started and stopped (tests)
                self._limiters.clear()
            limiter = self._limiters[loop] = CapacityLimiter(self.threads)
        return limiter
