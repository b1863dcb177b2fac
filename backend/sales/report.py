"""An event's sales for its organizer on the night: at a glance (orders by status, tickets sold
and money taken per tier, refunds and chargebacks), and order by order for support (a buyer's
orders, the disputed ones). Read live from the orders in the caller's transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.sales import service as sales
from backend.sales.models import Order

# Orders whose money is in and whose tickets are (or are being) issued.
SOLD = (sales.PAID, sales.MINTING, sales.FULFILLED)


@dataclass(frozen=True)
class TierSales:
    tier_id: int
    name: str
    supply: int
    reserved: int
    """Seats held by open orders or sold: what is no longer on sale."""
    tickets_sold: int
    gross_cents: int
    currency: str


@dataclass(frozen=True)
class SalesReport:
    event_id: int
    tiers: list[TierSales]
    orders_by_status: dict[str, int]
    refunds_pending: int
    refunds_done: int
    disputes_by_status: dict[str, int] = field(default_factory=dict)
    refunds_held_for_disputes: int = 0


def sales_report(session: Session, event: Event) -> SalesReport:
    by_status = Counter[str]()
    sold: dict[int, tuple[int, int]] = {}
    rows = session.execute(
        select(
            Order.tier_id,
            Order.status,
            func.count(),
            func.sum(Order.quantity),
            func.sum(Order.quantity * Order.unit_price_cents),
        )
        .where(Order.event_id == event.id)
        .group_by(Order.tier_id, Order.status)
    )
    for tier_id, status, orders, tickets, gross in rows:
        by_status[status] += int(orders)
        if status in SOLD:
            before = sold.get(tier_id, (0, 0))
            sold[tier_id] = (before[0] + int(tickets or 0), before[1] + int(gross or 0))
    owed = and_(Order.refund_due_at.is_not(None), Order.refunded_at.is_(None))
    held = sales.dispute_holds_refund_sql()
    refunds_pending, refunds_held, refunds_done = session.execute(
        select(
            func.count().filter(owed, not_(held)),
            func.count().filter(owed, held),
            func.count().filter(Order.refunded_at.is_not(None)),
        ).where(Order.event_id == event.id)
    ).one()
    disputes = session.execute(
        select(Order.dispute_status, func.count())
        .where(Order.event_id == event.id, Order.dispute_status.is_not(None))
        .group_by(Order.dispute_status)
    )
    return SalesReport(
        event_id=event.id,
        tiers=[
            TierSales(
                tier_id=tier.id,
                name=tier.name,
                supply=tier.supply,
                reserved=tier.reserved,
                tickets_sold=sold.get(tier.id, (0, 0))[0],
                gross_cents=sold.get(tier.id, (0, 0))[1],
                currency=tier.currency,
            )
            for tier in event.tiers
        ],
        orders_by_status=dict(sorted(by_status.items())),
        refunds_pending=int(refunds_pending),
        refunds_done=int(refunds_done),
        refunds_held_for_disputes=int(refunds_held),
        disputes_by_status={str(status): int(n) for status, n in disputes},
    )


def event_orders(
    session: Session,
    event: Event,
    *,
    buyer: str | None = None,
    status: str | None = None,
    disputed: bool | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[Order]:
    """The event's orders in id order, from ``after_id`` on (keyset pages: stable while new
    orders arrive), narrowed to a buyer's wallet, a status, or (not) disputed."""
    query = select(Order).where(Order.event_id == event.id, Order.id > after_id)
    if buyer is not None:
        query = query.where(Order.buyer_address == buyer.lower())
    if status is not None:
        query = query.where(Order.status == status)
    if disputed is not None:
        dispute = Order.dispute_status
        query = query.where(dispute.is_not(None) if disputed else dispute.is_(None))
    return list(session.scalars(query.order_by(Order.id).limit(limit)))
