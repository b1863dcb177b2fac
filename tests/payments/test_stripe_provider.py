"""StripeProvider over the real stripe library, against a local server speaking Stripe's API."""

from __future__ import annotations

import json
import time

import pytest

from backend.payments.errors import ProviderUnavailable, WebhookRejected
from backend.payments.provider import StripeProvider
from backend.payments.sandbox import sign_stripe_payload
from tests.payments.stripe_fake import running_fake_stripe

KEY = "sk_test_fairtix_local"
WEBHOOK_SECRET = "whsec_fairtix_local"


def test_payment_intent_is_created_with_amount_metadata_and_idempotency_key() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        first = provider.create_payment_intent(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
        again = provider.create_payment_intent(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
    assert first == again  # Stripe answers a repeated key with the same intent
    assert first.amount == 2500 and first.currency == "eur"
    assert first.client_secret.startswith(first.id + "_secret_")
    path, key, form = fake.requests[0]
    assert path == "/v1/payment_intents" and key == "fairtix-order-42"
    assert form["metadata[order_id]"] == "42"
    assert form["automatic_payment_methods[enabled]"] == "true"


def test_stripe_outage_is_provider_unavailable_after_retries() -> None:
    with running_fake_stripe(KEY) as (fake, base):
        provider = StripeProvider(KEY, WEBHOOK_SECRET, api_base=base)
        fake.fail_next = 500
        # The library retries a 500 with the same idempotency key; the retry succeeds.
        intent = provider.create_payment_intent(100, "eur", {}, "k-retry")
        assert len([r for r in fake.requests if r[1] == "k-retry"]) == 2
        assert intent.amount == 100
        bad = StripeProvider("sk_test_wrong", WEBHOOK_SECRET, api_base=base)
        with pytest.raises(ProviderUnavailable, match="Invalid API Key"):
            bad.create_payment_intent(100, "eur", {}, "k-bad")


def test_webhook_verification_accepts_stripe_signatures_only() -> None:
    provider = StripeProvider(KEY, WEBHOOK_SECRET)
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}})
    header = sign_stripe_payload(body, WEBHOOK_SECRET, int(time.time()))
    assert provider.verify_webhook(body.encode(), header)["id"] == "evt_1"
    with pytest.raises(WebhookRejected):
        provider.verify_webhook(
            body.encode(), sign_stripe_payload(body, "whsec_other", int(time.time()))
        )
    with pytest.raises(WebhookRejected):
        provider.verify_webhook(body.encode(), None)
    with pytest.raises(WebhookRejected):
        provider.verify_webhook(b"\xff\xfe", header)
