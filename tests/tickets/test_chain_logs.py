"""What the indexer's transfer, refund-claim and transfer-policy logs do, on eth-tester."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3

from backend.catalog.models import Event
from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.models import AppliedLog, ChainCursor
from backend.chain.protocol import CardMint
from backend.chain.types import Address, RefundLog, TxHash
from backend.db.engine import transaction
from backend.demo import SUCCESS_CARD
from backend.runtime import Runtime
from backend.tickets.chain_logs import UNKNOWN, TicketLogApplier
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.payments.wallets import fund
from tests.sales.onchain import send, transfer, w3_of

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


def test_the_transfer_policy_set_on_the_contract_is_what_the_api_shows(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    """The documented way to unlock transfers is ``setTransfersLocked`` from the organizer's
    wallet, straight to the contract: the indexer brings the API's ``transfers_locked`` along,
    and a reorg that orphans the change puts the old policy back."""
    event = make_event(signed_in(client, admin), supply=2)  # locked by default
    resale_policy = f"/events/{event['id']}/resale"
    assert client.get(resale_policy).json()["transfers_locked"] is True
    contract = w3_of(chain).eth.contract(
        address=Web3.to_checksum_address(event["contract_address"]),
        abi=load_artifact("TicketEvent").abi,
    )

    def set_locked(locked: bool) -> str:
        data = contract.encode_abi("setTransfersLocked", args=[locked])
        tx = {"to": event["contract_address"], "data": data, "value": "0x0"}
        receipt = send(chain, admin, {**tx, "chainId": chain.chain_id})
        return "0x" + bytes(receipt["transactionHash"]).hex()

    fund(w3_of(chain), admin.address)
    unlocked_tx = set_locked(False)
    drain(worker)
    assert client.get(resale_policy).json()["transfers_locked"] is False
    assert client.get(f"/events/{event['id']}").json()["transfers_locked"] is False
    locked_tx = set_locked(True)
    drain(worker)
    assert client.get(resale_policy).json()["transfers_locked"] is True

    # A reorg takes the logs back newest first: each puts back the policy it replaced.
    applier = TicketLogApplier()
    with transaction(runtime.sessions) as session:
        for tx_hash, expected in ((locked_tx, False), (unlocked_tx, True)):
            [applied] = session.scalars(
                select(AppliedLog).where(AppliedLog.tx_hash == tx_hash)
            ).all()
            assert applied.kind == "transfer_policy"
            applier.rollback(session, applied)
            session.delete(applied)
            session.flush()
            row = session.get(Event, event["id"])
            assert row is not None and row.transfers_locked is expected
