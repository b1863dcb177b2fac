"""Factories the payment route tests share: a held order without deploying a contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from backend.db.engine import transaction
from backend.demo import FairtixClient
from backend.runtime import Runtime
from tests.helpers import admitted_buyer, insert_event


def assert_problem(response: Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    return body


def event_on_sale(client: TestClient) -> tuple[int, int]:
    """An event on sale with three 25.00 EUR seats: its id and its tier's. The row is written
    directly: these tests are about orders and payments, not about deploying its contract."""
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with transaction(runtime.sessions) as session:
        event = insert_event(
            session,
            sale_opens_at=datetime.now(UTC) - timedelta(minutes=1),
            max_admitted=100,
            supply=3,
            price_cents=2500,
        )
        return event.id, event.tiers[0].id


def held_order(client: TestClient) -> tuple[FairtixClient, dict[str, Any]]:
    """An admitted buyer holding one of three 25.00 EUR seats."""
    event_id, tier_id = event_on_sale(client)
    buyer = admitted_buyer(client, event_id)
    return buyer, buyer.place_order(event_id, tier_id, 1)


def checkout_as(client: TestClient, buyer: FairtixClient, order_id: int) -> Response:
    return client.post(
        f"/orders/{order_id}/checkout",
        json={"method": "card"},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
