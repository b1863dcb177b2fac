"""A crypto sale through the HTTP API on eth-tester: queue -> order -> crypto checkout -> the
buyer's wallet sends the transaction -> the worker's indexer sees it -> fulfilled, tickets
listed."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3

from backend.chain.client import ChainClient
from backend.notify.service import SEND_RECEIPT
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.payments.wallets import buy, fund

pytestmark = pytest.mark.db


def test_crypto_sale_fulfils_the_order_the_buyer_paid_on_chain(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3)
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 2)

    payment = buyer.checkout_crypto(order["id"])["crypto"]
    drain(worker)
    assert buyer.order(order["id"])["status"] == "awaiting_payment"  # nothing paid yet

    w3: Web3 = chain._w3
    fund(w3, buyer.wallet.address)
    receipt = buy(w3, buyer.wallet, payment["transaction"])
    drain(worker)

    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    tx_hash = receipt["transactionHash"].to_0x_hex()
    assert final["mint_tx_hash"] == tx_hash
    assert final["token_ids"] == [order["id"] * 256, order["id"] * 256 + 1]
    tickets = buyer.my_tickets()["tickets"]
    assert sorted(t["token_id"] for t in tickets) == final["token_ids"]
    for ticket in tickets:
        assert ticket["tx_hash"] == tx_hash
        assert chain.owner_of(event["contract_address"], ticket["token_id"]) == (
            buyer.wallet.address
        )
        assert (
            chain.token_uri(event["contract_address"], ticket["token_id"])
            == (ticket["metadata_uri"])
        )
    assert buyer.availability(event["id"])["tiers"][0]["remaining"] == 1
    assert buyer.queue_status(event["id"])["state"] == "done"
    # Crypto fulfilment notifies like a card mint does: its receipt went through the outbox.
    with Session(runtime.engine) as session:
        receipts = session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == SEND_RECEIPT)
        ).all()
    assert [m.payload["order_id"] for m in receipts] == [order["id"]]
