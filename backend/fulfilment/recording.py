"""What the end of a mint batch does to its orders, in one database transaction each: every
order ends fulfilled exactly once (``tickets.service.record_fulfilments``) or goes back to paid
with its mint queued again. Nothing here talks to the chain; callers bring what it said."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.catalog.models import Tier
from backend.chain.protocol import CardMint, token_ids
from backend.chain.types import MinedTx, MintResult
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.fulfilment.models import FAILED, MINED, SENT, MintBatch
from backend.notify import service as notify
from backend.observability import instruments
from backend.sales import service as sales
from backend.sales.models import Order, OrderTransition
from backend.tickets import metadata
from backend.tickets.service import Issued, record_fulfilments

log = logging.getLogger("fairtix.fulfilment")

# An order a batch may take: paid, or left minting by a batch that ended (or by a worker from
# before batches) and not claimed by an unfinished one.
MINTABLE = (sales.PAID, sales.MINTING)


def card_mints(session: Session, order_ids: Sequence[int]) -> list[CardMint]:
    """The packed orders of a batch, rebuilt from the order rows (which never change once paid)
    in the batch's order: the same calldata its first signing had."""
    rows = session.execute(
        select(Order, Tier).join(Tier, Tier.id == Order.tier_id).where(Order.id.in_(order_ids))
    )
    mints = {
        order.id: CardMint(order.id, tier.chain_tier, (order.buyer_address,) * order.quantity)
        for order, tier in rows
    }
    return [mints[order_id] for order_id in order_ids]


def open_batch_orders(session: Session) -> set[int]:
    """Order ids held by unfinished batches (of any signer): no one else may mint those."""
    held: set[int] = set()
    for order_ids in session.scalars(select(MintBatch.order_ids).where(MintBatch.status == SENT)):
        held.update(int(order_id) for order_id in order_ids)
    return held


def fulfil(
    session: Session,
    order: Order,
    tx_hash: str,
    cause: str,
    tier: Tier | None = None,
    receipt_skipped: str | None = None,
) -> None:
    """Records ``order``'s tickets as minted by ``tx_hash`` (token ids order id * 256 + i)."""
    tier = tier or session.get(Tier, order.tier_id)
    assert tier is not None
    no_receipt = {} if receipt_skipped is None else {order.id: receipt_skipped}
    fulfil_all(session, [order], tx_hash, cause, {tier.id: tier}, no_receipt)


def fulfil_all(
    session: Session,
    orders: Sequence[Order],
    tx_hash: str,
    cause: str,
    tiers: Mapping[int, Tier],
    receipts_skipped: Mapping[int, str],
) -> None:
    """fulfil for all of a batch's ``orders`` at once, their ``tiers`` read by the caller."""
    # Minted outside a stored batch (found on chain after a crash): numbered now.
    sales.number_seats(session, [order for order in orders if order.first_seat is None])
    issued = []
    for order in orders:
        assert order.first_seat is not None
        tier = tiers[order.tier_id]
        seats = range(order.first_seat, order.first_seat + order.quantity)
        issued.append(
            Issued(
                order,
                list(token_ids(order.id, order.quantity)),
                [metadata.seat_label_text(tier.name, seat) for seat in seats],
                tier.metadata_cid,
                receipts_skipped.get(order.id),
            )
        )
    record_fulfilments(session, issued, tx_hash, cause)


def record_mined(
    sessions: sessionmaker[Session], batch_id: int, mined: MinedTx, *, smtp_configured: bool
) -> int:
    """The batch's transaction succeeded: all its orders are minted. Returns how many orders
    this call fulfilled (0 if another worker recorded the batch first). ``smtp_configured``:
    whether receipts can be sent at all (else each is recorded as skipped)."""
    with transaction(sessions) as session:
        batch = session.get(MintBatch, batch_id, with_for_update=True)
        if batch is None or batch.status != SENT:
            return 0
        orders = _lock_orders(session, batch.order_ids)
        # Read once for the batch: a Session.get per order would miss the identity map (it
        # holds objects weakly) and autoflush what the batch wrote so far each time.
        tiers = _tiers_of(session, orders)
        no_receipt = notify.receipts_not_sent(session, orders, smtp_configured)
        waiting = []
        for order in orders:
            if order.status in MINTABLE:
                waiting.append(order)
            elif order.status != sales.FULFILLED:
                # (A fulfilled one was recorded by a recovery in between, from the same mint.)
                log.error(
                    "minted order is not waiting for its tickets",
                    extra={"order_id": order.id, "status": order.status, "batch": batch.id},
                )
        fulfil_all(session, waiting, mined.tx_hash, f"minted in {mined.tx_hash}", tiers, no_receipt)
        fulfilled = len(waiting)
        paid_at = _paid_at(session, [order.id for order in waiting])
        batch.status = MINED
        batch.tx_hash = mined.tx_hash
        batch.block_number = mined.block_number
        batch.gas_used = mined.gas_used
        batch.finished_at = utcnow()
        tickets, order_ids = batch.tickets, list(batch.order_ids)
    now = utcnow()
    for at in paid_at:
        instruments.MINT_LAG.observe(max((now - at).total_seconds(), 0.0))
    log.info(
        "mint batch mined",
        extra={
            "batch": batch_id,
            "order_ids": order_ids,
            "tx": mined.tx_hash,
            "block": mined.block_number,
            "orders": fulfilled,
            "tickets": tickets,
            "gas_used": mined.gas_used,
            "gas_per_ticket": mined.gas_used // max(tickets, 1),
        },
    )
    return fulfilled


def record_each(
    sessions: sessionmaker[Session],
    batch_id: int,
    minted: Mapping[int, MintResult],
    reason: str,
) -> None:
    """The batch ended without minting (its transaction reverted, or its nonce went to another
    transaction). ``minted`` holds the orders the chain says were minted anyway, by an earlier
    transaction: those are fulfilled from it; the rest go back to paid and are queued again."""
    with transaction(sessions) as session:
        batch = session.get(MintBatch, batch_id, with_for_update=True)
        if batch is None or batch.status != SENT:
            return
        requeued, recovered = [], []
        orders = _lock_orders(session, batch.order_ids)
        tiers = _tiers_of(session, orders)
        for order in orders:
            result = minted.get(order.id)
            if order.status not in MINTABLE:
                continue  # fulfilled meanwhile, or refunded after its event was cancelled
            if result is not None:
                cause = f"minted in {result.tx_hash} (recovered)"
                fulfil(session, order, result.tx_hash, cause, tiers[order.tier_id])
                recovered.append(order.id)
            elif order.status == sales.MINTING:
                sales.transition(session, order, sales.PAID, f"mint batch {batch.id} failed")
                outbox.enqueue(session, sales.MINT_ORDER, {"order_id": order.id})
                requeued.append(order.id)
        batch.status = FAILED
        batch.failure = reason[:2000]
        batch.finished_at = utcnow()
    log.warning(
        "mint batch failed",
        extra={
            "batch": batch_id,
            "reason": reason,
            "recovered_orders": recovered,
            "requeued_orders": requeued,
        },
    )


def record_recovered(
    sessions: sessionmaker[Session], order_id: int, result: MintResult, message_ids: Sequence[int]
) -> None:
    """An order found minted before any batch of ours took it (a worker that died after its
    mint and before recording it): fulfilled from that mint, its outbox messages done."""
    with transaction(sessions) as session:
        order = session.get(Order, order_id, with_for_update=True)
        if order is not None and order.status in MINTABLE:
            fulfil(session, order, result.tx_hash, f"minted in {result.tx_hash} (recovered)")
        outbox.complete_all(session, message_ids)
    log.info("mint recovered from chain", extra={"order_id": order_id, "tx": result.tx_hash})


def _paid_at(session: Session, order_ids: Sequence[int]) -> list[datetime]:
    """When each order was first paid (a failed batch sends it back to paid: the lag counts
    from the payment, not from the retry)."""
    if not order_ids:
        return []
    return list(
        session.scalars(
            select(func.min(OrderTransition.at))
            .where(OrderTransition.order_id.in_(order_ids), OrderTransition.to_status == sales.PAID)
            .group_by(OrderTransition.order_id)
        )
    )


def _lock_orders(session: Session, order_ids: Sequence[int]) -> list[Order]:
    rows = {
        order.id: order
        for order in session.scalars(
            select(Order).where(Order.id.in_(order_ids)).order_by(Order.id).with_for_update()
        )
    }
    return [rows[order_id] for order_id in order_ids if order_id in rows]


def _tiers_of(session: Session, orders: Sequence[Order]) -> dict[int, Tier]:
    tier_ids = {order.tier_id for order in orders}
    return {tier.id: tier for tier in session.scalars(select(Tier).where(Tier.id.in_(tier_ids)))}
