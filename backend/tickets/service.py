"""Recording issued tickets (card mints: backend.fulfilment; crypto purchases: the indexer) and
listing a wallet's tickets."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.notify import service as notify
from backend.queue import service as queue
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.tickets")


def record_fulfilment(
    session: Session,
    order: Order,
    token_ids: list[int],
    seat_labels: list[str],
    metadata_cid: str,
    tx_hash: str,
    cause: str,
    *,
    receipt_skipped: str | None = None,
) -> None:
    """Records an order's tickets and marks it fulfilled, in the caller's transaction: the one
    ending of both a card mint and a crypto purchase, with the queue slot freed and the
    organizers' webhooks and the buyer's receipt queued alongside (or, with
    ``receipt_skipped``, the receipt recorded as not sent)."""
    for token_id, seat in zip(token_ids, seat_labels, strict=True):
        session.add(
            Ticket(
                event_id=order.event_id,
                tier_id=order.tier_id,
                order_id=order.id,
                token_id=token_id,
                owner_address=order.buyer_address,
                seat=seat,
                metadata_cid=metadata_cid,
                tx_hash=tx_hash,
            )
        )
    order.mint_tx_hash = tx_hash
    sales.transition(session, order, sales.FULFILLED, cause)
    queue.finish(session, order.event_id, order.buyer_address)
    notify.order_fulfilled(session, order, token_ids, tx_hash, receipt_skipped=receipt_skipped)


def tickets_of(session: Session, wallet: str) -> list[tuple[Ticket, Event]]:
    rows = session.execute(
        select(Ticket, Event)
        .join(Event, Event.id == Ticket.event_id)
        # A refunded ticket was burned: it is in nobody's wallet any more.
        .where(Ticket.owner_address == wallet.lower(), Ticket.refund_tx_hash.is_(None))
        .order_by(Ticket.id)
    )
    return [(ticket, event) for ticket, event in rows]


def token_ids_of(session: Session, order_id: int) -> list[int]:
    return token_ids_by_order(session, [order_id]).get(order_id, [])


def token_ids_by_order(session: Session, order_ids: list[int]) -> dict[int, list[int]]:
    """Each order's token ids, ascending, in one query for a page of orders."""
    found: dict[int, list[int]] = {}
    rows = session.execute(
        select(Ticket.order_id, Ticket.token_id)
        .where(Ticket.order_id.in_(order_ids))
        .order_by(Ticket.token_id)
    )
    for order_id, token_id in rows:
        found.setdefault(order_id, []).append(token_id)
    return found
