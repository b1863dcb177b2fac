"""The card rail with PayPal as the configured provider: the buy answers PayPal's approve_url,
and the approval's webhook captures the payment and settles the resale for the buyer's wallet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.chain.client import ChainClient
from backend.config import Settings
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import drain, signed_in
from tests.payments.paypal_fake import FakePayPal, running_fake_paypal
from tests.resale.cardmarket import buy_by_card, owner_on_chain, payouts, purchases
from tests.resale.market import holding, list_ticket

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


def deliver(client: TestClient, fake: FakePayPal, event: dict[str, Any]) -> str:
    response = client.post(
        "/payments/paypal/webhook", content=json.dumps(event), headers=fake.signed_headers(event)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["outcome"])


def test_a_resale_paid_through_paypal_is_captured_and_settled_for_the_buyer(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    fake: FakePayPal,
) -> None:
    market = holding(client, worker, chain, admin)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    buyer = signed_in(client)
    bought = buy_by_card(buyer, listed["id"])
    intent = bought["payment_intent"]
    assert intent["provider"] == "paypal" and intent["approve_url"]
    assert intent["amount"] == listed["price_cents"]

    fake.approve(intent["id"])
    approved = fake.event("CHECKOUT.ORDER.APPROVED", fake.view(fake.orders[intent["id"]]))
    assert deliver(client, fake, approved) == "processed"
    assert len(fake.captures) == 1
    assert deliver(client, fake, approved) == "duplicate"
    drain(worker)
    assert owner_on_chain(chain, event, token_id) == buyer.wallet.address.lower()
    assert [p.status for p in purchases(runtime)] == ["settled"]
    assert [(p.rail, p.status) for p in payouts(runtime)] == [("ether", "credited")]
