"""Plain factories for fulfilment tests: events created through the catalog service (so their
contracts exist on the test chain) and paid card orders made with the sales service functions,
which queue their ``mint_order`` outbox messages as a card payment does."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from eth_account import Account
from sqlalchemy import select

from backend.catalog import service as catalog
from backend.catalog.models import Event
from backend.catalog.schemas import EventCreate, TierCreate
from backend.db.engine import transaction
from backend.queue import service as queue
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.models import Order

QUEUE_SECRET = b"fulfilment-test-secret"


def create_event(
    runtime: Runtime, supply: int = 1_000, name: str = "Batch night", per_wallet_limit: int = 0
) -> int:
    """An on-sale event with one tier, its TicketEvent deployed on ``runtime``'s chain."""
    now = datetime.now(UTC)
    spec = EventCreate(
        name=name,
        starts_at=now + timedelta(days=30),
        sale_opens_at=now - timedelta(minutes=1),
        max_admitted=100_000,
        admissions_per_minute=1_000_000,
        max_tickets_per_order=10,
        tiers=[
            TierCreate(
                name="GA", price_cents=2_500, supply=supply, per_wallet_limit=per_wallet_limit
            )
        ],
    )
    organizer = Account.create().address
    with transaction(runtime.sessions) as session:
        event = catalog.create_event(
            session, runtime.chain, runtime.blockstore, runtime.settings, organizer, spec
        )
        return event.id


def paid_orders(
    runtime: Runtime,
    event_id: int,
    quantities: Sequence[int],
    rng: random.Random | None = None,
    buyer: str | None = None,
) -> list[int]:
    """One paid card order per quantity, each by a new wallet (or all by ``buyer``): joined,
    admitted, held, checked out and paid, as the sales service does it for a card webhook."""
    rng = rng or random.Random()
    order_ids = []
    for quantity in quantities:
        wallet = buyer or "0x" + rng.randbytes(20).hex()
        with transaction(runtime.sessions) as session:
            event = session.get(Event, event_id)
            assert event is not None
            queue.join(session, event, wallet, QUEUE_SECRET)
            tier_id = event.tiers[0].id
        with transaction(runtime.sessions) as session:
            order, _held = sales.place_order(session, event_id, tier_id, quantity, wallet)
            sales.start_payment(session, order, "sandbox", f"pi_test_{order.id}")
            paid = sales.mark_paid(
                session,
                order,
                order.quantity * order.unit_price_cents,
                order.currency,
                "card payment succeeded (test)",
            )
            assert paid
            order_ids.append(order.id)
    return order_ids


def statuses(runtime: Runtime, order_ids: Sequence[int]) -> dict[int, str]:
    with transaction(runtime.sessions) as session:
        rows = session.execute(select(Order.id, Order.status).where(Order.id.in_(order_ids)))
        return {order_id: status for order_id, status in rows}
