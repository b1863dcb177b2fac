"""A worker killed at any point leaves stored batches behind; the next pass carries each to its
end: sent again if the node never saw it, ended if another transaction took its nonce (its
orders read back from the chain or queued again). Nonces held by stored batches are never
handed out twice."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.chain.protocol import CardMint
from backend.chain.testing import eth_tester_web3
from backend.db.engine import transaction
from backend.fulfilment.models import FAILED, MINED, SENT, MintBatch
from backend.fulfilment.nonces import NonceFloor
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.fulfilment.factories import create_event, paid_orders
from tests.fulfilment.helpers import batches, causes, crash_after_storing, mint_txs, orders
from tests.helpers import count, drain, insert_event

pytestmark = pytest.mark.db


def test_batch_stored_but_never_sent_is_sent_after_a_restart(
    runtime: Runtime, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [2, 1])
    stored = crash_after_storing(runtime, monkeypatch)
    assert {o.status for o in orders(runtime, order_ids)} == {sales.MINTING}

    drain(worker)

    [batch] = batches(runtime)
    [tx] = mint_txs(runtime, batch.id)
    assert (batch.id, batch.status, batch.tx_hash) == (stored.id, MINED, tx.tx_hash)
    assert {o.mint_tx_hash for o in orders(runtime, order_ids)} == {tx.tx_hash}
    assert count(runtime, Ticket) == 3


def test_a_batch_signed_with_a_rotated_out_key_is_still_carried_to_its_end(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [2, 1])
    stored = crash_after_storing(runtime, monkeypatch)
    old_signer = runtime.chain.signer_address.lower()
    # The operator rotates the minter key: the next worker signs with another one. It must
    # still finish the batch the old key stored: sent again as stored, recorded when mined.
    rotated = replace(runtime, chain=ChainClient(runtime.chain._w3, Account.create()))

    drain(Worker(rotated, http=client))

    [batch] = batches(runtime)
    [tx] = mint_txs(runtime, batch.id)
    assert (batch.id, batch.signer, batch.status) == (stored.id, old_signer, MINED)
    assert [o.status for o in orders(runtime, order_ids)] == [sales.FULFILLED] * 2
    assert {o.mint_tx_hash for o in orders(runtime, order_ids)} == {tx.tx_hash}
    assert count(runtime, Ticket) == 3


def test_nonce_taken_by_another_transaction_ends_the_batch_and_requeues_its_orders(
    runtime: Runtime, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = create_event(runtime)
    first, taken, third = paid_orders(runtime, event_id, [1, 2, 1])
    stored = crash_after_storing(runtime, monkeypatch)
    # Another sender with the key that knows nothing of stored batches (another process, or
    # an older version) takes the nonce, and happens to mint one of the batch's orders with it.
    with transaction(runtime.sessions) as session:
        order = session.get(Order, taken)
        event = session.get(Event, event_id)
        assert order is not None and event is not None
        mint = CardMint(taken, 0, (order.buyer_address,) * 2)
    stranger = ChainClient(runtime.chain._w3, runtime.chain._signer)
    landed = stranger.mint_batch(event.contract_address, [mint])

    drain(worker)

    ended, again = batches(runtime)
    assert ended.id == stored.id and ended.status == FAILED
    assert ended.failure == f"nonce {stored.nonce} was used by another transaction"
    assert (again.status, again.order_ids, again.nonce) == (MINED, [first, third], stored.nonce + 1)
    hashes = [o.mint_tx_hash for o in orders(runtime, [first, taken, third])]
    assert hashes == [again.tx_hash, landed.tx_hash, again.tx_hash]
    assert f"mint batch {stored.id} failed" in causes(runtime, first)
    assert count(runtime, Ticket) == 4


def test_nonce_floor_counts_only_unfinished_batches(runtime: Runtime) -> None:
    floor = NonceFloor(runtime.engine, runtime.chain)
    with floor() as lowest:
        assert lowest == 0
    signer = runtime.chain.signer_address.lower()
    with transaction(runtime.sessions) as session:
        event = insert_event(session, sale_opens_at=datetime.now(UTC), max_admitted=10, supply=10)
        for nonce, status in ((7, SENT), (9, FAILED), (8, MINED)):
            session.add(batch_row(event, runtime.chain.chain_id, signer, nonce, status))
        session.add(batch_row(event, runtime.chain.chain_id, "0x" + "00" * 20, 50, SENT))

    with floor() as lowest:
        assert lowest == 8


def batch_row(event: Event, chain_id: int, signer: str, nonce: int, status: str) -> MintBatch:
    return MintBatch(
        chain_id=chain_id,
        signer=signer,
        nonce=nonce,
        event_id=event.id,
        contract_address=event.contract_address,
        order_ids=[],
        tickets=0,
        gas_limit=0,
        status=status,
    )


def test_nonce_floor_does_not_wait_for_the_callers_own_write_transaction(
    runtime: Runtime,
) -> None:
    # create_event deploys inside its transaction; on SQLite that transaction holds the write
    # lock, and a floor read that waited for it would wait for itself.
    with transaction(runtime.sessions) as session:
        session.execute(select(1))
        started = time.monotonic()
        with NonceFloor(runtime.engine, runtime.chain)() as lowest:
            assert lowest == 0
        assert time.monotonic() - started < 5


def test_next_nonce_moves_the_counter_only_when_the_block_ends_normally() -> None:
    w3, signer = eth_tester_web3()
    client = ChainClient(w3, signer)
    pending = w3.eth.get_transaction_count(signer.address, "pending")

    with pytest.raises(RuntimeError), client.next_nonce(floor=pending + 3) as nonce:
        assert nonce == pending + 3
        raise RuntimeError("the batch was not stored")
    with client.next_nonce() as nonce:
        assert nonce == pending
    with client.next_nonce() as nonce:
        assert nonce == pending + 1  # the node has not seen the first: the counter covers it
