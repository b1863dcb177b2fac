"""Recording issued tickets (card mints: backend.fulfilment; crypto purchases: the indexer) and
listing a wallet's tickets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.db.base import utcnow
from backend.notify import service as notify
from backend.queue import service as queue
from backend.sales import service as sales
from backend.sales.models import Order
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.tickets")


@dataclass(frozen=True)
class Issued:
    """An order's tickets as minted: what record_fulfilments records of it."""

    order: Order
    token_ids: list[int]
    seat_labels: list[str]
    metadata_cid: str
    receipt_skipped: str | None = None
    """Why no receipt will be sent, known already (see notify.receipts_not_sent)."""


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
    """record_fulfilments for one order."""
    issued = Issued(order, token_ids, seat_labels, metadata_cid, receipt_skipped)
    record_fulfilments(session, [issued], tx_hash, cause)


def record_fulfilments(
    session: Session, issued: Sequence[Issued], tx_hash: str, cause: str
) -> None:
    """Records orders' tickets and marks them fulfilled, in the caller's transaction: the one
    ending of both a card mint batch and a crypto purchase, with each buyer's queue slot freed
    and the organizers' webhooks and the buyer's receipt queued alongside (or the receipt
    recorded as not sent). The orders move first, so an order that can't be fulfilled raises
    IllegalTransition before anything of it is written."""
    if not issued:
        return
    sales.transition_all(
        session, [item.order for item in issued], sales.FULFILLED, cause, mint_tx_hash=tx_hash
    )
    now = utcnow()
    # One multi-row INSERT for the whole batch's tickets, as Core: built as ORM objects, they
    # cost a mint batch more CPU than writing them.
    session.connection().execute(
        _INSERT_TICKETS,
        [
            {
                "event_id": item.order.event_id,
                "tier_id": item.order.tier_id,
                "order_id": item.order.id,
                "token_id": token_id,
                "owner_address": item.order.buyer_address,
                "seat": seat,
                "metadata_cid": item.metadata_cid,
                "tx_hash": tx_hash,
                "created_at": now,
            }
            for item in issued
            for token_id, seat in zip(item.token_ids, item.seat_labels, strict=True)
        ],
    )
    for item in issued:
        order = item.order
        queue.finish(session, order.event_id, order.buyer_address)
        notify.order_fulfilled(
            session, order, item.token_ids, tx_hash, receipt_skipped=item.receipt_skipped
        )


_TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
_INSERT_TICKETS = insert(_TICKETS)


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
