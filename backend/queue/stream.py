"""Server-sent events for the waiting room: a ``status`` event whenever what a client sees changes.

Each stream polls the store about once a second (through the same status call as GET .../me), so
it works on any replica with either store: a change made by another process shows up within one
interval, with no pub/sub to keep consistent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from backend.queue.errors import QueueError
from backend.queue.schemas import QueueStatusOut
from backend.queue.service import QueueStatus
from backend.queue.store import DONE, EXPIRED

HEARTBEAT_SECONDS = 15.0
# EventSource waits this long before reconnecting after the stream ends.
RETRY_MILLISECONDS = 2000


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def _visible(status: QueueStatus) -> tuple[object, ...]:
    # The token is re-signed on every read; it is not news by itself.
    return (
        status.state,
        status.position,
        status.eta_seconds,
        status.admission_expires_at,
        status.paused,
    )


async def status_events(
    request: Request,
    first: QueueStatus,
    read: Callable[[], QueueStatus],
    *,
    interval: float,
    max_seconds: float,
) -> AsyncIterator[str]:
    """Yield SSE frames until the place is done or expired, the client leaves, or max_seconds."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    status = first
    last_sent: tuple[object, ...] | None = None
    started = last_frame = time.monotonic()
    while True:
        if _visible(status) != last_sent:
            out = QueueStatusOut.model_validate(status, from_attributes=True)
            yield sse("status", out.model_dump_json())
            last_sent = _visible(status)
            last_frame = time.monotonic()
        elif time.monotonic() - last_frame >= HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            last_frame = time.monotonic()
        if status.state in (DONE, EXPIRED) or time.monotonic() - started >= max_seconds:
            return
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return
        try:
            status = await run_in_threadpool(read)
        except QueueError as exc:
            logging.getLogger("fairtix.queue").info(
                "queue stream ended by an error", extra={"error": str(exc)}
            )
            yield sse("error", json.dumps({"detail": str(exc)}))
            return
