"""Bad input: each a clear problem+json 4xx, and nothing written."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.auth.models import AuthSession
from backend.catalog.models import Tier
from backend.chain.client import ChainClient
from backend.config import Settings
from backend.demo import ApiError, FairtixClient
from backend.outbox import OutboxMessage
from backend.payments.models import ProcessedWebhook
from backend.runtime import Runtime
from backend.sales.models import Order
from backend.worker import Worker
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import (
    admitted_buyer,
    count,
    make_event,
    post_webhook,
    signed_in,
    stripe_event,
)

pytestmark = pytest.mark.db


def assert_problem(response: Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == f"https://fairtix.dev/problems/{slug}"
    assert body["status"] == status
    assert body["detail"]
    return body


def test_malformed_siwe_message_is_rejected(client: TestClient, runtime: Runtime) -> None:
    nonce = client.post("/auth/nonce").json()
    response = client.post(
        "/auth/verify", json={"message": f"hello, nonce {nonce['nonce']}", "signature": "0x00"}
    )
    assert_problem(response, 400, "siwe-malformed")
    assert count(runtime, AuthSession) == 0


def test_wrong_signature_is_rejected_and_leaves_the_nonce_usable(
    client: TestClient, runtime: Runtime
) -> None:
    wallet, impostor = Account.create(), Account.create()
    api = FairtixClient(client, wallet)
    nonce = client.post("/auth/nonce").json()
    text = api.siwe_message(nonce)
    forged = FairtixClient(client, impostor).personal_sign(text)
    response = client.post("/auth/verify", json={"message": text, "signature": forged})
    assert_problem(response, 401, "siwe-rejected")
    assert count(runtime, AuthSession) == 0
    # Nothing was consumed: the real wallet can still sign in with the same nonce.
    ok = client.post("/auth/verify", json={"message": text, "signature": api.personal_sign(text)})
    assert ok.status_code == 200


def test_replayed_nonce_is_rejected(client: TestClient, runtime: Runtime) -> None:
    api = FairtixClient(client, Account.create())
    nonce = client.post("/auth/nonce").json()
    text = api.siwe_message(nonce)
    body = {"message": text, "signature": api.personal_sign(text)}
    assert client.post("/auth/verify", json=body).status_code == 200
    assert_problem(client.post("/auth/verify", json=body), 401, "nonce-rejected")
    assert count(runtime, AuthSession) == 1


def test_message_for_another_domain_is_rejected(client: TestClient, runtime: Runtime) -> None:
    api = FairtixClient(client, Account.create())
    nonce = client.post("/auth/nonce").json() | {"domain": "evil.example"}
    text = api.siwe_message(nonce)
    response = client.post(
        "/auth/verify", json={"message": text, "signature": api.personal_sign(text)}
    )
    assert_problem(response, 401, "siwe-rejected")
    assert count(runtime, AuthSession) == 0


def test_requests_without_a_session_get_401(client: TestClient) -> None:
    assert_problem(client.get("/me/tickets"), 401, "not-authenticated")
    bogus = client.get("/me/tickets", headers={"Authorization": "Bearer ftx_nope"})
    assert_problem(bogus, 401, "not-authenticated")


def test_buyer_cannot_create_events(client: TestClient, runtime: Runtime) -> None:
    buyer = signed_in(client)
    with pytest.raises(ApiError) as raised:
        make_event(buyer)
    assert raised.value.status == 403
    assert client.get("/events").json() == []


def test_unknown_event_is_404(client: TestClient) -> None:
    buyer = signed_in(client)
    headers = {"Authorization": f"Bearer {buyer.token}"}
    assert_problem(client.get("/events/999"), 404, "event-not-found")
    assert_problem(client.get("/events/999/availability"), 404, "event-not-found")
    assert_problem(client.post("/events/999/queue", headers=headers), 404, "event-not-found")
    order = {"event_id": 999, "tier_id": 1, "quantity": 1}
    assert_problem(client.post("/orders", json=order, headers=headers), 404, "event-not-found")


def test_order_without_admission_is_refused(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    event = make_event(signed_in(client, admin))
    buyer = signed_in(client)  # signed in, never queued
    response = client.post(
        "/orders",
        json={"event_id": event["id"], "tier_id": event["tiers"][0]["id"], "quantity": 1},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
    assert_problem(response, 403, "not-admitted")
    assert count(runtime, Order) == 0
    assert buyer.availability(event["id"])["tiers"][0]["remaining"] == 3


def test_quantity_over_supply_is_refused(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    event = make_event(signed_in(client, admin), supply=3)
    buyer = admitted_buyer(client, event["id"])
    response = client.post(
        "/orders",
        json={"event_id": event["id"], "tier_id": event["tiers"][0]["id"], "quantity": 5},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
    body = assert_problem(response, 409, "sold-out")
    assert "only 3 left" in str(body["detail"])
    assert count(runtime, Order) == 0
    with Session(runtime.engine) as session:
        tier = session.get(Tier, event["tiers"][0]["id"])
        assert tier is not None and tier.reserved == 0


@pytest.mark.parametrize(
    "body",
    [
        {"event_id": 1, "tier_id": 1, "quantity": 0},
        {"event_id": 1, "tier_id": 1, "quantity": "two"},
        {"event_id": 1, "tier_id": 1},
        {"event_id": 1, "tier_id": 1, "quantity": 1, "price": 0},
    ],
)
def test_malformed_order_body_is_422(client: TestClient, body: dict[str, object]) -> None:
    buyer = signed_in(client)
    response = client.post("/orders", json=body, headers={"Authorization": f"Bearer {buyer.token}"})
    assert_problem(response, 422, "validation-failed")


def _awaiting_payment_order(
    client: TestClient, admin: Account
) -> tuple[FairtixClient, dict[str, object], dict[str, object]]:
    event = make_event(signed_in(client, admin))
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
    intent = buyer.checkout_card(order["id"])["payment_intent"]
    return buyer, order, intent


def test_forged_webhook_signature_changes_nothing(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    buyer, order, intent = _awaiting_payment_order(client, admin)
    event = stripe_event(
        "evt_forged",
        "payment_intent.succeeded",
        {"id": intent["id"], "amount": intent["amount"], "currency": intent["currency"]},
    )
    response = post_webhook(client, event, "whsec_not_the_real_secret")
    assert_problem(response, 400, "webhook-rejected")
    stale = post_webhook(client, event, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600)
    assert_problem(stale, 400, "webhook-rejected")
    unsigned = client.post("/payments/stripe/webhook", content=b"{}")
    assert_problem(unsigned, 400, "webhook-rejected")
    assert buyer.order(int(str(order["id"])))["status"] == "awaiting_payment"
    assert count(runtime, ProcessedWebhook) == 0
    assert count(runtime, OutboxMessage) == 0


def test_duplicate_webhook_is_200_and_changes_nothing(
    client: TestClient, admin: Account, runtime: Runtime, worker: Worker
) -> None:
    buyer, order, intent = _awaiting_payment_order(client, admin)
    event = stripe_event(
        "evt_once",
        "payment_intent.succeeded",
        {"id": intent["id"], "amount": intent["amount"], "currency": intent["currency"]},
    )
    first = post_webhook(client, event, WEBHOOK_SECRET)
    assert first.status_code == 200 and first.json()["outcome"] == "processed"
    again = post_webhook(client, event, WEBHOOK_SECRET)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert count(runtime, OutboxMessage) == 1  # one mint queued, not two
    transitions = buyer.order(int(str(order["id"])))["transitions"]
    assert [t["to_status"] for t in transitions].count("paid") == 1


def test_webhook_with_wrong_amount_does_not_pay_and_queues_a_refund(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    buyer, order, intent = _awaiting_payment_order(client, admin)
    event = stripe_event(
        "evt_short",
        "payment_intent.succeeded",
        {"id": intent["id"], "amount": 1, "currency": intent["currency"]},
    )
    assert post_webhook(client, event, WEBHOOK_SECRET).status_code == 200
    final = buyer.order(int(str(order["id"])))
    assert final["status"] == "failed"  # no tickets for a wrong total; the seats go back
    assert final["failure_reason"] == "paid 1 eur, expected 2500 eur: refund queued"
    assert buyer.availability(int(str(final["event_id"])))["tiers"][0]["remaining"] == 3
    with Session(runtime.engine) as session:
        [message] = session.query(OutboxMessage).all()
        assert message.kind == "refund_order"


def test_sandbox_refuses_non_test_cards_and_wrong_secrets(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    _buyer, _order, intent = _awaiting_payment_order(client, admin)
    path = f"/sandbox/payment_intents/{intent['id']}/confirm"
    real_card = client.post(
        path, json={"client_secret": intent["client_secret"], "card_number": "4111 1111 1111 1112"}
    )
    assert_problem(real_card, 402, "card-rejected")
    wrong_secret = client.post(
        path, json={"client_secret": "pi_x_secret_y", "card_number": "4242424242424242"}
    )
    assert_problem(wrong_secret, 404, "payment-intent-not-found")
    assert count(runtime, OutboxMessage) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/events/12822568904284473344",
        "/events/0/availability",
        "/events?offset=95202759943920300544881590272",
    ],
)
def test_ids_beyond_64_bits_are_422_not_a_database_overflow(client: TestClient, path: str) -> None:
    # Found by schemathesis against the running service: these were 500s.
    assert_problem(client.get(path), 422, "validation-failed")


def test_cors_preflight_allows_only_configured_origins(
    settings: Settings, chain: ChainClient
) -> None:
    settings.cors_origins = ["http://localhost:5173"]
    with TestClient(create_app(settings, chain=chain), base_url="http://testserver") as client:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        }
        ok = client.options("/orders", headers={"Origin": "http://localhost:5173", **preflight})
        assert ok.headers["access-control-allow-origin"] == "http://localhost:5173"
        other = client.options("/orders", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


def test_openapi_documents_problem_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    conflict = spec["paths"]["/orders"]["post"]["responses"]["409"]
    schema = conflict["content"]["application/problem+json"]["schema"]
    assert {"type", "title", "status", "detail"} <= set(schema["properties"])


def test_non_ascii_secrets_and_signatures_are_4xx_not_500(
    client: TestClient, admin: Account, runtime: Runtime
) -> None:
    # Found in review: compare_digest raises TypeError on non-ASCII str, which was a 500.
    buyer, order, intent = _awaiting_payment_order(client, admin)
    token = "q1.1.é.1.1.é".encode()
    headers = {"Authorization": f"Bearer {buyer.token}".encode(), "X-Queue-Token": token}
    event_id = buyer.order(int(str(order["id"])))["event_id"]
    status = client.get(f"/events/{event_id}/queue/me", headers=headers)
    assert_problem(status, 401, "invalid-queue-token")
    confirm = client.post(
        f"/sandbox/payment_intents/{intent['id']}/confirm",
        json={"client_secret": "sécret", "card_number": "4242424242424242"},
    )
    assert_problem(confirm, 404, "payment-intent-not-found")
    forged = client.post(
        "/payments/stripe/webhook",
        content=b'{"id": "evt_x"}',
        headers={"Stripe-Signature": f"t={int(time.time())},v1=é".encode()},
    )
    assert_problem(forged, 400, "webhook-rejected")
    assert count(runtime, ProcessedWebhook) == 0


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_shape1", "type": "payment_intent.succeeded", "data": "not an object"},
        {"id": "evt_shape2", "type": "payment_intent.succeeded", "data": {"object": []}},
        {"id": "evt_" + "x" * 200, "type": "payment_intent.succeeded", "data": {}},
    ],
)
def test_signed_but_malformed_events_are_400_and_change_nothing(
    client: TestClient, runtime: Runtime, event: dict[str, object]
) -> None:
    assert_problem(post_webhook(client, event, WEBHOOK_SECRET), 400, "webhook-rejected")
    assert count(runtime, ProcessedWebhook) == 0
