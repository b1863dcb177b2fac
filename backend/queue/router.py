"""HTTP routes for the waiting room."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from backend.catalog.service import get_event
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.problems import problem_responses, register_problem
from backend.queue import service as queue
from backend.queue.errors import InvalidQueueToken, NotAdmitted, NotInQueue, QueueClosed
from backend.queue.schemas import QueueStatusOut
from backend.schemas import IdPath

router = APIRouter(tags=["queue"], responses=problem_responses(401, 403, 404, 409, 422))

register_problem(QueueClosed, 409, "queue-closed", "Queue is closed")
register_problem(NotInQueue, 404, "not-in-queue", "Not in the queue")
register_problem(NotAdmitted, 403, "not-admitted", "Not admitted from the queue")
register_problem(InvalidQueueToken, 401, "invalid-queue-token", "Queue token rejected")


def _out(status: queue.QueueStatus) -> QueueStatusOut:
    return QueueStatusOut(
        event_id=status.event_id,
        wallet=status.wallet,
        state=status.state,
        position=status.position,
        eta_seconds=status.eta_seconds,
        admission_expires_at=status.admission_expires_at,
        sale_opens_at=status.sale_opens_at,
        token=status.token,
    )


@router.post("/events/{event_id}/queue", response_model=QueueStatusOut)
def join(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> QueueStatusOut:
    """Take a place in the event's queue; joining again returns the same place."""
    with transaction(runtime.sessions) as session:
        event = get_event(session, event_id)
        status = queue.join(session, event, principal.address, runtime.settings.signing_secret)
    return _out(status)


@router.get("/events/{event_id}/queue/me", response_model=QueueStatusOut)
def me(
    event_id: IdPath,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    x_queue_token: Annotated[str | None, Header()] = None,
) -> QueueStatusOut:
    """Your position, ETA and admission. Poll this (every few seconds) while you wait."""
    with transaction(runtime.sessions) as session:
        event = get_event(session, event_id)
        status = queue.status(
            session, event, principal.address, runtime.settings.signing_secret, token=x_queue_token
        )
    return _out(status)
