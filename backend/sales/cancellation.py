"""Cancelling an event: the organizer's decision, and the worker's part in carrying it out.

In the request's one transaction (:func:`cancel_event`) the event records when, why and by
whom; open orders (held, awaiting payment) are cancelled and their seats released; paid card
orders (paid, minting, fulfilled) get their refund queued (``REFUND_ORDER``, carried out by
:mod:`backend.sales.refunds`); the contract's cancellation is queued (``CANCEL_ON_CHAIN``); and
the organizers' ``event.cancelled`` webhooks go out with it.

The worker then (:func:`cancel_on_chain`) cancels the contract, which invalidates every ticket
(no transfers, resale or check-in any more) and opens ``claimRefund`` to crypto buyers, whose
ether is in the contract's escrow; records the transaction; closes and pauses the waiting room;
and sweeps the event's orders once more for one placed in the instant of the cancellation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend import outbox
from backend.auth.service import Principal
from backend.catalog.errors import EventCancelled, EventNotFound, EventOver
from backend.catalog.models import Event, Tier
from backend.chain.client import ChainClient
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.notify import service as notify
from backend.queue.errors import NotEventOrganizer, QueueError
from backend.queue.service import WaitingRoom
from backend.queue.store import ControlChanges
from backend.resale import service as resale
from backend.sales import holder_refunds
from backend.sales import service as sales
from backend.sales.models import Order

log = logging.getLogger("fairtix.sales.cancellation")

CANCEL_ON_CHAIN = "cancel_event_on_chain"
"""Outbox kind: cancel the event's contract (payload ``{"event_id": ...}``)."""
CARD_PAID = (sales.PAID, sales.MINTING, sales.FULFILLED)


@dataclass(frozen=True)
class Settled:
    """What cancelling did to an event's orders."""

    orders_cancelled: int = 0
    card_refunds_queued: int = 0
    crypto_orders_claimable: int = 0
    card_orders_following_tickets: int = 0
    """Paid card orders with a ticket that changed hands or is still listed: their tickets'
    holders are refunded once the cancellation is mined (backend.sales.holder_refunds)."""


def cancel_event(
    session: Session, event_id: int, actor: Principal, reason: str, now: datetime | None = None
) -> tuple[Event, Settled]:
    """Cancel the event for its organizer (or an admin), in the caller's transaction."""
    now = now or utcnow()
    event = session.get(Event, event_id, with_for_update=True)
    if event is None:
        raise EventNotFound(event_id)
    if not actor.manages(event.organizer_address):
        raise NotEventOrganizer(event_id, actor.address)
    if event.cancelled_at is not None:
        raise EventCancelled(event.id, event.cancel_reason)
    if now >= event.ends_at:
        raise EventOver(event.id, event.ends_at)
    event.cancelled_at, event.cancel_reason, event.cancelled_by = now, reason, actor.address
    settled = settle_orders(session, event)
    resale.void_event_listings(session, event.id, "the event was cancelled")
    outbox.enqueue(session, CANCEL_ON_CHAIN, {"event_id": event.id})
    notify.event_cancelled(
        session,
        event_id=event.id,
        reason=reason,
        cancelled_at=now,
        cancelled_by=actor.address,
        orders_cancelled=settled.orders_cancelled,
        card_refunds_queued=settled.card_refunds_queued,
        crypto_orders_claimable=settled.crypto_orders_claimable,
        card_orders_following_tickets=settled.card_orders_following_tickets,
    )
    log.info(
        "event cancelled",
        extra={"event_id": event.id, "by": actor.address, **vars(settled)},
    )
    return event, settled


def settle_orders(session: Session, event: Event) -> Settled:
    """Cancel the open orders of a cancelled event and queue the refunds of its paid card
    orders. Idempotent: an order already dealt with is left alone."""
    # The tiers first: a concurrent order that already took seats holds its tier's row, so
    # this waits for it to commit and then sees its order below (PostgreSQL; SQLite has one
    # writer at a time anyway).
    session.execute(select(Tier.id).where(Tier.event_id == event.id).with_for_update())
    # Every order is locked, not only open and paid ones: a late card payment for an expired
    # order then either commits first (and is refunded here) or sees the cancellation.
    orders = session.scalars(
        select(Order).where(Order.event_id == event.id).order_by(Order.id).with_for_update()
    ).all()
    cancelled = refunds = claimable = following = 0
    cause = "event cancelled"
    following_ids = holder_refunds.orders_following_tickets(session, event.id, utcnow())
    for order in orders:
        if order.status in sales.OPEN_STATUSES:
            sales.cancel_order(session, order, cause)
            cancelled += 1
        elif order.payment_provider == sales.CRYPTO:
            if order.status == sales.FULFILLED:
                claimable += 1
        elif order.status in CARD_PAID and order.refund_due_at is None:
            if order.id in following_ids:
                # A ticket changed hands (or still can): its face value goes to whoever holds
                # it when the cancellation is mined, decided then (REFUND_HOLDERS).
                following += 1
            elif sales.queue_refund(session, order, cause):
                refunds += 1
    return Settled(cancelled, refunds, claimable, following)


def cancel_on_chain(
    sessions: sessionmaker[Session], chain: ChainClient, room: WaitingRoom, event_id: int
) -> None:
    """The worker's part (outbox ``CANCEL_ON_CHAIN``); safe to run again at any point."""
    with transaction(sessions) as session:
        event = session.get(Event, event_id)
        if event is None or event.cancelled_at is None:
            return
        contract, since = event.contract_address, event.deploy_block
        done = event.chain_cancelled_at is not None
    tx_hash = None if done else chain.cancel_event(contract, from_block=since)
    with transaction(sessions) as session:
        event = session.get(Event, event_id, with_for_update=True)
        assert event is not None
        if event.chain_cancelled_at is None:
            event.chain_cancelled_at, event.chain_cancel_tx_hash = utcnow(), tx_hash
            log.info("event cancelled on chain", extra={"event_id": event_id, "tx": tx_hash})
        late = settle_orders(session, event)
        # Who holds each ticket is final now: their refunds are decided once the indexer has
        # caught up with this block (the message waits for it). Queued on every run: it is
        # idempotent, and a crash right after the commit above must not lose it.
        outbox.enqueue(session, holder_refunds.REFUND_HOLDERS, {"event_id": event_id})
    if late.orders_cancelled or late.card_refunds_queued:
        log.warning(
            "orders caught after the cancellation", extra={"event_id": event_id, **vars(late)}
        )
    # Raises on a store outage, so the outbox retries until the waiting room is shut.
    close_queue(room, event_id)


def close_queue(room: WaitingRoom, event_id: int) -> None:
    """Take no new places and admit nobody more (the organizer's own queue controls)."""
    room.update_controls(event_id, ControlChanges(paused=True, closed=True))


def close_queue_soon(room: WaitingRoom, event_id: int) -> None:
    """:func:`close_queue` right after the cancellation commits, for the request's answer to
    hold; if the store is down, the worker's ``cancel_on_chain`` closes it when it is back."""
    try:
        close_queue(room, event_id)
    except QueueError as exc:
        log.warning(
            "queue not closed yet; the worker will retry",
            extra={"event_id": event_id, "error": str(exc)},
        )
