"""Orders: inventory holds, the order state machine, and what payment outcomes do to them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    not_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from backend import outbox
from backend.catalog.errors import EventCancelled, EventNotFound
from backend.catalog.models import Event, Tier
from backend.db.base import UTCDateTime, utcnow
from backend.queue import service as queue
from backend.sales.errors import (
    IllegalTransition,
    OrderInProgress,
    OrderNotFound,
    QuantityNotAllowed,
    SaleNotOpen,
    SoldOut,
    TierNotFound,
)
from backend.sales.models import OPEN_ORDER_INDEX, Order, OrderTransition

log = logging.getLogger("fairtix.sales")

CREATED, HELD, AWAITING_PAYMENT, PAID, MINTING, FULFILLED = (
    "created",
    "held",
    "awaiting_payment",
    "paid",
    "minting",
    "fulfilled",
)
FAILED, EXPIRED, REFUNDED, CANCELLED = "failed", "expired", "refunded", "cancelled"

# Every move an order may make; anything else is refused and recorded nowhere.
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({HELD, CANCELLED, FAILED}),
    HELD: frozenset({AWAITING_PAYMENT, EXPIRED, CANCELLED}),
    AWAITING_PAYMENT: frozenset({PAID, FAILED, EXPIRED, CANCELLED}),
    # A crypto purchase mints as it pays: the indexer takes the order from paid to fulfilled.
    PAID: frozenset({MINTING, FULFILLED, REFUNDED}),
    MINTING: frozenset({FULFILLED, PAID}),
    # A reorg that orphans the block of a crypto purchase takes its payment back: the order waits
    # for payment again while its hold lasts, else it expires.
    FULFILLED: frozenset({REFUNDED, AWAITING_PAYMENT, EXPIRED}),
    # A retried card (Stripe lets a PaymentIntent succeed after a decline) or a payment that lands
    # after the hold expired is honoured if the seats can be taken again.
    # Money that arrived for an order that can no longer be served goes back: refunded.
    FAILED: frozenset({PAID, REFUNDED}),
    EXPIRED: frozenset({PAID, REFUNDED}),
    # Only for a crypto order whose last refund claim a reorg orphaned: its tickets exist again.
    REFUNDED: frozenset({FULFILLED}),
    CANCELLED: frozenset({REFUNDED}),
}
OPEN_STATUSES = (HELD, AWAITING_PAYMENT)
# A payment in flight keeps the hold this much longer than the admission it came with.
PAYMENT_GRACE = timedelta(minutes=15)

MINT_ORDER = "mint_order"
CRYPTO = "crypto"
"""``payment_provider`` of orders paid on chain with a purchase permit."""
REFUND_ORDER = "refund_order"


def transition(session: Session, order: Order, to_status: str, cause: str) -> OrderTransition:
    """Move ``order`` to ``to_status`` and record why; returns the recorded transition."""
    if to_status not in TRANSITIONS[order.status]:
        raise IllegalTransition(order.id, order.status, to_status)
    step = OrderTransition(
        order_id=order.id, from_status=order.status, to_status=to_status, cause=cause
    )
    session.add(step)
    _log_transition(order.id, order.status, to_status, cause)
    order.status = to_status
    return step


def transition_all(
    session: Session,
    orders: Sequence[Order],
    to_status: str,
    cause: str,
    now: datetime | None = None,
    **columns: Any,
) -> None:
    """transition() for many orders at once, with ``columns`` (say mint_tx_hash) set on each
    too: one UPDATE of the orders and one INSERT of their transitions, whatever their number.
    Every move is checked first; an illegal one raises IllegalTransition with nothing written.

    A mint batch moves a hundred orders twice: through the ORM's unit of work that was most
    of the worker's CPU per order in bench-onsale. The orders keep their new values as loaded,
    so the session writes nothing more for them."""
    if not orders:
        return
    for order in orders:
        if to_status not in TRANSITIONS[order.status]:
            raise IllegalTransition(order.id, order.status, to_status)
    now = now or utcnow()
    session.flush()  # pending changes of these orders go first, not over the UPDATE
    connection = session.connection()
    connection.execute(
        _move_orders(tuple(sorted(columns))),
        {
            "ids": [order.id for order in orders],
            "to_status": to_status,
            "now": now,
            **{f"set_{name}": value for name, value in columns.items()},
        },
    )
    steps = [
        {
            "order_id": o.id,
            "from_status": o.status,
            "to_status": to_status,
            "cause": cause,
            "at": now,
        }
        for o in orders
    ]
    connection.execute(_INSERT_TRANSITION, steps)
    for order in orders:
        _log_transition(order.id, order.status, to_status, cause)
        for name, value in {"status": to_status, "updated_at": now, **columns}.items():
            set_committed_value(order, name, value)


@functools.cache
def _move_orders(columns: tuple[str, ...]) -> Update:
    """The UPDATE of transition_all, per set of extra columns: built once each."""
    return (
        update(_ORDERS)
        .where(_ORDERS.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            status=bindparam("to_status"),
            updated_at=bindparam("now", type_=UTCDateTime()),
            **{name: bindparam(f"set_{name}", type_=_ORDERS.c[name].type) for name in columns},
        )
    )


def _log_transition(order_id: int, from_status: str | None, to_status: str, cause: str) -> None:
    log.info(
        "order transition",
        extra={"order_id": order_id, "from": from_status, "to": to_status, "cause": cause},
    )


def place_order(
    session: Session,
    event_id: int,
    tier_id: int,
    quantity: int,
    buyer: str,
    now: datetime | None = None,
) -> tuple[Order, OrderTransition]:
    """Hold seats for an admitted buyer. Never more held than the tier's supply. Returns the
    order and its first recorded transition; the caller commits at once."""
    now = now or utcnow()
    buyer = buyer.lower()
    event, tier = _event_and_tier(session, event_id, tier_id)
    require_not_cancelled(event)
    if now < event.sale_opens_at:
        raise SaleNotOpen(event.id, "the sale has not opened yet")
    if now >= event.starts_at:
        raise SaleNotOpen(event.id, "the event has started")
    if tier is None:
        raise TierNotFound(event.id, tier_id)
    if not 1 <= quantity <= event.max_tickets_per_order:
        raise QuantityNotAllowed(quantity, event.max_tickets_per_order)
    admission = queue.require_admission(session, event, buyer, now)
    open_order = _open_order_of(session, event.id, buyer)
    if open_order is not None:
        raise OrderInProgress(open_order)
    if tier.reserved + quantity > tier.supply:
        # Read in this transaction a moment ago: a sold-out tier answers without taking its lock.
        raise SoldOut(tier.id, quantity, max(tier.supply - tier.reserved, 0))
    values = {
        "event_id": event.id,
        "tier_id": tier.id,
        "buyer_address": buyer,
        "quantity": quantity,
        "unit_price_cents": tier.price_cents,
        "currency": tier.currency,
        "status": HELD,
        "hold_expires_at": admission.admission_expires_at,
        "created_at": now,
        "updated_at": now,
    }
    # Written with Core statements built once, and handed back as the session's own objects:
    # the ORM's unit of work cost the on-sale's busiest transaction more CPU than the inserts.
    session.flush()
    connection = session.connection()
    try:
        order_id = _inserted_id(connection.execute(_INSERT_ORDER, values))
    except IntegrityError as exc:
        # The check above raced another request of the same buyer, which inserted first: the
        # open-order index refuses this one (on PostgreSQL after waiting for the other's commit).
        if _open_order_conflict(exc):
            raise OrderInProgress(None) from exc
        raise
    held_values = {
        "order_id": order_id,
        "from_status": None,
        "to_status": HELD,
        "cause": "seats held",
        "at": now,
    }
    step_id = _inserted_id(connection.execute(_INSERT_TRANSITION, held_values))
    # Last, so the tier's row lock, which every buyer of the tier queues for, is held only for
    # the commit that follows: taken before the inserts it made the on-sale one order at a time.
    # Sold out here rolls the order back with the transaction.
    _reserve(session, tier, quantity)
    order = _as_loaded(session, Order, {"id": order_id, **values})
    held = _as_loaded(session, OrderTransition, {"id": step_id, **held_values})
    return order, held


_ORDERS: Table = Order.__table__  # type: ignore[assignment]
_EVENTS: Table = Event.__table__  # type: ignore[assignment]
_TRANSITIONS: Table = OrderTransition.__table__  # type: ignore[assignment]
# Plain INSERTs: the columns are the ones each execution names.
_INSERT_ORDER = insert(_ORDERS)
_INSERT_TRANSITION = insert(_TRANSITIONS)

_Model = TypeVar("_Model", Order, OrderTransition)


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _as_loaded(session: Session, model: type[_Model], values: dict[str, Any]) -> _Model:
    """The row just inserted with ``values`` as the session's persistent object, as if it had
    been loaded: every column set (the unnamed ones NULL), so reading one costs no query."""
    table: Table = model.__table__  # type: ignore[assignment]
    instance = model(**{column.key: values.get(column.key) for column in table.columns})
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


# The order path's reads are built once, with bind parameters: building a statement around each
# request's values (and its cache key) cost more CPU than running it (make bench-paired).
_OPEN_ORDER_OF = select(Order.id).where(
    Order.event_id == bindparam("event_id"),
    Order.buyer_address == bindparam("buyer"),
    Order.status.in_(OPEN_STATUSES),
)


def _open_order_of(session: Session, event_id: int, buyer: str) -> int | None:
    # On the session's connection, after a flush: the ORM's execute path costs a hold more
    # than the query when all it returns is an id.
    session.flush()
    found: int | None = (
        session.connection()
        .execute(_OPEN_ORDER_OF, {"event_id": event_id, "buyer": buyer})
        .scalar_one_or_none()
    )
    return found


def _open_order_conflict(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    # PostgreSQL names the index; SQLite names its columns.
    return OPEN_ORDER_INDEX in message or "orders.event_id, orders.buyer_address" in message


_EVENT_AND_TIER = (
    select(Event, Tier)
    .outerjoin(Tier, (Tier.event_id == Event.id) & (Tier.id == bindparam("tier_id")))
    .where(Event.id == bindparam("event_id"))
)


def _event_and_tier(session: Session, event_id: int, tier_id: int) -> tuple[Event, Tier | None]:
    """The event and its tier ``tier_id`` (None if the event has no such tier), in one query:
    a hold is the on-sale's busiest transaction, and every round trip is CPU on both ends."""
    row = session.execute(_EVENT_AND_TIER, {"event_id": event_id, "tier_id": tier_id}).one_or_none()
    if row is None:
        raise EventNotFound(event_id)
    return row[0], row[1]


# The tier's counters, as Core statements built once: the ORM's UPDATE path rebuilt and
# re-planned them per call and was most of a hold's CPU in bench-onsale. Run on the session's
# connection after a flush, since Core statements don't autoflush what the session holds.
_TIERS: Table = Tier.__table__  # type: ignore[assignment]
_RESERVE = (
    update(_TIERS)
    .where(
        _TIERS.c.id == bindparam("tier_id"),
        _TIERS.c.reserved + bindparam("quantity") <= _TIERS.c.supply,
    )
    .values(reserved=_TIERS.c.reserved + bindparam("quantity"))
)
_RELEASE = (
    update(_TIERS)
    .where(_TIERS.c.id == bindparam("tier_id"))
    .values(reserved=_TIERS.c.reserved - bindparam("quantity"))
)
_NUMBER_SEATS = (
    update(_TIERS)
    .where(_TIERS.c.id == bindparam("tier_id"))
    .values(seats_assigned=_TIERS.c.seats_assigned + bindparam("quantity"))
    .returning(_TIERS.c.seats_assigned)
)


def _tier_counter(
    session: Session, statement: Update, tier_id: int, quantity: int
) -> CursorResult[Any]:
    session.flush()
    result: CursorResult[Any] = session.connection().execute(
        statement, {"tier_id": tier_id, "quantity": quantity}
    )
    return result


def _reserve(session: Session, tier: Tier, quantity: int) -> None:
    # One conditional UPDATE: the database, not this process, decides who gets the last seat.
    if _tier_counter(session, _RESERVE, tier.id, quantity).rowcount != 1:
        session.refresh(tier)
        raise SoldOut(tier.id, quantity, max(tier.supply - tier.reserved, 0))
    # Reloaded only if someone reads it: an on-sale's hold needs no second round trip.
    session.expire(tier, ["reserved"])


def _release(session: Session, order: Order) -> None:
    _tier_counter(session, _RELEASE, order.tier_id, order.quantity)


def get_order(
    session: Session, order_id: int, viewer: str | None = None, *, for_update: bool = False
) -> Order:
    """Load an order; a viewer other than its buyer is told it does not exist.

    ``for_update`` locks the row (PostgreSQL) for a caller about to change the order's status,
    so the expiry sweeper or a webhook can't move it in between and release its seats twice.
    """
    order = session.get(Order, order_id, with_for_update=for_update)
    if order is None or (viewer is not None and order.buyer_address != viewer.lower()):
        raise OrderNotFound(order_id)
    return order


_ORDER_AND_EVENT = (
    select(Order, Event)
    .join(Event, Event.id == Order.event_id)
    .where(Order.id == bindparam("order_id"))
)
_ORDER_AND_EVENT_FOR_UPDATE = _ORDER_AND_EVENT.with_for_update(of=Order)


def get_order_and_event(
    session: Session, order_id: int, viewer: str | None = None, *, for_update: bool = False
) -> tuple[Order, Event]:
    """get_order, with the order's event read in the same query. ``for_update`` locks only
    the order's row: a lock on the event would queue every checkout of an on-sale behind one
    another."""
    query = _ORDER_AND_EVENT_FOR_UPDATE if for_update else _ORDER_AND_EVENT
    row = session.execute(query, {"order_id": order_id}).one_or_none()
    if row is None or (viewer is not None and row[0].buyer_address != viewer.lower()):
        raise OrderNotFound(order_id)
    return row[0], row[1]


def start_payment(
    session: Session, order: Order, provider: str, intent_id: str, now: datetime | None = None
) -> OrderTransition | None:
    """Record the payment intent. The first checkout extends the hold once, by PAYMENT_GRACE;
    repeating checkout returns the same intent and never extends it again (else a buyer could
    keep seats off sale until the event by calling it every few minutes). Returns the
    transition to awaiting payment, or None for a repeated checkout."""
    now = now or utcnow()
    order.payment_provider = provider
    order.payment_intent_id = intent_id
    if order.status != HELD:
        return None
    started = transition(session, order, AWAITING_PAYMENT, f"checkout started with {provider}")
    until = now + PAYMENT_GRACE
    if order.hold_expires_at is None or order.hold_expires_at < until:
        order.hold_expires_at = until
    queue.extend_admission(session, order.event_id, order.buyer_address, until)
    return started


@dataclass(frozen=True)
class PaymentStarted:
    """A held order's move to awaiting payment, as start_held_payment recorded it."""

    event_id: int
    hold_expires_at: datetime
    cause: str
    at: datetime


# For the conditional UPDATEs below: the order's event is still on (checked under the order's
# row lock, as require_not_cancelled is on the general path).
_EVENT_NOT_CANCELLED = (
    select(_EVENTS.c.id)
    .where(_EVENTS.c.id == _ORDERS.c.event_id, _EVENTS.c.cancelled_at.is_(None))
    .exists()
)
_UNTIL = bindparam("until", type_=UTCDateTime())
_START_HELD_PAYMENT = (
    update(_ORDERS)
    .where(
        _ORDERS.c.id == bindparam("order_id"),
        _ORDERS.c.buyer_address == bindparam("buyer"),
        _ORDERS.c.status == HELD,
        _ORDERS.c.payment_provider.is_(None),
        _EVENT_NOT_CANCELLED,
    )
    .values(
        status=AWAITING_PAYMENT,
        payment_provider=bindparam("provider"),
        payment_intent_id=bindparam("intent_id"),
        hold_expires_at=case(
            (_ORDERS.c.hold_expires_at.is_(None), _UNTIL),
            (_ORDERS.c.hold_expires_at < _UNTIL, _UNTIL),
            else_=_ORDERS.c.hold_expires_at,
        ),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(_ORDERS.c.event_id, _ORDERS.c.hold_expires_at)
)


def start_held_payment(
    session: Session,
    order_id: int,
    buyer: str,
    provider: str,
    intent_id: str,
    now: datetime | None = None,
) -> PaymentStarted | None:
    """start_payment for the common case, in two statements and without loading the order:
    ``buyer``'s order ``order_id``, held, of an event not cancelled and with no payment yet,
    moves to awaiting payment with the intent recorded and the hold extended as start_payment
    extends it. Returns None, changing nothing, for any other order: the caller takes the
    general path (get_order_and_event and start_payment), which says what is wrong with it.

    The on-sale's checkout: loading the order and flushing its changes through the ORM cost
    more CPU than the statements themselves (make bench-paired)."""
    now = now or utcnow()
    until = now + PAYMENT_GRACE
    cause = f"checkout started with {provider}"
    session.flush()
    row = (
        session.connection()
        .execute(
            _START_HELD_PAYMENT,
            {
                "order_id": order_id,
                "buyer": buyer.lower(),
                "provider": provider,
                "intent_id": intent_id,
                "until": until,
                "now": now,
            },
        )
        .one_or_none()
    )
    if row is None:
        return None
    _record_move(session, order_id, HELD, AWAITING_PAYMENT, cause, now)
    queue.extend_admission(session, row.event_id, buyer, until)
    return PaymentStarted(row.event_id, row.hold_expires_at, cause, now)


def _record_move(
    session: Session, order_id: int, from_status: str, to_status: str, cause: str, at: datetime
) -> None:
    """After a Core UPDATE moved the order: its transition recorded and logged, and the
    session's copy of the order, if it holds one, read again when next asked."""
    session.connection().execute(
        _INSERT_TRANSITION,
        {
            "order_id": order_id,
            "from_status": from_status,
            "to_status": to_status,
            "cause": cause,
            "at": at,
        },
    )
    _log_transition(order_id, from_status, to_status, cause)
    loaded = session.identity_map.get(session.identity_key(Order, order_id))
    if loaded is not None:
        session.expire(loaded)


def order_for_intent(session: Session, provider: str, intent_id: str) -> Order | None:
    found = order_and_event_for_intent(session, provider, intent_id)
    return None if found is None else found[0]


_ORDER_AND_EVENT_FOR_INTENT = (
    select(Order, Event)
    .join(Event, Event.id == Order.event_id)
    .where(
        Order.payment_provider == bindparam("provider"),
        Order.payment_intent_id == bindparam("intent_id"),
    )
    .with_for_update(of=Order)
)


def order_and_event_for_intent(
    session: Session, provider: str, intent_id: str
) -> tuple[Order, Event] | None:
    """The order paid by ``intent_id``, locked, and its event (not locked), in one query."""
    row = session.execute(
        _ORDER_AND_EVENT_FOR_INTENT, {"provider": provider, "intent_id": intent_id}
    ).one_or_none()
    return None if row is None else (row[0], row[1])


_PAY_AWAITED_ORDER = (
    update(_ORDERS)
    .where(
        _ORDERS.c.payment_provider == bindparam("provider"),
        _ORDERS.c.payment_intent_id == bindparam("intent_id"),
        _ORDERS.c.status == AWAITING_PAYMENT,
        _ORDERS.c.quantity * _ORDERS.c.unit_price_cents == bindparam("amount"),
        func.lower(_ORDERS.c.currency) == bindparam("paid_currency"),
        _EVENT_NOT_CANCELLED,
    )
    .values(status=PAID, updated_at=bindparam("now", type_=UTCDateTime()))
    .returning(_ORDERS.c.id)
)


def pay_awaited_order(
    session: Session,
    provider: str,
    intent_id: str,
    amount: int,
    currency: str,
    cause: str,
    now: datetime | None = None,
) -> int | None:
    """mark_paid for the common case, in three statements and without loading the order: the
    order awaiting this intent's payment, of the exact total, of an event not cancelled, is
    paid and its mint queued. Returns its id; None, changing nothing, for any other order (or
    none): the caller takes the general path, order_and_event_for_intent and mark_paid.

    Every card payment of an on-sale comes this way: loading the order and flushing its move
    through the ORM cost more CPU than the statements (make bench-paired)."""
    now = now or utcnow()
    session.flush()
    order_id = (
        session.connection()
        .execute(
            _PAY_AWAITED_ORDER,
            {
                "provider": provider,
                "intent_id": intent_id,
                "amount": amount,
                "paid_currency": currency.lower(),
                "now": now,
            },
        )
        .scalar_one_or_none()
    )
    if order_id is None:
        return None
    _record_move(session, order_id, AWAITING_PAYMENT, PAID, cause, now)
    # Seats are numbered when the mint is batched: see mark_paid.
    outbox.enqueue(session, MINT_ORDER, {"order_id": order_id})
    return int(order_id)


def mark_paid(
    session: Session,
    order: Order,
    amount: int,
    currency: str,
    cause: str,
    *,
    queue_mint: bool = True,
    event: Event | None = None,
) -> bool:
    """Record a successful payment and queue the mint, in this one transaction.

    Returns False when no tickets will come of it: already paid, or the money must go back
    (wrong total, cancelled order, seats gone), in which case its refund is queued here.
    ``queue_mint=False`` for a payment that minted the tickets itself (a crypto purchase).
    ``event``: the order's event, if the caller has read it already.
    """
    if order.status in (PAID, MINTING, FULFILLED, REFUNDED):
        return False
    expected = order.quantity * order.unit_price_cents
    if amount != expected or currency.lower() != order.currency.lower():
        _refund_due(
            session, order, f"paid {amount} {currency}, expected {expected} {order.currency}"
        )
        if order.status in OPEN_STATUSES:
            transition(session, order, FAILED, "payment did not match the order total")
            _release(session, order)
        return False
    if event is None:
        event = session.get(Event, order.event_id)
        assert event is not None
    if event.cancelled_at is not None:
        _refund_due(session, order, "paid after the event was cancelled")
        if order.status in OPEN_STATUSES:
            # Only an order placed in the instant of the cancellation is still open here.
            transition(session, order, CANCELLED, "event cancelled")
            _release(session, order)
        return False
    if order.status == CANCELLED:
        _refund_due(session, order, "paid after the buyer cancelled")
        return False
    if order.status in (EXPIRED, FAILED):
        # The hold was released before the money arrived: take the seats again if they exist.
        tier = session.get(Tier, order.tier_id)
        assert tier is not None
        try:
            _reserve(session, tier, order.quantity)
        except SoldOut:
            _refund_due(session, order, "paid after the hold was released and the tier sold out")
            return False
    transition(session, order, PAID, cause)
    if queue_mint:
        # Its seats are numbered when the worker batches its mint (number_seats): numbering
        # here took the tier's row lock, which every hold of the tier queues for, a second time
        # per order, and held it across this transaction's last statements and commit. In
        # bench-onsale 3-4 backends were waiting on that lock at any moment of the sale.
        outbox.enqueue(session, MINT_ORDER, {"order_id": order.id})
    else:
        # A crypto purchase minted its tickets as it paid: they are recorded now.
        number_seats(session, [order])
    return True


def number_seats(session: Session, orders: Sequence[Order]) -> None:
    """Give each order without seat numbers the next ``quantity`` seats of its tier: one
    UPDATE ... RETURNING per tier for all of them, in order id order.

    The UPDATE is the row lock _reserve and _release take. A SELECT ... FOR UPDATE here is a
    stronger lock, one that conflicts with the key-share lock each new order's foreign key holds
    on its tier: payments deadlocked against holds in the 500-buyer race
    (tests/sales/test_onsale_race.py). Numbered last (pending inserts are flushed before it), so
    the lock is held for the commit only."""
    by_tier: dict[int, list[Order]] = {}
    for order in sorted(orders, key=lambda o: o.id):
        if order.first_seat is None:
            by_tier.setdefault(order.tier_id, []).append(order)
    for tier_id in sorted(by_tier):
        numbered = by_tier[tier_id]
        total = sum(order.quantity for order in numbered)
        seat = _tier_counter(session, _NUMBER_SEATS, tier_id, total).scalar_one() - total + 1
        first_seats = []
        for order in numbered:
            first_seats.append({"order_id": order.id, "seat": seat})
            # Written below, as one statement for all: the session has nothing more to write.
            set_committed_value(order, "first_seat", seat)
            seat += order.quantity
        session.connection().execute(_SET_FIRST_SEAT, first_seats)


_SET_FIRST_SEAT = (
    update(_ORDERS)
    .where(_ORDERS.c.id == bindparam("order_id"))
    .values(first_seat=bindparam("seat"))
)


def undo_payment(session: Session, order: Order, cause: str, now: datetime | None = None) -> None:
    """Take back a crypto payment whose block a reorg orphaned (its tickets are the caller's to
    delete): the order waits for payment again while its hold lasts (and its buyer has opened
    no other order meanwhile), else it expires and gives its seats back. The permit stays
    valid, so the same purchase may be mined again."""
    now = now or utcnow()
    if (
        order.hold_expires_at is not None
        and order.hold_expires_at > now
        # The buyer may have opened another order since: one open order each (the index).
        and _open_order_of(session, order.event_id, order.buyer_address) is None
    ):
        transition(session, order, AWAITING_PAYMENT, cause)
    else:
        transition(session, order, EXPIRED, cause)
        _release(session, order)
    order.first_seat = None
    order.mint_tx_hash = None


def _refund_due(session: Session, order: Order, reason: str) -> None:
    """Money arrived that we will not turn into tickets: queue its refund in this transaction."""
    if order.payment_provider == CRYPTO:
        # Ether paid on chain can't be pushed back by us: the contract holds it in escrow, and
        # the buyer claims it there if the event is cancelled.
        log.warning(
            "crypto payment not turned into tickets", extra={"order_id": order.id, "reason": reason}
        )
        order.failure_reason = f"{reason}: paid on chain, refundable on chain only"
        return
    log.warning("payment will be refunded", extra={"order_id": order.id, "reason": reason})
    order.failure_reason = f"{reason}: refund queued"
    order.refund_due_at = utcnow()
    outbox.enqueue(session, REFUND_ORDER, {"order_id": order.id})


def mark_refunded(session: Session, order_id: int, cause: str = "payment refunded") -> None:
    order = session.get(Order, order_id, with_for_update=True)
    if order is None or order.status == REFUNDED:
        return
    transition(session, order, REFUNDED, cause)
    order.refunded_at = utcnow()
    order.failure_reason = (order.failure_reason or "").replace("refund queued", "refunded")


# A chargeback closed with these is decided: a late "updated" event can't reopen it. An
# inquiry that closed (warning_closed) is not: it can still become a chargeback, which must
# not be missed for the sake of a stale status.
DISPUTE_DECIDED = frozenset({"won", "lost"})


# Said on an order whose refund waits for its chargeback's decision (backend.sales.refunds).
REFUND_HELD_FOR_DISPUTE = "refund held: the card's bank is deciding a chargeback of this payment"
REFUNDED_BY_CHARGEBACK = "refunded by the card's bank: the buyer's chargeback was decided"


def dispute_holds_refund(status: str | None) -> bool:
    """A chargeback the bank has not decided: the money is with the bank, and the provider
    refuses a refund of the charge meanwhile (Stripe's ``charge_disputed``). An inquiry (Stripe's
    ``warning_*`` statuses) withdraws nothing, and a refund closes it, so it holds nothing."""
    return status is not None and status not in DISPUTE_DECIDED and not status.startswith("warning")


def dispute_holds_refund_sql() -> ColumnElement[bool]:
    """``dispute_holds_refund`` of an order, as SQL (reports and metrics count with it)."""
    status = Order.dispute_status
    return and_(
        status.is_not(None), status.not_in(DISPUTE_DECIDED), not_(status.startswith("warning"))
    )


def record_dispute(
    session: Session, order: Order, status: str, reason: str, now: datetime | None = None
) -> bool:
    """A cardholder disputed the order's payment with their bank, or the dispute moved on.
    Returns whether the order's record changed (the caller tells the organizer). The order's
    status and tickets stay as they are: the money's fate is the bank's call, and the tickets
    may have been resold on chain to someone who paid for them.

    A refund held for the dispute (an event cancelled meanwhile) moves on with its decision:
    won, the money is ours again and the refund is queued; lost, the bank already gave it back,
    and the order is refunded without a second refund of ours."""
    if order.dispute_status in DISPUTE_DECIDED and status not in DISPUTE_DECIDED:
        return False
    if (order.dispute_status, order.dispute_reason) == (status, reason):
        return False
    order.disputed_at = order.disputed_at or now or utcnow()
    order.dispute_status = status
    order.dispute_reason = reason
    log.warning(
        "payment disputed",
        extra={"order_id": order.id, "dispute_status": status, "reason": reason},
    )
    if order.refund_due_at is not None and order.status != REFUNDED:
        # Minting, the refund message is still waiting for the mint's outcome (RefundNotYet)
        # and reads the decision itself then.
        if status == "won":
            outbox.enqueue(session, REFUND_ORDER, {"order_id": order.id})
        elif status == "lost" and order.status != MINTING:
            mark_refunded_by_chargeback(session, order)
    if status in DISPUTE_DECIDED:
        # A cancellation that followed the order's tickets holds its holders' card refunds
        # of this payment too. Imported here: holder_refunds builds on this module.
        from backend.sales import holder_refunds

        holder_refunds.on_dispute_decided(session, order)
    return True


def mark_refunded_by_chargeback(session: Session, order: Order) -> None:
    """A refund we owed that the card's bank paid instead, by a chargeback it decided for the
    cardholder: refunding too would pay the buyer twice."""
    transition(session, order, REFUNDED, "the card's bank returned the payment (chargeback)")
    order.refunded_at = utcnow()
    order.failure_reason = REFUNDED_BY_CHARGEBACK
    log.warning("refund paid by a chargeback", extra={"order_id": order.id})


def require_not_cancelled(event: Event) -> None:
    """Raise EventCancelled for a cancelled event: nothing of it can be bought or paid."""
    if event.cancelled_at is not None:
        raise EventCancelled(event.id, event.cancel_reason)


def mark_payment_failed(session: Session, order: Order, reason: str) -> bool:
    """A declined payment releases the hold; the buyer may order again while admitted."""
    if order.status != AWAITING_PAYMENT:
        return False
    transition(session, order, FAILED, f"payment failed: {reason}")
    order.failure_reason = reason
    _release(session, order)
    return True


def cancel_order(session: Session, order: Order, cause: str = "cancelled by the buyer") -> None:
    if order.status not in OPEN_STATUSES:
        raise IllegalTransition(order.id, order.status, CANCELLED)
    transition(session, order, CANCELLED, cause)
    _release(session, order)


def queue_refund(session: Session, order: Order, reason: str) -> bool:
    """Queue the refund of a card order's payment in the caller's transaction, once; returns
    False if one was already queued (or the order is paid on chain, where only its holders
    can claim the money back)."""
    if order.refund_due_at is not None or order.payment_provider in (None, CRYPTO):
        return False
    _refund_due(session, order, reason)
    return True


def release_expired_holds(session: Session, now: datetime | None = None) -> int:
    """Expire open orders whose hold ran out and give their seats back."""
    now = now or utcnow()
    expired = list(
        session.scalars(
            select(Order)
            .where(Order.status.in_(OPEN_STATUSES), Order.hold_expires_at <= now)
            .with_for_update(skip_locked=True)
            .limit(500)
        )
    )
    for order in expired:
        transition(session, order, EXPIRED, "hold expired")
        _release(session, order)
    return len(expired)


def orders_of(
    session: Session, wallet: str, *, before_id: int | None = None, limit: int = 20
) -> list[Order]:
    """A buyer's orders, newest first (keyset: those with an id below ``before_id``)."""
    query = select(Order).where(Order.buyer_address == wallet.lower())
    if before_id is not None:
        query = query.where(Order.id < before_id)
    return list(session.scalars(query.order_by(Order.id.desc()).limit(limit)))


def transitions_of(session: Session, order_id: int) -> list[OrderTransition]:
    return transitions_by_order(session, [order_id]).get(order_id, [])


def transitions_by_order(
    session: Session, order_ids: list[int]
) -> dict[int, list[OrderTransition]]:
    """Each order's transitions, oldest first, in one query for a page of orders."""
    found: dict[int, list[OrderTransition]] = {}
    for step in session.scalars(
        select(OrderTransition)
        .where(OrderTransition.order_id.in_(order_ids))
        .order_by(OrderTransition.id)
    ):
        found.setdefault(step.order_id, []).append(step)
    return found
