"""The sandbox card processor: Stripe's test cards, Stripe-format events, Stripe's signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.app import build_cards
from backend.config import Settings
from backend.db.engine import make_engine, make_session_factory, transaction
from backend.db.migrate import upgrade_to_head
from backend.outbox import OutboxMessage
from backend.payments.errors import CardRejected, PaymentIntentNotFound, WebhookRejected
from backend.payments.models import SandboxPaymentIntent, SandboxRefund
from backend.payments.sandbox import DELIVER_WEBHOOK, SandboxProvider, luhn_valid

SECRET = "whsec_unit_test"


@pytest.fixture
def sessions(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'sandbox.db'}")
    upgrade_to_head(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sandbox(sessions: sessionmaker[Session]) -> SandboxProvider:
    return SandboxProvider(sessions, SECRET, "http://shop.test/payments/stripe/webhook")


def queued_events(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with transaction(sessions) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == DELIVER_WEBHOOK))
        return [row.payload["event"] for row in rows]


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4242424242424242", True), ("4000000000000002", True), ("4242424242424241", False)],
)
def test_luhn_check(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_same_idempotency_key_returns_the_same_intent(sandbox: SandboxProvider) -> None:
    first = sandbox.create_payment(2500, "EUR", {"order_id": "1"}, "key-1")
    again = sandbox.create_payment(2500, "EUR", {"order_id": "1"}, "key-1")
    other = sandbox.create_payment(2500, "EUR", {"order_id": "2"}, "key-2")
    assert first == again
    assert other.id != first.id
    assert first.currency == "eur" and first.status == "requires_payment_method"


def test_success_card_queues_a_signed_succeeded_event(
    sandbox: SandboxProvider, sessions: sessionmaker[Session]
) -> None:
    intent = sandbox.create_payment(2500, "eur", {"order_id": "7"}, "k")
    result = sandbox.confirm(intent.id, intent.client_secret, "4242 4242 4242 4242")
    assert result.status == "succeeded"
    [event] = queued_events(sessions)
    assert event["type"] == "payment_intent.succeeded"
    assert event["data"]["object"]["id"] == intent.id
    assert event["data"]["object"]["metadata"] == {"order_id": "7"}
    assert event["data"]["object"]["amount_received"] == 2500


def test_retried_confirm_of_a_succeeded_intent_answers_as_the_success_did(
    sandbox: SandboxProvider, sessions: sessionmaker[Session]
) -> None:
    # The first answer lost on the way: the fan's client retries, and must not be told the
    # payment failed when the card was charged.
    intent = sandbox.create_payment(2500, "eur", {"order_id": "7"}, "k")
    first = sandbox.confirm(intent.id, intent.client_secret, "4242 4242 4242 4242")
    retry = sandbox.confirm(intent.id, intent.client_secret, "4242424242424242")
    assert retry == first
    assert retry.status == "succeeded"
    assert len(queued_events(sessions)) == 1  # charged and reported once


def test_refunds_whole_and_partial_are_kept_by_key_and_never_exceed_the_payment(
    sandbox: SandboxProvider, sessions: sessionmaker[Session]
) -> None:
    intent = sandbox.create_payment(2500, "eur", {"order_id": "7"}, "k")
    with pytest.raises(CardRejected, match="nothing to refund"):
        sandbox.refund(intent.id, "too-early")
    sandbox.confirm(intent.id, intent.client_secret, "4242424242424242")
    sandbox.refund(intent.id, "ticket-1", amount_cents=1000)
    sandbox.refund(intent.id, "ticket-1", amount_cents=1000)  # a retry refunds nothing more
    with pytest.raises(CardRejected, match="has 1500 left to refund, not 1501"):
        sandbox.refund(intent.id, "ticket-2", amount_cents=1501)
    with transaction(sessions) as session:
        row = session.get(SandboxPaymentIntent, intent.id)
        assert row is not None and (row.status, row.amount_refunded) == ("succeeded", 1000)
    sandbox.refund(intent.id, "the-rest")  # everything left: 1500
    sandbox.refund(intent.id, "the-rest-again")  # refunded in full already: a no-op
    with pytest.raises(CardRejected, match="has 0 left to refund"):
        sandbox.refund(intent.id, "ticket-3", amount_cents=1)
    with transaction(sessions) as session:
        row = session.get(SandboxPaymentIntent, intent.id)
        assert row is not None and (row.status, row.amount_refunded) == ("refunded", 2500)
        amounts = session.scalars(select(SandboxRefund.amount).order_by(SandboxRefund.amount))
        assert list(amounts) == [1000, 1500]


def test_declined_card_queues_payment_failed_and_allows_a_retry(
    sandbox: SandboxProvider, sessions: sessionmaker[Session]
) -> None:
    intent = sandbox.create_payment(2500, "eur", {}, "k")
    declined = sandbox.confirm(intent.id, intent.client_secret, "4000000000009995")
    assert declined.status == "requires_payment_method"
    [event] = queued_events(sessions)
    assert event["type"] == "payment_intent.payment_failed"
    error = event["data"]["object"]["last_payment_error"]
    assert error["decline_code"] == "insufficient_funds"
    assert (
        sandbox.confirm(intent.id, intent.client_secret, "4242424242424242").status == "succeeded"
    )


@pytest.mark.parametrize("number", ["4242424242424241", "4111111111111111", "12345678901234"])
def test_cards_that_are_not_stripe_test_cards_are_refused(
    sandbox: SandboxProvider, sessions: sessionmaker[Session], number: str
) -> None:
    intent = sandbox.create_payment(100, "eur", {}, "k")
    with pytest.raises(CardRejected):
        sandbox.confirm(intent.id, intent.client_secret, number)
    assert queued_events(sessions) == []


def test_wrong_client_secret_looks_like_an_unknown_intent(sandbox: SandboxProvider) -> None:
    intent = sandbox.create_payment(100, "eur", {}, "k")
    with pytest.raises(PaymentIntentNotFound):
        sandbox.confirm(intent.id, "pi_other_secret_x", "4242424242424242")
    with pytest.raises(PaymentIntentNotFound):
        sandbox.confirm("pi_missing", intent.client_secret, "4242424242424242")


def test_delivered_webhook_verifies_with_the_stripe_library(
    sandbox: SandboxProvider, sessions: sessionmaker[Session]
) -> None:
    intent = sandbox.create_payment(100, "eur", {}, "k")
    sandbox.confirm(intent.id, intent.client_secret, "4242424242424242")
    [event] = queued_events(sessions)
    seen: list[httpx.Request] = []

    def shop(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"received": True})

    with httpx.Client(transport=httpx.MockTransport(shop)) as client:
        sandbox.deliver(event, client)
    [request] = seen
    header = request.headers["Stripe-Signature"]
    # Stripe's own parser accepts it: the sandbox really speaks Stripe's format.
    parsed = stripe.Webhook.construct_event(request.content, header, SECRET)
    assert parsed["id"] == event["id"] and parsed["type"] == "payment_intent.succeeded"
    verified = sandbox.verify_webhook(request.content, {"Stripe-Signature": header})
    assert verified.id == event["id"] and verified.kind == "succeeded"
    assert verified.payment_id == intent.id and verified.amount == 100
    with pytest.raises(WebhookRejected):
        sandbox.verify_webhook(
            request.content.replace(b"succeeded", b"failed"), {"Stripe-Signature": header}
        )
    assert json.loads(request.content) == event


def test_delivery_to_a_failing_endpoint_raises_so_the_outbox_retries(
    sandbox: SandboxProvider,
) -> None:
    def down(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="maintenance")

    with (
        httpx.Client(transport=httpx.MockTransport(down)) as client,
        pytest.raises(RuntimeError, match="503"),
    ):
        sandbox.deliver({"id": "evt_x", "type": "ping"}, client)


def test_api_and_separate_worker_derive_the_same_sandbox_secret(
    sessions: sessionmaker[Session], tmp_path: Any
) -> None:
    # Two processes started from the same environment (no FAIRTIX_STRIPE_WEBHOOK_SECRET).
    api = build_cards(Settings(var_dir=tmp_path), sessions)
    worker = build_cards(Settings(var_dir=tmp_path), sessions)
    assert isinstance(worker, SandboxProvider)
    captured: list[httpx.Request] = []

    def shop(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200)

    with httpx.Client(transport=httpx.MockTransport(shop)) as client:
        worker.deliver({"id": "evt_shared", "type": "ping"}, client)
    [request] = captured
    assert api.verify_webhook(request.content, request.headers).id == "evt_shared"
    other_install = build_cards(Settings(var_dir=tmp_path / "elsewhere"), sessions)
    with pytest.raises(WebhookRejected):
        other_install.verify_webhook(request.content, request.headers)
