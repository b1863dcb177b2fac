"""Card mints go out in batches: several paid orders of one event in one transaction, never more
tickets than configured, and an order minted before a crash is read back, not minted again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend import outbox
from backend.catalog.models import Event, Tier
from backend.chain.protocol import CardMint
from backend.db.engine import transaction
from backend.fulfilment.models import FAILED, MINED
from backend.outbox import OutboxMessage
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket
from backend.tickets.service import token_ids_of
from backend.worker import Worker
from tests.fulfilment.factories import create_event, paid_orders
from tests.fulfilment.helpers import batches, orders
from tests.helpers import count, drain

pytestmark = pytest.mark.db


def mint_directly(runtime: Runtime, order_id: int) -> str:
    """Mints one order outside the worker, as a worker that died before recording it did."""
    with transaction(runtime.sessions) as session:
        order = session.get(Order, order_id)
        assert order is not None
        event = session.get(Event, order.event_id)
        tier = session.get(Tier, order.tier_id)
        assert event is not None and tier is not None
        mint = CardMint(order.id, tier.chain_tier, (order.buyer_address,) * order.quantity)
        contract = event.contract_address
    return runtime.chain.mint_batch(contract, [mint]).tx_hash


def test_paid_orders_of_one_event_are_minted_in_one_transaction(
    runtime: Runtime, worker: Worker
) -> None:
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [1, 3, 2, 4])

    drain(worker)

    [batch] = batches(runtime)
    assert (batch.status, batch.order_ids, batch.tickets) == (MINED, order_ids, 10)
    minted = orders(runtime, order_ids)
    assert {o.status for o in minted} == {sales.FULFILLED}
    assert {o.mint_tx_hash for o in minted} == {batch.tx_hash}
    assert token_ids_of_all(runtime, order_ids) == [
        [(o.id << 8) + i for i in range(o.quantity)] for o in minted
    ]
    assert runtime.chain.owner_of(batch.contract_address, order_ids[1] << 8).lower() == (
        minted[1].buyer_address
    )


def token_ids_of_all(runtime: Runtime, order_ids: list[int]) -> list[list[int]]:
    with transaction(runtime.sessions) as session:
        return [token_ids_of(session, order_id) for order_id in order_ids]


def test_a_batch_holds_at_most_the_configured_tickets(runtime: Runtime, worker: Worker) -> None:
    runtime.settings.mint_batch_max_recipients = 5
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [2, 2, 1, 3, 4, 6])

    drain(Worker(runtime))

    assert [(b.order_ids, b.tickets) for b in batches(runtime)] == [
        (order_ids[0:3], 5),
        (order_ids[3:4], 3),
        (order_ids[4:5], 4),
        (order_ids[5:6], 6),  # an order is never split: one larger than the limit goes alone
    ]
    assert {o.status for o in orders(runtime, order_ids)} == {sales.FULFILLED}
    assert count(runtime, Ticket) == 18


def test_orders_of_two_events_go_out_in_a_transaction_each(
    runtime: Runtime, worker: Worker
) -> None:
    first, second = create_event(runtime, name="First"), create_event(runtime, name="Second")
    mixed = paid_orders(runtime, first, [1]) + paid_orders(runtime, second, [2])
    mixed += paid_orders(runtime, first, [3])

    drain(worker)

    by_event = {b.event_id: b for b in batches(runtime)}
    assert by_event[first].order_ids == [mixed[0], mixed[2]]
    assert by_event[second].order_ids == [mixed[1]]
    assert {b.status for b in by_event.values()} == {MINED}


def test_order_minted_before_a_crash_is_read_back_and_the_rest_batched(
    runtime: Runtime, worker: Worker
) -> None:
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [2, 1, 3])
    landed = mint_directly(runtime, order_ids[1])

    drain(worker)

    [batch] = batches(runtime)
    assert batch.order_ids == [order_ids[0], order_ids[2]]
    first, recovered, third = orders(runtime, order_ids)
    assert recovered.status == sales.FULFILLED and recovered.mint_tx_hash == landed
    assert first.mint_tx_hash == third.mint_tx_hash == batch.tx_hash
    assert count(runtime, Ticket) == 6


def test_batch_reverted_on_chain_reads_back_minted_orders_and_requeues_the_rest(
    runtime: Runtime, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = create_event(runtime)
    order_ids = paid_orders(runtime, event_id, [1, 2, 1])
    # Estimation would notice the minted order and leave it out; without it the batch is sent
    # and reverts with OrderAlreadyMinted, as when a mint lands between estimate and inclusion.
    monkeypatch.setattr(runtime.chain, "estimate_mint_batch", lambda *_args: 1_000_000)
    landed = mint_directly(runtime, order_ids[0])

    drain(worker)

    failed, retried = batches(runtime)
    assert (failed.status, retried.status) == (FAILED, MINED)
    assert failed.order_ids == order_ids and "OrderAlreadyMinted" in (failed.failure or "")
    assert retried.order_ids == order_ids[1:]
    minted = orders(runtime, order_ids)
    assert [o.mint_tx_hash for o in minted] == [landed, retried.tx_hash, retried.tx_hash]
    assert {o.status for o in minted} == {sales.FULFILLED}
    assert count(runtime, Ticket) == 4


def test_order_the_contract_refuses_does_not_hold_back_the_others(
    runtime: Runtime, worker: Worker
) -> None:
    event_id = create_event(runtime, per_wallet_limit=2)
    buyer = "0x" + "ab" * 20
    mine = paid_orders(runtime, event_id, [2, 1], buyer=buyer)  # three tickets, limit two
    others = paid_orders(runtime, event_id, [1, 1])

    drain(worker)

    assert [o.status for o in orders(runtime, mine + others)] == [
        sales.FULFILLED,
        sales.PAID,
        sales.FULFILLED,
        sales.FULFILLED,
    ]
    with transaction(runtime.sessions) as session:
        [waiting] = session.scalars(select(OutboxMessage).where(OutboxMessage.done_at.is_(None)))
    assert waiting.payload == {"order_id": mine[1]}
    assert "WalletLimitExceeded" in (waiting.last_error or "")


def test_a_repeated_mint_message_for_a_fulfilled_order_changes_nothing(
    runtime: Runtime, worker: Worker
) -> None:
    event_id = create_event(runtime)
    [order_id] = paid_orders(runtime, event_id, [3])
    drain(worker)
    with transaction(runtime.sessions) as session:
        outbox.enqueue(session, sales.MINT_ORDER, {"order_id": order_id})

    drain(worker)

    assert len(batches(runtime)) == 1
    assert count(runtime, Ticket) == 3
