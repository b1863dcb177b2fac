"""The API configured for PayPal: checkout, buyer capture, the webhook route, refunds, outages.

PayPal itself is a local server that answers as its API does (tests/payments/paypal_fake.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr
from sqlalchemy.orm import Session

from backend import outbox
from backend.config import Settings
from backend.demo import FairtixClient
from backend.outbox import OutboxMessage
from backend.payments.models import ProcessedWebhook
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.worker import Worker
from tests.helpers import count, drain, signed_in
from tests.payments.orders import assert_problem, checkout_as, held_order
from tests.payments.paypal_fake import FakePayPal, running_fake_paypal

pytestmark = pytest.mark.db

CLIENT_ID = "AfairtixClientId"
CLIENT_SECRET = "EfairtixClientSecret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"


@pytest.fixture
def fake() -> Iterator[FakePayPal]:
    with running_fake_paypal(CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID) as (server, _base):
        yield server


@pytest.fixture
def settings(settings: Settings, fake: FakePayPal) -> Settings:
    settings.payments_provider = "paypal"
    settings.paypal_client_id = CLIENT_ID
    settings.paypal_client_secret = SecretStr(CLIENT_SECRET)
    settings.paypal_webhook_id = WEBHOOK_ID
    settings.paypal_api_base = fake.base
    return settings


def checkout(client: TestClient) -> tuple[FairtixClient, dict[str, Any]]:
    """A held order with PayPal checkout started."""
    buyer, order = held_order(client)
    result = buyer.checkout_card(order["id"])
    return buyer, {**order, "paypal_id": result["payment_intent"]["id"], "checkout": result}


def deliver(client: TestClient, fake: FakePayPal, event: dict[str, Any], **sign: Any) -> Response:
    body = json.dumps(event)
    return client.post(
        "/payments/paypal/webhook", content=body, headers=fake.signed_headers(event, **sign)
    )


def approved(fake: FakePayPal, paypal_id: str) -> dict[str, Any]:
    fake.approve(paypal_id)
    return fake.event("CHECKOUT.ORDER.APPROVED", fake.view(fake.orders[paypal_id]))


def capture_as_buyer(client: TestClient, buyer: FairtixClient, order_id: int) -> Response:
    return client.post(
        f"/payments/paypal/orders/{order_id}/capture",
        headers={"Authorization": f"Bearer {buyer.token}"},
    )


def test_checkout_returns_the_paypal_approve_url(client: TestClient, fake: FakePayPal) -> None:
    buyer, order = checkout(client)
    intent = order["checkout"]["payment_intent"]
    assert intent["provider"] == "paypal" and intent["client_secret"] is None
    assert intent["approve_url"].endswith(f"token={order['paypal_id']}")
    assert (intent["amount"], intent["currency"]) == (2500, "eur")
    assert buyer.order(order["id"])["status"] == "awaiting_payment"
    again = buyer.checkout_card(order["id"])
    assert again["payment_intent"]["id"] == order["paypal_id"] and len(fake.orders) == 1


def test_approved_webhook_captures_and_pays_the_order(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    buyer, order = checkout(client)
    response = deliver(client, fake, approved(fake, order["paypal_id"]))
    assert response.status_code == 200 and response.json()["outcome"] == "processed"
    assert buyer.order(order["id"])["status"] == "paid"
    assert len(fake.captures) == 1
    # PayPal then reports the capture it made; the order is paid once, one mint queued.
    completed = fake.event("PAYMENT.CAPTURE.COMPLETED", fake.capture_resource(order["paypal_id"]))
    assert deliver(client, fake, completed).json()["outcome"] == "processed"
    transitions = [t["to_status"] for t in buyer.order(order["id"])["transitions"]]
    assert transitions.count("paid") == 1
    assert count(runtime, OutboxMessage) == 1


def test_a_dispute_is_recorded_on_the_order_and_a_decided_one_stays_decided(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    buyer, order = checkout(client)
    assert deliver(client, fake, approved(fake, order["paypal_id"])).json()["outcome"] == (
        "processed"
    )
    [capture_id] = fake.captures

    def dispute(event_type: str, status: str, outcome: str | None = None) -> str:
        resource = fake.dispute_resource(capture_id, status, outcome)
        response = deliver(client, fake, fake.event(event_type, resource))
        assert response.status_code == 200
        return str(response.json()["outcome"])

    assert dispute("CUSTOMER.DISPUTE.CREATED", "WAITING_FOR_SELLER_RESPONSE") == "processed"
    seen = buyer.order(order["id"])
    assert seen["status"] == "paid"  # the tickets stand; the money's fate is PayPal's call
    assert seen["dispute"]["status"] == "waiting_for_seller_response"
    assert seen["dispute"]["reason"] == "merchandise_or_service_not_received"
    assert dispute("CUSTOMER.DISPUTE.RESOLVED", "RESOLVED", "RESOLVED_BUYER_FAVOUR") == "processed"
    assert buyer.order(order["id"])["dispute"]["status"] == "lost"
    # A late update does not reopen a decided dispute.
    assert dispute("CUSTOMER.DISPUTE.UPDATED", "UNDER_REVIEW") == "ignored"
    assert buyer.order(order["id"])["dispute"]["status"] == "lost"


def test_a_dispute_of_a_capture_paypal_does_not_know_changes_nothing(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = checkout(client)
    deliver(client, fake, approved(fake, order["paypal_id"]))
    resource = fake.dispute_resource("0UNKNOWNCAPTURE01", "OPEN")
    response = deliver(client, fake, fake.event("CUSTOMER.DISPUTE.CREATED", resource))
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert buyer.order(order["id"])["dispute"] is None


def test_a_dispute_naming_no_capture_is_400(client: TestClient, fake: FakePayPal) -> None:
    resource = fake.dispute_resource("x", "OPEN")
    resource["disputed_transactions"] = []
    response = deliver(client, fake, fake.event("CUSTOMER.DISPUTE.CREATED", resource))
    assert_problem(response, 400, "webhook-rejected")


def test_capture_completed_webhook_alone_pays_the_order(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = checkout(client)
    fake.approve(order["paypal_id"])
    fake.capture_order(order["paypal_id"])  # captured by a path whose answer we never saw
    completed = fake.event("PAYMENT.CAPTURE.COMPLETED", fake.capture_resource(order["paypal_id"]))
    assert deliver(client, fake, completed).status_code == 200
    assert buyer.order(order["id"])["status"] == "paid"


def test_replayed_webhook_changes_nothing(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    _buyer, order = checkout(client)
    event = approved(fake, order["paypal_id"])
    assert deliver(client, fake, event).json()["outcome"] == "processed"
    capture_calls = len([r for r in fake.requests if r[1].endswith("/capture")])
    replay = deliver(client, fake, event)  # a fresh, valid transmission of the same event
    assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
    assert len([r for r in fake.requests if r[1].endswith("/capture")]) == capture_calls
    assert count(runtime, ProcessedWebhook) == 1
    assert count(runtime, OutboxMessage) == 1


def test_forged_webhook_is_400_and_changes_nothing(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    buyer, order = checkout(client)
    fake.approve(order["paypal_id"])
    fake.capture_order(order["paypal_id"])
    event = fake.event("PAYMENT.CAPTURE.COMPLETED", fake.capture_resource(order["paypal_id"]))
    headers = fake.signed_headers(event)
    event["id"] = "WH-FORGED"
    response = client.post("/payments/paypal/webhook", content=json.dumps(event), headers=headers)
    assert_problem(response, 400, "webhook-rejected")
    unsigned = client.post("/payments/paypal/webhook", content=json.dumps(event))
    assert_problem(unsigned, 400, "webhook-rejected")
    assert buyer.order(order["id"])["status"] == "awaiting_payment"
    assert count(runtime, ProcessedWebhook) == 0
    assert count(runtime, OutboxMessage) == 0


def test_stale_webhook_is_400_and_changes_nothing(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    buyer, order = checkout(client)
    event = approved(fake, order["paypal_id"])
    response = deliver(client, fake, event, sent_at=datetime.now(UTC) - timedelta(hours=2))
    assert_problem(response, 400, "webhook-rejected")
    assert buyer.order(order["id"])["status"] == "awaiting_payment"
    assert fake.captures == {} and count(runtime, ProcessedWebhook) == 0


def test_denied_capture_webhook_fails_the_order_and_releases_the_hold(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = checkout(client)
    resource = {
        "id": "7TK53561YB803214S",
        "status": "DECLINED",
        "amount": {"currency_code": "EUR", "value": "25.00"},
        "supplementary_data": {"related_ids": {"order_id": order["paypal_id"]}},
    }
    response = deliver(client, fake, fake.event("PAYMENT.CAPTURE.DENIED", resource))
    assert response.json()["outcome"] == "processed"
    final = buyer.order(order["id"])
    assert final["status"] == "failed"
    assert buyer.availability(order["event_id"])["tiers"][0]["remaining"] == 3


def test_buyer_capture_before_approval_is_409_and_after_it_pays(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = checkout(client)
    assert_problem(capture_as_buyer(client, buyer, order["id"]), 409, "payment-not-approved")
    fake.approve(order["paypal_id"])
    paid = capture_as_buyer(client, buyer, order["id"])
    assert paid.status_code == 200, paid.text
    assert paid.json() == {"order_id": order["id"], "status": "paid", "payment_status": "COMPLETED"}
    again = capture_as_buyer(client, buyer, order["id"])
    assert again.json()["status"] == "paid" and len(fake.captures) == 1


def test_buyer_capture_declined_is_402_then_another_approval_pays(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = checkout(client)
    fake.approve(order["paypal_id"])
    fake.decline_next(order["paypal_id"])
    assert_problem(capture_as_buyer(client, buyer, order["id"]), 402, "payment-declined")
    assert buyer.order(order["id"])["status"] == "failed"  # the hold is released
    fake.approve(order["paypal_id"])
    assert capture_as_buyer(client, buyer, order["id"]).json()["status"] == "paid"


def test_capture_of_someone_elses_order_is_404(client: TestClient, fake: FakePayPal) -> None:
    _buyer, order = checkout(client)
    stranger = signed_in(client)
    assert_problem(capture_as_buyer(client, stranger, order["id"]), 404, "order-not-found")
    assert fake.captures == {}


def test_refund_goes_back_through_paypal_once(
    client: TestClient, fake: FakePayPal, runtime: Runtime, worker: Worker
) -> None:
    buyer, order = checkout(client)
    fake.approve(order["paypal_id"])
    assert capture_as_buyer(client, buyer, order["id"]).status_code == 200
    with Session(runtime.engine) as session, session.begin():
        # What cancelling the event does for a card buyer: queue the refund.
        outbox.enqueue(session, sales.REFUND_ORDER, {"order_id": order["id"]})
        outbox.enqueue(session, sales.REFUND_ORDER, {"order_id": order["id"]})
        session.query(OutboxMessage).filter(OutboxMessage.kind == sales.MINT_ORDER).delete()
    drain(worker)
    assert buyer.order(order["id"])["status"] == "refunded"
    assert len(fake.refunds) == 1
    [refund] = fake.refunds.values()
    refunded = fake.event("PAYMENT.CAPTURE.REFUNDED", refund)
    assert deliver(client, fake, refunded).status_code == 200
    assert buyer.order(order["id"])["status"] == "refunded"


def test_paypal_outage_at_checkout_is_503_and_the_hold_stays(
    client: TestClient, fake: FakePayPal
) -> None:
    buyer, order = held_order(client)
    fake.fail_next = [503] * 3
    response = checkout_as(client, buyer, order["id"])
    assert_problem(response, 503, "payment-provider-unavailable")
    assert buyer.order(order["id"])["status"] == "held"
    assert buyer.checkout_card(order["id"])["payment_intent"]["provider"] == "paypal"


def test_paypal_outage_during_a_webhook_is_503_and_the_redelivery_pays(
    client: TestClient, fake: FakePayPal, runtime: Runtime
) -> None:
    buyer, order = checkout(client)
    event = approved(fake, order["paypal_id"])
    fake.fail_next = [503] * 3
    assert_problem(deliver(client, fake, event), 503, "payment-provider-unavailable")
    assert count(runtime, ProcessedWebhook) == 0  # not recorded: PayPal's retry must count
    assert deliver(client, fake, event).json()["outcome"] == "processed"
    assert buyer.order(order["id"])["status"] == "paid"


def test_stripe_webhook_route_is_404_when_paypal_is_configured(client: TestClient) -> None:
    response = client.post("/payments/stripe/webhook", content=b"{}")
    assert_problem(response, 404, "not-found")
