"""Crypto checkout on eth-tester: the permit and transaction checkout returns buy tickets through
the contract, only for the order's buyer; the indexer applies each purchase once, at depth."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import ContractCustomError

from backend.catalog.models import Event
from backend.chain import indexer as indexer_module
from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.errors import RevertDecoder
from backend.chain.indexer import Indexer
from backend.chain.models import AppliedLog, ChainCursor
from backend.db.base import utcnow
from backend.demo import FairtixClient
from backend.outbox import OutboxMessage
from backend.payments.crypto import PurchaseApplier
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.helpers import admitted_buyer, count, drain, make_event, signed_in
from tests.payments.wallets import buy, fund, sign_checkout_tx

pytestmark = pytest.mark.db

PRICE_CENTS = 2500


def w3_of(chain: ChainClient) -> Web3:
    w3: Web3 = chain._w3
    return w3


def crypto_order(
    client: TestClient, admin: LocalAccount, quantity: int = 2
) -> tuple[FairtixClient, dict[str, Any], dict[str, Any]]:
    """An admitted buyer's held order and its event."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3, price_cents=PRICE_CENTS)
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], quantity)
    return buyer, event, order


def test_crypto_checkout_returns_a_permit_signed_by_the_backend(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    buyer, event, order = crypto_order(client, admin)

    checkout = buyer.checkout_crypto(order["id"])

    assert checkout["status"] == "awaiting_payment"
    assert checkout["payment_intent"] is None
    payment = checkout["crypto"]
    typed = payment["typed_data"]
    assert typed["domain"] == {
        "name": "fairtix TicketEvent",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": event["contract_address"],
    }
    message = typed["message"]
    assert message["buyer"] == buyer.wallet.address
    assert message["nonce"] == str(order["id"])
    assert message["quantity"] == "2"
    assert message["unitPrice"] == str(event["tiers"][0]["price_wei"])
    assert payment["total_wei"] == str(2 * int(message["unitPrice"]))
    assert int(payment["transaction"]["value"], 16) == int(payment["total_wei"])
    assert payment["transaction"]["to"] == event["contract_address"]
    signable = encode_typed_data(full_message=typed | {"message": _ints(message)})
    assert Account.recover_message(signable, signature=payment["signature"]) == (
        chain.signer_address
    )
    assert buyer.order(order["id"])["status"] == "awaiting_payment"


def test_crypto_checkout_transaction_buys_the_tickets_on_chain(
    client: TestClient, chain: ChainClient, admin: LocalAccount
) -> None:
    buyer, event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)

    receipt = buy(w3, buyer.wallet, payment["transaction"])

    block = receipt["blockNumber"]
    purchases = chain.purchases(event["contract_address"], block, block)
    assert [(p.nonce, p.buyer, p.quantity) for p in purchases] == [
        (order["id"], buyer.wallet.address, 2)
    ]
    assert purchases[0].paid == int(payment["total_wei"])
    for index in range(2):
        token_id = order["id"] * 256 + index
        assert chain.owner_of(event["contract_address"], token_id) == buyer.wallet.address


def test_crypto_checkout_transaction_from_another_wallet_reverts(
    client: TestClient, chain: ChainClient, admin: LocalAccount
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    thief: LocalAccount = Account.create()
    fund(w3, thief.address)

    with pytest.raises(ContractCustomError) as raised:
        sign_checkout_tx(w3, thief, payment["transaction"])

    decoder = RevertDecoder([load_artifact("TicketEvent").abi])
    error = decoder.decode(bytes.fromhex(str(raised.value.data)[2:]))
    assert error.name == "PermitNotForCaller"
    assert error.error_args == (buyer.wallet.address, thief.address)


def test_crypto_checkout_repeated_returns_the_same_permit(
    client: TestClient, admin: LocalAccount
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    first = buyer.checkout_crypto(order["id"])
    held_until = buyer.order(order["id"])["hold_expires_at"]

    second = buyer.checkout_crypto(order["id"])

    assert second == first
    assert buyer.order(order["id"])["hold_expires_at"] == held_until
    assert first["crypto"]["deadline"] > 0


def test_a_hold_with_crypto_checkout_returns_the_permit_in_the_same_request(
    client: TestClient, admin: LocalAccount
) -> None:
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=3, price_cents=PRICE_CENTS)
    buyer = admitted_buyer(client, event["id"])

    placed = buyer.place_order(event["id"], event["tiers"][0]["id"], 2, checkout="crypto")

    assert placed["checkout_problem"] is None and placed["status"] == "awaiting_payment"
    assert placed["refund"]["method"] == "crypto"
    # The same permit a checkout of the order returns, and the order as GET reads it.
    assert buyer.checkout_crypto(placed["id"]) == placed["checkout"]
    stored = buyer.order(placed["id"])
    assert {**stored, "checkout": placed["checkout"], "checkout_problem": None} == placed


def test_card_checkout_after_crypto_checkout_is_a_conflict(
    client: TestClient, admin: LocalAccount
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    buyer.checkout_crypto(order["id"])

    response = client.post(
        f"/orders/{order['id']}/checkout",
        json={"method": "card"},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/payment-method-conflict")


def test_crypto_checkout_after_card_checkout_is_a_conflict(
    client: TestClient, admin: LocalAccount
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    buyer.checkout_card(order["id"])

    response = client.post(
        f"/orders/{order['id']}/checkout",
        json={"method": "crypto"},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )

    assert response.status_code == 409
    assert response.json()["type"].endswith("/payment-method-conflict")


def test_crypto_checkout_of_another_wallets_order_is_not_found(
    client: TestClient, admin: LocalAccount
) -> None:
    _buyer, _event, order = crypto_order(client, admin)
    other = signed_in(client)

    response = client.post(
        f"/orders/{order['id']}/checkout",
        json={"method": "crypto"},
        headers={"Authorization": f"Bearer {other.token}"},
    )

    assert response.status_code == 404
    assert response.json()["type"].endswith("/order-not-found")


def test_crypto_checkout_of_a_cancelled_order_is_not_payable(
    client: TestClient, admin: LocalAccount
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    client.post(f"/orders/{order['id']}/cancel", headers={"Authorization": f"Bearer {buyer.token}"})

    response = client.post(
        f"/orders/{order['id']}/checkout",
        json={"method": "crypto"},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )

    assert response.status_code == 409
    assert response.json()["type"].endswith("/order-not-payable")


def test_indexer_run_twice_applies_a_purchase_once(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime, worker: Worker
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    buy(w3, buyer.wallet, payment["transaction"])

    assert worker.indexer.run_once() == 1
    # Forget how far it got: the same logs are read again, and recognised.
    with Session(runtime.engine) as session, session.begin():
        session.execute(delete(ChainCursor))
    assert worker.indexer.run_once() == 0

    assert count(runtime, AppliedLog) == 1
    assert count(runtime, Ticket) == 2
    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    assert [t["to_status"] for t in final["transitions"]] == [
        "held",
        "awaiting_payment",
        "paid",
        "fulfilled",
    ]


def test_indexer_waits_for_the_confirmation_depth(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    deep = ChainClient(w3, chain._signer, factory_address=chain.factory_address, confirmations=2)
    indexer = Indexer(runtime.sessions, deep, PurchaseApplier())

    buy(w3, buyer.wallet, payment["transaction"])
    assert indexer.run_once() == 0
    w3.testing.mine(1)
    assert indexer.run_once() == 0
    assert buyer.order(order["id"])["status"] == "awaiting_payment"

    w3.testing.mine(1)
    assert indexer.run_once() == 1
    assert buyer.order(order["id"])["status"] == "fulfilled"


def test_indexer_records_an_unknown_nonce_and_changes_nothing(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime, worker: Worker
) -> None:
    buyer, event, order = crypto_order(client, admin)
    # A permit our backend signed for an order id this database never had.
    unknown = order["id"] + 1000
    message, signature = chain.sign_purchase_permit(
        event["contract_address"], buyer.wallet.address, 0, 1, 10**9, unknown, 2**40
    )
    tx = chain.purchase_transaction(event["contract_address"], message, signature, 10**9)
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    buy(w3, buyer.wallet, {**tx, "value": hex(tx["value"])})

    assert worker.indexer.run_once() == 1

    with Session(runtime.engine) as session:
        applied = session.query(AppliedLog).one()
        assert (applied.nonce, applied.outcome) == (unknown, "unknown")
    assert count(runtime, Ticket) == 0
    assert buyer.order(order["id"])["status"] == "held"


def _ints(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "buyer" else int(v) for k, v in message.items()}


def test_indexer_fulfils_a_purchase_seen_after_the_hold_expired_while_seats_remain(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime, worker: Worker
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    buy(w3, buyer.wallet, payment["transaction"])
    # Mined in time, but the sweep expires the hold before the indexer reads the block.
    with Session(runtime.engine) as session, session.begin():
        held = session.get(Order, order["id"])
        assert held is not None
        held.hold_expires_at = utcnow() - timedelta(seconds=1)
    with Session(runtime.engine) as session, session.begin():
        assert sales.release_expired_holds(session) == 1

    assert worker.indexer.run_once() == 1

    final = buyer.order(order["id"])
    assert final["status"] == "fulfilled"
    assert [t["to_status"] for t in final["transitions"]][-3:] == ["expired", "paid", "fulfilled"]
    assert len(final["token_ids"]) == 2


def test_indexer_records_a_purchase_for_a_cancelled_order_as_paid_late(
    client: TestClient, chain: ChainClient, admin: LocalAccount, runtime: Runtime, worker: Worker
) -> None:
    buyer, _event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    buyer._call("POST", f"/orders/{order['id']}/cancel")
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    buy(w3, buyer.wallet, payment["transaction"])

    assert worker.indexer.run_once() == 1
    drain(worker)

    final = buyer.order(order["id"])
    assert final["status"] == "cancelled"
    assert final["token_ids"] == []
    assert "refundable on chain only" in final["failure_reason"]
    with Session(runtime.engine) as session:
        assert session.query(AppliedLog).one().outcome == "paid_late"
        # Nothing is pushed to a card provider for ether held in the contract's escrow.
        assert session.query(OutboxMessage).filter_by(kind=sales.REFUND_ORDER).count() == 0


def test_indexer_reads_bounded_ranges_and_resumes_on_the_next_pass(
    client: TestClient,
    chain: ChainClient,
    admin: LocalAccount,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buyer, event, order = crypto_order(client, admin)
    payment = buyer.checkout_crypto(order["id"])["crypto"]
    w3 = w3_of(chain)
    fund(w3, buyer.wallet.address)
    receipt = buy(w3, buyer.wallet, payment["transaction"])
    monkeypatch.setattr(indexer_module, "MAX_RANGES_PER_PASS", 1)
    indexer = Indexer(runtime.sessions, chain, PurchaseApplier(), max_blocks=1)

    passes = 0
    while buyer.order(order["id"])["status"] != "fulfilled":
        indexer.run_once()
        passes += 1
        assert passes <= receipt["blockNumber"]

    with Session(runtime.engine) as session:
        row = session.get(Event, event["id"])
        cursor = session.get(ChainCursor, chain.chain_id)
        assert row is not None and cursor is not None
        # One block per pass, from the event's deployment block to the purchase's.
        assert passes == receipt["blockNumber"] - row.deploy_block + 1
        assert cursor.block_number == receipt["blockNumber"]
