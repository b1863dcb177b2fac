"""HTTP routes for events: public reads and organizer creation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.auth import service as auth
from backend.catalog import service as catalog
from backend.catalog.errors import EventDeploymentFailed, EventNotFound, InvalidEvent
from backend.catalog.schemas import Availability, EventCreate, EventOut
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.problems import problem_responses, register_problem
from backend.schemas import MAX_ID, IdPath

router = APIRouter(tags=["catalog"], responses=problem_responses(401, 403, 404, 422, 502))

register_problem(EventNotFound, 404, "event-not-found", "Event not found")
register_problem(InvalidEvent, 422, "invalid-event", "Event definition is not valid")
register_problem(
    EventDeploymentFailed, 502, "event-deployment-failed", "Contract deployment failed"
)


@router.post("/admin/events", response_model=EventOut, status_code=201)
def create_event(spec: EventCreate, runtime: RuntimeDep, principal: PrincipalDep) -> EventOut:
    """Organizers: create an event with its tiers; this deploys the event's ticket contract."""
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        event = catalog.create_event(
            session, runtime.chain, runtime.blockstore, runtime.settings, principal.address, spec
        )
        return catalog.to_out(event)


@router.get("/events", response_model=list[EventOut])
def list_events(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[EventOut]:
    with transaction(runtime.sessions) as session:
        return [catalog.to_out(event) for event in catalog.list_events(session, limit, offset)]


@router.get("/events/{event_id}", response_model=EventOut)
def get_event(event_id: IdPath, runtime: RuntimeDep) -> EventOut:
    with transaction(runtime.sessions) as session:
        return catalog.to_out(catalog.get_event(session, event_id))


@router.get("/events/{event_id}/availability", response_model=Availability)
def availability(event_id: IdPath, runtime: RuntimeDep) -> Availability:
    """Tiers and seats remaining; a sold-out tier is a normal answer, not an error."""
    with transaction(runtime.sessions) as session:
        return catalog.availability(session, event_id)
