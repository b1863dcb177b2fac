"""PayPalProvider (Orders v2 over httpx) against a local server that answers as PayPal's API."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from backend.app import build_cards
from backend.config import ConfigError, Settings
from backend.payments.errors import (
    PaymentNotApproved,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
)
from backend.payments.paypal import (
    PayPalProvider,
    from_paypal_value,
    parse_paypal_event,
    to_paypal_value,
)
from tests.payments.paypal_fake import FakePayPal, running_fake_paypal

CLIENT_ID = "AfairtixClientId"
CLIENT_SECRET = "EfairtixClientSecret"
WEBHOOK_ID = "8PT597110X687430LKGECATA"


@pytest.fixture
def fake() -> Iterator[FakePayPal]:
    with running_fake_paypal(CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID) as (server, _base):
        yield server


@pytest.fixture
def paypal(fake: FakePayPal) -> Iterator[PayPalProvider]:
    provider = PayPalProvider(
        CLIENT_ID,
        CLIENT_SECRET,
        WEBHOOK_ID,
        fake.base,
        return_url="https://shop.test/paid",
        cancel_url="https://shop.test/cancelled",
        backoff_seconds=0,
    )
    yield provider
    provider.close()


def calls(
    fake: FakePayPal, method: str, path_part: str
) -> list[tuple[str, dict[str, str], object]]:
    return [(p, h, b) for m, p, h, b in fake.requests if m == method and path_part in p]


def paid_order(fake: FakePayPal, paypal: PayPalProvider, key: str = "fairtix-order-1") -> str:
    session = paypal.create_payment(2500, "eur", {"order_id": "1"}, key)
    fake.approve(session.id)
    assert paypal.capture(session.id, "fairtix-capture-1").status == "COMPLETED"
    return session.id


@pytest.mark.parametrize(
    ("minor", "currency", "value"),
    [(2500, "eur", "25.00"), (5, "usd", "0.05"), (2500, "jpy", "2500"), (0, "eur", "0.00")],
)
def test_amounts_convert_to_paypal_decimals_and_back(minor: int, currency: str, value: str) -> None:
    assert to_paypal_value(minor, currency) == value
    assert from_paypal_value(value, currency) == minor


@pytest.mark.parametrize("value", ["25.001", "abc", "-1.00", "NaN", "25.5"])
def test_inexact_paypal_amounts_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not an amount"):
        from_paypal_value(value, "jpy" if value == "25.5" else "eur")


def test_create_payment_sends_a_capture_order_with_request_id(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    session = paypal.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
    assert session.status == "PAYER_ACTION_REQUIRED" and session.client_secret is None
    assert session.approve_url == f"https://www.sandbox.paypal.com/checkoutnow?token={session.id}"
    [(_path, headers, body)] = calls(fake, "POST", "/v2/checkout/orders")
    assert headers["PayPal-Request-Id"] == "fairtix-order-42"
    assert headers["Authorization"].startswith("Bearer A21AA")
    assert isinstance(body, dict) and body["intent"] == "CAPTURE"
    unit = body["purchase_units"][0]
    assert unit["amount"] == {"currency_code": "EUR", "value": "25.00"}
    assert unit["custom_id"] == "42"
    context = body["payment_source"]["paypal"]["experience_context"]
    assert context["return_url"] == "https://shop.test/paid"
    assert context["cancel_url"] == "https://shop.test/cancelled"


def test_create_payment_retried_with_the_same_request_id_returns_the_same_order(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    first = paypal.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
    again = paypal.create_payment(2500, "eur", {"order_id": "42"}, "fairtix-order-42")
    other = paypal.create_payment(2500, "eur", {"order_id": "43"}, "fairtix-order-43")
    assert again == first and other.id != first.id
    assert len(fake.orders) == 2


def test_access_token_is_fetched_once_and_reused_until_it_expires(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    paypal.create_payment(100, "eur", {}, "k1")
    paypal.create_payment(100, "eur", {}, "k2")
    [(_path, headers, body)] = calls(fake, "POST", "/v1/oauth2/token")
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"
    assert body == "grant_type=client_credentials"
    fake.token_lifetime = 30  # shorter than the refresh margin: every call needs a new one
    paypal._token = None
    paypal.create_payment(100, "eur", {}, "k3")
    paypal.create_payment(100, "eur", {}, "k4")
    assert len(calls(fake, "POST", "/v1/oauth2/token")) == 3


def test_revoked_token_is_renewed_and_the_call_goes_through(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    paypal.create_payment(100, "eur", {}, "k1")
    fake.revoke_tokens()
    assert paypal.create_payment(100, "eur", {}, "k2").status == "PAYER_ACTION_REQUIRED"
    assert len(calls(fake, "POST", "/v1/oauth2/token")) == 2


def test_wrong_client_secret_is_provider_unavailable(fake: FakePayPal) -> None:
    provider = PayPalProvider(CLIENT_ID, "wrong", WEBHOOK_ID, fake.base)
    with pytest.raises(ProviderUnavailable, match="refused the client credentials"):
        provider.create_payment(100, "eur", {}, "k1")
    assert fake.orders == {}


def test_outage_is_retried_under_the_same_request_id(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    paypal.create_payment(100, "eur", {}, "warm-up")  # token fetched
    fake.fail_next = [503]
    paypal.create_payment(100, "eur", {}, "k-retry")
    attempts = [h["PayPal-Request-Id"] for _p, h, _b in calls(fake, "POST", "/v2/checkout/orders")]
    assert attempts == ["warm-up", "k-retry", "k-retry"]
    assert len(fake.orders) == 2


def test_lasting_outage_is_provider_unavailable(fake: FakePayPal, paypal: PayPalProvider) -> None:
    paypal.create_payment(100, "eur", {}, "warm-up")
    fake.fail_next = [500, 503, 502]
    with pytest.raises(ProviderUnavailable, match="INTERNAL_SERVER_ERROR"):
        paypal.create_payment(100, "eur", {}, "k-down")
    assert len(fake.orders) == 1


def test_unreachable_paypal_is_provider_unavailable() -> None:
    provider = PayPalProvider(
        CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, "http://127.0.0.1:9", backoff_seconds=0
    )
    with pytest.raises(ProviderUnavailable, match="token request failed"):
        provider.create_payment(100, "eur", {}, "k1")


def test_capture_before_approval_is_refused_without_spending_the_request_id(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    session = paypal.create_payment(2500, "eur", {"order_id": "1"}, "fairtix-order-1")
    with pytest.raises(PaymentNotApproved):
        paypal.capture(session.id, "fairtix-capture-1")
    assert calls(fake, "POST", "/capture") == []
    fake.approve(session.id)
    result = paypal.capture(session.id, "fairtix-capture-1")
    assert (result.status, result.amount, result.currency) == ("COMPLETED", 2500, "eur")


def test_capture_of_an_unapproved_order_at_paypal_is_422_order_not_approved(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    # What PayPal answers when asked directly; the provider never asks (see the test above).
    session = paypal.create_payment(2500, "eur", {}, "fairtix-order-1")
    status, body = fake.capture_order(session.id)
    assert status == 422 and body["name"] == "UNPROCESSABLE_ENTITY"
    assert body["details"][0]["issue"] == "ORDER_NOT_APPROVED"


def test_capture_repeated_returns_the_one_capture(fake: FakePayPal, paypal: PayPalProvider) -> None:
    session = paypal.create_payment(2500, "eur", {}, "fairtix-order-1")
    fake.approve(session.id)
    first = paypal.capture(session.id, "fairtix-capture-1")
    again = paypal.capture(session.id, "fairtix-capture-1")
    other_key = paypal.capture(session.id, "another-key")
    assert first == again == other_key
    assert first.capture_id is not None and len(fake.captures) == 1


def test_declined_capture_is_a_result_and_a_new_approval_can_be_captured(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    session = paypal.create_payment(2500, "eur", {}, "fairtix-order-1")
    fake.approve(session.id)
    fake.decline_next(session.id)
    declined = paypal.capture(session.id, "fairtix-capture-1")
    assert (declined.status, declined.reason) == ("DECLINED", "INSTRUMENT_DECLINED")
    fake.approve(session.id)  # the buyer picks another funding source
    assert paypal.capture(session.id, "fairtix-capture-1").status == "COMPLETED"
    ids = [h["PayPal-Request-Id"] for _p, h, _b in calls(fake, "POST", "/capture")]
    assert len(ids) == 2 and ids[0] != ids[1]


def test_capture_of_an_unknown_order_is_provider_rejected(paypal: PayPalProvider) -> None:
    with pytest.raises(ProviderRejected, match="RESOURCE_NOT_FOUND INVALID_RESOURCE_ID"):
        paypal.capture("0000000000000000X", "k")


def test_refund_refunds_the_capture_once(fake: FakePayPal, paypal: PayPalProvider) -> None:
    order_id = paid_order(fake, paypal)
    paypal.refund(order_id, "fairtix-refund-1")
    paypal.refund(order_id, "fairtix-refund-1")
    paypal.refund(order_id, "another-key")
    assert len(fake.refunds) == 1
    [(path, headers, _body)] = calls(fake, "POST", "/refund")
    capture_id = next(iter(fake.captures))
    assert path == f"/v2/payments/captures/{capture_id}/refund"
    assert headers["PayPal-Request-Id"] == "fairtix-refund-1"


def test_partial_refunds_send_the_amount_and_stop_at_the_capture(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    order_id = paid_order(fake, paypal)  # 25.00 EUR captured
    paypal.refund(order_id, "ticket-1", amount_cents=1000)
    paypal.refund(order_id, "ticket-1", amount_cents=1000)  # same PayPal-Request-Id: once
    paypal.refund(order_id, "ticket-2", amount_cents=1050)
    with pytest.raises(ProviderRejected, match="REFUND_AMOUNT_EXCEEDED"):
        paypal.refund(order_id, "ticket-3", amount_cents=1000)
    paypal.refund(order_id, "the-rest")
    assert sorted(r["amount"]["value"] for r in fake.refunds.values()) == [
        "10.00",
        "10.50",
        "4.50",
    ]
    [first, *_] = calls(fake, "POST", "/refund")
    assert first[2] == {"amount": {"value": "10.00", "currency_code": "EUR"}}
    assert next(iter(fake.captures.values()))["status"] == "REFUNDED"


def test_refund_of_an_uncaptured_order_is_provider_rejected(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    session = paypal.create_payment(2500, "eur", {}, "fairtix-order-1")
    with pytest.raises(ProviderRejected, match="no completed capture"):
        paypal.refund(session.id, "fairtix-refund-1")
    assert fake.refunds == {}


def test_verify_webhook_asks_paypal_and_parses_the_event(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    order_id = paid_order(fake, paypal)
    event = fake.event("PAYMENT.CAPTURE.COMPLETED", fake.capture_resource(order_id))
    # Spacing and key order PayPal's signature covers must reach the verify call unchanged.
    payload = json.dumps(event, indent=1).encode()
    parsed = paypal.verify_webhook(payload, fake.signed_headers(event))
    assert (parsed.id, parsed.kind, parsed.payment_id) == (event["id"], "succeeded", order_id)
    assert (parsed.amount, parsed.currency) == (2500, "eur")
    [(_path, _headers, body)] = calls(fake, "POST", "verify-webhook-signature")
    assert isinstance(body, dict)
    assert body["webhook_id"] == WEBHOOK_ID and body["webhook_event"] == event
    assert body["auth_algo"] == "SHA256withRSA"


def test_verify_webhook_rejects_a_forged_event(fake: FakePayPal, paypal: PayPalProvider) -> None:
    order_id = paid_order(fake, paypal)
    event = fake.event("PAYMENT.CAPTURE.COMPLETED", fake.capture_resource(order_id))
    headers = fake.signed_headers(event)
    event["resource"]["amount"]["value"] = "0.01"
    with pytest.raises(WebhookRejected, match="does not verify"):
        paypal.verify_webhook(json.dumps(event).encode(), headers)


def test_verify_webhook_rejects_an_event_signed_for_another_webhook(
    fake: FakePayPal, paypal: PayPalProvider
) -> None:
    event = fake.event("CHECKOUT.ORDER.APPROVED", {"id": "5O190127TN364715T"})
    headers = fake.signed_headers(event, webhook_id="OTHERWEBHOOK")
    with pytest.raises(WebhookRejected, match="does not verify"):
        paypal.verify_webhook(json.dumps(event).encode(), headers)


@pytest.mark.parametrize("age", [timedelta(hours=1), -timedelta(hours=1)], ids=["old", "future"])
def test_verify_webhook_rejects_a_stale_transmission_without_asking_paypal(
    fake: FakePayPal, paypal: PayPalProvider, age: timedelta
) -> None:
    event = fake.event("CHECKOUT.ORDER.APPROVED", {"id": "5O190127TN364715T"})
    headers = fake.signed_headers(event, sent_at=datetime.now(UTC) - age)
    with pytest.raises(WebhookRejected, match="stale"):
        paypal.verify_webhook(json.dumps(event).encode(), headers)
    assert calls(fake, "POST", "verify-webhook-signature") == []


@pytest.mark.parametrize(
    "drop", ["PAYPAL-TRANSMISSION-SIG", "PAYPAL-TRANSMISSION-ID", "PAYPAL-CERT-URL"]
)
def test_verify_webhook_rejects_missing_transmission_headers(
    fake: FakePayPal, paypal: PayPalProvider, drop: str
) -> None:
    event = fake.event("CHECKOUT.ORDER.APPROVED", {"id": "5O190127TN364715T"})
    headers = {k: v for k, v in fake.signed_headers(event).items() if k != drop}
    with pytest.raises(WebhookRejected, match=f"{drop} header is missing"):
        paypal.verify_webhook(json.dumps(event).encode(), headers)
    assert calls(fake, "POST", "verify-webhook-signature") == []


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        ({"id": "not an order id"}, "no valid PayPal order id"),
        ({}, "names no PayPal order"),
    ],
)
def test_verify_webhook_rejects_signed_events_without_a_usable_order(
    fake: FakePayPal, paypal: PayPalProvider, resource: dict[str, object], reason: str
) -> None:
    event = fake.event("CHECKOUT.ORDER.APPROVED", resource)
    with pytest.raises(WebhookRejected, match=reason):
        paypal.verify_webhook(json.dumps(event).encode(), fake.signed_headers(event))


def test_build_cards_for_paypal_without_credentials_names_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="FAIRTIX_PAYPAL_CLIENT_ID"):
        build_cards(Settings(var_dir=tmp_path, payments_provider="paypal"), None)
    settings = Settings(
        var_dir=tmp_path,
        payments_provider="paypal",
        paypal_client_id=CLIENT_ID,
        paypal_client_secret=SecretStr(CLIENT_SECRET),
        paypal_webhook_id=WEBHOOK_ID,
    )
    provider = build_cards(settings, None)
    assert isinstance(provider, PayPalProvider) and provider.event_source == "paypal"
    provider.close()


def test_production_with_paypal_needs_every_paypal_setting(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path,
        env="production",
        payments_provider="paypal",
        secret_key=SecretStr("s"),
        minter_private_key=SecretStr("0x" + "1" * 64),
        database_url="postgresql://db.example/fairtix",
        paypal_client_id=CLIENT_ID,
    )
    with pytest.raises(ConfigError) as raised:
        settings.check_production_ready()
    assert str(raised.value) == (
        "production needs these environment variables: FAIRTIX_PAYPAL_CLIENT_SECRET, "
        "FAIRTIX_PAYPAL_WEBHOOK_ID, FAIRTIX_PAYPAL_API_BASE"
    )


@pytest.mark.parametrize(
    "event",
    [
        {"id": 42, "event_type": "PAYMENT.CAPTURE.COMPLETED"},
        {"event_type": "PAYMENT.CAPTURE.COMPLETED"},
        {"id": "WH-1", "event_type": None},
        {"id": "WH-" + "x" * 200, "event_type": "PAYMENT.CAPTURE.COMPLETED"},
    ],
)
def test_verified_event_of_the_wrong_shape_is_rejected_not_a_crash(
    event: dict[str, object],
) -> None:
    with pytest.raises(WebhookRejected):
        parse_paypal_event(event)
