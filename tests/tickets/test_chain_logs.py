"""What the indexer's transfer and refund-claim logs do to tickets, on eth-tester."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog, ChainCursor
from backend.chain.protocol import CardMint
from backend.chain.types import Address, RefundLog, TxHash
from backend.demo import SUCCESS_CARD
from backend.runtime import Runtime
from backend.tickets.chain_logs import UNKNOWN, TicketLogApplier
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.sales.onchain import transfer

pytestmark = pytest.mark.db


def test_a_transfer_seen_before_its_mint_is_recorded_waits_for_the_record(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    # Direct transfers allowed: new events lock them by default.
    event = make_event(signed_in(client, admin), supply=3, transfers_locked=False)
    buyer = admitted_buyer(client, event["id"])
    order = buyer.place_order(event["id"], event["tiers"][0]["id"], 1)
    buyer.pay_in_sandbox(buyer.checkout_card(order["id"])["payment_intent"], SUCCESS_CARD)
    worker._work_outbox()  # the sandbox's webhook: paid, its mint queued
    assert buyer.order(order["id"])["status"] == "paid"
    # The mint lands on chain but is not recorded (a worker that died right after sending it),
    # and the buyer passes the ticket on before any worker is back.
    contract, token_id = event["contract_address"], order["id"] * 256
    chain.mint_batch(contract, [CardMint(order["id"], 0, (buyer.wallet.address,))])
    friend: LocalAccount = Account.create()
    transfer(chain, contract, buyer.wallet, friend.address, token_id)

    assert worker.indexer.run_once() == 0
    with Session(runtime.engine) as session:
        assert session.query(AppliedLog).count() == 0
        cursor = session.get(ChainCursor, chain.chain_id)
        assert cursor is None or cursor.block_number < chain.block_number()

    drain(worker)  # the mint is recovered from the chain, then the transfer applies

    assert buyer.order(order["id"])["status"] == "fulfilled"
    received = signed_in(client, friend).my_tickets()["tickets"]
    assert [t["token_id"] for t in received] == [token_id]
    assert buyer.my_tickets()["tickets"] == []


def test_a_refund_claim_for_a_token_of_no_crypto_order_changes_nothing(
    runtime: Runtime,
) -> None:
    claim = RefundLog(
        address=Address("0x" + "ab" * 20),
        block_number=7,
        block_hash="0x" + "11" * 32,
        tx_hash=TxHash("0x" + "22" * 32),
        log_index=0,
        token_id=42 * 256,
        owner=Address("0x" + "cd" * 20),
        amount=10**9,
    )
    with Session(runtime.engine) as session, session.begin():
        assert TicketLogApplier().apply(session, claim) == UNKNOWN
