"""HTTP routes for the waiting room: join, status, live stream, seed, organizer controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.auth import service as auth
from backend.catalog.service import get_event, managed_event
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep, rate_limits
from backend.guard.limits import StreamHold
from backend.problems import problem_responses, register_problem
from backend.queue import shuffle
from backend.queue.errors import (
    ForeignQueueToken,
    InvalidQueueToken,
    NotAdmitted,
    NotEventOrganizer,
    NotInQueue,
    QueueClosed,
    QueueNotOpen,
    QueueTokenExpired,
    QueueUnavailable,
    ShuffleNotDone,
)
from backend.queue.schemas import (
    ControlsOut,
    QueueAdminOut,
    QueueStatusOut,
    RatesIn,
    ShuffleOut,
)
from backend.queue.service import Credentials, QueueStatus
from backend.queue.store import ControlChanges, Controls, QueueConfig
from backend.queue.stream import status_events
from backend.runtime import Runtime
from backend.schemas import IdPath

router = APIRouter(tags=["queue"], responses=problem_responses(401, 403, 404, 409, 422, 503))

register_problem(QueueNotOpen, 409, "queue-not-open", "Queue is not open yet")
register_problem(QueueClosed, 409, "queue-closed", "Queue is closed")
register_problem(NotInQueue, 404, "not-in-queue", "Not in the queue")
register_problem(NotAdmitted, 403, "not-admitted", "Not admitted from the queue")
register_problem(InvalidQueueToken, 401, "invalid-queue-token", "Queue token rejected")
register_problem(QueueTokenExpired, 401, "queue-token-expired", "Queue token expired")
register_problem(ForeignQueueToken, 403, "queue-token-foreign", "Queue token is someone else's")
register_problem(NotEventOrganizer, 403, "not-event-organizer", "Not this event's organizer")
register_problem(QueueUnavailable, 503, "queue-unavailable", "Waiting room unavailable")
register_problem(ShuffleNotDone, 409, "shuffle-not-done", "Pre-sale order not drawn yet")

_bearer = HTTPBearer(auto_error=False, description="Session token from POST /auth/verify")


async def queue_credentials(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_queue_token: Annotated[str | None, Header()] = None,
    queue_token: Annotated[
        str | None, Query(max_length=300, description="For EventSource, which can't set headers")
    ] = None,
) -> Credentials:
    """The bearer session and/or queue token presented; checked by the waiting room."""
    return Credentials(
        bearer=None if credentials is None else credentials.credentials,
        queue_token=x_queue_token or queue_token,
    )


CredentialsDep = Annotated[Credentials, Depends(queue_credentials)]


def _out(status: QueueStatus) -> QueueStatusOut:
    return QueueStatusOut.model_validate(status, from_attributes=True)


def _json(status: QueueStatus) -> Response:
    # Built once here; returning a Response spares FastAPI a second validation of the model.
    return Response(_out(status).model_dump_json(), media_type="application/json")


@router.post("/events/{event_id}/queue", response_model=QueueStatusOut)
async def join(event_id: IdPath, runtime: RuntimeDep, credentials: CredentialsDep) -> Response:
    """Take a place in the event's queue; joining again returns the same place."""
    status = runtime.queue.join_inline(event_id, credentials)
    if status is None:
        status = await run_in_threadpool(runtime.queue.join, event_id, credentials)
    return _json(status)


@router.get("/events/{event_id}/queue/me", response_model=QueueStatusOut)
async def me(event_id: IdPath, runtime: RuntimeDep, credentials: CredentialsDep) -> Response:
    """Your position, ETA and admission. Poll this every few seconds, or use the stream."""
    room = runtime.queue

    def read(advance_first: bool = True) -> QueueStatus:
        wallet = room.identify(event_id, credentials)
        return room.status(event_id, wallet, advance_first=advance_first)

    # Polls are the hot path: with Redis and a queue token they never wait for a worker thread.
    if room.can_answer_inline(event_id, credentials):
        return _json(read(advance_first=False))
    return _json(await run_in_threadpool(read))


@router.get(
    "/events/{event_id}/queue/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def stream(
    event_id: IdPath, request: Request, runtime: RuntimeDep, credentials: CredentialsDep
) -> StreamingResponse:
    """Server-sent events: a ``status`` event (the body of GET .../queue/me) whenever position,
    ETA or admission change. Streaming counts as being present, like polling."""
    room = runtime.queue
    wallet = await run_in_threadpool(room.identify, event_id, credentials)
    # The first status is read before the response starts, so errors are problem+json, not SSE.
    first = await run_in_threadpool(room.status, event_id, wallet)
    settings = runtime.settings
    # Each open stream holds a slot of its wallet and of its client address until it ends: a
    # few tabs are fine, hundreds of streams on one token are not (they cost every fan).
    client = request.client.host if request.client else None
    hold = rate_limits(request).hold_stream(client, wallet)
    events = status_events(
        request,
        first,
        lambda: room.status(event_id, wallet),
        interval=settings.queue_stream_interval_seconds,
        max_seconds=settings.queue_stream_max_seconds,
    )
    return StreamingResponse(
        _holding(hold, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _holding(hold: StreamHold, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream's frames, with its slots released however the stream ends."""
    try:
        async for frame in events:
            yield frame
    finally:
        hold.release()


@router.get("/events/{event_id}/queue/seed", response_model=ShuffleOut)
def seed(event_id: IdPath, runtime: RuntimeDep) -> ShuffleOut:
    """The pre-sale shuffle, for anyone to audit: the seed (drawn when the sale started), the
    algorithm, and the resulting order. Recompute: sort the wallets by
    HMAC-SHA256(key=bytes.fromhex(seed), msg=lowercase wallet), ties by wallet."""
    with transaction(runtime.sessions) as session:
        get_event(session, event_id)
    record = runtime.queue.shuffle_record(event_id)
    if record is None:
        raise ShuffleNotDone(event_id)
    return ShuffleOut(
        event_id=event_id,
        algorithm=shuffle.ALGORITHM,
        seed=record.seed,
        shuffled_at=record.shuffled_at,
        participants=len(record.order),
        order_sha256=shuffle.order_digest(record.order),
        order=record.order,
    )


# -- organizer controls -------------------------------------------------------------------------


def _require_organizer(runtime: Runtime, event_id: int, principal: auth.Principal) -> None:
    with transaction(runtime.sessions) as session:
        managed_event(session, event_id, principal)


def _controls_out(controls: Controls, config: QueueConfig) -> ControlsOut:
    return ControlsOut(
        paused=controls.paused,
        closed=controls.closed,
        admissions_per_minute=controls.rate(config),
        max_admitted=controls.cap(config),
    )


def _change(
    runtime: Runtime, event_id: int, principal: auth.Principal, changes: ControlChanges
) -> ControlsOut:
    _require_organizer(runtime, event_id, principal)
    controls = runtime.queue.update_controls(event_id, changes)
    return _controls_out(controls, runtime.queue.config(event_id))


@router.get("/admin/events/{event_id}/queue", response_model=QueueAdminOut)
def admin_view(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> QueueAdminOut:
    """Organizer's view: waiting, admitted, measured outflow, abandonment, controls."""
    _require_organizer(runtime, event_id, principal)
    room = runtime.queue
    config, stats, per_minute = room.admin_stats(event_id)
    record = room.shuffle_record(event_id)
    turns = stats.admitted + stats.done + stats.expired + stats.away
    return QueueAdminOut(
        event_id=event_id,
        waiting=stats.waiting,
        presale_unshuffled=stats.presale_unshuffled,
        away=stats.away,
        admitted=stats.admitted,
        done=stats.done,
        expired=stats.expired,
        measured_outflow_per_minute=per_minute,
        abandonment_rate=round((stats.expired + stats.away) / turns, 4) if turns else None,
        controls=_controls_out(stats.controls, config),
        shuffled_at=None if record is None else record.shuffled_at,
    )


@router.post("/admin/events/{event_id}/queue/pause", response_model=ControlsOut)
def pause(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> ControlsOut:
    """Stop admitting; everyone keeps their place."""
    return _change(runtime, event_id, principal, ControlChanges(paused=True))


@router.post("/admin/events/{event_id}/queue/resume", response_model=ControlsOut)
def resume(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> ControlsOut:
    return _change(runtime, event_id, principal, ControlChanges(paused=False))


@router.post("/admin/events/{event_id}/queue/close", response_model=ControlsOut)
def close(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> ControlsOut:
    """Take no new places. Those already in line keep them and are still admitted."""
    return _change(runtime, event_id, principal, ControlChanges(closed=True))


@router.post("/admin/events/{event_id}/queue/reopen", response_model=ControlsOut)
def reopen(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> ControlsOut:
    return _change(runtime, event_id, principal, ControlChanges(closed=False))


@router.post("/admin/events/{event_id}/queue/rates", response_model=ControlsOut)
def rates(
    event_id: IdPath, body: RatesIn, runtime: RuntimeDep, principal: PrincipalDep
) -> ControlsOut:
    """Change admissions per minute and/or the cap on admitted wallets, live, on every replica."""
    changes = ControlChanges(
        admissions_per_minute=body.admissions_per_minute, max_admitted=body.max_admitted
    )
    return _change(runtime, event_id, principal, changes)
