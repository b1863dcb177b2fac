"""The Stripe-format webhook route (sandbox and Stripe) and checkout against Stripe's API.

Stripe itself is a local server that answers as its API does (tests/payments/stripe_fake.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session

from backend import outbox
from backend.config import Settings
from backend.outbox import OutboxMessage
from backend.payments.models import ProcessedWebhook
from backend.payments.provider import WEBHOOK_TOLERANCE_SECONDS
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.worker import Worker
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import count, drain, post_webhook, stripe_event
from tests.payments.orders import assert_problem, checkout_as, held_order
from tests.payments.stripe_fake import FakeStripe, running_fake_stripe

pytestmark = pytest.mark.db

KEY = "sk_test_fairtix_routes"


def succeeded(event_id: str, intent: dict[str, Any], amount: int | None = None) -> dict[str, Any]:
    paid = amount if amount is not None else intent["amount"]
    body = {"id": intent["id"], "amount": paid, "amount_received": paid, "currency": "eur"}
    return stripe_event(event_id, "payment_intent.succeeded", body)


class TestSandboxWebhooks:
    """The embedded default: the sandbox's Stripe-format events at /payments/stripe/webhook."""

    def test_signed_succeeded_event_pays_the_order_once(
        self, client: TestClient, runtime: Runtime
    ) -> None:
        buyer, order = held_order(client)
        intent = buyer.checkout_card(order["id"])["payment_intent"]
        first = post_webhook(client, succeeded("evt_paid", intent), WEBHOOK_SECRET)
        assert first.status_code == 200 and first.json()["outcome"] == "processed"
        replay = post_webhook(client, succeeded("evt_paid", intent), WEBHOOK_SECRET)
        assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
        final = buyer.order(order["id"])
        assert final["status"] == "paid"
        assert [t["to_status"] for t in final["transitions"]].count("paid") == 1
        assert count(runtime, OutboxMessage) == 1  # one mint queued

    @pytest.mark.parametrize(
        ("secret", "age"),
        [("whsec_forged", 0), (WEBHOOK_SECRET, WEBHOOK_TOLERANCE_SECONDS + 30)],
        ids=["forged", "stale"],
    )
    def test_forged_or_stale_event_is_400_and_changes_nothing(
        self, client: TestClient, runtime: Runtime, secret: str, age: int
    ) -> None:
        buyer, order = held_order(client)
        intent = buyer.checkout_card(order["id"])["payment_intent"]
        event = succeeded("evt_bad", intent)
        response = post_webhook(client, event, secret, timestamp=int(time.time()) - age)
        assert_problem(response, 400, "webhook-rejected")
        assert buyer.order(order["id"])["status"] == "awaiting_payment"
        assert count(runtime, ProcessedWebhook) == 0
        assert count(runtime, OutboxMessage) == 0

    def test_payment_failed_event_releases_the_hold(self, client: TestClient) -> None:
        buyer, order = held_order(client)
        intent = buyer.checkout_card(order["id"])["payment_intent"]
        failed = stripe_event(
            "evt_declined",
            "payment_intent.payment_failed",
            {"id": intent["id"], "last_payment_error": {"message": "Your card was declined."}},
        )
        assert post_webhook(client, failed, WEBHOOK_SECRET).json()["outcome"] == "processed"
        final = buyer.order(order["id"])
        assert (final["status"], final["failure_reason"]) == ("failed", "Your card was declined.")
        assert buyer.availability(final["event_id"])["tiers"][0]["remaining"] == 3

    def test_a_decided_dispute_is_not_reopened_by_a_late_update(self, client: TestClient) -> None:
        buyer, order = held_order(client)
        intent = buyer.checkout_card(order["id"])["payment_intent"]
        post_webhook(client, succeeded("evt_paid", intent), WEBHOOK_SECRET)

        def dispute(event_id: str, event_type: str, status: str) -> str:
            body = {"id": "dp_1", "payment_intent": intent["id"], "reason": "fraudulent"}
            event = stripe_event(event_id, event_type, {**body, "status": status})
            outcome: str = post_webhook(client, event, WEBHOOK_SECRET).json()["outcome"]
            return outcome

        assert dispute("evt_opened", "charge.dispute.created", "needs_response") == "processed"
        opened_at = buyer.order(order["id"])["dispute"]["disputed_at"]
        assert dispute("evt_won", "charge.dispute.closed", "won") == "processed"
        # Stripe doesn't promise order: an update sent before the close arrives after it.
        assert dispute("evt_late", "charge.dispute.updated", "under_review") == "ignored"
        assert dispute("evt_won", "charge.dispute.closed", "won") == "duplicate"

        final = buyer.order(order["id"])
        assert final["dispute"] == {
            "status": "won",
            "reason": "fraudulent",
            "disputed_at": opened_at,
        }
        assert final["status"] == "paid"  # a dispute moves neither the order nor its tickets

    def test_a_dispute_no_order_of_ours_paid_changes_nothing(
        self, client: TestClient, runtime: Runtime
    ) -> None:
        buyer, order = held_order(client)
        foreign = {"id": "dp_2", "payment_intent": "pi_elsewhere", "status": "needs_response"}
        no_intent = {"id": "dp_3", "payment_intent": None, "status": "needs_response"}
        for event_id, dispute in [("evt_foreign", foreign), ("evt_no_intent", no_intent)]:
            event = stripe_event(event_id, "charge.dispute.created", dispute)
            assert post_webhook(client, event, WEBHOOK_SECRET).json()["outcome"] == "ignored"
        assert buyer.order(order["id"])["dispute"] is None
        assert count(runtime, OutboxMessage) == 0

    def test_a_dispute_event_without_a_dispute_is_400(self, client: TestClient) -> None:
        event = stripe_event("evt_empty", "charge.dispute.created", {"id": "dp_4"})
        assert_problem(post_webhook(client, event, WEBHOOK_SECRET), 400, "webhook-rejected")

    def test_paypal_webhook_route_is_404_when_the_sandbox_is_configured(
        self, client: TestClient
    ) -> None:
        assert_problem(client.post("/payments/paypal/webhook", content=b"{}"), 404, "not-found")


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with running_fake_stripe(KEY) as (server, base):
        server.base = base  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def stripe_settings(settings: Settings, fake_stripe: FakeStripe) -> Settings:
    settings.payments_provider = "stripe"
    settings.stripe_secret_key = SecretStr(KEY)
    settings.stripe_api_base = fake_stripe.base  # type: ignore[attr-defined]
    return settings


class TestStripeCheckout:
    """FAIRTIX_PAYMENTS_PROVIDER=stripe, with Stripe's API answered by the local fake."""

    @pytest.fixture
    def settings(self, stripe_settings: Settings) -> Settings:
        return stripe_settings

    def test_retried_checkout_returns_the_same_payment_intent(
        self, client: TestClient, fake_stripe: FakeStripe
    ) -> None:
        buyer, order = held_order(client)
        first = buyer.checkout_card(order["id"])["payment_intent"]
        again = buyer.checkout_card(order["id"])["payment_intent"]
        assert first == again and first["provider"] == "stripe"
        assert len(fake_stripe.intents) == 1
        assert {key for _path, key, _form in fake_stripe.requests} == {
            f"fairtix-order-{order['id']}"
        }

    def test_stripe_refusing_our_key_is_503_and_the_hold_stays(
        self, client: TestClient, fake_stripe: FakeStripe
    ) -> None:
        fake_stripe.secret_key = "sk_test_rotated"
        buyer, order = held_order(client)
        response = checkout_as(client, buyer, order["id"])
        assert_problem(response, 503, "payment-provider-unavailable")
        assert buyer.order(order["id"])["status"] == "held"

    def test_queued_refund_goes_back_through_stripe_once(
        self, client: TestClient, fake_stripe: FakeStripe, runtime: Runtime, worker: Worker
    ) -> None:
        buyer, order = held_order(client)
        intent = buyer.checkout_card(order["id"])["payment_intent"]
        fake_stripe.succeed(intent["id"])
        assert post_webhook(client, succeeded("evt_ok", intent), WEBHOOK_SECRET).status_code == 200
        with Session(runtime.engine) as session, session.begin():
            # What cancelling the event does for a card buyer: queue the refund (twice here).
            outbox.enqueue(session, sales.REFUND_ORDER, {"order_id": order["id"]})
            outbox.enqueue(session, sales.REFUND_ORDER, {"order_id": order["id"]})
            session.query(OutboxMessage).filter(OutboxMessage.kind == sales.MINT_ORDER).delete()
        drain(worker)
        assert buyer.order(order["id"])["status"] == "refunded"
        assert len(fake_stripe.refunds) == 1
