"""StripeProvider over the real stripe library, against a local server speaking Stripe's API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from backend.payments.errors import ProviderRejected, ProviderUnavailable, WebhookRejected
from backend.payments.provider import WEBHOOK_TOLERANCE_SECONDS, StripeProvider
from backend.payments.sandbox import sign_stripe_payload
from tests.payments.stripe_fake import running_fake_stripe

KEY = "sk_test_fairtix_local"
WEBHOOK_SECRET = "whsec_fairtix_local"


def signed(body: str, secret: str = WEBHOOK_SECRET, age: int = 0) -> dict[str, str]:
    return {"Stripe-Signature": sign_stripe_payload(body, secret, int(time.time()) - age)}


def test_create_payment_sends_amount_metadata_and_idempotency_key() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        first = provider.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
    assert first.amount == 2500 and first.currency == "eur"
    assert first.status == "requires_payment_method" and first.approve_url is None
    assert first.client_secret is not None and first.client_secret.startswith(first.id + "_secret_")
    path, key, form = fake.requests[0]
    assert path == "/v1/payment_intents" and key == "fairtix-order-42"
    assert form["metadata[order_id]"] == "42"
    assert form["automatic_payment_methods[enabled]"] == "true"


def test_create_payment_retried_with_the_same_key_returns_the_same_intent() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        first = provider.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
        again = provider.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
        other = provider.create_payment(2500, "eur", {"order_id": "43"}, "fairtix-order-43")
    assert again == first
    assert other.id != first.id
    assert len(fake.intents) == 2  # the retried checkout created nothing


def test_create_payment_reusing_a_key_with_other_parameters_is_refused() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        provider.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
        with pytest.raises(ProviderRejected, match="Keys for idempotent requests"):
            provider.create_payment(9900, "eur", {"order_id": "42"}, "fairtix-order-42")
    assert len(fake.intents) == 1


def test_create_payment_after_a_server_error_is_retried_under_the_same_key() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        fake.fail_next = 500
        intent = provider.create_payment(100, "eur", {}, "k-retry")
    assert [r[1] for r in fake.requests] == ["k-retry", "k-retry"]
    assert intent.amount == 100 and len(fake.intents) == 1


def test_create_payment_with_a_wrong_key_is_provider_unavailable() -> None:
    with running_fake_stripe(KEY) as (_fake, base):
        bad = StripeProvider("sk_test_wrong", WEBHOOK_SECRET, api_base=base)
        with pytest.raises(ProviderUnavailable, match="Invalid API Key"):
            bad.create_payment(100, "eur", {}, "k-bad")


def test_refund_repeated_with_the_same_key_refunds_once() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        intent = provider.create_payment(2500, "eur", {}, "k-pay")
        fake.succeed(intent.id)
        provider.refund(intent.id, "fairtix-refund-1")
        provider.refund(intent.id, "fairtix-refund-1")
    assert len(fake.refunds) == 1
    refund_calls = [r for r in fake.requests if r[0] == "/v1/refunds"]
    assert [(key, form) for _path, key, form in refund_calls] == [
        ("fairtix-refund-1", {"payment_intent": intent.id}),
        ("fairtix-refund-1", {"payment_intent": intent.id}),
    ]


def test_refund_of_an_already_refunded_payment_under_a_new_key_is_a_no_op() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        intent = provider.create_payment(2500, "eur", {}, "k-pay")
        fake.succeed(intent.id)
        provider.refund(intent.id, "first-key")
        provider.refund(intent.id, "second-key")
    assert len(fake.refunds) == 1


def test_partial_refunds_add_up_and_stop_at_the_amount_paid() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        intent = provider.create_payment(2500, "eur", {}, "k-pay")
        fake.succeed(intent.id)
        provider.refund(intent.id, "ticket-1", amount_cents=1000)
        provider.refund(intent.id, "ticket-1", amount_cents=1000)  # a retry: no second refund
        provider.refund(intent.id, "ticket-2", amount_cents=1000)
        with pytest.raises(ProviderRejected, match="greater than unrefunded amount"):
            provider.refund(intent.id, "ticket-3", amount_cents=1000)
        provider.refund(intent.id, "the-rest")
        with pytest.raises(ProviderRejected, match="already been refunded"):
            provider.refund(intent.id, "ticket-4", amount_cents=1)
    assert sorted(r["amount"] for r in fake.refunds.values()) == [500, 1000, 1000]
    forms = [form for path, _key, form in fake.requests if path == "/v1/refunds"]
    assert forms[0] == {"payment_intent": intent.id, "amount": "1000"}


def test_refund_of_an_unpaid_intent_is_provider_rejected() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        intent = provider.create_payment(2500, "eur", {}, "k-pay")
        with pytest.raises(ProviderRejected, match="does not have a successful charge"):
            provider.refund(intent.id, "fairtix-refund-1")
    assert fake.refunds == {}


def test_verify_webhook_parses_a_signed_succeeded_event() -> None:
    provider = StripeProvider(KEY, WEBHOOK_SECRET)
    intent = {"id": "pi_1", "amount": 2500, "amount_received": 2500, "currency": "eur"}
    body = json.dumps(
        {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": intent}}
    )
    event = provider.verify_webhook(body.encode(), signed(body))
    assert (event.id, event.kind, event.payment_id) == ("evt_1", "succeeded", "pi_1")
    assert (event.amount, event.currency) == (2500, "eur")


@pytest.mark.parametrize(
    ("headers_for", "reason"),
    [
        (lambda body: signed(body, secret="whsec_other"), "No signatures found matching"),
        (lambda body: signed(body, age=WEBHOOK_TOLERANCE_SECONDS + 60), "Timestamp outside"),
        (lambda body: {}, "No Stripe-Signature header"),
    ],
    ids=["forged", "stale", "unsigned"],
)
def test_verify_webhook_rejects_forged_stale_and_unsigned_events(
    headers_for: Callable[[str], dict[str, str]], reason: str
) -> None:
    provider = StripeProvider(KEY, WEBHOOK_SECRET)
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}})
    with pytest.raises(WebhookRejected, match=reason):
        provider.verify_webhook(body.encode(), headers_for(body))


def test_verify_webhook_rejects_a_body_that_is_not_utf8() -> None:
    provider = StripeProvider(KEY, WEBHOOK_SECRET)
    with pytest.raises(WebhookRejected, match="not UTF-8"):
        provider.verify_webhook(b"\xff\xfe", signed("{}"))
