"""HTTP routes: organizers' webhook endpoints and a buyer's contact e-mail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.auth import service as auth
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.notify import service as notify
from backend.notify.errors import (
    ContactNotFound,
    InvalidContact,
    InvalidWebhook,
    WebhookEventForbidden,
    WebhookNotFound,
)
from backend.notify.models import WebhookDelivery, WebhookEndpoint
from backend.notify.schemas import (
    ContactIn,
    ContactOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from backend.problems import problem_responses, register_problem
from backend.schemas import MAX_ID, IdPath

router = APIRouter(tags=["notifications"], responses=problem_responses(401, 403, 404, 422))

register_problem(WebhookNotFound, 404, "webhook-not-found", "Webhook endpoint not found")
register_problem(InvalidWebhook, 422, "invalid-webhook", "Webhook endpoint is not valid")
register_problem(WebhookEventForbidden, 403, "not-event-organizer", "Not this event's organizer")
register_problem(InvalidContact, 422, "invalid-contact", "Contact e-mail is not valid")
register_problem(ContactNotFound, 404, "contact-not-found", "No contact e-mail on file")


def _out(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut.model_validate(endpoint, from_attributes=True)


def _delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


@router.post("/admin/webhooks", response_model=WebhookCreated, status_code=201)
def create_webhook(
    spec: WebhookCreate, runtime: RuntimeDep, principal: PrincipalDep
) -> WebhookCreated:
    """Organizers: receive signed notifications at a URL. The secret is shown only here."""
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        endpoint, secret = notify.create_endpoint(session, runtime.settings, principal, spec)
        return WebhookCreated(**_out(endpoint).model_dump(), secret=secret)


@router.get("/admin/webhooks", response_model=list[WebhookOut])
def list_webhooks(runtime: RuntimeDep, principal: PrincipalDep) -> list[WebhookOut]:
    """Your own endpoints."""
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        return [_out(e) for e in notify.list_endpoints(session, principal.address)]


@router.get("/admin/webhooks/{endpoint_id}", response_model=WebhookOut)
def get_webhook(endpoint_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> WebhookOut:
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        return _out(notify.owned_endpoint(session, principal.address, endpoint_id))


@router.delete("/admin/webhooks/{endpoint_id}", status_code=204)
def delete_webhook(endpoint_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """Stop notifications to this endpoint; queued deliveries are dropped."""
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        notify.delete_endpoint(session, principal.address, endpoint_id)
    return Response(status_code=204)


@router.get("/admin/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    endpoint_id: IdPath,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[DeliveryOut]:
    """The endpoint's delivery log, newest first: status, attempts, last HTTP status."""
    auth.require(principal, auth.Role.ORGANIZER)
    with transaction(runtime.sessions) as session:
        rows = notify.deliveries_of(session, principal.address, endpoint_id, limit, offset)
        return [_delivery_out(d) for d in rows]


@router.put("/me/contact", response_model=ContactOut)
def put_contact(body: ContactIn, runtime: RuntimeDep, principal: PrincipalDep) -> ContactOut:
    """Give an e-mail address for order receipts. Stored off chain, never on IPFS."""
    with transaction(runtime.sessions) as session:
        contact = notify.set_contact(session, principal.address, body.email)
        return ContactOut(address=contact.address, email=contact.email)


@router.get("/me/contact", response_model=ContactOut)
def get_contact(runtime: RuntimeDep, principal: PrincipalDep) -> ContactOut:
    with transaction(runtime.sessions) as session:
        contact = notify.get_contact(session, principal.address)
        return ContactOut(address=contact.address, email=contact.email)


@router.delete("/me/contact", status_code=204)
def delete_contact(runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """Forget the e-mail address; later orders get no receipt."""
    with transaction(runtime.sessions) as session:
        notify.delete_contact(session, principal.address)
    return Response(status_code=204)
