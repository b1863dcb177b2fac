"""Plain functions the notification tests share."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.demo import FairtixClient
from backend.notify.models import WebhookDelivery
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from tests.helpers import insert_event


def call(api: FairtixClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request as ``api``'s wallet, returning the raw response (errors included)."""
    headers = dict(kwargs.pop("headers", {}))
    if api.token:
        headers["Authorization"] = f"Bearer {api.token}"
    return api.http.request(method, path, headers=headers, **kwargs)


def register(
    api: FairtixClient, url: str, events: tuple[str, ...] = ("order.fulfilled",), **extra: Any
) -> dict[str, Any]:
    response = call(api, "POST", "/admin/webhooks", json={"url": url, "events": events, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_event(runtime: Runtime, organizer: str) -> int:
    """An event row (no contract behind it) organized by ``organizer``."""
    with transaction(runtime.sessions) as session:
        event = insert_event(
            session, sale_opens_at=utcnow() - timedelta(hours=1), max_admitted=10, supply=10
        )
        event.organizer_address = organizer.lower()
        return event.id


def make_due(runtime: Runtime) -> None:
    """Skip the outbox's backoff: every pending message is due now."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.done_at.is_(None))
            .values(available_at=utcnow() - timedelta(seconds=1))
        )


def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
