"""The organizer's webhooks for an event's life after the sale: event.cancelled when it is
called off, ticket.transferred when a ticket changes wallets on chain; signed and retried like
order.fulfilled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.chain.client import ChainClient
from backend.demo import SUCCESS_CARD, FairtixClient
from backend.notify.signing import verify_signature
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.notify.helpers import call, deliveries, make_due, register
from tests.notify.receiver import Receiver
from tests.sales.onchain import transfer

pytestmark = pytest.mark.db


def bodies(receiver: Receiver, kind: str, secret: str) -> list[dict[str, Any]]:
    """The ``kind`` notifications received, each checked against its signature; a retried
    one counts once, as receivers drop duplicates by event id."""
    found: dict[str, dict[str, Any]] = {}
    for request in receiver.requests:
        verify_signature(secret, request.headers["Fairtix-Signature"], request.body)
        body = json.loads(request.body)
        if body["type"] == kind:
            found[request.headers["Fairtix-Event-Id"]] = body
    return list(found.values())


def paid_order(
    client: TestClient, organizer: FairtixClient, card: str, **event_fields: Any
) -> tuple[FairtixClient, dict[str, Any], dict[str, Any]]:
    """A buyer who paid for 2 of the 3 seats of a new event of ``organizer`` with ``card``:
    the buyer, the event and the order."""
    event = make_event(organizer, supply=3, **event_fields)
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], card)
    return buyer, event, order


def test_cancelling_an_event_sends_a_signed_event_cancelled_webhook(
    client: TestClient, admin: LocalAccount, worker: Worker, receiver: Receiver, runtime: Runtime
) -> None:
    organizer = signed_in(client, admin)
    secret = register(organizer, receiver.url, ("event.cancelled",))["secret"]
    event = make_event(organizer, supply=3)
    holder = admitted_buyer(client, event["id"])
    holder.place_order(event["id"], event["tiers"][0]["id"], 1)
    receiver.answer(503, 200)  # the first attempt fails: the delivery is retried

    reason = {"reason": "The headliner is ill"}
    response = call(organizer, "POST", f"/events/{event['id']}/cancel", json=reason)
    assert response.status_code == 200
    drain(worker)
    make_due(runtime)
    drain(worker)

    [body] = bodies(receiver, "event.cancelled", secret)
    assert body["event_id"] == event["id"]
    data = body["data"]
    assert data["reason"] == "The headliner is ill"
    assert data["cancelled_by"] == organizer.wallet.address.lower()
    assert (data["orders_cancelled"], data["card_refunds_queued"]) == (1, 0)
    first, retry = receiver.requests
    assert first.headers["Fairtix-Event-Id"] == retry.headers["Fairtix-Event-Id"] == body["id"]
    [delivery] = deliveries(runtime)
    assert (delivery.kind, delivery.status, delivery.attempts) == (
        "event.cancelled",
        "delivered",
        2,
    )


def test_a_transfer_on_chain_moves_the_ticket_and_sends_ticket_transferred(
    client: TestClient,
    admin: LocalAccount,
    worker: Worker,
    receiver: Receiver,
    chain: ChainClient,
) -> None:
    organizer = signed_in(client, admin)
    secret = register(organizer, receiver.url, ("ticket.transferred",))["secret"]
    # Direct transfers allowed: new events lock them by default.
    buyer, event, order = paid_order(client, organizer, SUCCESS_CARD, transfers_locked=False)
    drain(worker)
    token_id = buyer.order(order["id"])["token_ids"][0]
    friend: LocalAccount = Account.create()

    receipt = transfer(chain, event["contract_address"], buyer.wallet, friend.address, token_id)
    drain(worker)

    [body] = bodies(receiver, "ticket.transferred", secret)
    assert body["event_id"] == event["id"]
    assert body["data"] == {
        "token_id": token_id,
        "order_id": order["id"],
        "from": buyer.wallet.address.lower(),
        "to": friend.address.lower(),
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "block_number": receipt["blockNumber"],
        "reverted": False,
    }
    assert [t["token_id"] for t in buyer.my_tickets()["tickets"]] == [token_id + 1]
    received = signed_in(client, friend).my_tickets()["tickets"]
    assert [(t["token_id"], t["order_id"]) for t in received] == [(token_id, order["id"])]
    # The order is the buyer's still: a transfer changes who holds the ticket, not who paid.
    assert buyer.order(order["id"])["token_ids"] == [token_id, token_id + 1]


def test_a_chargeback_is_recorded_on_the_order_and_sent_as_order_disputed(
    client: TestClient, admin: LocalAccount, worker: Worker, receiver: Receiver
) -> None:
    organizer = signed_in(client, admin)
    secret = register(organizer, receiver.url, ("order.disputed",))["secret"]

    # Stripe's test card that is charged, then disputed by its holder as fraudulent.
    buyer, event, order = paid_order(client, organizer, "4000 0000 0000 0259")
    drain(worker)

    final = buyer.order(order["id"])
    # The tickets are minted and stay: a dispute is the organizer's call, not the chain's.
    assert final["status"] == "fulfilled" and len(final["token_ids"]) == 2
    assert final["dispute"]["status"] == "needs_response"
    assert final["dispute"]["reason"] == "fraudulent"
    [body] = bodies(receiver, "order.disputed", secret)
    assert body["event_id"] == event["id"]
    data = body["data"]
    assert (data["order_id"], data["status"], data["reason"]) == (
        order["id"],
        "needs_response",
        "fraudulent",
    )
    assert (data["amount_cents"], data["currency"]) == (order["total_cents"], "eur")
    assert data["buyer_address"] == buyer.wallet.address.lower()
    # Sent when the dispute is reported, before or after the mint: the token ids are whatever
    # the order had by then (GET /orders/{id} has them for good).
    assert data["token_ids"] in ([], final["token_ids"])
