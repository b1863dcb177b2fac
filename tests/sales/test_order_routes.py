"""POST /orders answers from what it wrote; the answer must be what GET /orders/{id} reads."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from backend.app import create_app
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.demo import FairtixClient
from backend.payments.errors import ProviderUnavailable
from backend.runtime import Runtime
from tests.conftest import TEST_SERVER
from tests.helpers import admitted_buyer
from tests.payments.orders import assert_problem, event_on_sale, held_order
from tests.queue.conftest import REDIS_URL, drop_prefix, redis_or_skip

pytestmark = pytest.mark.db


def test_a_new_order_is_answered_as_get_would_answer_it(client: TestClient) -> None:
    buyer, placed = held_order(client)
    assert placed["status"] == "held"
    assert [(t["from_status"], t["to_status"]) for t in placed["transitions"]] == [(None, "held")]
    assert placed["token_ids"] == [] and placed["refund"]["state"] == "none"
    assert buyer.order(placed["id"]) == placed


def _hold_and_checkout(
    client: TestClient, buyer: FairtixClient, event_id: int, tier_id: int, method: str
) -> Response:
    body = {"event_id": event_id, "tier_id": tier_id, "quantity": 1, "checkout": {"method": method}}
    return client.post("/orders", json=body, headers={"Authorization": f"Bearer {buyer.token}"})


def _without_checkout(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if k not in ("checkout", "checkout_problem")}


@pytest.fixture(params=["sql", "redis"])
def any_store_client(
    request: pytest.FixtureRequest, settings: Settings, chain: ChainClient
) -> Iterator[TestClient]:
    """The API with the waiting room on either store: the SQL store expires what a session
    holds when it writes, Redis leaves it be, and an answer must be built right on both."""
    if request.param == "sql":
        yield request.getfixturevalue("client")
        return
    redis_client = redis_or_skip()
    prefix = f"fairtix-orders-{secrets.token_hex(6)}"
    on_redis = settings.model_copy(
        update={"queue_store": "redis", "redis_url": REDIS_URL, "queue_redis_prefix": prefix}
    )
    try:
        with TestClient(create_app(on_redis, chain=chain), base_url=TEST_SERVER) as test_client:
            yield test_client
    finally:
        drop_prefix(redis_client, prefix)
        redis_client.close()


def test_a_hold_with_card_checkout_starts_paying_in_the_same_request(
    any_store_client: TestClient,
) -> None:
    client = any_store_client
    event_id, tier_id = event_on_sale(client)
    buyer = admitted_buyer(client, event_id)

    placed = buyer.place_order(event_id, tier_id, 2, checkout="card")

    intent = placed["checkout"]["payment_intent"]
    assert placed["checkout_problem"] is None
    assert placed["status"] == "awaiting_payment" == placed["checkout"]["status"]
    assert [(t["from_status"], t["to_status"]) for t in placed["transitions"]] == [
        (None, "held"),
        ("held", "awaiting_payment"),
    ]
    assert intent["amount"] == 5000 and intent["id"] == placed["payment_intent_id"]
    # The answer is the order as stored, and the usual checkout returns the same payment.
    assert _without_checkout(placed) == _without_checkout(buyer.order(placed["id"]))
    assert buyer.checkout_card(placed["id"]) == placed["checkout"]
    paid = buyer.pay_in_sandbox(intent, "4242424242424242")
    assert paid["status"] == "succeeded"


def test_a_hold_whose_payment_cannot_start_keeps_its_seats_and_says_why(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    event_id, tier_id = event_on_sale(client)
    buyer = admitted_buyer(client, event_id)

    def provider_down(*_args: Any, **_kwargs: Any) -> None:
        raise ProviderUnavailable("sandbox", "connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(runtime.cards, "create_payment", provider_down)
        response = _hold_and_checkout(client, buyer, event_id, tier_id, "card")

    assert response.status_code == 201, response.text
    placed = response.json()
    assert placed["status"] == "held" and placed["checkout"] is None
    problem = placed["checkout_problem"]
    assert problem["status"] == 503 and problem["type"].endswith("/payment-provider-unavailable")
    assert buyer.order(placed["id"])["status"] == "held"
    # With the provider back, the buyer pays the same order the usual way.
    assert buyer.checkout_card(placed["id"])["status"] == "awaiting_payment"


def test_a_hold_with_an_unknown_checkout_method_is_refused_and_holds_nothing(
    client: TestClient,
) -> None:
    event_id, tier_id = event_on_sale(client)
    buyer = admitted_buyer(client, event_id)

    response = _hold_and_checkout(client, buyer, event_id, tier_id, "iou")

    assert_problem(response, 422, "validation-failed")
    assert buyer.availability(event_id)["tiers"][0]["remaining"] == 3
