"""The whole sale on eth-tester: sign in -> queue -> admitted -> availability -> order -> card
paid -> minted -> tokenURI resolves through /ipfs."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from backend.chain.client import ChainClient
from backend.demo import DECLINE_CARD, SUCCESS_CARD
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in

pytestmark = pytest.mark.db


def test_card_sale_mints_tickets_whose_metadata_resolves(
    client: TestClient, worker: Worker, chain: ChainClient, admin: Account, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    assert chain.is_contract(event["contract_address"])

    buyer = admitted_buyer(client, event["id"])
    tier = buyer.availability(event["id"])["tiers"][0]
    assert tier["remaining"] == 3

    order = buyer.place_order(event["id"], tier["tier_id"], 2)
    assert order["status"] == "held"
    assert buyer.availability(event["id"])["tiers"][0]["remaining"] == 1

    checkout = buyer.checkout_card(order["id"])
    assert checkout["payment_intent"]["amount"] == 5000
    paid = buyer.pay_in_sandbox(checkout["payment_intent"], SUCCESS_CARD)
    assert paid["status"] == "succeeded"
    assert buyer.order(order["id"])["status"] == "awaiting_payment"  # only the webhook pays

    drain(worker)
    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    assert len(final["token_ids"]) == 2
    assert [t["to_status"] for t in final["transitions"]] == [
        "held",
        "awaiting_payment",
        "paid",
        "minting",
        "fulfilled",
    ]

    tickets = buyer.my_tickets()["tickets"]
    assert sorted(t["token_id"] for t in tickets) == sorted(final["token_ids"])
    for ticket in tickets:
        assert ticket["tx_hash"] == final["mint_tx_hash"]
        onchain_uri = chain.token_uri(event["contract_address"], ticket["token_id"])
        assert onchain_uri == ticket["metadata_uri"]
        assert chain.owner_of(event["contract_address"], ticket["token_id"]) == buyer.wallet.address
        response = client.get("/ipfs/" + onchain_uri.removeprefix("ipfs://"))
        assert response.status_code == 200
        metadata = response.json()
        assert metadata["attributes"][0] == {"trait_type": "Event", "value": "Test night"}
        # One metadata document per tier on chain; the seat label is off chain (/me/tickets).
        assert metadata["name"] == "Test night - GA"
        assert ticket["seat"].startswith("GA ")
        assert ticket["token_id"] >> 8 == order["id"]
        # No personal data on IPFS: not even the buyer's address.
        assert buyer.wallet.address.lower() not in json.dumps(metadata).lower()
        image = client.get("/ipfs/" + metadata["image"].removeprefix("ipfs://"))
        assert image.headers["content-type"].startswith("image/svg+xml")

    # The buyer's admission is done: it no longer holds a slot.
    assert buyer.queue_status(event["id"])["state"] == "done"


def test_declined_card_releases_the_hold(
    client: TestClient, worker: Worker, admin: Account
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer = admitted_buyer(client, event["id"])
    tier_id = event["tiers"][0]["id"]
    order = buyer.place_order(event["id"], tier_id, 3)
    assert buyer.availability(event["id"])["sold_out"] is True

    intent = buyer.checkout_card(order["id"])["payment_intent"]
    declined = buyer.pay_in_sandbox(intent, DECLINE_CARD)
    assert declined["status"] == "requires_payment_method"
    drain(worker)

    final = buyer.order(order["id"])
    assert final["status"] == "failed"
    assert final["failure_reason"] == "Your card was declined."
    assert final["token_ids"] == []
    assert buyer.availability(event["id"])["tiers"][0]["remaining"] == 3


def test_never_more_sold_than_supply(client: TestClient, worker: Worker, admin: Account) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=2)
    tier_id = event["tiers"][0]["id"]
    first, second, third = (admitted_buyer(client, event["id"]) for _ in range(3))
    first.place_order(event["id"], tier_id, 1)
    second.place_order(event["id"], tier_id, 1)
    response = client.post(
        "/orders",
        json={"event_id": event["id"], "tier_id": tier_id, "quantity": 1},
        headers={"Authorization": f"Bearer {third.token}"},
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/sold-out")
    availability = third.availability(event["id"])
    assert availability["sold_out"] is True
    assert availability["tiers"][0]["remaining"] == 0
